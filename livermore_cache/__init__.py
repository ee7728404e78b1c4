"""livermore_cache: exchange market data (candles, tickers, orderbooks, indicators) in Redis, written atomically by Lua scripts."""

from __future__ import annotations

from ._async.market import AsyncIndicatorCache, AsyncOrderbookCache, AsyncTickerCache
from ._async.subscription import AsyncIndicatorSubscription, AsyncTickerSubscription
from ._sync.market import IndicatorCache, OrderbookCache, TickerCache
from ._sync.subscription import IndicatorSubscription, TickerSubscription
from .aio import AsyncCandleCache
from .cache import CandleCache
from .errors import PartialWriteError, ValidationError
from .events import CandleClose, IndicatorUpdate, Series, TickerUpdate
from .health import Gap, candle_open_time, find_gaps, is_ready, timeframe_ms
from .keys import (
    alert_channel,
    candle_channel,
    candle_close_channel,
    candle_close_pattern,
    candle_key,
    indicator_channel,
    indicator_channel_pattern,
    indicator_key,
    orderbook_channel,
    orderbook_key,
    ticker_channel,
    ticker_channel_pattern,
    ticker_key,
)
from .market import IndicatorValue, Order, Orderbook, Ticker
from .models import MAX_SEQUENCE_NUM, Candle, Timeframe, UnifiedCandle
from .retry import WriteStats
from .rollups import aggregate_candles
from .subscriptions import AsyncCloseSubscription, CloseSubscription

__all__ = [
    "MAX_SEQUENCE_NUM",
    "AsyncCandleCache",
    "AsyncCloseSubscription",
    "AsyncIndicatorCache",
    "AsyncIndicatorSubscription",
    "AsyncOrderbookCache",
    "AsyncTickerCache",
    "AsyncTickerSubscription",
    "Candle",
    "CandleCache",
    "CandleClose",
    "CloseSubscription",
    "Gap",
    "IndicatorCache",
    "IndicatorSubscription",
    "IndicatorUpdate",
    "IndicatorValue",
    "Order",
    "Orderbook",
    "OrderbookCache",
    "PartialWriteError",
    "Series",
    "Ticker",
    "TickerCache",
    "TickerSubscription",
    "TickerUpdate",
    "Timeframe",
    "UnifiedCandle",
    "ValidationError",
    "WriteStats",
    "aggregate_candles",
    "alert_channel",
    "candle_channel",
    "candle_close_channel",
    "candle_close_pattern",
    "candle_key",
    "candle_open_time",
    "find_gaps",
    "indicator_channel",
    "indicator_channel_pattern",
    "indicator_key",
    "is_ready",
    "orderbook_channel",
    "orderbook_key",
    "ticker_channel",
    "ticker_channel_pattern",
    "ticker_key",
    "timeframe_ms",
]

__version__ = "0.1.0"

"""livermore_cache: exchange market data (candles, tickers, orderbooks, indicators) in Redis, written atomically by Lua scripts."""

from __future__ import annotations

import logging

from ._async.candles import AsyncCandleCache
from ._async.subscriptions import (
    AsyncCloseSubscription,
    AsyncIndicatorSubscription,
    AsyncOrderbookSubscription,
    AsyncTickerSubscription,
)
from ._async.values import AsyncIndicatorCache, AsyncOrderbookCache, AsyncTickerCache
from ._sync.candles import CandleCache
from ._sync.subscriptions import CloseSubscription, IndicatorSubscription, OrderbookSubscription, TickerSubscription
from ._sync.values import IndicatorCache, OrderbookCache, TickerCache
from .candles import Candle, UnifiedCandle
from .engine import WriteResults, WriteStats
from .errors import CacheClosedError, NotReplicatedError, PartialWriteError, ValidationError
from .events import CandleClose, IndicatorUpdate, OrderbookUpdate, Series, TickerUpdate
from .health import Gap, find_gaps, is_ready
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
    parse_candle_close_channel,
    parse_indicator_channel,
    parse_orderbook_channel,
    parse_ticker_channel,
    ticker_channel,
    ticker_channel_pattern,
    ticker_key,
)
from .limits import MAX_SAFE_INTEGER
from .rollups import aggregate_candles
from .timeframes import Timeframe, TimeframeLike, TimeframeName, candle_open_time, timeframe_ms
from .values import IndicatorValue, Order, Orderbook, Ticker

MAX_SEQUENCE_NUM = MAX_SAFE_INTEGER
"""The largest sequence number a write accepts: ``MAX_SAFE_INTEGER`` under the name earlier releases exported."""

__all__ = [
    "MAX_SAFE_INTEGER",
    "MAX_SEQUENCE_NUM",
    "AsyncCandleCache",
    "AsyncCloseSubscription",
    "AsyncIndicatorCache",
    "AsyncIndicatorSubscription",
    "AsyncOrderbookCache",
    "AsyncOrderbookSubscription",
    "AsyncTickerCache",
    "AsyncTickerSubscription",
    "CacheClosedError",
    "Candle",
    "CandleCache",
    "CandleClose",
    "CloseSubscription",
    "Gap",
    "IndicatorCache",
    "IndicatorSubscription",
    "IndicatorUpdate",
    "IndicatorValue",
    "NotReplicatedError",
    "Order",
    "Orderbook",
    "OrderbookCache",
    "OrderbookSubscription",
    "OrderbookUpdate",
    "PartialWriteError",
    "Series",
    "Ticker",
    "TickerCache",
    "TickerSubscription",
    "TickerUpdate",
    "Timeframe",
    "TimeframeLike",
    "TimeframeName",
    "UnifiedCandle",
    "ValidationError",
    "WriteResults",
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
    "parse_candle_close_channel",
    "parse_indicator_channel",
    "parse_orderbook_channel",
    "parse_ticker_channel",
    "ticker_channel",
    "ticker_channel_pattern",
    "ticker_key",
    "timeframe_ms",
]

logging.getLogger(__name__).addHandler(logging.NullHandler())

__version__ = "0.1.0"

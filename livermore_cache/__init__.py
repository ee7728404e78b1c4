"""livermore_cache: exchange candles cached in Redis, written atomically by one Lua script per series."""

from __future__ import annotations

from .aio import AsyncCandleCache
from .cache import CandleCache
from .errors import PartialWriteError, ValidationError
from .events import CandleClose, Series
from .keys import (
    alert_channel,
    candle_channel,
    candle_close_channel,
    candle_close_pattern,
    candle_key,
    indicator_channel,
    indicator_key,
    orderbook_channel,
    orderbook_key,
    ticker_channel,
    ticker_key,
)
from .models import MAX_SEQUENCE_NUM, Candle, Timeframe, UnifiedCandle
from .retry import WriteStats
from .subscriptions import AsyncCloseSubscription, CloseSubscription

__all__ = [
    "MAX_SEQUENCE_NUM",
    "AsyncCandleCache",
    "AsyncCloseSubscription",
    "Candle",
    "CandleCache",
    "CandleClose",
    "CloseSubscription",
    "PartialWriteError",
    "Series",
    "Timeframe",
    "UnifiedCandle",
    "ValidationError",
    "WriteStats",
    "alert_channel",
    "candle_channel",
    "candle_close_channel",
    "candle_close_pattern",
    "candle_key",
    "indicator_channel",
    "indicator_key",
    "orderbook_channel",
    "orderbook_key",
    "ticker_channel",
    "ticker_key",
]

__version__ = "0.1.0"

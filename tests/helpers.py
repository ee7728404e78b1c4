"""Small builders shared by the tests."""

from __future__ import annotations

import asyncio
import inspect
from typing import Any, cast

import redis

from livermore_cache import Candle, UnifiedCandle

USER = 7
EXCHANGE = 1
SYMBOL = "BTC-USD"
TIMEFRAME = "1m"
T0 = 1_704_067_200_000  # 2024-01-01T00:00:00Z
MINUTE = 60_000


def unified(
    timestamp: int = T0,
    sequence_num: int | None = None,
    *,
    close: float = 42000.5,
    symbol: str = SYMBOL,
    timeframe: str = TIMEFRAME,
    **extra: Any,
) -> UnifiedCandle:
    """A valid UnifiedCandle; ``close`` is the handle tests use to tell candles apart."""
    fields: dict[str, Any] = {
        "timestamp": timestamp,
        "open": 42000.0,
        "high": max(42001.25, close),
        "low": min(41999.0, close),
        "close": close,
        "volume": 12.345678,
        "symbol": symbol,
        "timeframe": timeframe,
        "exchange": "coinbase",
        "sequence_num": sequence_num,
    }
    fields.update(extra)
    return UnifiedCandle(**fields)


def plain(timestamp: int = T0, *, close: float = 42000.5, symbol: str = SYMBOL, timeframe: str = TIMEFRAME) -> Candle:
    return Candle(
        timestamp=timestamp,
        open=42000.0,
        high=max(42001.25, close),
        low=min(41999.0, close),
        close=close,
        volume=1.5,
        symbol=symbol,
        timeframe=timeframe,
    )


class AsyncAsSync:
    """Presents an async facade with a synchronous face, so one test body runs against both.

    Each coroutine method runs to completion on the test's private event loop.
    """

    def __init__(self, target: Any, loop: asyncio.AbstractEventLoop) -> None:
        self._target = target
        self.loop = loop

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._target, name)
        if inspect.iscoroutinefunction(attr):
            return lambda *args, **kwargs: self.loop.run_until_complete(attr(*args, **kwargs))
        return attr


def zmembers(client: redis.Redis, key: str) -> list[bytes]:
    """The key's members, lowest score first."""
    return cast(list[bytes], client.zrange(key, 0, -1))


def zscored(client: redis.Redis, key: str) -> list[tuple[bytes, float]]:
    """The key's members with their scores, lowest score first."""
    return cast(list[tuple[bytes, float]], client.zrange(key, 0, -1, withscores=True))

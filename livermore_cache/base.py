"""What the sync and asyncio facades share: settings, the script registry, counters, write plans."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from . import core
from .models import Candle
from .retry import WriteStats
from .scripts import Scripts

__all__ = ["CacheBase"]


class CacheBase:
    """Settings checked once, a per-client script registry, counters, and the write plan."""

    def __init__(
        self, client: Any, *, ttl_seconds: int | None, max_candles: int, retries: int, retry_timeout_s: float
    ) -> None:
        core.validate_settings(ttl_seconds, max_candles, retries, retry_timeout_s)
        self.client = client
        self.ttl_seconds = ttl_seconds
        self.max_candles = max_candles
        self.retries = retries
        self.retry_timeout_s = float(retry_timeout_s)
        self.stats = WriteStats()
        self._scripts = Scripts(client)

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}({self.client!r}, ttl_seconds={self.ttl_seconds}, max_candles={self.max_candles}, "
            f"retries={self.retries}, retry_timeout_s={self.retry_timeout_s})"
        )

    def _plan(
        self, user_id: int, exchange_id: int, candles: Iterable[Candle], *, versioned: bool, publish_close: bool = False
    ) -> core.WritePlan:
        return core.plan_write(
            user_id,
            exchange_id,
            candles,
            versioned=versioned,
            ttl_seconds=self.ttl_seconds,
            max_candles=self.max_candles,
            publish_close=publish_close,
        )

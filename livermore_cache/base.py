"""What the sync and asyncio facades share: settings, the script registry, write plans."""

from __future__ import annotations

import inspect
from collections.abc import Iterable
from typing import Any

from . import core
from .models import Candle
from .scripts import Scripts
from .transport import WriteStats

__all__ = ["CacheBase", "is_async_client"]


def is_async_client(client: object) -> bool:
    return inspect.iscoroutinefunction(getattr(client, "execute_command", None))


class CacheBase:
    """Settings checked once, a per-client script registry, counters, and the write plan."""

    def __init__(self, client: Any, *, ttl_seconds: int | None, max_candles: int, retries: int) -> None:
        core.validate_settings(ttl_seconds, max_candles, retries)
        self.client = client
        self.ttl_seconds = ttl_seconds
        self.max_candles = max_candles
        self.retries = retries
        self.stats = WriteStats()
        self._scripts = Scripts(client)

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}({self.client!r}, ttl_seconds={self.ttl_seconds}, "
            f"max_candles={self.max_candles}, retries={self.retries})"
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

"""``AsyncCandleCache``: the asyncio facade over ``redis.asyncio.Redis``.

The same methods as ``CandleCache``, as coroutines; every argument, validation
and reply decoding comes from ``core``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from functools import partial
from typing import Any, TypeVar, overload

import redis.asyncio
from redis.asyncio.cluster import RedisCluster as AsyncRedisCluster

from . import core
from .base import CacheBase, is_async_client
from .keys import candle_channel, candle_close_channel
from .models import Candle
from .subscriptions import AsyncCloseSubscription
from .transport import refresh_cluster_async, send_async, send_cluster_async, write_with_retries_async

__all__ = ["AsyncCandleCache"]

CandleT = TypeVar("CandleT", bound=Candle)


class AsyncCandleCache(CacheBase):
    """Candle series in Redis sorted sets, written atomically by one Lua script per key (asyncio).

    ``ttl_seconds`` is set on a series after every write (None: never expire);
    ``max_candles`` is how many of the newest timestamps a series keeps;
    ``retries`` bounds how often a write is sent again after a timeout or a dropped
    connection (backoff from 50 ms to 500 ms: about 9 s for the default 20).
    """

    def __init__(
        self,
        client: redis.asyncio.Redis | AsyncRedisCluster,
        *,
        ttl_seconds: int | None = 86400,
        max_candles: int = 1000,
        retries: int = 20,
    ) -> None:
        if not is_async_client(client):
            raise TypeError(
                f"AsyncCandleCache needs a redis.asyncio.Redis or redis.asyncio.cluster.RedisCluster client, got {type(client).__name__}"
            )
        super().__init__(client, ttl_seconds=ttl_seconds, max_candles=max_candles, retries=retries)
        self._send: Callable[[list[tuple[Any, ...]]], Awaitable[list[Any]]]
        self._refresh: Callable[[], Awaitable[None]] | None
        if isinstance(client, AsyncRedisCluster):
            self._send, self._refresh = partial(send_cluster_async, client), partial(refresh_cluster_async, client)
        else:
            self._send, self._refresh = partial(send_async, client.connection_pool), None

    # writes

    async def add_candle(self, user_id: int, exchange_id: int, candle: Candle) -> None:
        """Store the candle, replacing whatever its series holds at its timestamp (the Node service's ``addCandle``)."""
        await self.add_candles(user_id, exchange_id, [candle])

    async def add_candles(self, user_id: int, exchange_id: int, candles: Iterable[Candle]) -> None:
        """Store every candle unconditionally, atomically per series, in one round trip."""
        await self._write(self._plan(user_id, exchange_id, candles, versioned=False))

    async def add_candle_if_newer(
        self, user_id: int, exchange_id: int, candle: Candle, *, publish_close: bool = False
    ) -> bool:
        """Store the candle unless its series holds a newer or equal sequence at that timestamp.

        With ``publish_close``, the same script call PUBLISHes the stored JSON on the
        series' ``candle_close_channel`` if, and only if, the candle was written.
        """
        return (await self.add_candles_if_newer(user_id, exchange_id, [candle], publish_close=publish_close))[0]

    async def add_candles_if_newer(
        self, user_id: int, exchange_id: int, candles: Iterable[Candle], *, publish_close: bool = False
    ) -> list[bool]:
        """Versioned write of a batch that may span many series; per candle, in input order, whether it was stored.

        With ``publish_close``, each candle that reports True is PUBLISHed on its series'
        ``candle_close_channel`` inside the same script call, in the order the writes were applied.
        """
        return await self._write(self._plan(user_id, exchange_id, candles, versioned=True, publish_close=publish_close))

    async def _write(self, plan: core.WritePlan) -> list[bool]:
        if not plan.calls:
            return plan.results([])
        script = self._scripts.versioned_write
        return await write_with_retries_async(
            plan, script.sha, script.script, self._send, self.retries, self._refresh, self.stats
        )

    # reads

    @overload
    async def get_recent_candles(
        self, user_id: int, exchange_id: int, symbol: str, timeframe: str, count: int = ...
    ) -> list[Candle]: ...
    @overload
    async def get_recent_candles(
        self, user_id: int, exchange_id: int, symbol: str, timeframe: str, count: int = ..., *, model: type[CandleT]
    ) -> list[CandleT]: ...
    async def get_recent_candles(
        self,
        user_id: int,
        exchange_id: int,
        symbol: str,
        timeframe: str,
        count: int = 100,
        *,
        model: type[Candle] = Candle,
    ) -> list[Any]:
        """The newest ``count`` candles of the series, ascending by timestamp."""
        return await self._run(core.recent_candles_query(user_id, exchange_id, symbol, timeframe, count, model))  # type: ignore[no-any-return]

    @overload
    async def get_candles_in_range(
        self, user_id: int, exchange_id: int, symbol: str, timeframe: str, start: int, end: int
    ) -> list[Candle]: ...
    @overload
    async def get_candles_in_range(
        self, user_id: int, exchange_id: int, symbol: str, timeframe: str, start: int, end: int, *, model: type[CandleT]
    ) -> list[CandleT]: ...
    async def get_candles_in_range(
        self,
        user_id: int,
        exchange_id: int,
        symbol: str,
        timeframe: str,
        start: int,
        end: int,
        *,
        model: type[Candle] = Candle,
    ) -> list[Any]:
        """Candles with ``start <= timestamp <= end`` (ms), ascending."""
        return await self._run(core.candles_in_range_query(user_id, exchange_id, symbol, timeframe, start, end, model))  # type: ignore[no-any-return]

    @overload
    async def get_latest_candle(self, user_id: int, exchange_id: int, symbol: str, timeframe: str) -> Candle | None: ...
    @overload
    async def get_latest_candle(
        self, user_id: int, exchange_id: int, symbol: str, timeframe: str, *, model: type[CandleT]
    ) -> CandleT | None: ...
    async def get_latest_candle(
        self, user_id: int, exchange_id: int, symbol: str, timeframe: str, *, model: type[Candle] = Candle
    ) -> Any:
        """The newest candle of the series, or None."""
        return await self._run(core.latest_candle_query(user_id, exchange_id, symbol, timeframe, model))

    async def get_candle_count(self, user_id: int, exchange_id: int, symbol: str, timeframe: str) -> int:
        """How many members the series holds."""
        return await self._run(core.candle_count_query(user_id, exchange_id, symbol, timeframe))  # type: ignore[no-any-return]

    async def clear_candles(self, user_id: int, exchange_id: int, symbol: str, timeframe: str) -> None:
        """Delete the series."""
        await self._run(core.clear_candles_query(user_id, exchange_id, symbol, timeframe))

    # pub/sub

    async def publish_update(self, user_id: int, exchange_id: int, candle: Candle) -> int:
        """PUBLISH the candle on its ``candle_channel``; returns the number of receivers."""
        return await self._run(core.publish_query(candle_channel, user_id, exchange_id, candle))  # type: ignore[no-any-return]

    async def publish_close(self, user_id: int, exchange_id: int, candle: Candle) -> int:
        """PUBLISH the candle on its ``candle_close_channel``; returns the number of receivers."""
        return await self._run(core.publish_query(candle_close_channel, user_id, exchange_id, candle))  # type: ignore[no-any-return]

    def subscribe_closes(
        self,
        user_id: int,
        exchange_id: int,
        symbol: str | None = None,
        timeframe: str | None = None,
        *,
        backfill: bool = True,
    ) -> AsyncCloseSubscription:
        """An async iterator of ``CandleClose`` events; a symbol or timeframe left out subscribes by pattern.

        Use ``async with`` (or ``await subscription.start()``) to be subscribed before writing.
        """
        return AsyncCloseSubscription(self.client, user_id, exchange_id, symbol, timeframe, backfill=backfill)

    async def _run(self, query: core.Query) -> Any:
        client: Any = self.client
        return query.decode(await client.execute_command(*query.command))

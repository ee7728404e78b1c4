"""``CandleCache``: the synchronous facade over ``redis.Redis``.

A thin shell: every argument, validation and reply decoding comes from ``core``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from functools import partial
from typing import Any, TypeVar, overload

import redis
from redis.cluster import RedisCluster

from . import core
from .base import CacheBase, is_async_client
from .keys import candle_channel, candle_close_channel
from .models import Candle
from .subscriptions import CloseSubscription
from .transport import refresh_cluster_sync, send_cluster_sync, send_sync, write_with_retries

__all__ = ["CandleCache"]

CandleT = TypeVar("CandleT", bound=Candle)


class CandleCache(CacheBase):
    """Candle series in Redis sorted sets, written atomically by one Lua script per key.

    ``ttl_seconds`` is set on a series after every write (None: never expire);
    ``max_candles`` is how many of the newest timestamps a series keeps;
    ``retries`` bounds how often a write is sent again after a timeout or a dropped
    connection (backoff from 50 ms to 500 ms: about 9 s for the default 20).
    """

    def __init__(
        self,
        client: redis.Redis | RedisCluster,
        *,
        ttl_seconds: int | None = 86400,
        max_candles: int = 1000,
        retries: int = 20,
    ) -> None:
        if not hasattr(client, "pipeline") or is_async_client(client):
            raise TypeError(
                f"CandleCache needs a redis.Redis or redis.cluster.RedisCluster client, got {type(client).__name__}"
            )
        super().__init__(client, ttl_seconds=ttl_seconds, max_candles=max_candles, retries=retries)
        self._send: Callable[[list[tuple[Any, ...]]], list[Any]]
        self._refresh: Callable[[], None] | None
        if isinstance(client, RedisCluster):
            self._send, self._refresh = partial(send_cluster_sync, client), partial(refresh_cluster_sync, client)
        else:
            self._send, self._refresh = partial(send_sync, client.connection_pool), None

    # writes

    def add_candle(self, user_id: int, exchange_id: int, candle: Candle) -> None:
        """Store the candle, replacing whatever its series holds at its timestamp (the Node service's ``addCandle``)."""
        self.add_candles(user_id, exchange_id, [candle])

    def add_candles(self, user_id: int, exchange_id: int, candles: Iterable[Candle]) -> None:
        """Store every candle unconditionally, atomically per series, in one round trip."""
        self._write(self._plan(user_id, exchange_id, candles, versioned=False))

    def add_candle_if_newer(
        self, user_id: int, exchange_id: int, candle: Candle, *, publish_close: bool = False
    ) -> bool:
        """Store the candle unless its series holds a newer or equal sequence at that timestamp.

        With ``publish_close``, the same script call PUBLISHes the stored JSON on the
        series' ``candle_close_channel`` if, and only if, the candle was written.
        """
        return self.add_candles_if_newer(user_id, exchange_id, [candle], publish_close=publish_close)[0]

    def add_candles_if_newer(
        self, user_id: int, exchange_id: int, candles: Iterable[Candle], *, publish_close: bool = False
    ) -> list[bool]:
        """Versioned write of a batch that may span many series; per candle, in input order, whether it was stored.

        With ``publish_close``, each candle that reports True is PUBLISHed on its series'
        ``candle_close_channel`` inside the same script call, in the order the writes were applied.
        """
        return self._write(self._plan(user_id, exchange_id, candles, versioned=True, publish_close=publish_close))

    def _write(self, plan: core.WritePlan) -> list[bool]:
        if not plan.calls:
            return plan.results([])
        script = self._scripts.versioned_write
        return write_with_retries(plan, script.sha, script.script, self._send, self.retries, self._refresh, self.stats)

    # reads

    @overload
    def get_recent_candles(
        self, user_id: int, exchange_id: int, symbol: str, timeframe: str, count: int = ...
    ) -> list[Candle]: ...
    @overload
    def get_recent_candles(
        self, user_id: int, exchange_id: int, symbol: str, timeframe: str, count: int = ..., *, model: type[CandleT]
    ) -> list[CandleT]: ...
    def get_recent_candles(
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
        return self._run(core.recent_candles_query(user_id, exchange_id, symbol, timeframe, count, model))  # type: ignore[no-any-return]

    @overload
    def get_candles_in_range(
        self, user_id: int, exchange_id: int, symbol: str, timeframe: str, start: int, end: int
    ) -> list[Candle]: ...
    @overload
    def get_candles_in_range(
        self, user_id: int, exchange_id: int, symbol: str, timeframe: str, start: int, end: int, *, model: type[CandleT]
    ) -> list[CandleT]: ...
    def get_candles_in_range(
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
        return self._run(core.candles_in_range_query(user_id, exchange_id, symbol, timeframe, start, end, model))  # type: ignore[no-any-return]

    @overload
    def get_latest_candle(self, user_id: int, exchange_id: int, symbol: str, timeframe: str) -> Candle | None: ...
    @overload
    def get_latest_candle(
        self, user_id: int, exchange_id: int, symbol: str, timeframe: str, *, model: type[CandleT]
    ) -> CandleT | None: ...
    def get_latest_candle(
        self, user_id: int, exchange_id: int, symbol: str, timeframe: str, *, model: type[Candle] = Candle
    ) -> Any:
        """The newest candle of the series, or None."""
        return self._run(core.latest_candle_query(user_id, exchange_id, symbol, timeframe, model))

    def get_candle_count(self, user_id: int, exchange_id: int, symbol: str, timeframe: str) -> int:
        """How many members the series holds."""
        return self._run(core.candle_count_query(user_id, exchange_id, symbol, timeframe))  # type: ignore[no-any-return]

    def clear_candles(self, user_id: int, exchange_id: int, symbol: str, timeframe: str) -> None:
        """Delete the series."""
        self._run(core.clear_candles_query(user_id, exchange_id, symbol, timeframe))

    # pub/sub

    def publish_update(self, user_id: int, exchange_id: int, candle: Candle) -> int:
        """PUBLISH the candle on its ``candle_channel``; returns the number of receivers."""
        return self._run(core.publish_query(candle_channel, user_id, exchange_id, candle))  # type: ignore[no-any-return]

    def publish_close(self, user_id: int, exchange_id: int, candle: Candle) -> int:
        """PUBLISH the candle on its ``candle_close_channel``; returns the number of receivers."""
        return self._run(core.publish_query(candle_close_channel, user_id, exchange_id, candle))  # type: ignore[no-any-return]

    def subscribe_closes(
        self,
        user_id: int,
        exchange_id: int,
        symbol: str | None = None,
        timeframe: str | None = None,
        *,
        backfill: bool = True,
    ) -> CloseSubscription:
        """An iterator of ``CandleClose`` events; a symbol or timeframe left out subscribes by pattern."""
        return CloseSubscription(self.client, user_id, exchange_id, symbol, timeframe, backfill=backfill)

    def _run(self, query: core.Query) -> Any:
        client: Any = self.client
        return query.decode(client.execute_command(*query.command))

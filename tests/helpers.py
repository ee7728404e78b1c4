"""Small builders shared by the tests."""

from __future__ import annotations

import asyncio
import inspect
import math
from collections.abc import Callable, Iterable
from itertools import pairwise
from typing import Any, cast

import redis
import redis.asyncio
import redis.asyncio.cluster
import redis.asyncio.sentinel
import redis.cluster
import redis.sentinel

from livermore_cache import (
    MAX_SEQUENCE_NUM,
    AsyncCandleCache,
    AsyncIndicatorCache,
    AsyncOrderbookCache,
    AsyncTickerCache,
    Candle,
    CandleCache,
    Gap,
    IndicatorCache,
    OrderbookCache,
    TickerCache,
    UnifiedCandle,
)

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


class Facade:
    """The one sync/async switch of the tests: clients and caches of one facade, with a synchronous face.

    ``Facade("sync", loop)`` makes ``redis.Redis`` (or ``RedisCluster``) clients and the
    sync caches; ``Facade("async", loop)`` makes the asyncio clients and caches, each
    cache behind ``AsyncAsSync`` so that one test body drives both. ``close()`` closes
    every client made (the ``facade`` fixture calls it).
    """

    def __init__(self, name: str, loop: asyncio.AbstractEventLoop) -> None:
        assert name in ("sync", "async"), name
        self.name = name
        self.loop = loop
        self._closers: list[Callable[[], None]] = []

    @property
    def is_async(self) -> bool:
        return self.name == "async"

    def client(self, url: str, *, cluster: bool = False, **options: Any) -> Any:
        """A client of this facade for ``url`` (a cluster client with ``cluster=True``), closed by ``close()``."""
        if not self.is_async:
            sync_client: Any = (redis.cluster.RedisCluster if cluster else redis.Redis).from_url(url, **options)
            self._closers.append(sync_client.close)
            return sync_client
        async_client: Any = (redis.asyncio.cluster.RedisCluster if cluster else redis.asyncio.Redis).from_url(
            url, **options
        )
        self._closers.append(lambda: self.loop.run_until_complete(async_client.aclose()))
        return async_client

    def sentinel_client(self, addresses: list[tuple[str, int]], service: str, **options: Any) -> Any:
        """``Sentinel(addresses).master_for(service, **options)`` of this facade, closed (with its sentinels) by ``close()``."""
        if not self.is_async:
            sentinel = redis.sentinel.Sentinel(addresses, socket_timeout=0.5)  # type: ignore[no-untyped-call, unused-ignore]
            sync_client = sentinel.master_for(service, **options)  # type: ignore[no-untyped-call, unused-ignore]
            self._closers.extend(s.close for s in sentinel.sentinels)
            self._closers.append(sync_client.close)
            return sync_client
        asentinel = redis.asyncio.sentinel.Sentinel(addresses, socket_timeout=0.5)  # type: ignore[no-untyped-call, unused-ignore]
        async_client = asentinel.master_for(service, **options)

        async def close() -> None:
            await async_client.aclose()
            for sentinel_client in asentinel.sentinels:
                await sentinel_client.aclose()

        self._closers.append(lambda: self.loop.run_until_complete(close()))
        return async_client

    def command(self, client: Any, *args: Any) -> Any:
        """``client.execute_command(*args)``, run to completion whichever facade made the client."""
        reply = client.execute_command(*args)
        return self.loop.run_until_complete(reply) if self.is_async else reply

    def cache(self, sync_class: type[Any], client: Any, **settings: Any) -> Any:
        """``sync_class`` (``CandleCache``, ``TickerCache``, ...) over ``client``, or its asyncio twin behind ``AsyncAsSync``."""
        if not self.is_async:
            return sync_class(client, **settings)
        return AsyncAsSync(_ASYNC_TWINS[sync_class](client, **settings), self.loop)

    def close(self) -> None:
        for close in reversed(self._closers):
            close()
        self._closers.clear()


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


_ASYNC_TWINS: dict[type[Any], type[Any]] = {
    CandleCache: AsyncCandleCache,
    TickerCache: AsyncTickerCache,
    OrderbookCache: AsyncOrderbookCache,
    IndicatorCache: AsyncIndicatorCache,
}


def model_gaps(timestamps: Iterable[int], step: int, start: int, end: int) -> list[Gap]:
    """The plain-Python model of ``find_gaps``: every boundary in [start, end], one by one; missing runs grouped."""
    present = set(timestamps)
    gaps: list[Gap] = []
    run: list[int] = []
    boundary = start + (-start) % step  # the first boundary at or after start
    while boundary <= end:
        if boundary in present:
            if run:
                gaps.append(Gap(run[0], run[-1], len(run)))
            run = []
        else:
            run.append(boundary)
        boundary += step
    if run:
        gaps.append(Gap(run[0], run[-1], len(run)))
    return gaps


def model_ready(timestamps: Iterable[int], step: int, count: int) -> bool:
    """The plain-Python model of ``is_ready``: the newest ``count`` distinct timestamps, consecutive boundaries."""
    newest = sorted(set(timestamps), reverse=True)[:count]
    return (
        len(newest) == count and all(t % step == 0 for t in newest) and all(a - b == step for a, b in pairwise(newest))
    )


UNDEFINED = object()
"""JavaScript's ``undefined``, as a snapshot's ``{"$js": "undefined"}`` stands for it."""


def js(value: Any) -> Any:
    """A Node snapshot value as the JavaScript value it stands for (``{"$js": ...}`` resolved, undefined fields dropped)."""
    if isinstance(value, dict):
        if set(value) == {"$js"}:
            return {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf, "-0": -0.0}.get(
                value["$js"], UNDEFINED
            )
        return {k: js(v) for k, v in value.items() if js(v) is not UNDEFINED}
    if isinstance(value, list):
        return [js(v) for v in value]
    if type(value) is int and abs(value) > MAX_SEQUENCE_NUM:
        return float(value)  # a JavaScript number is a double
    return value


def flush_cluster(cluster: Any) -> None:
    """Empty every primary of a ``servers.ClusterProcess``."""
    for node in cluster.primary_nodes():
        with redis.Redis.from_url(node.url) as client:
            client.flushall()


def zmembers(client: redis.Redis, key: str) -> list[bytes]:
    """The key's members, lowest score first."""
    return cast(list[bytes], client.zrange(key, 0, -1))


def zscored(client: redis.Redis, key: str) -> list[tuple[bytes, float]]:
    """The key's members with their scores, lowest score first."""
    return cast(list[tuple[bytes, float]], client.zrange(key, 0, -1, withscores=True))

"""The tests' one sync/async switch: clients and caches of either facade behind a synchronous face."""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Callable
from typing import Any

import redis
import redis.asyncio
import redis.asyncio.cluster
import redis.asyncio.sentinel
import redis.cluster
import redis.sentinel

from livermore_cache import (
    AsyncCandleCache,
    AsyncIndicatorCache,
    AsyncOrderbookCache,
    AsyncTickerCache,
    CandleCache,
    IndicatorCache,
    OrderbookCache,
    TickerCache,
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

    def client(self, url: str, *, cluster: bool = False, blocking: bool = False, **options: Any) -> Any:
        """A client of this facade for ``url``, closed by ``close()``.

        A cluster client with ``cluster=True``; over a ``BlockingConnectionPool`` with ``blocking=True``.
        """
        if not self.is_async:
            if blocking:
                sync_pool = redis.BlockingConnectionPool.from_url(url, **options)
                sync_client: Any = redis.Redis(connection_pool=sync_pool)
                self._closers.append(sync_pool.disconnect)
            else:
                sync_client = (redis.cluster.RedisCluster if cluster else redis.Redis).from_url(url, **options)
            self._closers.append(sync_client.close)
            return sync_client
        if blocking:
            pool = redis.asyncio.BlockingConnectionPool.from_url(url, **options)
            async_client: Any = redis.asyncio.Redis(connection_pool=pool)
            self._closers.append(lambda: self.loop.run_until_complete(pool.disconnect()))
        else:
            async_client = (redis.asyncio.cluster.RedisCluster if cluster else redis.asyncio.Redis).from_url(
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
        return AsyncAsSync(ASYNC_TWINS[sync_class](client, **settings), self.loop)

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


ASYNC_TWINS: dict[type[Any], type[Any]] = {
    CandleCache: AsyncCandleCache,
    TickerCache: AsyncTickerCache,
    OrderbookCache: AsyncOrderbookCache,
    IndicatorCache: AsyncIndicatorCache,
}
"""Every sync cache class and its asyncio twin."""

VALUE_CACHES: dict[str, type[Any]] = {"ticker": TickerCache, "orderbook": OrderbookCache, "indicator": IndicatorCache}
"""The sync value cache classes by kind, as ``make_value_cache(kind)`` names them."""

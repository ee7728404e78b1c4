"""A cache's lifecycle, for every cache of the facade: ``from_url``, closing, and the context manager."""

from __future__ import annotations

from typing import Any, Self

from livermore_cache._backends import aio as backend
from livermore_cache.base import CacheBase

__all__ = ["AsyncLifecycle"]


class AsyncLifecycle(CacheBase):
    """``from_url``, ``aclose()`` and the context manager, over ``CacheBase``.

    A cache closes what it created (the client ``from_url`` made, the
    subscriptions it returned) and never a client it was given: that one stays
    usable. Every public method of a closed cache raises ``CacheClosedError``.
    """

    @classmethod
    def from_url(cls, url: str, *, cluster: bool = False, **settings: Any) -> Self:
        """A cache over a client of its own for ``url`` (``redis://``, ``rediss://``, ``unix://``).

        ``cluster=True`` makes a Redis Cluster client. ``settings`` are the
        cache's own (``ttl_seconds``, ``retries``, ``retry_timeout_s``, ``min_replicas``,
        ``replica_timeout_ms``, ``wait_aof``, ...).
        Nothing connects until the first call; closing the cache closes the client.
        """
        if not isinstance(url, str):
            raise TypeError(f"url must be a str such as 'redis://localhost:6379', got {type(url).__name__}")
        client = backend.client_from_url(url, cluster=cluster)
        try:
            cache = cls(client, **settings)
        except BaseException:
            backend.discard_client(client)  # a refused setting: close what a sync cluster client already opened
            raise
        cache._owns_client = True
        return cache

    async def aclose(self) -> None:
        """Close the subscriptions this cache made, and the client if ``from_url`` made it. Idempotent."""
        if self._closed:
            return
        self._closed = True
        for subscription in list(self._subscriptions):
            await subscription.aclose()
        if self._owns_client:
            await backend.close_client(self.client)

    async def __aenter__(self) -> Self:
        self._check_open()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

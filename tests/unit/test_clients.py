"""Which clients the caches take: redis-py's, sync or asyncio, standalone or cluster; anything else is refused."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
import redis
import redis.asyncio
import valkey
import valkey.asyncio

from tests.support.facade import ASYNC_TWINS

SYNC_CACHES = list(ASYNC_TWINS)
ASYNC_CACHES = list(ASYNC_TWINS.values())


@pytest.mark.parametrize("cache_class", SYNC_CACHES + ASYNC_CACHES, ids=lambda c: c.__name__)
def test_valkey_py_clients_are_refused_naming_the_supported_ones(cache_class: type[Any]) -> None:
    """valkey-py is a fork of redis-py 5 with its own exception classes: the retry contract cannot hold with it."""
    sync_client = valkey.Valkey(port=1)
    async_client = valkey.asyncio.Valkey(port=1)
    try:
        for client in (sync_client, async_client):
            with pytest.raises(
                TypeError, match=r"needs a redis\.(asyncio\.)?Redis or redis\.(asyncio\.)?cluster"
            ) as raised:
                cache_class(client)
            assert "valkey-py clients are not supported" in str(raised.value)
            assert "valkey" in str(raised.value).split("got ")[1]
    finally:
        sync_client.close()  # type: ignore[no-untyped-call]
        asyncio.run(async_client.aclose())


@pytest.mark.parametrize("cache_class", SYNC_CACHES, ids=lambda c: c.__name__)
def test_a_sync_cache_refuses_an_asyncio_client(cache_class: type[Any]) -> None:
    client = redis.asyncio.Redis(port=1)
    with pytest.raises(TypeError, match=r"needs a redis\.Redis or redis\.cluster\.RedisCluster client"):
        cache_class(client)
    asyncio.run(client.aclose())


@pytest.mark.parametrize("cache_class", ASYNC_CACHES, ids=lambda c: c.__name__)
def test_an_asyncio_cache_refuses_a_sync_client(cache_class: type[Any]) -> None:
    client = redis.Redis(port=1)
    with pytest.raises(TypeError, match=r"needs a redis\.asyncio\.Redis or redis\.asyncio\.cluster\.RedisCluster"):
        cache_class(client)
    client.close()

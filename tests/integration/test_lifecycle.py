"""Lifecycle of every cache class, sync and asyncio: ``from_url``, ``close``/``aclose``, context managers.

Sockets are counted on the server (``CLIENT LIST`` by client name): a cache closes
what it made and never a client it was given.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import redis

from livermore_cache import (
    AsyncCandleCache,
    AsyncIndicatorCache,
    AsyncOrderbookCache,
    AsyncTickerCache,
    CacheClosedError,
    CandleCache,
    IndicatorCache,
    OrderbookCache,
    TickerCache,
    ValidationError,
)
from tests.support.builders import unified
from tests.support.constants import EXCHANGE, SYMBOL, TIMEFRAME, USER
from tests.support.stored import connections_named

SYNC_CLASSES = [CandleCache, TickerCache, OrderbookCache, IndicatorCache]
ASYNC_CLASSES = [AsyncCandleCache, AsyncTickerCache, AsyncOrderbookCache, AsyncIndicatorCache]


def _named(redis_url: str) -> tuple[str, str]:
    name = f"lc-{uuid.uuid4().hex[:12]}"
    return f"{redis_url}?client_name={name}", name


def _sockets(r: redis.Redis, name: str, *, settle_to: int | None = None) -> int:
    kwargs = r.connection_pool.connection_kwargs
    return connections_named([f"redis://{kwargs['host']}:{kwargs['port']}"], name, settle_to=settle_to)


def _use_sync(cache: Any) -> None:
    """One call that needs a connection, whatever the cache."""
    if isinstance(cache, CandleCache):
        assert cache.get_candle_count(USER, EXCHANGE, SYMBOL, TIMEFRAME) == 0
    elif isinstance(cache, TickerCache):
        assert cache.get_ticker(USER, EXCHANGE, SYMBOL) is None
    elif isinstance(cache, OrderbookCache):
        assert cache.get_orderbook(USER, EXCHANGE, SYMBOL) is None
    else:
        assert cache.get_indicator(USER, EXCHANGE, SYMBOL, TIMEFRAME, "macd-v") is None


async def _use_async(cache: Any) -> None:
    if isinstance(cache, AsyncCandleCache):
        assert await cache.get_candle_count(USER, EXCHANGE, SYMBOL, TIMEFRAME) == 0
    elif isinstance(cache, AsyncTickerCache):
        assert await cache.get_ticker(USER, EXCHANGE, SYMBOL) is None
    elif isinstance(cache, AsyncOrderbookCache):
        assert await cache.get_orderbook(USER, EXCHANGE, SYMBOL) is None
    else:
        assert await cache.get_indicator(USER, EXCHANGE, SYMBOL, TIMEFRAME, "macd-v") is None


@pytest.fixture
def run() -> Iterator[Any]:
    loop = asyncio.new_event_loop()
    yield loop.run_until_complete
    loop.run_until_complete(loop.shutdown_asyncgens())
    loop.close()


@pytest.mark.parametrize("cls", SYNC_CLASSES, ids=lambda c: c.__name__)
def test_sync_from_url_closes_its_client(cls: type[Any], redis_url: str, r: redis.Redis) -> None:
    url, name = _named(redis_url)
    with cls.from_url(url, retries=3, retry_timeout_s=2.0) as cache:
        assert cache.retries == 3
        assert cache.retry_timeout_s == 2.0
        _use_sync(cache)
        assert _sockets(r, name) == 1
    assert cache.closed
    assert _sockets(r, name, settle_to=0) == 0
    with pytest.raises(CacheClosedError, match="is closed"):
        _use_sync(cache)
    cache.close()  # idempotent


@pytest.mark.parametrize("cls", ASYNC_CLASSES, ids=lambda c: c.__name__)
def test_async_from_url_closes_its_client(cls: type[Any], redis_url: str, r: redis.Redis, run: Any) -> None:
    url, name = _named(redis_url)

    async def scenario() -> Any:
        async with cls.from_url(url, retries=3) as cache:
            assert cache.retries == 3
            await _use_async(cache)
            assert _sockets(r, name) == 1
        assert _sockets(r, name, settle_to=0) == 0
        with pytest.raises(CacheClosedError, match="is closed"):
            await _use_async(cache)
        await cache.aclose()  # idempotent
        return cache

    assert run(scenario()).closed


@pytest.mark.parametrize("cls", SYNC_CLASSES, ids=lambda c: c.__name__)
def test_sync_cache_never_closes_a_given_client(cls: type[Any], redis_url: str, r: redis.Redis) -> None:
    url, name = _named(redis_url)
    client = redis.Redis.from_url(url)
    try:
        cache = cls(client)
        _use_sync(cache)
        cache.close()
        assert client.ping() is True  # still usable
        assert _sockets(r, name) == 1
    finally:
        client.close()
    assert _sockets(r, name, settle_to=0) == 0


@pytest.mark.parametrize("cls", ASYNC_CLASSES, ids=lambda c: c.__name__)
def test_async_cache_never_closes_a_given_client(cls: type[Any], redis_url: str, r: redis.Redis, run: Any) -> None:
    import redis.asyncio

    url, name = _named(redis_url)

    async def scenario() -> None:
        client = redis.asyncio.Redis.from_url(url)
        try:
            async with cls(client) as cache:
                await _use_async(cache)
            assert await client.ping() is True
            assert _sockets(r, name) == 1
        finally:
            await client.aclose()

    run(scenario())
    assert _sockets(r, name, settle_to=0) == 0


@pytest.mark.parametrize("cls", SYNC_CLASSES + ASYNC_CLASSES, ids=lambda c: c.__name__)
def test_from_url_passes_settings_and_refuses_bad_ones(cls: type[Any], redis_url: str) -> None:
    with pytest.raises(ValidationError, match="retries"):
        cls.from_url(redis_url, retries=-1)
    with pytest.raises(TypeError, match="url must be a str"):
        cls.from_url(b"redis://localhost:6379")
    with pytest.raises(TypeError, match="unexpected keyword"):
        cls.from_url(redis_url, no_such_setting=1)


def test_from_url_settings_reach_the_cache(redis_url: str) -> None:
    with CandleCache.from_url(redis_url, ttl_seconds=60, max_candles=5) as candles:
        assert (candles.ttl_seconds, candles.max_candles) == (60, 5)
    with TickerCache.from_url(redis_url, ttl_seconds=7) as tickers:
        assert tickers.ttl_seconds == 7


def test_closing_a_cache_closes_the_subscriptions_it_made(redis_url: str, r: redis.Redis) -> None:
    url, name = _named(redis_url)
    cache = CandleCache.from_url(url)
    subscription = cache.subscribe_closes(USER, EXCHANGE, SYMBOL, TIMEFRAME)
    tickers = TickerCache(cache.client).subscribe_tickers(USER, EXCHANGE, SYMBOL)
    assert cache.add_candle_if_newer(USER, EXCHANGE, unified(sequence_num=1), publish_close=True)
    event = subscription.get(timeout=5)
    assert event is not None
    assert event.candle == unified(sequence_num=1)
    assert _sockets(r, name) == 3  # the cache's pool, and one per subscription
    cache.close()
    tickers.close()  # made by a cache over the same client, not closed by this one: closed by hand
    assert _sockets(r, name, settle_to=0) == 0
    with pytest.raises(CacheClosedError):
        subscription.get(timeout=0.1)
    with pytest.raises(CacheClosedError):
        subscription.start()


def test_async_closing_a_cache_closes_the_subscriptions_it_made(redis_url: str, r: redis.Redis, run: Any) -> None:
    url, name = _named(redis_url)

    async def scenario() -> None:
        cache = AsyncCandleCache.from_url(url)
        subscription = await cache.subscribe_closes(USER, EXCHANGE, SYMBOL, TIMEFRAME).start()
        assert await cache.add_candle_if_newer(USER, EXCHANGE, unified(sequence_num=1), publish_close=True)
        event = await subscription.get(timeout=5)
        assert event is not None
        await cache.aclose()
        assert _sockets(r, name, settle_to=0) == 0
        with pytest.raises(CacheClosedError):
            await subscription.get(timeout=0.1)
        assert _sockets(r, name, settle_to=0) == 0  # and nothing was reopened

    run(scenario())


def test_a_closed_cache_refuses_every_public_method(redis_url: str) -> None:
    cache = CandleCache.from_url(redis_url)
    cache.close()
    calls: dict[str, Callable[[], object]] = {
        "add_candle": lambda: cache.add_candle(USER, EXCHANGE, unified()),
        "add_candles_if_newer": lambda: cache.add_candles_if_newer(USER, EXCHANGE, [unified()]),
        "get_recent_candles": lambda: cache.get_recent_candles(USER, EXCHANGE, SYMBOL, TIMEFRAME),
        "find_gaps": lambda: cache.find_gaps(USER, EXCHANGE, SYMBOL, TIMEFRAME, 0, 1),
        "subscribe_closes": lambda: cache.subscribe_closes(USER, EXCHANGE),
    }
    for call in calls.values():
        with pytest.raises(CacheClosedError, match="CandleCache is closed"):
            call()


def test_repr_says_closed(redis_url: str) -> None:
    cache = TickerCache.from_url(redis_url)
    assert "closed" not in repr(cache)
    cache.close()
    assert repr(cache).endswith(", closed)")

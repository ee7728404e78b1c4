"""Subscribers that cannot be crashed, on real servers through both facades (issue 18, item 2).

Foreign publishers and bad stored values are counted, never delivered or raised;
``get(timeout)`` keeps its timeout while a reconnect goes on and a subscriber
whose server stays gone raises after ``reconnect_timeout_s``; a closed
subscription raises ``CacheClosedError`` and opens nothing; backfill is one
pipelined round trip; tracked series are capped; orderbooks have a subscriber.
"""

from __future__ import annotations

import signal
import time
from collections.abc import Callable
from typing import Any

import msgspec
import pytest
import redis
from redis.exceptions import ConnectionError as RedisConnectionError

from livermore_cache import (
    CacheClosedError,
    CandleCache,
    IndicatorCache,
    IndicatorValue,
    Order,
    Orderbook,
    OrderbookCache,
    OrderbookUpdate,
    TickerCache,
    candle_close_channel,
    candle_key,
    indicator_channel,
    orderbook_channel,
    orderbook_key,
    ticker_channel,
    ticker_key,
)
from tests.support.builders import ticker, unified
from tests.support.constants import EXCHANGE, MINUTE, T0, USER
from tests.support.facade import AsyncAsSync, Facade
from tools.servers.process import ServerProcess

Start = Callable[..., ServerProcess]


def subscribed(facade: Facade, subscription: Any) -> Any:
    """The subscription, subscribed, with a synchronous face (the asyncio one on the facade's loop)."""
    if facade.is_async:
        subscription = AsyncAsSync(subscription, facade.loop)
        subscription.start()
    return subscription


def close(subscription: Any) -> None:
    (subscription.aclose if hasattr(subscription, "aclose") else subscription.close)()


def drain(subscription: Any, idle: float = 0.5) -> list[Any]:
    events = []
    while (event := subscription.get(timeout=idle)) is not None:
        events.append(event)
    return events


def book(symbol: str, timestamp: int = T0) -> Orderbook:
    return Orderbook(symbol=symbol, bids=[Order(1.0, 2.0)], asks=[Order(1.5, 1.0)], timestamp=timestamp)


def indicator(symbol: str, type: str = "macd-v", timestamp: int = T0) -> IndicatorValue:  # noqa: A002
    return IndicatorValue(timestamp=timestamp, type=type, symbol=symbol, timeframe="1h", value={"v": 1.0})


def test_foreign_publishers_and_bad_stored_values_are_counted_never_delivered_or_raised(
    facade: Facade, redis_url: str, r: redis.Redis
) -> None:
    candles = facade.cache(CandleCache, facade.client(redis_url))
    tickers = facade.cache(TickerCache, facade.client(redis_url))
    books = facade.cache(OrderbookCache, facade.client(redis_url))
    indicators = facade.cache(IndicatorCache, facade.client(redis_url))
    subs = {
        "close": subscribed(facade, candles.subscribe_closes(USER, EXCHANGE)),
        "ticker": subscribed(facade, tickers.subscribe_tickers(USER, EXCHANGE)),
        "book": subscribed(facade, books.subscribe_orderbooks(USER, EXCHANGE)),
        "indicator": subscribed(facade, indicators.subscribe_indicators(USER, EXCHANGE)),
    }
    try:
        # the examples: a symbol the key builders refuse, and ETH's values on BTC's channels
        r.publish(f"channel:candle:close:{USER}:{EXCHANGE}:B D:1m", msgspec.json.encode(unified(T0, symbol="B D")))
        r.publish(f"channel:candle:close:{USER}:{EXCHANGE}:a\\:1m", msgspec.json.encode(unified(T0, symbol="a\\")))
        r.publish(candle_close_channel(USER, EXCHANGE, "BTC", "1m"), msgspec.json.encode(unified(T0, symbol="ETH")))
        r.publish(ticker_channel(USER, EXCHANGE, "BTC"), msgspec.json.encode(ticker("ETH")))
        r.publish(orderbook_channel(USER, EXCHANGE, "BTC"), msgspec.json.encode(book("ETH")))
        r.publish(indicator_channel(USER, EXCHANGE, "BTC", "1h", "rsi"), msgspec.json.encode(indicator("BTC")))
        r.publish(f"channel:ticker:{USER}:{EXCHANGE}:BTC:x", msgspec.json.encode(ticker("BTC")))
        assert all(drain(s) == [] for s in subs.values())
        assert {name: s.malformed for name, s in subs.items()} == {"close": 3, "ticker": 2, "book": 1, "indicator": 1}

        # good values are delivered, and their series/keys tracked
        assert candles.add_candle_if_newer(USER, EXCHANGE, unified(T0, 1, symbol="BTC"), publish_close=True)
        assert tickers.set_ticker_if_newer(USER, EXCHANGE, ticker("BTC"), publish=True)
        assert books.set_orderbook_if_newer(USER, EXCHANGE, book("BTC"), publish=True)
        assert indicators.set_indicator_if_newer(USER, EXCHANGE, indicator("BTC"), publish=True)
        assert [len(drain(s)) for s in subs.values()] == [1, 1, 1, 1]

        # bad stored values behind the tracked keys, then a reconnect: backfill counts them, raises nothing
        assert r.client_kill_filter(_type="pubsub") == 4
        r.zadd(candle_key(USER, EXCHANGE, "BTC", "1m"), {b"not a candle": T0 + MINUTE})
        r.zadd(
            candle_key(USER, EXCHANGE, "BTC", "1m"),
            {msgspec.json.encode(unified(T0 + 2 * MINUTE, symbol="ETH")): T0 + 2 * MINUTE},
        )
        r.set(ticker_key(USER, EXCHANGE, "BTC"), msgspec.json.encode(ticker("ETH", T0 + 5)))
        r.set(orderbook_key(USER, EXCHANGE, "BTC"), b"{")
        r.delete(f"indicator:{USER}:{EXCHANGE}:BTC:1h:macd-v")
        r.sadd(f"indicator:{USER}:{EXCHANGE}:BTC:1h:macd-v", b"x")  # WRONGTYPE for GET
        for s in subs.values():
            assert drain(s) == []
            assert s.reconnects >= 1
        assert {name: s.malformed for name, s in subs.items()} == {"close": 5, "ticker": 3, "book": 2, "indicator": 2}
        # and live again afterwards
        assert candles.add_candle_if_newer(
            USER, EXCHANGE, unified(T0 + 3 * MINUTE, 1, symbol="BTC"), publish_close=True
        )
        assert [e.candle.timestamp for e in drain(subs["close"])] == [T0 + 3 * MINUTE]
    finally:
        for s in subs.values():
            close(s)


def poll(subscription: Any, timeout: float, durations: list[float]) -> None:
    """``get(timeout)`` until it raises, each call's duration noted."""
    while True:
        began = time.monotonic()
        try:
            assert subscription.get(timeout=timeout) is None
        finally:
            durations.append(time.monotonic() - began)


def test_get_keeps_its_timeout_while_reconnecting_and_gives_up_after_reconnect_timeout_s(
    facade: Facade, private_server: Start
) -> None:
    server = private_server()
    cache = facade.cache(CandleCache, facade.client(server.url))
    subscription = subscribed(facade, cache.subscribe_closes(USER, EXCHANGE, reconnect_timeout_s=3.0))
    try:
        assert subscription.get(timeout=0.1) is None
        server.kill()
        lost = time.monotonic()
        durations: list[float] = []
        with pytest.raises(RedisConnectionError, match=r"reconnect_timeout_s=3\.0"):
            poll(subscription, 0.5, durations)
        gave_up = time.monotonic() - lost
        longest = max(durations)
        assert longest < 0.5 + 0.3, f"get(timeout=0.5) took {longest:.2f} s while reconnecting"
        assert 3.0 <= gave_up < 3.0 + 1.0, f"gave up after {gave_up:.2f} s"
    finally:
        close(subscription)


def test_reconnect_to_a_paused_server_keeps_get_bounded_then_backfills(facade: Facade, private_server: Start) -> None:
    server = private_server()
    writer = CandleCache(redis.Redis.from_url(server.url))
    cache = facade.cache(CandleCache, facade.client(server.url))
    subscription = subscribed(facade, cache.subscribe_closes(USER, EXCHANGE, "BTC", "1m"))
    plain = redis.Redis.from_url(server.url)
    try:
        assert writer.add_candle_if_newer(USER, EXCHANGE, unified(T0, 1, symbol="BTC"), publish_close=True)
        assert [e.candle.timestamp for e in drain(subscription)] == [T0]
        assert plain.client_kill_filter(_type="pubsub") == 1
        assert writer.add_candle_if_newer(USER, EXCHANGE, unified(T0 + MINUTE, 1, symbol="BTC"), publish_close=True)
        server.signal(signal.SIGSTOP)  # a reconnect now reaches the kernel's backlog and hangs in the handshake
        try:
            for _ in range(6):
                began = time.monotonic()
                assert subscription.get(timeout=0.5) is None
                assert time.monotonic() - began < 0.5 + 0.3
        finally:
            server.signal(signal.SIGCONT)
        events = drain(subscription, idle=1.0)
        assert [(e.candle.timestamp, e.backfilled) for e in events] == [(T0 + MINUTE, True)]
    finally:
        close(subscription)
        plain.close()
        writer.client.close()


def test_a_closed_subscription_raises_and_opens_nothing(facade: Facade, redis_url: str, r: redis.Redis) -> None:
    cache = facade.cache(CandleCache, facade.client(redis_url))
    subscription = subscribed(facade, cache.subscribe_closes(USER, EXCHANGE))
    close(subscription)
    close(subscription)  # idempotent
    calls: list[Callable[[], Any]] = [
        subscription.start,
        lambda: subscription.get(timeout=0.1),
        (lambda: subscription.__anext__()) if facade.is_async else (lambda: next(iter(subscription))),
    ]
    for call in calls:
        with pytest.raises(CacheClosedError):
            call()
    time.sleep(0.1)
    assert not [c for c in r.client_list() if int(c.get("sub", 0)) or int(c.get("psub", 0))]

    # closing the cache closes the subscriptions it made, the same way
    other = subscribed(facade, cache.subscribe_closes(USER, EXCHANGE, "BTC", "1m"))
    (cache.aclose if facade.is_async else cache.close)()
    with pytest.raises(CacheClosedError):
        other.get(timeout=0.1)
    time.sleep(0.1)
    assert not [c for c in r.client_list() if int(c.get("sub", 0)) or int(c.get("psub", 0))]


class CountingPipelines:
    """Counts the pipelines a client makes and every direct ``execute_command`` by name."""

    def __init__(self, client: Any) -> None:
        self.pipelines = 0
        self.commands: list[str] = []
        make, execute = client.pipeline, client.execute_command

        def pipeline(*args: Any, **kwargs: Any) -> Any:
            self.pipelines += 1
            return make(*args, **kwargs)

        def command(*args: Any, **kwargs: Any) -> Any:
            self.commands.append(str(args[0]))
            return execute(*args, **kwargs)

        client.pipeline = pipeline
        client.execute_command = command


def test_backfill_is_one_pipelined_round_trip_for_every_series(facade: Facade, redis_url: str, r: redis.Redis) -> None:
    count = 3_000
    writer = CandleCache(r)
    client = facade.client(redis_url)
    cache = facade.cache(CandleCache, client)
    subscription = subscribed(facade, cache.subscribe_closes(USER, EXCHANGE))
    try:
        first = [unified(T0, 1, symbol=f"S{i}") for i in range(count)]
        assert all(writer.add_candles_if_newer(USER, EXCHANGE, first, publish_close=True))
        assert len(drain(subscription)) == count
        counter = CountingPipelines(client)
        assert r.client_kill_filter(_type="pubsub") == 1
        later = [unified(T0 + MINUTE, 1, symbol=f"S{i}") for i in range(count)]
        assert all(writer.add_candles_if_newer(USER, EXCHANGE, later, publish_close=True))  # lost live
        began = time.monotonic()
        events = drain(subscription)
        assert time.monotonic() - began < 5.0
        assert sorted(e.series.symbol for e in events) == sorted(f"S{i}" for i in range(count))
        assert all(e.backfilled for e in events)
        assert counter.pipelines == 1
        assert "ZRANGEBYSCORE" not in counter.commands
    finally:
        close(subscription)


def test_tracked_series_are_capped_least_recently_seen_first(facade: Facade, redis_url: str, r: redis.Redis) -> None:
    writer = CandleCache(r)
    cache = facade.cache(CandleCache, facade.client(redis_url))
    subscription = subscribed(facade, cache.subscribe_closes(USER, EXCHANGE, max_tracked_series=10))
    try:
        for i in range(30):
            assert writer.add_candle_if_newer(USER, EXCHANGE, unified(T0, 1, symbol=f"S{i}"), publish_close=True)
        assert len(drain(subscription)) == 30
        assert len(subscription.state.last_seen) == 10
        assert subscription.state.evicted == 20
        assert r.client_kill_filter(_type="pubsub") == 1
        later = [unified(T0 + MINUTE, 1, symbol=f"S{i}") for i in range(30)]
        assert all(writer.add_candles_if_newer(USER, EXCHANGE, later, publish_close=True))  # lost live
        events = drain(subscription)
        # only the 10 most recently seen series are read back; the forgotten ones' closes are lost
        assert sorted(e.series.symbol for e in events) == sorted(f"S{i}" for i in range(20, 30))
    finally:
        close(subscription)


@pytest.mark.parametrize("symbol", ["BTC", None])
def test_subscribe_orderbooks(facade: Facade, redis_url: str, r: redis.Redis, symbol: str | None) -> None:
    writer = OrderbookCache(r)
    cache = facade.cache(OrderbookCache, facade.client(redis_url))
    subscription = subscribed(facade, cache.subscribe_orderbooks(USER, EXCHANGE, symbol))
    try:
        assert writer.set_orderbooks_if_newer(USER, EXCHANGE, [book("BTC"), book("ETH")], publish=True) == [True, True]
        assert writer.set_orderbook_if_newer(USER, EXCHANGE, book("BTC", T0 - 1), publish=True) is False
        events = drain(subscription)
        wanted = ["BTC"] if symbol else ["BTC", "ETH"]
        assert [(e.key, e.orderbook, e.backfilled) for e in events] == [
            (orderbook_key(USER, EXCHANGE, s), book(s), False) for s in wanted
        ]
        assert all(isinstance(e, OrderbookUpdate) for e in events)
        assert r.client_kill_filter(_type="pubsub") == 1
        assert writer.set_orderbook_if_newer(USER, EXCHANGE, book("BTC", T0 + 1), publish=True)  # lost live
        events = drain(subscription)
        assert [(e.key, e.orderbook, e.backfilled) for e in events] == [
            (orderbook_key(USER, EXCHANGE, "BTC"), book("BTC", T0 + 1), True)
        ]
        assert subscription.malformed == 0
    finally:
        close(subscription)

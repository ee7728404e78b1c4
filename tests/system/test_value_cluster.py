"""The value caches on a Redis Cluster (3 primaries, 3 replicas): the same results as one server, sync and asyncio.

Value keys of 60 symbols fall in many slots on all three primaries: a
newer-wins batch is one script call per key, grouped per node; bulk reads are
MGETs across slots; updates published by the script calls reach subscribers on
any node and through the cluster clients' own pub/sub.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
import redis
import redis.asyncio.cluster
import redis.cluster
from redis.exceptions import ResponseError

from livermore_cache import (
    IndicatorCache,
    IndicatorValue,
    Order,
    Orderbook,
    PartialWriteError,
    Ticker,
    TickerCache,
    indicator_key,
    orderbook_key,
    ticker_key,
)
from livermore_cache.values import encode_ticker
from tests.support.builders import indicator, orderbook, ticker
from tests.support.constants import EXCHANGE, T0, USER
from tests.support.facade import VALUE_CACHES, AsyncAsSync, Facade
from tests.support.stored import drain, flush_cluster
from tools.servers.cluster import ClusterProcess

pytestmark = pytest.mark.cluster

SYMBOLS = [f"V{i:02d}-USD" for i in range(60)]


def cluster_orderbook(symbol: str, timestamp: int, price: float) -> Orderbook:
    return orderbook(symbol, timestamp, price, bids=[Order(price, 1.5, 2)], asks=[Order(price + 0.5, 0.25)])


def cluster_indicator(symbol: str, timestamp: int, price: float) -> IndicatorValue:
    return indicator(symbol, timestamp, price, signal=0.5)


def stream(rounds: int) -> list[list[Ticker]]:
    """Batches over all 60 symbols: mostly newer than the round before, a few stale or repeated."""
    batches = []
    for round_ in range(rounds):
        batch = []
        for i, symbol in enumerate(SYMBOLS):
            stamp = T0 + round_ * 1000 + (i % 7) * (round_ % 3 == 1) * -2000  # some go back in time
            batch.append(ticker(symbol, stamp, 100.0 + round_))
            if (i + round_) % 5 == 0:
                batch.append(ticker(symbol, stamp, 200.0 + round_))  # the same timestamp again: skipped
        batches.append(batch)
    return batches


@pytest.fixture
def on_cluster(facade: Facade, cluster: ClusterProcess) -> Callable[[str], Any]:
    """A factory of value caches over one cluster client of the param's facade (the cluster flushed first)."""
    flush_cluster(cluster)
    client = facade.client(cluster.url, cluster=True)
    return lambda kind: facade.cache(VALUE_CACHES[kind], client)


@pytest.fixture
def checker(cluster: ClusterProcess) -> Iterator[Any]:
    """A sync cluster client for arranging and inspecting."""
    client: Any = redis.cluster.RedisCluster.from_url(cluster.url)
    yield client
    client.close()


def test_ticker_batches_over_60_symbols_match_a_single_server(
    on_cluster: Callable[[str], Any], checker: Any, r: redis.Redis
) -> None:
    keys = [ticker_key(USER, EXCHANGE, s) for s in SYMBOLS]
    assert len({checker.keyslot(k) for k in keys}) == 60
    assert len({checker.get_node_from_key(k).name for k in keys}) == 3, "the keys land on all three primaries"
    cache = on_cluster("ticker")
    single = TickerCache(r)
    outcomes: list[bool] = []
    for batch in stream(6):
        results = cache.set_tickers_if_newer(USER, EXCHANGE, batch)
        assert results == single.set_tickers_if_newer(USER, EXCHANGE, batch)
        outcomes += results
    assert True in outcomes
    assert False in outcomes
    assert [checker.get(k) for k in keys] == [r.get(k) for k in keys]
    for k in keys:
        assert 59_000 < int(checker.pttl(k)) <= 60_000

    # bulk reads across slots, with a missing symbol and an invalid value among them
    checker.set(ticker_key(USER, EXCHANGE, "JUNK-USD"), b"not json")
    r.set(ticker_key(USER, EXCHANGE, "JUNK-USD"), b"not json")
    asked = [SYMBOLS[5], "NOPE-USD", *SYMBOLS[10:], "JUNK-USD", SYMBOLS[0]]
    got = cache.get_tickers(USER, EXCHANGE, asked)
    assert got == single.get_tickers(USER, EXCHANGE, asked)
    assert list(got) == [SYMBOLS[5], *SYMBOLS[10:], SYMBOLS[0]]
    assert cache.invalid_values == single.invalid_values == 1
    assert cache.get_ticker(USER, EXCHANGE, SYMBOLS[7]) == single.get_ticker(USER, EXCHANGE, SYMBOLS[7])
    assert cache.has_ticker(USER, EXCHANGE, SYMBOLS[8]) is True
    cache.delete_ticker(USER, EXCHANGE, SYMBOLS[8])
    assert cache.has_ticker(USER, EXCHANGE, SYMBOLS[8]) is False


@pytest.mark.parametrize("kind", ["orderbook", "indicator"])
def test_orderbooks_and_indicators_across_slots(
    on_cluster: Callable[[str], Any], checker: Any, r: redis.Redis, kind: str
) -> None:
    make = cluster_orderbook if kind == "orderbook" else cluster_indicator
    cache, single = on_cluster(kind), VALUE_CACHES[kind](r)
    first = [make(s, T0, 10.0) for s in SYMBOLS]
    second = [make(s, T0 + (1 if i % 2 else 0), 20.0) for i, s in enumerate(SYMBOLS)]
    assert getattr(cache, f"set_{kind}s_if_newer")(USER, EXCHANGE, first) == [True] * 60
    assert getattr(single, f"set_{kind}s_if_newer")(USER, EXCHANGE, first) == [True] * 60
    expected = [i % 2 == 1 for i in range(60)]
    assert getattr(cache, f"set_{kind}s_if_newer")(USER, EXCHANGE, second) == expected
    assert getattr(single, f"set_{kind}s_if_newer")(USER, EXCHANGE, second) == expected
    keys = [
        orderbook_key(USER, EXCHANGE, s) if kind == "orderbook" else indicator_key(USER, EXCHANGE, s, "1h", "macd-v")
        for s in SYMBOLS
    ]
    assert [checker.get(k) for k in keys] == [r.get(k) for k in keys]
    if kind == "orderbook":
        got = cache.get_orderbooks(USER, EXCHANGE, SYMBOLS)
        assert got == single.get_orderbooks(USER, EXCHANGE, SYMBOLS)
    else:
        requests = [(s, "1h") for s in SYMBOLS]
        got = cache.get_indicators_bulk(USER, EXCHANGE, requests)
        assert got == single.get_indicators_bulk(USER, EXCHANGE, requests)
        assert list(got) == [f"{s}:1h" for s in SYMBOLS]
    assert len(got) == 60


def test_plain_setters_across_slots(on_cluster: Callable[[str], Any], checker: Any, r: redis.Redis) -> None:
    """The Node service's unconditional writes: one pipeline (SET ... EX) over keys on every node."""
    cache, single = on_cluster("indicator"), IndicatorCache(r)
    values = [cluster_indicator(s, T0 - i, 1.5) for i, s in enumerate(SYMBOLS)]
    cache.set_indicators(USER, EXCHANGE, values)
    single.set_indicators(USER, EXCHANGE, values)
    keys = [indicator_key(USER, EXCHANGE, s, "1h", "macd-v") for s in SYMBOLS]
    assert [checker.get(k) for k in keys] == [r.get(k) for k in keys]
    assert all(89_000_000 < int(checker.pttl(k)) <= 90_000_000 for k in keys)
    tickers = on_cluster("ticker")
    tickers.set_ticker(USER, EXCHANGE, ticker(SYMBOLS[0], T0, 1.5))
    tickers.set_ticker(USER, EXCHANGE, ticker(SYMBOLS[0], T0 - 5, 2.5))  # older, written anyway
    assert checker.get(ticker_key(USER, EXCHANGE, SYMBOLS[0])) == encode_ticker(ticker(SYMBOLS[0], T0 - 5, 2.5))


def test_a_wrong_type_key_on_one_node_is_a_partial_write(on_cluster: Callable[[str], Any], checker: Any) -> None:
    cache = on_cluster("ticker")
    bad = ticker_key(USER, EXCHANGE, SYMBOLS[3])
    checker.rpush(bad, "x")
    batch = [ticker(s, T0, 1.5) for s in SYMBOLS]
    with pytest.raises(PartialWriteError) as raised:
        cache.set_tickers_if_newer(USER, EXCHANGE, batch)
    assert raised.value.results == [None if i == 3 else True for i in range(60)]
    assert list(raised.value.errors) == [bad]
    assert isinstance(raised.value.errors[bad], ResponseError)
    assert str(raised.value.errors[bad]).startswith("WRONGTYPE")
    assert checker.lrange(bad, 0, -1) == [b"x"]
    for i, t in enumerate(batch):
        if i != 3:
            assert checker.get(ticker_key(USER, EXCHANGE, t.symbol)) == encode_ticker(t)


def in_key_order(events: list[tuple[str, Any]]) -> list[tuple[str, Any]]:
    """(key, value) pairs by key, then timestamp: the order of messages from several nodes is not defined."""
    return sorted(events, key=lambda pair: (pair[0], pair[1].timestamp))


def test_subscribers_on_any_node_receive_the_published_updates(
    on_cluster: Callable[[str], Any], cluster: ClusterProcess
) -> None:
    """A plain client of one node subscribes; the cluster facade's script calls publish on every primary."""
    cache = on_cluster("ticker")
    plain = redis.Redis.from_url(cluster.primary_nodes()[-1].url)
    with TickerCache(plain).subscribe_tickers(USER, EXCHANGE) as subscription:
        batch = [ticker(s, T0, 1.5) for s in SYMBOLS[:12]]
        stale = [ticker(s, T0 - 1, 1.5) for s in SYMBOLS[:12]]
        assert cache.set_tickers_if_newer(USER, EXCHANGE, batch, publish=True) == [True] * 12
        assert cache.set_tickers_if_newer(USER, EXCHANGE, stale, publish=True) == [False] * 12
        got = drain(subscription, idle=1.0)
    plain.close()
    assert in_key_order([(e.key, e.ticker) for e in got]) == in_key_order(
        [(ticker_key(USER, EXCHANGE, t.symbol), t) for t in batch]
    )


@pytest.mark.parametrize("symbol", [None, SYMBOLS[4]])
def test_subscribing_through_the_cluster_client(on_cluster: Callable[[str], Any], symbol: str | None) -> None:
    """subscribe_tickers on the cluster facade itself, sync and asyncio (asyncio before redis-py 8.0: through one node)."""
    cache = on_cluster("ticker")
    is_async = isinstance(cache, AsyncAsSync)
    subscription = cache.subscribe_tickers(USER, EXCHANGE, symbol)
    if is_async:
        subscription = AsyncAsSync(subscription, cache.loop)
        subscription.start()
    try:
        batch = [ticker(s, T0, 1.5) for s in SYMBOLS[:10]]
        assert cache.set_tickers_if_newer(USER, EXCHANGE, batch, publish=True) == [True] * 10
        assert cache.set_ticker_if_newer(USER, EXCHANGE, ticker(SYMBOLS[4], T0 + 1, 2.5), publish=True) is True
        got = [(e.key, e.ticker) for e in drain(subscription, idle=1.0)]
    finally:
        if is_async:
            subscription.aclose()
        else:
            subscription.close()
    published = [*batch, ticker(SYMBOLS[4], T0 + 1, 2.5)]
    expected = [(ticker_key(USER, EXCHANGE, t.symbol), t) for t in published if symbol is None or t.symbol == symbol]
    if symbol is None:  # one pattern over many nodes' messages: no order across them
        assert in_key_order(got) == in_key_order(expected)
    else:
        assert got == expected


def test_indicator_subscriber_on_the_sync_cluster_client(
    on_cluster: Callable[[str], Any], cluster: ClusterProcess
) -> None:
    cache = on_cluster("indicator")
    client: Any = redis.cluster.RedisCluster.from_url(cluster.url)
    with IndicatorCache(client).subscribe_indicators(USER, EXCHANGE, timeframe="1h") as subscription:
        batch = [cluster_indicator(s, T0, 1.5) for s in SYMBOLS[:8]]
        assert cache.set_indicators_if_newer(USER, EXCHANGE, batch, publish=True) == [True] * 8
        got = [(e.key, e.indicator) for e in drain(subscription, idle=1.0)]
    client.close()
    assert in_key_order(got) == [(indicator_key(USER, EXCHANGE, v.symbol, "1h", "macd-v"), v) for v in batch]

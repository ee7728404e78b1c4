"""Subscriptions through a Redis Cluster client on both facades, on every redis-py of the matrix.

redis-py before 8.0 has no pub/sub on ``redis.asyncio.cluster.RedisCluster``: the
asyncio subscribers then subscribe through a plain ``redis.asyncio.Redis`` of one
node (classic pub/sub reaches every node), which they make and close themselves.
"""

from __future__ import annotations

import time
from typing import Any

import pytest
import redis

from livermore_cache import CandleCache, Order, Orderbook, OrderbookCache, _compat, orderbook_key
from tests.support.builders import unified
from tests.support.constants import EXCHANGE, T0, USER
from tests.support.facade import AsyncAsSync, Facade
from tests.support.stored import flush_cluster
from tools.servers.cluster import ClusterProcess

SYMBOLS = [f"S{i}" for i in range(12)]


def subscribed(facade: Facade, subscription: Any) -> Any:
    if facade.is_async:
        subscription = AsyncAsSync(subscription, facade.loop)
        subscription.start()
    return subscription


def close(subscription: Any) -> None:
    (subscription.aclose if hasattr(subscription, "aclose") else subscription.close)()


def drain(subscription: Any) -> list[Any]:
    out = []
    while (event := subscription.get(timeout=1.0)) is not None:
        out.append(event)
    return out


def subscribers(cluster: ClusterProcess) -> int:
    """Pub/sub connections on every live node."""
    total = 0
    for node in cluster.live_nodes():
        with redis.Redis.from_url(node.url) as client:
            total += sum(1 for c in client.client_list() if int(c.get("sub", 0)) or int(c.get("psub", 0)))
    return total


def book(symbol: str, timestamp: int = T0) -> Orderbook:
    return Orderbook(symbol=symbol, bids=[Order(1.0, 2.0)], asks=[Order(1.5, 1.0)], timestamp=timestamp)


def test_closes_and_orderbooks_through_the_cluster_client(facade: Facade, cluster: ClusterProcess) -> None:
    flush_cluster(cluster)
    client = facade.client(cluster.url, cluster=True)
    candles = facade.cache(CandleCache, client)
    books = facade.cache(OrderbookCache, client)
    closes = subscribed(facade, candles.subscribe_closes(USER, EXCHANGE, timeframe="1m"))
    updates = subscribed(facade, books.subscribe_orderbooks(USER, EXCHANGE))
    try:
        batch = [unified(T0, 1, symbol=s) for s in SYMBOLS]
        assert candles.add_candles_if_newer(USER, EXCHANGE, batch, publish_close=True) == [True] * len(SYMBOLS)
        assert books.set_orderbooks_if_newer(USER, EXCHANGE, [book(s) for s in SYMBOLS], publish=True) == [True] * 12
        assert sorted(e.series.symbol for e in drain(closes)) == sorted(SYMBOLS)
        assert sorted(e.key for e in drain(updates)) == sorted(orderbook_key(USER, EXCHANGE, s) for s in SYMBOLS)

        # a dropped subscriber reconnects and backfills across every node's slots in one pipelined read
        for node in cluster.live_nodes():
            with redis.Redis.from_url(node.url) as plain:
                plain.client_kill_filter(_type="pubsub")
        later = [unified(T0 + 60_000, 1, symbol=s) for s in SYMBOLS]
        assert candles.add_candles_if_newer(USER, EXCHANGE, later, publish_close=True) == [True] * len(SYMBOLS)
        events = drain(closes)
        assert sorted(e.series.symbol for e in events) == sorted(SYMBOLS)
        assert all(e.backfilled and e.candle.timestamp == T0 + 60_000 for e in events)
        assert closes.reconnects >= 1
    finally:
        close(closes)
        close(updates)
    time.sleep(0.2)
    assert subscribers(cluster) == 0, "closing a subscription closes what it opened (the node client too)"


@pytest.mark.skipif(_compat.ASYNC_CLUSTER_PUBSUB, reason="redis-py 8.0+ has pub/sub on the asyncio cluster client")
def test_asyncio_cluster_before_redis_py_8_subscribes_through_one_node(loop: Any, cluster: ClusterProcess) -> None:
    facade = Facade("async", loop)
    try:
        cache = facade.cache(CandleCache, facade.client(cluster.url, cluster=True))
        subscription = cache.subscribe_closes(USER, EXCHANGE, "S1", "1m")
        loop.run_until_complete(subscription.start())
        assert subscription._owns_source
        assert type(subscription._source).__name__ == "Redis"
        loop.run_until_complete(subscription.aclose())
        assert subscription._source is None
    finally:
        facade.close()

"""``from_url(url, cluster=True)`` on a real Redis Cluster, sync and asyncio: it works, and closing closes every node's sockets."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from livermore_cache import AsyncCandleCache, AsyncTickerCache, CacheClosedError, CandleCache, TickerCache
from tests.support.builders import ticker, unified
from tests.support.constants import EXCHANGE, SYMBOL, T0, TIMEFRAME, USER
from tests.support.stored import connections_named
from tools.servers.cluster import ClusterProcess

pytestmark = [pytest.mark.cluster, pytest.mark.slow]


def _sockets(cluster: ClusterProcess, name: str, *, settle_to: int | None = None) -> int:
    return connections_named([node.url for node in cluster.live_nodes()], name, settle_to=settle_to)


def test_sync_from_url_on_a_cluster_closes_every_node(cluster: ClusterProcess) -> None:
    name = f"lc-{uuid.uuid4().hex[:10]}"
    url = f"{cluster.url}?client_name={name}"
    with (
        CandleCache.from_url(url, cluster=True, retries=5) as candles,
        TickerCache.from_url(url, cluster=True) as tickers,
    ):
        symbols = [f"S{i}-USD" for i in range(12)]  # spread over the slots of every primary
        assert candles.add_candles_if_newer(USER, EXCHANGE, [unified(T0, 1, symbol=s) for s in symbols]) == [True] * 12
        assert tickers.set_tickers_if_newer(USER, EXCHANGE, [ticker(s, T0) for s in symbols]) == [True] * 12
        assert candles.get_candle_count(USER, EXCHANGE, symbols[5], TIMEFRAME) == 1
        assert _sockets(cluster, name) >= 3
    assert _sockets(cluster, name, settle_to=0) == 0
    with pytest.raises(CacheClosedError):
        candles.get_candle_count(USER, EXCHANGE, SYMBOL, TIMEFRAME)


def test_async_from_url_on_a_cluster_closes_every_node(cluster: ClusterProcess) -> None:
    name = f"lc-{uuid.uuid4().hex[:10]}"
    url = f"{cluster.url}?client_name={name}"

    async def scenario() -> None:
        async with (
            AsyncCandleCache.from_url(url, cluster=True) as candles,
            AsyncTickerCache.from_url(url, cluster=True) as tickers,
        ):
            symbols = [f"A{i}-USD" for i in range(12)]
            written = await candles.add_candles_if_newer(USER, EXCHANGE, [unified(T0, 1, symbol=s) for s in symbols])
            assert written == [True] * 12
            assert await tickers.set_tickers_if_newer(USER, EXCHANGE, [ticker(s, T0) for s in symbols]) == [True] * 12
            assert _sockets(cluster, name) >= 3
        assert _sockets(cluster, name, settle_to=0) == 0

    asyncio.run(scenario())

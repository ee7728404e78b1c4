"""Roll-ups under a race: 8 processes write shuffled, duplicated, revised 1m updates with roll-ups to 5m and 15m.

Every final target series must equal ``aggregate_candles`` over the final sources (one
member per timestamp), and every target candle written must be announced exactly once,
on standalone and on a Cluster (where each source series and its targets live in
different hash slots: no step of a roll-up is atomic across them).
"""

from __future__ import annotations

import multiprocessing
import random
import time
from collections import Counter
from collections.abc import Iterator
from multiprocessing.synchronize import Barrier
from typing import Any

import msgspec
import pytest
import redis
import redis.cluster

from livermore_cache import CandleCache, UnifiedCandle, aggregate_candles, candle_close_pattern, candle_key
from livermore_cache.candles import decode_candle
from livermore_cache.rollups import choose_sources
from tests.support.builders import unified
from tests.support.constants import EXCHANGE, MINUTE, T0, USER
from tests.support.stored import flush_cluster
from tools.servers.cluster import ClusterProcess

WRITERS = 8
SYMBOLS = ["BTC-USD", "ETH-USD"]
SLOTS = 45  # three 15m periods of 1m candles
MISSING = 37  # never delivered: its 5m and 15m periods stay incomplete
UPDATES = 4  # sequences 1..4 per candle, each with other prices
ROLLUPS = {"1m": ["5m", "15m"]}
TARGETS = ("5m", "15m")


def update(symbol: str, slot: int, sequence: int) -> UnifiedCandle:
    base = 100.0 + slot * 0.37 + sequence * 0.011
    return unified(
        T0 + slot * MINUTE,
        sequence,
        symbol=symbol,
        open=base,
        high=base + 0.5 + sequence * 0.1,
        low=base - 0.25 - sequence * 0.1,
        close=base + 0.125,
        volume=0.1 * (slot + 1) + sequence * 0.3,
    )


def feed(seed: int) -> list[tuple[str, int, int]]:
    """(symbol, slot, sequence) updates, shuffled, about a quarter delivered twice."""
    rng = random.Random(seed)
    updates = [
        (s, slot, seq) for s in SYMBOLS for slot in range(SLOTS) if slot != MISSING for seq in range(1, UPDATES + 1)
    ]
    updates += rng.sample(updates, len(updates) // 4)
    rng.shuffle(updates)
    return updates


def writer(url: str, cluster: bool, share: list[tuple[str, int, int]], barrier: Barrier, batched: bool) -> None:
    client: Any = redis.cluster.RedisCluster.from_url(url) if cluster else redis.Redis.from_url(url)
    cache = CandleCache(client, rollups=ROLLUPS)
    candles = [update(*item) for item in share]
    barrier.wait(timeout=120)
    if batched:
        for start in range(0, len(candles), 7):
            cache.add_candles_if_newer(USER, EXCHANGE, candles[start : start + 7], publish_close=True)
    else:
        for candle in candles:
            cache.add_candle_if_newer(USER, EXCHANGE, candle, publish_close=True)
    client.close()


@pytest.fixture(params=["standalone", pytest.param("cluster", marks=pytest.mark.cluster)])
def target(request: pytest.FixtureRequest) -> Iterator[tuple[str, bool, str]]:
    """(url for the writers, cluster?, url of one node to subscribe and read on)."""
    if request.param == "standalone":
        url = request.getfixturevalue("redis_url")
        yield url, False, url
        return
    cluster: ClusterProcess = request.getfixturevalue("cluster")
    flush_cluster(cluster)
    yield cluster.url, True, cluster.primary_nodes()[0].url


@pytest.mark.slow
@pytest.mark.parametrize("seed", [3, 4])
def test_racing_writers_leave_the_aggregate_of_the_final_sources(target: tuple[str, bool, str], seed: int) -> None:
    url, cluster, node_url = target
    reader: Any = redis.cluster.RedisCluster.from_url(url) if cluster else redis.Redis.from_url(url)
    listener = redis.Redis.from_url(node_url)  # PUBLISH reaches every node of a cluster
    pubsub = listener.pubsub()
    for timeframe in TARGETS:
        pubsub.psubscribe(candle_close_pattern(USER, EXCHANGE, timeframe=timeframe))
    for _ in TARGETS:
        assert pubsub.get_message(timeout=5)["type"] == "psubscribe"

    updates = feed(seed)
    context = multiprocessing.get_context("spawn")
    barrier = context.Barrier(WRITERS)
    processes = [
        context.Process(target=writer, args=(url, cluster, updates[i::WRITERS], barrier, i % 2 == 0))
        for i in range(WRITERS)
    ]
    for process in processes:
        process.start()
    events: Counter[tuple[str, str, int, int]] = Counter()
    deadline = time.monotonic() + 240

    def collect(idle: float) -> bool:
        message = pubsub.get_message(timeout=idle)
        if message is None:
            return False
        if message["type"] == "pmessage":
            candle = msgspec.json.decode(message["data"], type=UnifiedCandle)
            assert candle.sequence_num is not None
            events[candle.symbol, candle.timeframe, candle.timestamp, candle.sequence_num] += 1
        return True

    while any(p.is_alive() for p in processes) and time.monotonic() < deadline:
        collect(0.05)
    for process in processes:
        process.join(60)
        assert process.exitcode == 0
    while collect(1.0):
        pass
    pubsub.close()
    listener.close()

    announced_twice = {event: n for event, n in events.items() if n != 1}
    assert announced_twice == {}, "each written target candle is announced exactly once"
    for symbol in SYMBOLS:
        members = reader.zrange(candle_key(USER, EXCHANGE, symbol, "1m"), 0, -1)
        sources = [c for _, c in choose_sources((bytes(m), decode_candle(m, UnifiedCandle)) for m in members)]
        final = [update(symbol, slot, UPDATES) for slot in range(SLOTS) if slot != MISSING]
        assert sources == final, "the sources hold the highest sequence of every delivered candle"
        for timeframe in TARGETS:
            stored = [
                decode_candle(m, UnifiedCandle)
                for m in reader.zrange(candle_key(USER, EXCHANGE, symbol, timeframe), 0, -1)
            ]
            expected = aggregate_candles(final, "1m", timeframe)
            assert len(expected) == (8 if timeframe == "5m" else 2)  # the periods of slot MISSING stay incomplete
            assert [msgspec.json.encode(c) for c in stored] == [
                msgspec.json.encode(
                    UnifiedCandle(
                        **msgspec.structs.asdict(e),
                        exchange="coinbase",
                        sequence_num=UPDATES * (15 if timeframe == "15m" else 5),  # the sum of the sources'
                    )
                )
                for e in expected
            ], f"{symbol} {timeframe}: the final roll-ups are the aggregate of the final sources"
            for candle in stored:
                key = (symbol, timeframe, candle.timestamp, candle.sequence_num)  # type: ignore[attr-defined]
                assert events[key] == 1, f"the stored roll-up {key} was announced"
    reader.close()

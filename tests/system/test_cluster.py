"""Redis Cluster: same methods, same results; failover, slot migration and lost scripts absorbed."""

from __future__ import annotations

import signal
import threading
import time
from typing import Any

import msgspec
import pytest
import redis
import redis.asyncio.cluster
import redis.cluster

from livermore_cache import CandleCache, UnifiedCandle, candle_key, timeframe_ms
from tests.support.builders import unified
from tests.support.constants import EXCHANGE, MINUTE, T0, USER
from tests.support.facade import AsyncAsSync, Facade
from tests.support.stored import flush_cluster
from tools.servers.cluster import ClusterProcess

pytestmark = pytest.mark.cluster

SYMBOLS = [f"C{i:02d}-USD" for i in range(30)]
TIMEFRAMES = ["1m", "5m"]  # 60 series


def stream(rounds: int, slots: int = 4) -> list[list[UnifiedCandle]]:
    """Batches over all series, several updates per candle, a few of them stale."""
    batches = []
    for r in range(rounds):
        batch = []
        for s in SYMBOLS:
            for tf in TIMEFRAMES:
                slot = r % slots
                batch.append(unified(T0 + slot * timeframe_ms(tf), r, symbol=s, timeframe=tf, close=float(r + 1)))
                if r % 3 == 0:
                    batch.append(unified(T0 + slot * timeframe_ms(tf), max(r - 2, 0), symbol=s, timeframe=tf))
        batches.append(batch)
    return batches


def snapshot(client: Any) -> dict[str, list[bytes]]:
    return {
        candle_key(USER, EXCHANGE, s, tf): client.zrange(candle_key(USER, EXCHANGE, s, tf), 0, -1)
        for s in SYMBOLS
        for tf in TIMEFRAMES
    }


@pytest.fixture
def cluster_cache(facade: Facade, cluster: ClusterProcess) -> Any:
    flush_cluster(cluster)
    return facade.cache(CandleCache, facade.client(cluster.url, cluster=True), max_candles=10)


def test_batches_over_60_series_match_a_single_server(
    cluster_cache: Any, cluster: ClusterProcess, r: redis.Redis
) -> None:
    single = CandleCache(r, max_candles=10)
    cluster_client: Any = redis.cluster.RedisCluster.from_url(cluster.url)
    owners = {
        cluster_client.get_node_from_key(candle_key(USER, EXCHANGE, s, tf)).name for s in SYMBOLS for tf in TIMEFRAMES
    }
    assert len(owners) == 3, "the series land on all three primaries"
    for batch in stream(8):
        assert cluster_cache.add_candles_if_newer(USER, EXCHANGE, batch) == single.add_candles_if_newer(
            USER, EXCHANGE, batch
        )
    cluster_cache.add_candles(USER, EXCHANGE, stream(1)[0][:10])
    single.add_candles(USER, EXCHANGE, stream(1)[0][:10])
    assert snapshot(cluster_client) == snapshot(r)
    assert cluster_cache.get_recent_candles(USER, EXCHANGE, SYMBOLS[3], "5m", 3) == single.get_recent_candles(
        USER, EXCHANGE, SYMBOLS[3], "5m", 3
    )
    assert cluster_cache.get_candle_count(USER, EXCHANGE, SYMBOLS[4], "1m") == 4
    cluster_client.close()


def test_script_cache_lost_on_every_node(cluster_cache: Any, cluster: ClusterProcess) -> None:
    first = [unified(T0, 1, symbol=s, timeframe=tf) for s in SYMBOLS for tf in TIMEFRAMES]
    assert cluster_cache.add_candles_if_newer(USER, EXCHANGE, first) == [True] * 60
    for node in cluster.live_nodes():
        with redis.Redis.from_url(node.url) as client:
            client.script_flush()
    later = [unified(T0, 5, symbol=s, timeframe=tf) for s in SYMBOLS for tf in TIMEFRAMES]
    assert cluster_cache.add_candles_if_newer(USER, EXCHANGE, later) == [True] * 60
    assert cluster_cache.stats.noscript_calls >= 60


def test_close_events_on_a_cluster(cluster: ClusterProcess) -> None:
    flush_cluster(cluster)
    client: Any = redis.cluster.RedisCluster.from_url(cluster.url)
    cache = CandleCache(client)
    plain = redis.Redis.from_url(cluster.primary_nodes()[-1].url)  # a subscriber on another node
    with CandleCache(plain).subscribe_closes(USER, EXCHANGE) as subscription:
        batch = [unified(T0, 1, symbol=s) for s in SYMBOLS[:12]]
        assert cache.add_candles_if_newer(USER, EXCHANGE, batch, publish_close=True) == [True] * 12
        got = [e.series.symbol for e in iter(lambda: subscription.get(timeout=1.0), None)]
    assert sorted(got) == sorted(SYMBOLS[:12])
    plain.close()
    client.close()


def test_subscribing_through_the_cluster_client(cluster_cache: Any) -> None:
    """subscribe_closes on a RedisCluster facade, sync and asyncio (asyncio before redis-py 8.0: through one node)."""
    subscription = cluster_cache.subscribe_closes(USER, EXCHANGE, timeframe="5m")
    if hasattr(subscription, "aclose"):  # the asyncio subscription
        subscription = AsyncAsSync(subscription, cluster_cache.loop)
        subscription.start()
    try:
        batch = [unified(T0, 1, symbol=s, timeframe=tf) for s in SYMBOLS[:8] for tf in TIMEFRAMES]
        assert cluster_cache.add_candles_if_newer(USER, EXCHANGE, batch, publish_close=True) == [True] * 16
        got = []
        while (event := subscription.get(timeout=1.0)) is not None:
            got.append((event.series.symbol, event.series.timeframe))
        assert sorted(got) == sorted((s, "5m") for s in SYMBOLS[:8])
    finally:
        if hasattr(subscription, "aclose"):
            subscription.aclose()
        else:
            subscription.close()


@pytest.mark.slow
def test_primary_killed_and_replica_promoted_while_writing(facade: Facade, cluster: ClusterProcess) -> None:
    flush_cluster(cluster)
    client = facade.client(cluster.url, cluster=True)
    cache = facade.cache(CandleCache, client, max_candles=50, retries=40)
    victim = cluster.primary_nodes()[0]
    sent: dict[tuple[str, str, int], int] = {}
    errors: list[BaseException] = []
    killed = threading.Event()

    def kill_soon() -> None:
        time.sleep(0.5)
        victim.signal(signal.SIGKILL)
        killed.set()

    killer = threading.Thread(target=kill_soon)
    killer.start()
    deadline = time.monotonic() + 12
    round_ = 0
    try:
        while time.monotonic() < deadline:
            round_ += 1
            batch = [
                unified(T0 + (round_ % 20) * timeframe_ms(tf), round_, symbol=s, timeframe=tf)
                for s in SYMBOLS
                for tf in TIMEFRAMES
            ]
            results = cache.add_candles_if_newer(USER, EXCHANGE, batch)
            assert results == [True] * len(batch), "each candle is newer than anything stored: all written"
            for c in batch:
                sent[(c.symbol, c.timeframe, c.timestamp)] = round_
    except BaseException as error:
        errors.append(error)
    killer.join()
    assert errors == []
    assert killed.is_set()
    assert cache.stats.retried_rounds > 0, "the failover was met and absorbed"
    cluster.wait_ok()
    checker: Any = redis.cluster.RedisCluster.from_url(cluster.url)
    for (symbol, timeframe, stamp), seq in sent.items():
        members = checker.zrangebyscore(candle_key(USER, EXCHANGE, symbol, timeframe), stamp, stamp)
        held = [msgspec.json.decode(m, type=UnifiedCandle).sequence_num for m in members]
        assert len(held) <= 1
        # a write acknowledged by the old primary just before it died may not have reached its replica
        # (replication is asynchronous), but nothing older ever overwrites a newer candle:
        if held:
            assert held[0] is not None
            assert held[0] <= seq
    # after the failover every candle written again is stored and nothing stale survives
    last = [
        unified(T0 + slot * timeframe_ms(tf), round_ + 1, symbol=s, timeframe=tf)
        for slot in range(20)
        for s in SYMBOLS
        for tf in TIMEFRAMES
    ]
    assert cache.add_candles_if_newer(USER, EXCHANGE, last) == [True] * len(last)
    checker.close()
    facade.close()
    victim.start(ready=False)  # back as a replica of its successor
    victim.wait_ready()
    cluster.wait_ok()


def _node_id(client: redis.Redis) -> str:
    raw = client.execute_command("CLUSTER", "MYID")  # type: ignore[no-untyped-call]
    return raw.decode() if isinstance(raw, bytes) else str(raw)


@pytest.mark.slow
def test_slot_migrated_while_writing_loses_nothing(cluster: ClusterProcess) -> None:
    flush_cluster(cluster)
    client: Any = redis.cluster.RedisCluster.from_url(cluster.url)
    cache = CandleCache(client, max_candles=500)
    moving_key = candle_key(USER, EXCHANGE, SYMBOLS[0], "1m")
    slot = client.keyslot(moving_key)
    source_node = client.get_node_from_key(moving_key)
    source = redis.Redis(host=source_node.host, port=source_node.port)
    target_node = next(n for n in client.get_primaries() if n.name != source_node.name)
    target = redis.Redis(host=target_node.host, port=target_node.port)
    source_id, target_id = _node_id(source), _node_id(target)

    sent: dict[tuple[str, int], int] = {}
    stop = threading.Event()
    errors: list[BaseException] = []

    def writer() -> None:
        round_ = 0
        try:
            while not stop.is_set():
                round_ += 1
                batch = [unified(T0 + (round_ % 300) * MINUTE, round_, symbol=s) for s in SYMBOLS]
                assert cache.add_candles_if_newer(USER, EXCHANGE, batch) == [True] * len(batch)
                for c in batch:
                    sent[(c.symbol, c.timestamp)] = round_
        except BaseException as error:
            errors.append(error)

    thread = threading.Thread(target=writer)
    thread.start()
    time.sleep(0.5)
    target.execute_command("CLUSTER", "SETSLOT", slot, "IMPORTING", source_id)  # type: ignore[no-untyped-call]
    source.execute_command("CLUSTER", "SETSLOT", slot, "MIGRATING", target_id)  # type: ignore[no-untyped-call]
    time.sleep(0.3)  # writes meet the migrating slot: ASK for keys already moved
    while keys := source.execute_command("CLUSTER", "GETKEYSINSLOT", slot, 100):  # type: ignore[no-untyped-call]
        source.execute_command("MIGRATE", target_node.host, target_node.port, "", 0, 5000, "KEYS", *keys)  # type: ignore[no-untyped-call]
        time.sleep(0.05)
    time.sleep(0.3)
    for node in cluster.primary_nodes():
        with redis.Redis.from_url(node.url) as each:
            each.execute_command("CLUSTER", "SETSLOT", slot, "NODE", target_id)
    time.sleep(1.0)  # writes meet MOVED now
    stop.set()
    thread.join()
    assert errors == []
    assert client.get_node_from_key(moving_key).name == target_node.name
    checker: Any = redis.cluster.RedisCluster.from_url(cluster.url)
    for (symbol, stamp), seq in sent.items():
        members = checker.zrangebyscore(candle_key(USER, EXCHANGE, symbol, "1m"), stamp, stamp)
        assert [msgspec.json.decode(m, type=UnifiedCandle).sequence_num for m in members] == [seq]
    checker.close()
    source.close()
    target.close()
    client.close()

"""Faults against real servers: killed, paused, out of memory, evicting, script cache lost.

Every test runs through both facades: ``cache_at`` is ``make_cache`` for a server
of the test's own (sync ``CandleCache``, or ``AsyncCandleCache`` driven through
``AsyncAsSync``); a plain sync client arranges and inspects the server.
"""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Callable
from typing import Any

import msgspec
import pytest
import redis
import redis.asyncio

from livermore_cache import UnifiedCandle, candle_key
from tests.support.builders import unified
from tests.support.constants import EXCHANGE, MINUTE, T0, USER
from tests.support.stored import zmembers
from tools.servers.process import ServerProcess

Start = Callable[..., ServerProcess]
CacheAt = Callable[..., Any]


def stored_sequences(client: redis.Redis, key: str) -> dict[int, int | None]:
    out: dict[int, int | None] = {}
    for member in zmembers(client, key):
        candle = msgspec.json.decode(member, type=UnifiedCandle)
        assert candle.timestamp not in out, "one member per timestamp"
        out[candle.timestamp] = candle.sequence_num
    return out


def evalsha_and_eval_calls(client: redis.Redis) -> int:
    stats = client.info("commandstats")
    return sum(int(stats.get(f"cmdstat_{name}", {}).get("calls", 0)) for name in ("evalsha", "eval"))


@pytest.mark.slow
def test_sigkill_and_restart_mid_stream(private_server: Start, cache_at: CacheAt) -> None:
    """Every acknowledged write survives (appendfsync always); at the end each timestamp holds its highest sequence."""
    server = private_server("--appendonly", "yes", "--appendfsync", "always")
    client = redis.Redis.from_url(server.url, socket_timeout=2)
    cache = cache_at(server.url, {"socket_timeout": 2}, max_candles=1000)
    key = candle_key(USER, EXCHANGE, "BTC-USD", "1m")
    batches = [[unified(T0 + (b * 4 + i) % 200 * MINUTE, b, close=float(b + 1)) for i in range(4)] for b in range(240)]

    def kill_and_restart() -> None:
        server.kill()
        time.sleep(0.3)
        server.start()

    restarter: threading.Thread | None = None
    acknowledged: dict[int, int] = {}
    for number, batch in enumerate(batches):
        if number == 80:
            restarter = threading.Thread(target=kill_and_restart)
            restarter.start()
        for candle, written in zip(batch, cache.add_candles_if_newer(USER, EXCHANGE, batch), strict=True):
            if written:
                assert candle.sequence_num is not None
                acknowledged[candle.timestamp] = max(acknowledged.get(candle.timestamp, -1), candle.sequence_num)
    assert restarter is not None
    restarter.join()
    sent: dict[int, int] = {}
    for batch in batches:
        for candle in batch:
            assert candle.sequence_num is not None
            sent[candle.timestamp] = max(sent.get(candle.timestamp, -1), candle.sequence_num)
    held = stored_sequences(client, key)
    assert held == sent, "every timestamp holds the highest sequence sent (all calls completed)"
    assert all(held[t] == s for t, s in acknowledged.items()), "nothing acknowledged was lost"
    client.close()


def test_paused_server_within_the_retry_budget_is_absorbed_and_reported_truthfully(
    private_server: Start, cache_at: CacheAt
) -> None:
    """SIGSTOP past the socket timeout: the first attempt is applied on resume, the retry finds it stored -> True."""
    server = private_server()
    client = redis.Redis.from_url(server.url, socket_timeout=0.3)  # inspects; never used while the server is paused
    cache = cache_at(server.url, {"socket_timeout": 0.3})
    batch = [unified(T0 + i * MINUTE, 3, symbol=s) for i in range(5) for s in ("BTC-USD", "ETH-USD")]
    assert cache.add_candle_if_newer(USER, EXCHANGE, unified(T0 - MINUTE, 1))  # script cached, connection made
    calls_before = evalsha_and_eval_calls(client)
    server.signal(signal.SIGSTOP)
    resumer = threading.Timer(1.2, server.signal, args=(signal.SIGCONT,))
    resumer.start()
    try:
        assert cache.add_candles_if_newer(USER, EXCHANGE, batch) == [True] * len(batch)
    finally:
        resumer.join()
    assert evalsha_and_eval_calls(client) - calls_before > 2, "the write was sent more than once"
    for symbol in ("BTC-USD", "ETH-USD"):
        assert stored_sequences(client, candle_key(USER, EXCHANGE, symbol, "1m")) == {
            **({T0 - MINUTE: 1} if symbol == "BTC-USD" else {}),
            **{T0 + i * MINUTE: 3 for i in range(5)},
        }
    # a later re-delivery of the same candles is not a retry: skipped, as the rules say
    assert cache.add_candles_if_newer(USER, EXCHANGE, batch) == [False] * len(batch)
    client.close()


def test_paused_server_past_the_budget_raises_clearly_and_applies_whole_or_nothing(
    private_server: Start, cache_at: CacheAt
) -> None:
    server = private_server()
    cache = cache_at(server.url, {"socket_timeout": 0.3}, retries=1)
    assert cache.add_candle_if_newer(USER, EXCHANGE, unified(T0 - MINUTE, 1))
    symbols = [f"S{i}-USD" for i in range(6)]
    batch = [unified(T0 + i * MINUTE, 1, symbol=s) for i in range(20) for s in symbols]
    server.signal(signal.SIGSTOP)
    try:
        with pytest.raises(redis.TimeoutError) as raised:
            cache.add_candles_if_newer(USER, EXCHANGE, batch)
    finally:
        server.signal(signal.SIGCONT)
    assert any("may or may not have been applied" in note for note in getattr(raised.value, "__notes__", []))
    checker = redis.Redis.from_url(server.url)
    for symbol in symbols:
        count = checker.zcard(candle_key(USER, EXCHANGE, symbol, "1m"))
        assert count in (0, 20), f"{symbol}: a series is written whole or not at all, got {count}"
    checker.close()


def test_out_of_memory_with_noeviction_fails_clearly_and_leaves_the_key_as_it_was(
    private_server: Start, cache_at: CacheAt
) -> None:
    server = private_server("--maxmemory-policy", "noeviction")
    client = redis.Redis.from_url(server.url)
    cache = cache_at(server.url)
    key = candle_key(USER, EXCHANGE, "BTC-USD", "1m")
    assert cache.add_candles_if_newer(USER, EXCHANGE, [unified(T0 + i * MINUTE, 1) for i in range(5)]) == [True] * 5
    before = zmembers(client, key)
    for filler in range(40):
        client.set(f"filler:{filler}", b"x" * 50_000)
    used = int(client.info("memory")["used_memory"])
    client.config_set("maxmemory", used - 500_000)  # now over the limit until something is deleted
    with pytest.raises(redis.exceptions.OutOfMemoryError):
        client.set("one-more", b"x")
    batch = [unified(T0 + i * MINUTE, 2, close=9.0) for i in range(5)] + [
        unified(T0 + (10 + i) * MINUTE, 1) for i in range(50)
    ]
    # Redis 7 answers OutOfMemoryError; 6.2 wraps the same OOM in "Error running script": both name maxmemory
    with pytest.raises(redis.exceptions.ResponseError, match="maxmemory"):
        cache.add_candles_if_newer(USER, EXCHANGE, batch)
    assert zmembers(client, key) == before
    with pytest.raises(redis.exceptions.ResponseError, match="maxmemory"):
        cache.add_candles(USER, EXCHANGE, batch)
    assert zmembers(client, key) == before
    client.close()


def test_evicted_series_reads_empty_and_is_rebuilt(private_server: Start, cache_at: CacheAt) -> None:
    server = private_server("--maxmemory", "4mb", "--maxmemory-policy", "allkeys-lru")
    client = redis.Redis.from_url(server.url)
    cache = cache_at(server.url)
    assert cache.add_candles_if_newer(USER, EXCHANGE, [unified(T0 + i * MINUTE, 1) for i in range(20)]) == [True] * 20
    key = candle_key(USER, EXCHANGE, "BTC-USD", "1m")
    # The LRU clock ticks once a second: written in the fillers' second, the series would tie with them and could
    # survive the sampled eviction by chance. Made idle for an hour (same bytes, same TTL), it is the first to go.
    dumped = client.dump(key)
    assert dumped is not None
    client.restore(key, client.pttl(key), dumped, replace=True, idletime=3600)
    for filler in range(2000):  # far more than fits: the series is evicted on the way
        client.set(f"filler:{filler}", b"x" * 10_000)
        if filler % 50 == 0:
            client.get(f"filler:{filler}")
    assert client.exists(key) == 0, "the series was evicted"
    assert cache.get_recent_candles(USER, EXCHANGE, "BTC-USD", "1m") == []
    assert cache.get_latest_candle(USER, EXCHANGE, "BTC-USD", "1m") is None
    assert cache.add_candles_if_newer(USER, EXCHANGE, [unified(T0 + i * MINUTE, 1) for i in range(20)]) == [True] * 20
    assert [c.timestamp for c in cache.get_recent_candles(USER, EXCHANGE, "BTC-USD", "1m")] == [
        T0 + i * MINUTE for i in range(20)
    ]
    client.close()


def test_restarted_server_lost_its_scripts(private_server: Start, cache_at: CacheAt) -> None:
    server = private_server()
    cache = cache_at(server.url)
    assert cache.add_candle_if_newer(USER, EXCHANGE, unified(T0, 1))
    server.restart()  # no persistence: data and script cache are gone
    batch = [unified(T0, 2, symbol=s) for s in ("BTC-USD", "ETH-USD", "SOL-USD")]
    assert cache.add_candles_if_newer(USER, EXCHANGE, batch) == [True, True, True]
    assert cache.add_candle_if_newer(USER, EXCHANGE, unified(T0, 3)) is True


@pytest.mark.parametrize("method", ["add_candles_if_newer", "add_candles"])
def test_replaying_a_batch_gives_the_same_cache(cache: Any, r: redis.Redis, method: str) -> None:
    """Retries are safe because the write is idempotent: the second send of a batch changes nothing."""
    batch = [
        unified(T0 + (i % 7) * MINUTE, i % 5, symbol=("BTC-USD", "ETH-USD")[i % 2], close=float(i + 1))
        for i in range(40)
    ]
    getattr(cache, method)(USER, EXCHANGE, batch)
    keys = [candle_key(USER, EXCHANGE, s, "1m") for s in ("BTC-USD", "ETH-USD")]
    before = {key: zmembers(r, key) for key in keys}
    for _ in range(3):
        getattr(cache, method)(USER, EXCHANGE, batch)
    assert {key: zmembers(r, key) for key in keys} == before

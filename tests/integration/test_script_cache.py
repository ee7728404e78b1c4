"""Losing the server's script cache never fails a write, not even in the middle of a batch."""

from __future__ import annotations

import threading
from typing import Any

import redis

from livermore_cache import candle_key
from tests.support.builders import unified
from tests.support.constants import EXCHANGE, MINUTE, T0, USER

SYMBOLS = [f"S{i}-USD" for i in range(12)]


def noscript_failures(r: redis.Redis) -> int:
    """EVALSHA calls the server refused with NOSCRIPT so far (INFO errorstats, Redis >= 6.2)."""
    return int(r.info("errorstats").get("errorstat_NOSCRIPT", {}).get("count", 0))


def test_flushes_racing_with_batches(cache: Any, r: redis.Redis, redis_url: str) -> None:
    """A second client flushes the script cache in a tight loop while batches over 12 keys run."""
    stop = threading.Event()
    flushes = 0

    def flusher() -> None:
        nonlocal flushes
        with redis.Redis.from_url(redis_url) as client:
            while not stop.is_set():
                client.script_flush()
                flushes += 1

    thread = threading.Thread(target=flusher)
    thread.start()
    try:
        for round_ in range(150):
            batch = [unified(T0 + round_ * MINUTE, 1, symbol=s) for s in SYMBOLS]
            assert cache.add_candles_if_newer(USER, EXCHANGE, batch) == [True] * len(SYMBOLS)
    finally:
        stop.set()
        thread.join()
    assert flushes > 0
    assert noscript_failures(r) > 0, "the test never met NOSCRIPT, so it proved nothing"
    for symbol in SYMBOLS:
        assert r.zcard(candle_key(USER, EXCHANGE, symbol, "1m")) == 150


def test_first_batch_on_a_server_that_never_saw_the_script(cache: Any, r: redis.Redis) -> None:
    r.script_flush()
    before = noscript_failures(r)
    batch = [unified(T0, 1, symbol=s) for s in SYMBOLS]
    assert cache.add_candles_if_newer(USER, EXCHANGE, batch) == [True] * len(SYMBOLS)
    assert noscript_failures(r) - before == len(SYMBOLS), "every call met NOSCRIPT once and was sent again"
    assert cache.add_candles_if_newer(USER, EXCHANGE, batch) == [False] * len(SYMBOLS)

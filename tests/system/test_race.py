"""Concurrent writers in separate OS processes, released together at a barrier."""

from __future__ import annotations

import multiprocessing
import random
from multiprocessing.synchronize import Barrier

import msgspec
import pytest
import redis

from livermore_cache import CandleCache, UnifiedCandle
from tests.support.builders import unified
from tests.support.constants import EXCHANGE, KEY, MINUTE, T0, USER
from tests.support.stored import zscored

WRITERS = 8
TIMESTAMPS = 200
UPDATES_PER_TIMESTAMP = 6
MAX_CANDLES = 150


def feed(seed: int) -> list[tuple[int, int]]:
    """(timestamp slot, sequence) updates, shuffled, with about a quarter delivered twice."""
    rng = random.Random(seed)
    updates = [(slot, seq) for slot in range(TIMESTAMPS) for seq in range(UPDATES_PER_TIMESTAMP)]
    updates += rng.sample(updates, len(updates) // 4)
    rng.shuffle(updates)
    return updates


def writer(url: str, share: list[tuple[int, int]], barrier: Barrier, batched: bool) -> None:
    client = redis.Redis.from_url(url)
    cache = CandleCache(client, max_candles=MAX_CANDLES)
    candles = [unified(T0 + slot * MINUTE, seq, close=float(1 + seq)) for slot, seq in share]
    barrier.wait(timeout=60)
    if batched:
        for start in range(0, len(candles), 16):
            cache.add_candles_if_newer(USER, EXCHANGE, candles[start : start + 16])
    else:
        for candle in candles:
            cache.add_candle_if_newer(USER, EXCHANGE, candle)
    client.close()


@pytest.mark.slow
@pytest.mark.parametrize("seed", [1, 2])
def test_racing_processes_leave_highest_sequence_once_per_timestamp(r: redis.Redis, redis_url: str, seed: int) -> None:
    updates = feed(seed)
    context = multiprocessing.get_context("spawn")
    barrier = context.Barrier(WRITERS)
    processes = [
        context.Process(target=writer, args=(redis_url, updates[i::WRITERS], barrier, i % 2 == 0))
        for i in range(WRITERS)
    ]
    for process in processes:
        process.start()
    for process in processes:
        process.join(120)
        assert process.exitcode == 0

    highest = {slot: max(seq for s, seq in updates if s == slot) for slot in range(TIMESTAMPS)}
    stored = zscored(r, KEY)
    candles = [msgspec.json.decode(member, type=UnifiedCandle) for member, _ in stored]
    stamps = [int(score) for _, score in stored]
    assert len(stamps) == len(set(stamps)), "one member per timestamp"
    assert len(stored) == MAX_CANDLES
    # the newest MAX_CANDLES timestamps were never trimmed, so each holds its highest sequence
    assert stamps == [T0 + slot * MINUTE for slot in range(TIMESTAMPS - MAX_CANDLES, TIMESTAMPS)]
    stale = [(c.timestamp, c.sequence_num) for c in candles if c.sequence_num != highest[(c.timestamp - T0) // MINUTE]]
    assert stale == []
    assert 0 < r.ttl(KEY) <= 86400

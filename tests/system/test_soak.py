"""A connection pool shared by many threads and many asyncio tasks on one client, under sustained load."""

from __future__ import annotations

import asyncio
import os
import random
import threading
import time
from collections import defaultdict

import msgspec
import pytest
import redis
import redis.asyncio

from livermore_cache import AsyncCandleCache, CandleCache, UnifiedCandle, candle_key
from tests.support.builders import unified
from tests.support.constants import EXCHANGE, MINUTE, T0, USER
from tests.support.stored import zmembers

SECONDS = float(os.environ.get("LIVERMORE_SOAK_SECONDS", "60"))
THREADS = 8
TASKS = 32
SYMBOLS = ["BTC-USD", "ETH-USD", "SOL-USD", "ADA-USD"]
SLOTS = 50


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def rss_bytes() -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS")


Sent = dict[tuple[str, int], int]


def candles_for(round_: int, rng: random.Random) -> list[UnifiedCandle]:
    batch = [
        unified(T0 + slot * MINUTE, round_, symbol=s, close=float(round_ + 1)) for s in SYMBOLS for slot in range(SLOTS)
    ]
    rng.shuffle(batch)
    return batch


def note(sent: Sent, candles: list[UnifiedCandle]) -> None:
    for c in candles:
        assert c.sequence_num is not None
        key = (c.symbol, c.timestamp)
        sent[key] = max(sent.get(key, -1), c.sequence_num)


@pytest.mark.slow
def test_threads_and_tasks_under_sustained_load(redis_url: str, r: redis.Redis) -> None:
    client = redis.Redis.from_url(redis_url, max_connections=THREADS + 4)
    cache = CandleCache(client, max_candles=SLOTS)
    deadline = time.monotonic() + SECONDS
    errors: list[BaseException] = []
    sent_by_worker: list[Sent] = []
    calls: defaultdict[str, int] = defaultdict(int)

    def thread_writer(number: int) -> None:
        rng = random.Random(number)
        sent: Sent = {}
        sent_by_worker.append(sent)
        try:
            round_ = 0
            while time.monotonic() < deadline:
                round_ += 1
                batch = candles_for(round_, rng)
                for i in range(0, len(batch), 25):
                    chunk = batch[i : i + 25]
                    if i % 50 == 0:
                        cache.add_candles_if_newer(USER, EXCHANGE, chunk)
                    else:
                        for candle in chunk[:5]:
                            cache.add_candle_if_newer(USER, EXCHANGE, candle)
                        chunk = chunk[:5]
                    note(sent, chunk)
                    calls["thread"] += 1
                cache.get_recent_candles(USER, EXCHANGE, SYMBOLS[number % len(SYMBOLS)], "1m", 10)
        except BaseException as error:  # reported by the main thread
            errors.append(error)

    async def tasks_main() -> None:
        aclient = redis.asyncio.Redis.from_url(redis_url, max_connections=TASKS + 4)
        acache = AsyncCandleCache(aclient, max_candles=SLOTS)

        async def task(number: int) -> None:
            rng = random.Random(1000 + number)
            sent: Sent = {}
            sent_by_worker.append(sent)
            round_ = 0
            while time.monotonic() < deadline:
                round_ += 1
                batch = candles_for(round_, rng)[:40]
                await acache.add_candles_if_newer(USER, EXCHANGE, batch)
                note(sent, batch)
                calls["task"] += 1
                await acache.get_candle_count(USER, EXCHANGE, SYMBOLS[number % len(SYMBOLS)], "1m")

        try:
            await asyncio.gather(*(task(n) for n in range(TASKS)))
        finally:
            await aclient.aclose()

    def loop_thread() -> None:
        try:
            asyncio.run(tasks_main())
        except BaseException as error:
            errors.append(error)

    # warm up, then take the baseline
    cache.add_candle_if_newer(USER, EXCHANGE, unified(T0, 0, symbol=SYMBOLS[0]))
    fds_before, rss_before = open_fds(), rss_bytes()
    workers = [threading.Thread(target=thread_writer, args=(n,)) for n in range(THREADS)]
    workers.append(threading.Thread(target=loop_thread))
    for worker in workers:
        worker.start()
    samples = []
    while any(w.is_alive() for w in workers):
        time.sleep(1)
        samples.append((open_fds(), rss_bytes()))
    for worker in workers:
        worker.join()
    assert errors == []
    assert calls["thread"] > 0
    assert calls["task"] > 0
    client.close()

    fds_after, rss_after = open_fds(), rss_bytes()
    assert fds_after <= fds_before + 2, f"file descriptors grew: {fds_before} -> {fds_after}"
    assert max(f for f, _ in samples) <= fds_before + THREADS + TASKS + 8, "connections stayed within the pools"
    assert rss_after - rss_before < 64 * 2**20, f"memory grew by {(rss_after - rss_before) / 2**20:.1f} MiB"

    expected: Sent = {}
    for sent in sent_by_worker:
        for key, seq in sent.items():
            expected[key] = max(expected.get(key, -1), seq)
    for symbol in SYMBOLS:
        held = {}
        for member in zmembers(r, candle_key(USER, EXCHANGE, symbol, "1m")):
            candle = msgspec.json.decode(member, type=UnifiedCandle)
            assert candle.timestamp not in held
            held[candle.timestamp] = candle.sequence_num
        assert held == {ts: seq for (s, ts), seq in expected.items() if s == symbol}, "nothing lost, nothing stale"

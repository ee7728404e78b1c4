"""Eight OS processes racing on one ticker key, released together at a barrier.

Each process writes every timestamp 1..N once, in its own shuffled order. Through
``set_ticker_if_newer(..., publish=True)`` the newest one is left stored, each
timestamp wins at most once, and a subscriber receives exactly one message per
win, in strictly increasing timestamp order (the write and its PUBLISH are one
atomic script call). Through the plain ``set_ticker`` (SETEX, as the Node
service writes) the last write wins, whatever its timestamp: recorded, not asserted.
"""

from __future__ import annotations

import multiprocessing
import random
from multiprocessing.queues import Queue
from multiprocessing.synchronize import Barrier
from typing import Any

import pytest
import redis

from livermore_cache import Ticker, TickerCache, ticker_channel, ticker_key
from livermore_cache.market import decode_ticker, encode_ticker

WRITERS = 8
STAMPS = 400
BATCH = 10
U, E = 7, 1
SYMBOL = "BTC-USD"
KEY = ticker_key(U, E, SYMBOL)
CHANNEL = ticker_channel(U, E, SYMBOL)


def ticker(timestamp: int) -> Ticker:
    """The update at ``timestamp`` (1..N); its price tells updates apart."""
    return Ticker(
        symbol=SYMBOL,
        price=40000.0 + timestamp / 4,
        change24h=-1.5,
        change_percent24h=-0.1,
        high24h=42100.25,
        low24h=39000.75,
        volume24h=float(timestamp),
        timestamp=timestamp,
    )


def shuffles(seed: int, window: int | None = None) -> list[list[int]]:
    """Per writer, every timestamp 1..N once, each writer in an order of its own.

    ``window=None``: each a full shuffle (few wins: the running maxima). ``window=w``:
    ascending blocks of ``w``, each block shuffled (many wins, contended by every writer).
    """
    out = []
    for writer in range(WRITERS):
        rng = random.Random(seed * 1000 + writer)
        stamps = list(range(1, STAMPS + 1))
        if window is None:
            rng.shuffle(stamps)
        else:
            blocks = [stamps[i : i + window] for i in range(0, STAMPS, window)]
            for block in blocks:
                rng.shuffle(block)
            stamps = [t for block in blocks for t in block]
        out.append(stamps)
    assert len({tuple(s) for s in out}) == WRITERS
    return out


def newer_wins_writer(url: str, index: int, stamps: list[int], barrier: Barrier, wins: Queue[Any]) -> None:
    client = redis.Redis.from_url(url)
    cache = TickerCache(client)
    tickers = [ticker(t) for t in stamps]
    barrier.wait(timeout=60)
    won: list[int] = []
    if index % 2 == 0:
        for t in tickers:
            if cache.set_ticker_if_newer(U, E, t, publish=True):
                won.append(t.timestamp)
    else:  # batches of several values for the one key, applied in input order
        for start in range(0, len(tickers), BATCH):
            chunk = tickers[start : start + BATCH]
            results = cache.set_tickers_if_newer(U, E, chunk, publish=True)
            won.extend(t.timestamp for t, result in zip(chunk, results, strict=True) if result)
    wins.put((index, won))
    client.close()


def plain_writer(url: str, stamps: list[int], barrier: Barrier) -> None:
    client = redis.Redis.from_url(url)
    cache = TickerCache(client)
    tickers = [ticker(t) for t in stamps]
    barrier.wait(timeout=60)
    for t in tickers:
        cache.set_ticker(U, E, t)
    client.close()


def published(pubsub: Any) -> list[int]:
    """The timestamps of the messages received, in order, until none arrives for a second."""
    out: list[int] = []
    while (message := pubsub.get_message(timeout=1.0)) is not None:
        assert message["type"] == "message"
        assert message["channel"] == CHANNEL.encode()
        update = decode_ticker(message["data"])
        assert message["data"] == encode_ticker(ticker(update.timestamp)), "exactly the JSON that was stored"
        out.append(update.timestamp)
    return out


@pytest.mark.slow
@pytest.mark.parametrize(("seed", "window"), [(1, None), (2, None), (3, 4)], ids=["shuffled", "shuffled-2", "blocks"])
def test_racing_newer_wins_writers_leave_the_newest_and_publish_once_per_win(
    r: redis.Redis, redis_url: str, seed: int, window: int | None, record_property: Any
) -> None:
    orders = shuffles(seed, window)
    pubsub = r.pubsub()  # type: ignore[no-untyped-call, unused-ignore]
    pubsub.subscribe(CHANNEL)
    confirmed = pubsub.get_message(timeout=5)
    assert confirmed is not None
    assert confirmed["type"] == "subscribe"

    context = multiprocessing.get_context("spawn")
    barrier = context.Barrier(WRITERS)
    wins: Queue[Any] = context.Queue()
    processes = [
        context.Process(target=newer_wins_writer, args=(redis_url, i, orders[i], barrier, wins)) for i in range(WRITERS)
    ]
    for process in processes:
        process.start()
    won = dict(wins.get(timeout=120) for _ in range(WRITERS))
    for process in processes:
        process.join(120)
        assert process.exitcode == 0
    received = published(pubsub)
    pubsub.close()

    assert r.get(KEY) == encode_ticker(ticker(STAMPS)), "the highest timestamp is what is stored"
    assert 0 < int(r.pttl(KEY)) <= 60_000  # set by the last write that won (a skip leaves it)
    all_wins = [t for index in range(WRITERS) for t in won[index]]
    assert len(received) == len(all_wins), "one message per win"
    assert received == sorted(set(received)), "messages in strictly increasing timestamp order"
    assert received == sorted(all_wins), "the messages are exactly the wins: each timestamp won at most once"
    assert received[-1] == STAMPS
    for index in range(WRITERS):
        assert won[index] == sorted(set(won[index])), "a writer's own wins only ever go up"
    winners = sum(1 for index in range(WRITERS) if won[index])
    record_property("wins", len(all_wins))
    record_property("writers_with_a_win", winners)
    print(f"newer-wins race: {len(all_wins)} wins (= messages) over {winners} of {WRITERS} writers")


@pytest.mark.slow
def test_racing_plain_setex_writers_leave_the_last_write(r: redis.Redis, redis_url: str, record_property: Any) -> None:
    orders = shuffles(3)
    context = multiprocessing.get_context("spawn")
    barrier = context.Barrier(WRITERS)
    processes = [context.Process(target=plain_writer, args=(redis_url, orders[i], barrier)) for i in range(WRITERS)]
    for process in processes:
        process.start()
    for process in processes:
        process.join(120)
        assert process.exitcode == 0
    stored = r.get(KEY)
    assert stored is not None
    left = decode_ticker(stored).timestamp
    # the last SETEX of all is some writer's last one: whatever its timestamp
    assert left in {order[-1] for order in orders}
    assert stored == encode_ticker(ticker(left))
    assert 0 < int(r.pttl(KEY)) <= 60_000  # set by the last SETEX
    record_property("plain_setex_left_timestamp", left)
    record_property("plain_setex_left_the_newest", left == STAMPS)
    print(f"plain SETEX race left timestamp {left} of {STAMPS} ({'the newest' if left == STAMPS else 'an older one'})")

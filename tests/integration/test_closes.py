"""Candle-close events: published inside the write, only for writes that win; typed subscribers."""

from __future__ import annotations

import asyncio
import multiprocessing
import random
from collections import Counter
from multiprocessing.synchronize import Barrier
from typing import Any

import msgspec
import pytest
import redis
import redis.asyncio

from livermore_cache import (
    AsyncCandleCache,
    CandleCache,
    CandleClose,
    UnifiedCandle,
    candle_close_channel,
    candle_key,
    timeframe_ms,
)
from tests.support.builders import unified
from tests.support.constants import EXCHANGE, MINUTE, SERIES, SYMBOL, T0, TIMEFRAME, USER
from tests.support.stored import drain, zmembers, zscored


def test_publish_only_what_is_written(cache: Any, r: redis.Redis) -> None:
    with CandleCache(r).subscribe_closes(USER, EXCHANGE, SYMBOL, TIMEFRAME) as subscription:
        batch = [unified(T0, 5, close=1.0), unified(T0, 4, close=2.0), unified(T0 + MINUTE, 1, close=3.0)]
        assert cache.add_candles_if_newer(USER, EXCHANGE, batch, publish_close=True) == [True, False, True]
        assert cache.add_candle_if_newer(USER, EXCHANGE, unified(T0, 5, close=9.0), publish_close=True) is False
        assert cache.add_candle_if_newer(USER, EXCHANGE, unified(T0, 6, close=4.0), publish_close=True) is True
        assert cache.add_candle_if_newer(USER, EXCHANGE, unified(T0, 7, close=5.0)) is True  # no publish asked
        events = drain(subscription)
    assert [(e.candle.timestamp, e.candle.close) for e in events] == [(T0, 1.0), (T0 + MINUTE, 3.0), (T0, 4.0)]
    assert all(e.series == SERIES and isinstance(e.candle, UnifiedCandle) and not e.backfilled for e in events)


def test_candle_replaced_later_in_the_same_call_is_not_announced(cache: Any, r: redis.Redis) -> None:
    with CandleCache(r).subscribe_closes(USER, EXCHANGE, SYMBOL, TIMEFRAME) as subscription:
        batch = [unified(T0, 1, close=1.0), unified(T0, 2, close=2.0)]
        assert cache.add_candles_if_newer(USER, EXCHANGE, batch, publish_close=True) == [False, True]
        assert [e.candle.close for e in drain(subscription)] == [2.0]


def test_pattern_subscription_gets_its_series_and_nothing_else(cache: Any, r: redis.Redis) -> None:
    symbols = ["BTC-USD", "ETH-USD", "SOL-USD"]
    timeframes = ["1m", "5m", "1h"]
    with (
        CandleCache(r).subscribe_closes(USER, EXCHANGE) as everything,
        CandleCache(r).subscribe_closes(USER, EXCHANGE, timeframe="5m") as five_minute,
    ):
        batch = [
            unified(T0 + i * timeframe_ms(t), 1, symbol=s, timeframe=t)
            for i in range(3)
            for s in symbols
            for t in timeframes
        ]
        assert all(cache.add_candles_if_newer(USER, EXCHANGE, batch, publish_close=True))
        # other users and exchanges: never delivered
        assert all(cache.add_candles_if_newer(USER + 1, EXCHANGE, batch[:5], publish_close=True))
        assert all(cache.add_candles_if_newer(USER, EXCHANGE + 1, batch[:5], publish_close=True))
        got_all = drain(everything)
        got_five = drain(five_minute)
    expected = Counter((USER, EXCHANGE, c.symbol, c.timeframe, c.timestamp) for c in batch)
    assert Counter((*e.series, e.candle.timestamp) for e in got_all) == expected
    assert Counter((*e.series, e.candle.timestamp) for e in got_five) == Counter(
        k for k in expected.elements() if k[3] == "5m"
    )


def test_malformed_messages_are_skipped_and_counted(r: redis.Redis) -> None:
    channel = candle_close_channel(*SERIES)
    with CandleCache(r).subscribe_closes(USER, EXCHANGE) as subscription:
        r.publish(channel, b"not json")
        r.publish(channel, b'{"timestamp": -5}')
        r.publish(
            candle_close_channel(USER, EXCHANGE, "ETH-USD", "1m"), msgspec.json.encode(unified(T0))
        )  # wrong series
        r.publish(channel, msgspec.json.encode(unified(T0, 3)))
        events = drain(subscription)
        assert [e.candle.sequence_num for e in events] == [3]  # type: ignore[attr-defined]
        assert subscription.malformed == 3


def test_closing_unsubscribes_and_releases_the_connection(r: redis.Redis) -> None:
    channel = candle_close_channel(*SERIES)
    subscription = CandleCache(r).subscribe_closes(*SERIES)
    assert r.pubsub_numsub(channel) == [(channel.encode(), 1)]
    pattern = CandleCache(r).subscribe_closes(USER, EXCHANGE)
    assert r.pubsub_numpat() == 1
    subscription.close()
    pattern.close()
    assert r.pubsub_numsub(channel) == [(channel.encode(), 0)]
    assert r.pubsub_numpat() == 0
    clients = r.client_list()
    assert not [c for c in clients if int(c.get("sub", 0)) or int(c.get("psub", 0))]


def _racer(url: str, candles: list[UnifiedCandle], barrier: Barrier, queue: Any) -> None:
    client = redis.Redis.from_url(url)
    cache = CandleCache(client, max_candles=1000)
    barrier.wait(timeout=60)
    won = []
    for i in range(0, len(candles), 7):
        chunk = candles[i : i + 7]
        for candle, written in zip(
            chunk, cache.add_candles_if_newer(USER, EXCHANGE, chunk, publish_close=True), strict=True
        ):
            if written:
                won.append(msgspec.json.encode(candle))
    queue.put(won)
    client.close()


@pytest.mark.slow
def test_racing_writers_announce_exactly_their_wins(r: redis.Redis, redis_url: str) -> None:
    rng = random.Random(5)
    updates = [unified(T0 + slot * MINUTE, seq, close=float(seq)) for slot in range(60) for seq in range(1, 6)]
    updates += rng.sample(updates, 80)
    rng.shuffle(updates)
    context = multiprocessing.get_context("spawn")
    barrier = context.Barrier(8)
    queue = context.SimpleQueue()
    with CandleCache(r).subscribe_closes(*SERIES) as subscription:
        processes = [context.Process(target=_racer, args=(redis_url, updates[i::8], barrier, queue)) for i in range(8)]
        for process in processes:
            process.start()
        wins = [member for _ in processes for member in queue.get()]
        for process in processes:
            process.join(60)
            assert process.exitcode == 0
        events = drain(subscription, idle=1.0)
    assert Counter(msgspec.json.encode(e.candle) for e in events) == Counter(wins)
    assert len(events) == len(wins)
    last_event: dict[int, UnifiedCandle] = {}
    for event in events:
        last_event[event.candle.timestamp] = event.candle  # type: ignore[assignment]
    stored = {int(score): msgspec.json.decode(m, type=UnifiedCandle) for m, score in zscored(r, SERIES.key)}
    assert last_event == stored
    assert all(c.sequence_num == 5 for c in stored.values())


@pytest.mark.parametrize("kills", [1, 3])
def test_subscriber_killed_mid_stream_resumes_and_backfills(r: redis.Redis, kills: int) -> None:
    """CLIENT KILL drops the subscriber; what was announced meanwhile is lost live and read back from the cache."""
    writer = CandleCache(r)
    received: dict[int, CandleClose] = {}
    stamp = iter(range(10_000))

    def write(count: int) -> None:
        for _ in range(count):
            assert writer.add_candle_if_newer(USER, EXCHANGE, unified(T0 + next(stamp) * MINUTE, 1), publish_close=True)

    with CandleCache(r).subscribe_closes(*SERIES) as subscription:
        write(40)
        received.update((e.candle.timestamp, e) for e in drain(subscription))
        for _ in range(kills):
            assert r.client_kill_filter(_type="pubsub") == 1
            write(25)  # announced while the subscriber is disconnected: lost live
            events = drain(subscription)
            assert [e.backfilled for e in events] == [True] * 25
            received.update((e.candle.timestamp, e) for e in events)
            write(10)
            events = drain(subscription)
            assert [e.backfilled for e in events] == [False] * 10, "live again after the backfill"
            received.update((e.candle.timestamp, e) for e in events)
        assert subscription.reconnects >= kills
    stored = {c.timestamp: c for c in (msgspec.json.decode(m, type=UnifiedCandle) for m in zmembers(r, SERIES.key))}
    assert len(stored) == 40 + 35 * kills
    assert {t: e.candle for t, e in received.items()} == stored


def test_async_subscriber(redis_url: str, loop: asyncio.AbstractEventLoop) -> None:
    async def scenario() -> tuple[list[CandleClose], int]:
        client = redis.asyncio.Redis.from_url(redis_url)
        cache = AsyncCandleCache(client)
        try:
            async with cache.subscribe_closes(USER, EXCHANGE, SYMBOL) as subscription:
                written = await cache.add_candles_if_newer(
                    USER, EXCHANGE, [unified(T0, 2), unified(T0, 1), unified(T0 + MINUTE, 1)], publish_close=True
                )
                await client.publish(candle_close_channel(*SERIES), b"{")
                assert written == [True, False, True]
                events = []
                while (event := await subscription.get(timeout=0.5)) is not None:
                    events.append(event)
                return events, subscription.malformed
        finally:
            await client.aclose()

    events, malformed = loop.run_until_complete(scenario())
    assert [(e.series, e.candle.timestamp) for e in events] == [(SERIES, T0), (SERIES, T0 + MINUTE)]
    assert malformed == 1


def test_async_iteration_and_close(redis_url: str, r: redis.Redis, loop: asyncio.AbstractEventLoop) -> None:
    async def scenario() -> list[int]:
        client = redis.asyncio.Redis.from_url(redis_url)
        cache = AsyncCandleCache(client)
        subscription = await cache.subscribe_closes(*SERIES).start()
        await cache.add_candles_if_newer(
            USER, EXCHANGE, [unified(T0 + i * MINUTE, 1) for i in range(3)], publish_close=True
        )
        seen = []
        async for event in subscription:
            seen.append(event.candle.timestamp)
            if len(seen) == 3:
                break
        await subscription.aclose()
        await client.aclose()
        return seen

    assert loop.run_until_complete(scenario()) == [T0 + i * MINUTE for i in range(3)]
    assert r.pubsub_numsub(SERIES.close_channel) == [(SERIES.close_channel.encode(), 0)]
    assert candle_key(*SERIES) == SERIES.key


def test_async_subscriber_killed_mid_stream_resumes_and_backfills(
    r: redis.Redis, redis_url: str, loop: asyncio.AbstractEventLoop
) -> None:
    async def scenario() -> tuple[dict[int, CandleClose], int]:
        client = redis.asyncio.Redis.from_url(redis_url)
        cache = AsyncCandleCache(client)
        received: dict[int, CandleClose] = {}

        async def write(first: int, count: int) -> None:
            for i in range(first, first + count):
                assert await cache.add_candle_if_newer(USER, EXCHANGE, unified(T0 + i * MINUTE, 1), publish_close=True)

        async def drain_async(subscription: Any) -> list[CandleClose]:
            events = []
            while (event := await subscription.get(timeout=0.5)) is not None:
                events.append(event)
            return events

        try:
            async with cache.subscribe_closes(*SERIES) as subscription:
                await write(0, 30)
                received.update((e.candle.timestamp, e) for e in await drain_async(subscription))
                assert r.client_kill_filter(_type="pubsub") == 1
                await write(30, 20)
                events = await drain_async(subscription)
                assert [e.backfilled for e in events] == [True] * 20
                received.update((e.candle.timestamp, e) for e in events)
                await write(50, 10)
                events = await drain_async(subscription)
                assert [e.backfilled for e in events] == [False] * 10
                received.update((e.candle.timestamp, e) for e in events)
                return received, subscription.reconnects
        finally:
            await client.aclose()

    received, reconnects = loop.run_until_complete(scenario())
    assert reconnects >= 1
    stored = {c.timestamp: c for c in (msgspec.json.decode(m, type=UnifiedCandle) for m in zmembers(r, SERIES.key))}
    assert len(stored) == 60
    assert {t: e.candle for t, e in received.items()} == stored

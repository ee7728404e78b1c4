"""A subscriber's backfill memory after a flood: bounded, cleared once live delivery passes it.

A subscriber remembers what it backfilled after a reconnect, so that the live copy
of a candle published just before its read is not delivered twice. That memory
must not grow without bound, and it must not swallow a later re-announcement.
"""

from __future__ import annotations

import asyncio
from typing import Any

import redis
import redis.asyncio

from livermore_cache import AsyncCandleCache, CandleCache, CandleClose
from livermore_cache.events import BACKFILL_MEMORY
from tests.support.builders import unified
from tests.support.constants import EXCHANGE, MINUTE, SERIES, T0, USER

FLOOD = BACKFILL_MEMORY + 2_000  # more than the memory holds


def next_event(subscription: Any) -> CandleClose:
    event = subscription.get(timeout=5)
    assert event is not None, "no event within 5 s"
    return event  # type: ignore[no-any-return]


def flood(count: int, first: int) -> list[Any]:
    return [unified(T0 + (first + i) * MINUTE, 1) for i in range(count)]


def test_sync_backfill_memory_is_bounded_and_cleared(r: redis.Redis) -> None:
    writer = CandleCache(r, max_candles=FLOOD + 100)
    with CandleCache(r).subscribe_closes(*SERIES) as subscription:
        assert writer.add_candle_if_newer(USER, EXCHANGE, unified(T0, 1), publish_close=True)
        assert next_event(subscription).candle.timestamp == T0
        assert r.client_kill_filter(_type="pubsub") == 1
        batch = flood(FLOOD, 1)
        assert all(writer.add_candles_if_newer(USER, EXCHANGE, batch, publish_close=True))  # lost live
        backfilled = [next_event(subscription) for _ in range(FLOOD)]
        assert [e.candle.timestamp for e in backfilled] == [c.timestamp for c in batch]
        assert all(e.backfilled for e in backfilled)
        assert subscription.state.remembered == BACKFILL_MEMORY  # bounded: the oldest were forgotten

        newer = unified(T0 + (FLOOD + 1) * MINUTE, 1)
        assert writer.add_candle_if_newer(USER, EXCHANGE, newer, publish_close=True)
        live = next_event(subscription)
        assert (live.candle, live.backfilled) == (newer, False)
        assert subscription.state.remembered == 0  # live delivery passed the backfilled range

        assert writer.publish_close(USER, EXCHANGE, batch[-1]) == 1  # a re-announcement of a backfilled candle
        again = next_event(subscription)
        assert (again.candle, again.backfilled) == (batch[-1], False)
        assert subscription.get(timeout=0.2) is None


def test_async_backfill_memory_is_bounded_and_cleared(r: redis.Redis, redis_url: str) -> None:
    async def scenario() -> None:
        client = redis.asyncio.Redis.from_url(redis_url)
        writer = AsyncCandleCache(client, max_candles=FLOOD + 100)
        async with AsyncCandleCache(client).subscribe_closes(*SERIES) as subscription:
            assert await writer.add_candle_if_newer(USER, EXCHANGE, unified(T0, 1), publish_close=True)
            first = await subscription.get(timeout=5)
            assert first is not None
            assert first.candle.timestamp == T0
            assert r.client_kill_filter(_type="pubsub") == 1
            batch = flood(FLOOD, 1)
            assert all(await writer.add_candles_if_newer(USER, EXCHANGE, batch, publish_close=True))
            stamps = []
            for _ in range(FLOOD):
                event = await subscription.get(timeout=5)
                assert event is not None
                assert event.backfilled
                stamps.append(event.candle.timestamp)
            assert stamps == [c.timestamp for c in batch]
            assert subscription.state.remembered == BACKFILL_MEMORY

            newer = unified(T0 + (FLOOD + 1) * MINUTE, 1)
            assert await writer.add_candle_if_newer(USER, EXCHANGE, newer, publish_close=True)
            live = await subscription.get(timeout=5)
            assert live is not None
            assert (live.candle, live.backfilled) == (newer, False)
            assert subscription.state.remembered == 0

            assert await writer.publish_close(USER, EXCHANGE, batch[-1]) == 1
            again = await subscription.get(timeout=5)
            assert again is not None
            assert (again.candle, again.backfilled) == (batch[-1], False)
        await client.aclose()

    asyncio.run(scenario())

"""Reads and publishing, through both facades."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
import redis

from livermore_cache import Candle, UnifiedCandle, ValidationError, candle_channel, candle_close_channel, candle_key

from .helpers import EXCHANGE, MINUTE, SYMBOL, T0, TIMEFRAME, USER, unified

SERIES = (USER, EXCHANGE, SYMBOL, TIMEFRAME)


@pytest.fixture
def filled(cache: Any) -> Any:
    shuffled = [5, 1, 9, 0, 3, 7, 2, 8, 6, 4]
    assert all(
        cache.add_candles_if_newer(USER, EXCHANGE, [unified(T0 + i * MINUTE, i, close=float(i + 1)) for i in shuffled])
    )
    return cache


def test_recent_candles_ascending(filled: Any) -> None:
    recent = filled.get_recent_candles(*SERIES, 3)
    assert [c.timestamp for c in recent] == [T0 + i * MINUTE for i in (7, 8, 9)]
    assert all(type(c) is Candle for c in recent)
    assert len(filled.get_recent_candles(*SERIES)) == 10


def test_versioned_model(filled: Any) -> None:
    latest = filled.get_latest_candle(*SERIES, model=UnifiedCandle)
    assert isinstance(latest, UnifiedCandle)
    assert latest.sequence_num == 9
    assert latest.exchange == "coinbase"
    assert filled.get_recent_candles(*SERIES, 2, model=UnifiedCandle)[0].sequence_num == 8


def test_range_is_inclusive(filled: Any) -> None:
    found = filled.get_candles_in_range(*SERIES, T0 + 2 * MINUTE, T0 + 4 * MINUTE)
    assert [c.close for c in found] == [3.0, 4.0, 5.0]
    assert filled.get_candles_in_range(*SERIES, T0 + 100 * MINUTE, T0 + 200 * MINUTE) == []


def test_latest_count_clear(filled: Any) -> None:
    latest = filled.get_latest_candle(*SERIES)
    assert latest is not None
    assert latest.timestamp == T0 + 9 * MINUTE
    assert filled.get_candle_count(*SERIES) == 10
    filled.clear_candles(*SERIES)
    assert filled.get_candle_count(*SERIES) == 0
    assert filled.get_latest_candle(*SERIES) is None
    assert filled.get_recent_candles(*SERIES) == []


def test_corrupt_member_is_reported_with_its_key(cache: Any, r: redis.Redis) -> None:
    r.zadd(candle_key(*SERIES), {b"not json": T0})
    with pytest.raises(ValidationError, match=r"member of candles:7:1:BTC-USD:1m"):
        cache.get_recent_candles(*SERIES)


@pytest.mark.parametrize(
    ("method", "channel_of"), [("publish_update", candle_channel), ("publish_close", candle_close_channel)]
)
def test_publish(cache: Any, r: redis.Redis, method: str, channel_of: Any) -> None:
    candle = unified(T0, 3)
    assert getattr(cache, method)(USER, EXCHANGE, candle) == 0
    pubsub = r.pubsub()  # type: ignore[no-untyped-call, unused-ignore]
    pubsub.subscribe(channel_of(*SERIES))
    assert pubsub.get_message(timeout=5)["type"] == "subscribe"
    try:
        assert getattr(cache, method)(USER, EXCHANGE, candle) == 1
        deadline = time.monotonic() + 5
        message = None
        while message is None and time.monotonic() < deadline:
            message = pubsub.get_message(timeout=1)
        assert message is not None
        assert json.loads(message["data"])["sequenceNum"] == 3
    finally:
        pubsub.close()

"""Members the Node service's schema accepts, in every JSON number form it may write, read and versioned right.

The Node schema takes any non-negative integer JavaScript number as ``sequenceNum``
and writes it as JavaScript does (``1e+21``); ``1.0e3`` is how another JSON writer
may spell 1000. The script compares sequences as those numbers; reads give them
back as ints; this library still refuses to *write* a sequence above 2**53 - 1.
"""

from __future__ import annotations

from typing import Any

import pytest
import redis

from livermore_cache import UnifiedCandle, ValidationError
from livermore_cache.events import SubscriptionState, event_candle
from tests.support.builders import unified
from tests.support.constants import EXCHANGE, KEY, SYMBOL, T0, TIMEFRAME, USER
from tests.support.stored import zmembers


def node_member(sequence: str, *, close: str = "42000.5") -> str:
    """A member as the Node service's addCandleIfNewer stores it, with ``sequence`` spelled exactly as given."""
    return (
        f'{{"timestamp":{T0},"open":42000,"high":42001.25,"low":41999,"close":{close},"volume":1,'
        f'"symbol":"{SYMBOL}","timeframe":"{TIMEFRAME}","exchange":"coinbase","sequenceNum":{sequence}}}'
    )


@pytest.mark.parametrize(
    ("spelled", "value"),
    [
        ("1e+21", 10**21),
        ("1.0e3", 1000),
        ("1000.0", 1000),
        ("9007199254740992", 2**53),
        ("9007199254740993", 2**53),  # JavaScript reads it as the double 2**53
        ("123", 123),
    ],
)
def test_a_node_sequence_is_read_as_the_number_javascript_reads(
    cache: Any, r: redis.Redis, spelled: str, value: int
) -> None:
    r.zadd(KEY, {node_member(spelled): T0})
    latest = cache.get_latest_candle(USER, EXCHANGE, SYMBOL, TIMEFRAME, model=UnifiedCandle)
    assert type(latest) is UnifiedCandle
    assert latest.sequence_num == value
    assert cache.get_recent_candles(USER, EXCHANGE, SYMBOL, TIMEFRAME, model=UnifiedCandle) == [latest]


@pytest.mark.parametrize(
    ("spelled", "lower", "higher"),
    [("1e+21", 2**53 - 1, None), ("1.0e3", 999, 1001), ("9007199254740992", 2**53 - 1, None), ("1e1", 10, 11)],
)
def test_a_node_sequence_is_versioned_against_as_that_number(
    cache: Any, r: redis.Redis, spelled: str, lower: int, higher: int | None
) -> None:
    stored = node_member(spelled)
    r.zadd(KEY, {stored: T0})
    assert cache.add_candle_if_newer(USER, EXCHANGE, unified(T0, lower, close=1.5)) is False
    assert zmembers(r, KEY) == [stored.encode()]
    if higher is not None:
        assert cache.add_candle_if_newer(USER, EXCHANGE, unified(T0, higher, close=1.5)) is True
        (member,) = zmembers(r, KEY)
        assert f'"sequenceNum":{higher}'.encode() in member


def test_a_wide_sequence_read_back_cannot_be_written_again(cache: Any, r: redis.Redis) -> None:
    r.zadd(KEY, {node_member("1e+21"): T0})
    latest = cache.get_latest_candle(USER, EXCHANGE, SYMBOL, TIMEFRAME, model=UnifiedCandle)
    r.delete(KEY)
    with pytest.raises(ValidationError, match=r"candles\[0\]\.sequence_num"):
        cache.add_candles_if_newer(USER, EXCHANGE, [latest])
    assert r.exists(KEY) == 0


@pytest.mark.parametrize("spelled", ["-1", "1.5", '"7"'])
def test_what_the_node_schema_refuses_is_refused_by_reads_and_events_alike(
    cache: Any, r: redis.Redis, spelled: str
) -> None:
    """One decoder: a member a read refuses is a malformed event too (and the reverse)."""
    member = node_member(spelled)
    r.zadd(KEY, {member: T0})
    with pytest.raises(ValidationError, match="member of"):
        cache.get_latest_candle(USER, EXCHANGE, SYMBOL, TIMEFRAME, model=UnifiedCandle)
    assert event_candle(member) is None
    state = SubscriptionState("channel:candle:close:*", True)
    channel = f"channel:candle:close:{USER}:{EXCHANGE}:{SYMBOL}:{TIMEFRAME}"
    assert state.on_message({"type": "pmessage", "channel": channel.encode(), "data": member.encode()}) is None
    assert state.malformed == 1
    assert state.on_backfill(_series(), [member.encode()]) == []
    assert state.malformed == 2


def _series() -> Any:
    from livermore_cache import Series

    return Series(USER, EXCHANGE, SYMBOL, TIMEFRAME)


def test_a_plain_candle_member_reads_and_arrives_as_a_candle(cache: Any, r: redis.Redis) -> None:
    member = node_member("1").replace(',"exchange":"coinbase","sequenceNum":1', "")
    r.zadd(KEY, {member: T0})
    read = cache.get_latest_candle(USER, EXCHANGE, SYMBOL, TIMEFRAME, model=UnifiedCandle)
    event = event_candle(member)
    assert read == event
    assert type(read).__name__ == "Candle"

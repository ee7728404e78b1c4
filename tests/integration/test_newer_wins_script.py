"""newer_wins.lua against a real server, rule by rule: the script alone, called through ``register_script``.

ARGV: ttl ("0" = none), channel ("" = none), retry ("0" or "1"), then (timestamp, json) pairs.
Reply: per value, 1 written, 0 skipped.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
import redis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from redis.client import PubSub
from redis.commands.core import Script

from livermore_cache.scripts import script_source
from tests.support.constants import T0
from tests.support.node import node_snapshots
from tests.support.stored import raw_messages

KEY = "ticker:1:1:BTC-USD"
CHANNEL = "channel:ticker:1:1:BTC-USD"
TTL = 60
SNAPSHOT = node_snapshots()


def value(timestamp: int, tag: str = "a") -> bytes:
    """A small JSON value, timestamp last (as the ticker and orderbook schemas order it)."""
    return json.dumps({"symbol": "BTC-USD", "tag": tag, "timestamp": timestamp}, separators=(",", ":")).encode()


@pytest.fixture
def script(r: redis.Redis) -> Script:
    return r.register_script(script_source("newer_wins"))


def call(
    script: Script,
    timestamp: int | str,
    data: bytes | str,
    *,
    ttl: int | str = TTL,
    channel: str = "",
    retry: bool = False,
    key: str = KEY,
) -> Any:
    """One value through the script; its reply for that value (the script replies one integer per value)."""
    (reply,) = script(keys=[key], args=[str(ttl), channel, "1" if retry else "0", str(timestamp), data])
    return reply


# ---- the rules ------------------------------------------------------------------------------------


def test_empty_key_is_written_with_its_ttl(r: redis.Redis, script: Script) -> None:
    assert call(script, T0, value(T0)) == 1
    assert r.get(KEY) == value(T0)
    assert 0 < r.ttl(KEY) <= TTL


@pytest.mark.parametrize(
    ("stored_at", "written"),
    [(T0 - 1, True), (T0 - 60_000, True), (T0, False), (T0 + 1, False), (T0 + 10**9, False)],
    ids=["older-by-1ms", "older", "equal", "newer-by-1ms", "much-newer"],
)
def test_only_a_newer_value_replaces(r: redis.Redis, script: Script, stored_at: int, written: bool) -> None:
    r.set(KEY, value(stored_at, "old"), ex=1000)
    assert call(script, T0, value(T0, "new")) == int(written)
    assert r.get(KEY) == (value(T0, "new") if written else value(stored_at, "old"))
    ttl = r.ttl(KEY)
    assert (0 < ttl <= TTL) if written else (TTL < ttl <= 1000)


def test_equal_timestamp_with_other_bytes_is_skipped(r: redis.Redis, script: Script) -> None:
    r.set(KEY, value(T0, "first"))
    assert call(script, T0, value(T0, "second")) == 0
    assert r.get(KEY) == value(T0, "first")


def test_skip_leaves_no_ttl_as_none(r: redis.Redis, script: Script) -> None:
    """A skip changes nothing: a key without TTL keeps none."""
    r.set(KEY, value(T0 + 5))
    assert call(script, T0, value(T0)) == 0
    assert r.ttl(KEY) == -1


def test_write_replaces_a_longer_ttl_and_sets_one_where_there_was_none(r: redis.Redis, script: Script) -> None:
    r.set(KEY, value(T0 - 1), ex=100_000)
    assert call(script, T0, value(T0), ttl=30) == 1
    assert 0 < r.ttl(KEY) <= 30
    r.persist(KEY)
    assert call(script, T0 + 1, value(T0 + 1), ttl=90_000) == 1
    assert 30 < r.ttl(KEY) <= 90_000


def test_timestamps_compare_as_numbers_not_text(r: redis.Redis, script: Script) -> None:
    """9 < 10 although "9" > "10"; a stored timestamp in another spelling is the same number."""
    r.set(KEY, value(9))
    assert call(script, 10, value(10)) == 1
    for spelling in ["1.7040672e12", "1704067200000.0", "1.704067200000e+12", "17040672000000e-1"]:
        stored = f'{{"symbol":"BTC-USD","timestamp":{spelling}}}'
        r.set(KEY, stored)
        assert call(script, T0, value(T0)) == 0, spelling
        assert call(script, T0 + 1, value(T0 + 1)) == 1, spelling


def test_timestamp_first_or_last_and_whitespace(r: redis.Redis, script: Script) -> None:
    for stored in [
        f'{{"timestamp":{T0},"type":"macd-v","value":{{"macdV":1}}}}',
        f'{{"symbol":"X","timestamp":{T0}}}',
        f' {{ "symbol" : "X" ,\n "timestamp" : {T0} }} ',
    ]:
        r.set(KEY, stored)
        assert call(script, T0, value(T0)) == 0, stored
        assert r.get(KEY) == stored.encode()


def test_a_nested_timestamp_does_not_count(r: redis.Redis, script: Script) -> None:
    """Only the top-level "timestamp" is the version: not one inside value, params or a level."""
    stored = '{"value":{"timestamp":99999999999999},"params":{"timestamp":99999999999999},"timestamp":5}'
    r.set(KEY, stored)
    assert call(script, 6, value(6)) == 1
    r.set(KEY, '{"value":{"timestamp":99999999999999}}')  # no top-level timestamp: foreign
    assert call(script, 6, value(6)) == 1
    r.set(KEY, '{"symbol":"x\\"timestamp\\":99999999999999","timestamp":5}')  # inside a string
    assert call(script, 6, value(6)) == 1


FOREIGN = [
    "not json",
    "",
    "null",
    "true",
    "12",
    '"text"',
    "[1,2,3]",
    f'[{{"timestamp":{T0 + 10}}}]',
    "{}",
    '{"ts":99999999999999}',
    '{"timestamp":"99999999999999"}',
    '{"timestamp":null}',
    '{"timestamp":true}',
    '{"timestamp":[99999999999999]}',
    '{"timestamp":{"ms":99999999999999}}',
    '{"timestamp":99999999999999}garbage',
    '{"timestamp":99999999999999',
    '{"timestamp":NaN}',
    '{"timestamp":Infinity}',
    '{"timestamp":1e999}',
    "\xff\xfe",
]


@pytest.mark.parametrize("stored", FOREIGN)
def test_a_foreign_value_is_replaced(r: redis.Redis, script: Script, sub: PubSub, stored: str) -> None:
    r.set(KEY, stored.encode("latin-1"))
    assert call(script, T0, value(T0), channel=CHANNEL) == 1
    assert r.get(KEY) == value(T0)
    assert 0 < r.ttl(KEY) <= TTL
    assert raw_messages(sub) == [(CHANNEL.encode(), value(T0))]


@pytest.mark.parametrize("kind", ["hash", "list", "set", "zset", "stream"])
def test_a_key_of_another_type_is_an_error_not_overwritten(r: redis.Redis, script: Script, kind: str) -> None:
    if kind == "hash":
        r.hset(KEY, "timestamp", 1)
    elif kind == "list":
        r.rpush(KEY, "x")
    elif kind == "set":
        r.sadd(KEY, "x")
    elif kind == "zset":
        r.zadd(KEY, {"x": 1})
    else:
        r.xadd(KEY, {"x": "1"})
    with pytest.raises(redis.ResponseError, match="WRONGTYPE"):
        call(script, T0, value(T0), channel=CHANNEL)
    assert r.type(KEY) == kind.encode()
    assert r.ttl(KEY) == -1


# ---- publish ----------------------------------------------------------------------------------------


def test_publish_only_when_written(r: redis.Redis, script: Script, sub: PubSub) -> None:
    assert call(script, T0, value(T0, "1"), channel=CHANNEL) == 1
    assert raw_messages(sub) == [(CHANNEL.encode(), value(T0, "1"))]
    assert call(script, T0, value(T0, "2"), channel=CHANNEL) == 0  # equal: skipped
    assert call(script, T0 - 1, value(T0 - 1), channel=CHANNEL) == 0  # older: skipped
    assert raw_messages(sub) == []
    assert call(script, T0 + 1, value(T0 + 1), channel=CHANNEL) == 1
    assert raw_messages(sub) == [(CHANNEL.encode(), value(T0 + 1))]


def test_no_channel_publishes_nothing(r: redis.Redis, script: Script, sub: PubSub) -> None:
    assert call(script, T0, value(T0)) == 1
    assert r.get(KEY) == value(T0)
    assert raw_messages(sub) == []


def test_the_stored_bytes_are_the_published_bytes(r: redis.Redis, script: Script, sub: PubSub) -> None:
    data = '{"symbol":"ÜBER-€","timestamp":1704067200000}'.encode()
    assert call(script, T0, data, channel="channel:ticker:1:1:ÜBER-€") == 1
    assert r.get(KEY) == data
    assert raw_messages(sub) == [("channel:ticker:1:1:ÜBER-€".encode(), data)]


# ---- retry ----------------------------------------------------------------------------------------------


def test_retry_that_finds_its_own_bytes_reports_1_and_changes_nothing(
    r: redis.Redis, script: Script, sub: PubSub
) -> None:
    assert call(script, T0, value(T0), channel=CHANNEL, ttl=1000) == 1
    assert raw_messages(sub) == [(CHANNEL.encode(), value(T0))]
    r.expire(KEY, 5000)
    assert call(script, T0, value(T0), channel=CHANNEL, retry=True) == 1
    assert call(script, T0, value(T0), channel=CHANNEL) == 0  # the same call, not a retry: skipped
    assert r.get(KEY) == value(T0)
    assert 1000 < r.ttl(KEY) <= 5000  # untouched
    assert raw_messages(sub) == []  # not published again


def test_retry_that_finds_other_bytes_at_its_timestamp_reports_0(r: redis.Redis, script: Script) -> None:
    r.set(KEY, value(T0, "other"))
    assert call(script, T0, value(T0, "mine"), retry=True) == 0
    assert r.get(KEY) == value(T0, "other")


def test_retry_that_finds_a_newer_value_reports_0(r: redis.Redis, script: Script) -> None:
    r.set(KEY, value(T0 + 1))
    assert call(script, T0, value(T0), retry=True) == 0
    assert r.get(KEY) == value(T0 + 1)


def test_retry_that_finds_an_older_value_or_nothing_writes(r: redis.Redis, script: Script, sub: PubSub) -> None:
    assert call(script, T0, value(T0), retry=True, channel=CHANNEL) == 1
    assert call(script, T0 + 1, value(T0 + 1), retry=True, channel=CHANNEL) == 1
    assert r.get(KEY) == value(T0 + 1)
    assert 0 < r.ttl(KEY) <= TTL
    assert raw_messages(sub) == [(CHANNEL.encode(), value(T0)), (CHANNEL.encode(), value(T0 + 1))]


# ---- arguments ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "match"),
    [
        (["60", "", "0", "1.5", "{}"], "timestamp"),
        (["60", "", "0", "", "{}"], "timestamp"),
        (["60", "", "0", "1e12", "{}"], "timestamp"),
        (["60", "", "0", "0x10", "{}"], "timestamp"),
        (["60", "", "0", " 1", "{}"], "timestamp"),
        (["60", "", "0", "1", "{}", "x", "{}"], "timestamp"),
        (["-1", "", "0", "1", "{}"], "ttl"),
        (["1.5", "", "0", "1", "{}"], "ttl"),
        (["", "", "0", "1", "{}"], "ttl"),
        (["60", "", "3", "1", "{}"], "retry"),
        (["60", "", "", "1", "{}"], "retry"),
        (["60", "", "0", "1"], "pairs"),
        (["60", "", "0"], "pairs"),
        (["60", "", "0", "1", "{}", "extra"], "pairs"),
    ],
)
def test_bad_arguments_are_errors_and_change_nothing(
    r: redis.Redis, script: Script, args: list[str], match: str
) -> None:
    r.set(KEY, value(0))
    with pytest.raises(redis.ResponseError, match=match):
        script(keys=[KEY], args=args)
    assert r.get(KEY) == value(0)
    assert r.ttl(KEY) == -1


def test_negative_and_large_timestamps(r: redis.Redis, script: Script) -> None:
    """Any integer a double holds exactly; compared as numbers, so -5 < -4 < 0 < 2**53 - 1."""
    for t in [-5, -4, 0, 2**53 - 2, 2**53 - 1]:
        assert call(script, t, value(t)) == 1, t
    assert call(script, 2**53 - 2, value(2**53 - 2)) == 0
    assert r.get(KEY) == value(2**53 - 1)


# ---- with the Node service's stored bytes ------------------------------------------------------------------------

NODE_STORED = [
    (c["key"], c["stored"], c["ttl"])
    for c in SNAPSHOT["cases"]
    if c["call"] in ("setTicker", "setOrderbook", "setIndicator") and "stored" in c
]


@pytest.mark.parametrize(("key", "stored", "ttl"), NODE_STORED, ids=[s[1][:60] for s in NODE_STORED])
def test_node_values_version_by_their_timestamp(
    r: redis.Redis, script: Script, key: str, stored: str, ttl: int
) -> None:
    """Our bytes for the same timestamp differ (42000.0), yet equal timestamps still skip: numbers, not text."""
    held = json.loads(stored)["timestamp"]
    r.set(key, stored, ex=ttl)
    mine = stored.replace('"timestamp":', '"timestamp": ').encode()
    assert call(script, held, mine, ttl=ttl, key=key) == 0
    assert call(script, held - 1, mine, ttl=ttl, key=key) == 0
    assert r.get(key) == stored.encode()
    newer = stored.replace(f'"timestamp":{held}', f'"timestamp":{held + 1}').encode()
    assert call(script, held + 1, newer, ttl=ttl, key=key) == 1
    assert r.get(key) == newer
    assert 0 < r.ttl(key) <= ttl


# ---- against a model --------------------------------------------------------------------------------------------

writes = st.lists(
    st.tuples(st.integers(0, 6), st.sampled_from(["a", "b"]), st.booleans()),
    min_size=1,
    max_size=12,
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(writes)
def test_any_sequence_of_writes_matches_the_model(r: redis.Redis, script: Script, sequence: Any) -> None:
    """Newer wins, in any order, with retries mixed in: replies and the final value match a plain model."""
    r.delete(KEY)
    stored: bytes | None = None
    for timestamp, tag, retry in sequence:
        data = value(timestamp, tag)
        held = None if stored is None else json.loads(stored)["timestamp"]
        if held is None or held < timestamp:
            expected, stored = 1, data
        else:
            expected = 1 if retry and stored == data else 0
        assert call(script, timestamp, data, retry=retry) == expected
        assert r.get(KEY) == stored


def test_several_values_for_one_key_are_decided_in_order_in_one_call(r: redis.Redis, script: Script, sub: Any) -> None:
    """Each value against what the key holds at its turn; each winner published in order, the last one stored."""
    r.set(KEY, value(T0 + 5))
    args: list[str | bytes] = [str(TTL), CHANNEL, "0"]
    for t in (T0 + 1, T0 + 6, T0 + 6, T0 + 9, T0 + 7):
        args += [str(t), value(t)]
    assert script(keys=[KEY], args=args) == [0, 1, 0, 1, 0]
    assert r.get(KEY) == value(T0 + 9)
    assert 0 < r.ttl(KEY) <= TTL
    assert raw_messages(sub) == [(CHANNEL.encode(), value(T0 + 6)), (CHANNEL.encode(), value(T0 + 9))]


def test_ttl_zero_writes_without_expiry_and_clears_an_old_ttl(r: redis.Redis, script: Script) -> None:
    r.set(KEY, value(T0), ex=500)
    assert call(script, T0 + 1, value(T0 + 1), ttl=0) == 1
    assert r.get(KEY) == value(T0 + 1)
    assert r.ttl(KEY) == -1

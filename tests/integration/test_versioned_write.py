"""The versioned write, row by row of the rules table, through both facades."""

from __future__ import annotations

from typing import Any

import msgspec
import pytest
import redis

from livermore_cache import Candle, UnifiedCandle, ValidationError, candle_key
from livermore_cache.scripts import script_source
from tests.support.builders import plain, unified
from tests.support.constants import EXCHANGE, KEY, MINUTE, T0, USER
from tests.support.stored import zmembers, zscored


def stored(r: redis.Redis, key: str = KEY) -> list[tuple[Any, float]]:
    """Everything the key holds, decoded (UnifiedCandle when it has an exchange, else Candle), with scores."""
    return [
        (msgspec.json.decode(m, type=UnifiedCandle if b'"exchange"' in m else Candle), s) for m, s in zscored(r, key)
    ]


def closes_at(r: redis.Redis, timestamp: int, key: str = KEY) -> list[float]:
    return [c.close for c, _ in stored(r, key) if c.timestamp == timestamp]


# One case per row: (existing sequence or "none" or absent, new sequence, expect written)
ROWS = [
    pytest.param(None, 5, True, id="nothing-any-written"),
    pytest.param(None, None, True, id="nothing-noseq-written"),
    pytest.param(5, 6, True, id="seq-greater-written"),
    pytest.param(5, 5, False, id="seq-equal-skipped"),
    pytest.param(5, 4, False, id="seq-lower-skipped"),
    pytest.param(5, "none", False, id="seq-then-noseq-skipped"),
    pytest.param("none", 3, True, id="noseq-then-seq-written"),
    pytest.param("none", "none", True, id="noseq-then-noseq-written"),
]


@pytest.mark.parametrize(("existing", "new", "written"), ROWS)
def test_rules_table(cache: Any, r: redis.Redis, existing: Any, new: Any, written: bool) -> None:
    if existing is not None:
        assert cache.add_candle_if_newer(
            USER, EXCHANGE, unified(T0, None if existing == "none" else existing, close=100.0)
        )
    new_seq = None if new == "none" else new
    result = cache.add_candle_if_newer(USER, EXCHANGE, unified(T0, new_seq, close=200.0))
    assert result is written
    assert closes_at(r, T0) == ([200.0] if written else [100.0])
    assert r.zcard(KEY) == 1


def test_replacement_is_by_score_not_bytes(cache: Any, r: redis.Redis) -> None:
    """The Node service writes 42000 where msgspec writes 42000.0: still one member per timestamp."""
    node_member = b'{"timestamp":1704067200000,"open":42000,"high":42001.25,"low":41999,"close":42000.5,"volume":0,"symbol":"BTC-USD","timeframe":"1m","exchange":"coinbase","sequenceNum":7}'
    r.zadd(KEY, {node_member: T0})
    assert cache.add_candle_if_newer(USER, EXCHANGE, unified(T0, 7, close=42000.5)) is False
    assert cache.add_candle_if_newer(USER, EXCHANGE, unified(T0, 8, close=42000.5)) is True
    assert r.zcard(KEY) == 1
    assert stored(r)[0][0].sequence_num == 8


def test_several_legacy_members_compare_against_highest_and_are_all_replaced(cache: Any, r: redis.Redis) -> None:
    legacy = [unified(T0, s, close=float(100 + s)) for s in (3, 9, 5)]
    r.zadd(KEY, {msgspec.json.encode(c): T0 for c in legacy})
    r.zadd(KEY, {msgspec.json.encode(unified(T0 + MINUTE, 1)): T0 + MINUTE})
    assert cache.add_candle_if_newer(USER, EXCHANGE, unified(T0, 8)) is False
    assert r.zcard(KEY) == 4
    assert cache.add_candle_if_newer(USER, EXCHANGE, unified(T0, 10, close=999.0)) is True
    assert closes_at(r, T0) == [999.0]
    assert r.zcard(KEY) == 2


def test_legacy_members_without_any_sequence_are_replaced(cache: Any, r: redis.Redis) -> None:
    r.zadd(KEY, {msgspec.json.encode(unified(T0, None, close=c)): T0 for c in (1.0, 2.0)})
    assert cache.add_candle_if_newer(USER, EXCHANGE, unified(T0, None, close=3.0)) is True
    assert closes_at(r, T0) == [3.0]


def test_batch_applies_in_input_order_and_reports_final_state(make_cache: Any, r: redis.Redis) -> None:
    cache = make_cache(max_candles=3)
    batch = [
        unified(T0, 5, close=1.0),  # replaced later in this call -> False
        unified(T0, 4, close=2.0),  # skipped -> False
        unified(T0, 6, close=3.0),  # final at T0 -> True
        unified(T0 + MINUTE, 1, close=4.0),
        unified(T0 + 2 * MINUTE, None, close=5.0),
        unified(T0 + 3 * MINUTE, 2, close=6.0),  # pushes T0 out of the 3 newest -> T0 reports False
        unified(T0 - 5 * MINUTE, 9, close=7.0),  # older than the retained window -> False
    ]
    assert cache.add_candles_if_newer(USER, EXCHANGE, batch) == [False, False, False, True, True, True, False]
    assert [c.close for c, _ in stored(r)] == [4.0, 5.0, 6.0]
    assert 0 < r.ttl(KEY) <= 86400


def test_batch_spanning_many_series_keeps_input_order(cache: Any, r: redis.Redis) -> None:
    r.zadd(
        candle_key(USER, EXCHANGE, "ETH-USD", "5m"),
        {msgspec.json.encode(unified(T0, 10, symbol="ETH-USD", timeframe="5m")): T0},
    )
    batch = []
    expected = []
    for i in range(60):
        symbol = ("BTC-USD", "ETH-USD", "SOL-USD")[i % 3]
        timeframe = ("1m", "5m")[i % 2]
        seq = i
        step = MINUTE if timeframe == "1m" else 5 * MINUTE  # written candles open on their timeframe's boundaries
        batch.append(unified(T0 + (i // 6) * step, seq, symbol=symbol, timeframe=timeframe, close=float(i + 1)))
        expected.append(not (symbol == "ETH-USD" and timeframe == "5m" and i // 6 == 0 and seq <= 10))
    assert cache.add_candles_if_newer(USER, EXCHANGE, batch) == expected
    for symbol in ("BTC-USD", "ETH-USD", "SOL-USD"):
        for timeframe in ("1m", "5m"):
            key = candle_key(USER, EXCHANGE, symbol, timeframe)
            assert r.zcard(key) == 10
            assert r.ttl(key) > 0


def test_write_that_changes_nothing_touches_nothing(make_cache: Any, r: redis.Redis) -> None:
    cache = make_cache(max_candles=2)
    r.zadd(KEY, {msgspec.json.encode(unified(T0 + i * MINUTE, 5)): T0 + i * MINUTE for i in range(4)})
    r.expire(KEY, 50)
    assert cache.add_candles_if_newer(USER, EXCHANGE, [unified(T0, 5), unified(T0 + MINUTE, 1)]) == [False, False]
    assert r.zcard(KEY) == 4, "no trim when nothing was written"
    assert r.ttl(KEY) <= 50, "no EXPIRE when nothing was written"


def test_empty_batch_sends_nothing(cache: Any, r: redis.Redis) -> None:
    assert cache.add_candles_if_newer(USER, EXCHANGE, []) == []
    cache.add_candles(USER, EXCHANGE, [])
    assert r.dbsize() == 0


def test_ttl_and_trim_settings(make_cache: Any, r: redis.Redis) -> None:
    cache = make_cache(ttl_seconds=120, max_candles=5)
    results = cache.add_candles_if_newer(USER, EXCHANGE, [unified(T0 + i * MINUTE, 1) for i in range(8)])
    assert results == [False] * 3 + [True] * 5
    assert [c.timestamp for c, _ in stored(r)] == [T0 + i * MINUTE for i in range(3, 8)]
    assert 0 < r.ttl(KEY) <= 120


def test_no_expiry_when_ttl_is_none(make_cache: Any, r: redis.Redis) -> None:
    cache = make_cache(ttl_seconds=None)
    assert cache.add_candle_if_newer(USER, EXCHANGE, unified(T0, 1))
    assert r.ttl(KEY) == -1


def test_unconditional_add_replaces_and_drops_versioned_fields(cache: Any, r: redis.Redis) -> None:
    """add_candle is the Node service's addCandle: replace whatever is there, store the Candle schema."""
    assert cache.add_candle_if_newer(USER, EXCHANGE, unified(T0, 50, close=1.0))
    cache.add_candle(USER, EXCHANGE, unified(T0, 2, close=2.0))
    members = zmembers(r, KEY)
    assert len(members) == 1
    decoded = msgspec.json.decode(members[0])
    assert decoded["close"] == 2.0
    assert not {"exchange", "sequenceNum", "exchangeTimestamp"} & decoded.keys()
    # with no sequence stored, any versioned write replaces it again
    assert cache.add_candle_if_newer(USER, EXCHANGE, unified(T0, 1, close=3.0)) is True


def test_unconditional_batch_last_one_wins_and_trims(make_cache: Any, r: redis.Redis) -> None:
    cache = make_cache(max_candles=2, ttl_seconds=300)
    cache.add_candles(
        USER, EXCHANGE, [plain(T0, close=1.0), plain(T0, close=2.0), plain(T0 + MINUTE), plain(T0 + 2 * MINUTE)]
    )
    assert [c.timestamp for c, _ in stored(r)] == [T0 + MINUTE, T0 + 2 * MINUTE]
    assert 0 < r.ttl(KEY) <= 300
    cache.add_candle(USER, EXCHANGE, plain(T0 + 2 * MINUTE, close=9.0))
    assert closes_at(r, T0 + 2 * MINUTE) == [9.0]


def test_score_is_the_timestamp(cache: Any, r: redis.Redis) -> None:
    cache.add_candle_if_newer(USER, EXCHANGE, unified(T0 + 123 * MINUTE, 1))
    assert zscored(r, KEY)[0][1] == float(T0 + 123 * MINUTE)


def test_largest_sequence_is_compared_exactly(cache: Any, r: redis.Redis) -> None:
    top = 2**53 - 1
    assert cache.add_candle_if_newer(USER, EXCHANGE, unified(T0, top - 1))
    assert cache.add_candle_if_newer(USER, EXCHANGE, unified(T0, top)) is True
    assert cache.add_candle_if_newer(USER, EXCHANGE, unified(T0, top)) is False
    assert stored(r)[0][0].sequence_num == top


def test_timestamps_that_are_small_integers(r: redis.Redis) -> None:
    """Timestamps 1..20 in one call: no confusion between timestamps and table indexes in the script.

    The caches write only open times of a timeframe (multiples of 60,000 ms), so the
    script is called directly here, as another client could call it.
    """
    script = r.register_script(script_source("versioned_write"))
    args: list[Any] = ["1", "86400", "-1001", "", "1", "20", "96"]
    for sequence in (1, 0):
        for t in range(1, 21):
            args += [str(t), str(sequence), msgspec.json.encode(unified(t, sequence))]
    assert script(keys=[KEY], args=args) == [1] * 20 + [0] * 20
    assert r.zcard(KEY) == 20


@pytest.mark.parametrize(("timestamp", "timeframe"), [(T0 + 123, "1m"), (1_704_067_200, "1m"), (T0 + MINUTE, "5m")])
def test_a_candle_off_its_timeframes_open_times_is_refused_and_nothing_is_written(
    cache: Any, r: redis.Redis, timestamp: int, timeframe: str
) -> None:
    """Seconds instead of milliseconds, or a 1m open time on 5m: refused before any I/O, the batch whole."""
    batch = [unified(T0, 1), unified(timestamp, 1, timeframe=timeframe)]
    with pytest.raises(ValidationError, match=r"candles\[1\]\.timestamp must be an open time of its timeframe"):
        cache.add_candles_if_newer(USER, EXCHANGE, batch)
    with pytest.raises(ValidationError, match="open time"):
        cache.add_candles(USER, EXCHANGE, batch)
    assert r.keys("*") == []


def test_script_cache_lost_between_calls(cache: Any, r: redis.Redis) -> None:
    assert cache.add_candle_if_newer(USER, EXCHANGE, unified(T0, 1))
    r.script_flush()
    assert cache.add_candle_if_newer(USER, EXCHANGE, unified(T0, 2))
    r.script_flush()
    batch = [unified(T0 + MINUTE, 1, symbol=s) for s in ("BTC-USD", "ETH-USD", "SOL-USD")]
    assert cache.add_candles_if_newer(USER, EXCHANGE, batch) == [True, True, True]
    r.script_flush()
    cache.add_candles(USER, EXCHANGE, batch)
    assert stored(r)[0][0].sequence_num == 2


def test_batch_spanning_many_stored_members_reads_timestamp_by_timestamp(cache: Any, r: redis.Redis) -> None:
    """Two candles far apart with 300 members between them: the bounded range read falls back, same result."""
    r.zadd(KEY, {msgspec.json.encode(unified(T0 + i * MINUTE, 5)): T0 + i * MINUTE for i in range(300)})
    batch = [unified(T0, 4), unified(T0 + 299 * MINUTE, 6, close=7.0), unified(T0 + 150 * MINUTE, 5)]
    assert cache.add_candles_if_newer(USER, EXCHANGE, batch) == [False, True, False]
    assert r.zcard(KEY) == 300
    assert closes_at(r, T0 + 299 * MINUTE) == [7.0]

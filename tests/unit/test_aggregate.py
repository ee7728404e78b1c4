"""``aggregate_candles`` against the Node service's own ``aggregateCandles``, and the roll-up planning helpers.

``data/node-aggregate.json`` holds 120 cases run through the upstream TypeScript
(``packages/utils/src/candle/aggregate-candles.ts``, HEAD af9e9b6): the inputs
(unsorted, incomplete periods, mixed symbols, duplicate timestamps) and either
Node's output, as ``JSON.stringify`` wrote it, or the message Node threw.
No server needed.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from livermore_cache import (
    MAX_SEQUENCE_NUM,
    Candle,
    Timeframe,
    UnifiedCandle,
    ValidationError,
    aggregate_candles,
    timeframe_ms,
)
from livermore_cache.candles import encode_candle
from livermore_cache.rollups import Rollup, derived_sequence, validate_rollups
from tests.support.constants import MINUTE, T0
from tests.support.node import node_aggregate

CASES = node_aggregate()
NODE_FIELDS = ["timestamp", "open", "high", "low", "close", "volume", "symbol", "timeframe", "isSynthetic"]
NUMBERS = {"open", "high", "low", "close", "volume"}
LARGER = re.compile(r"Target timeframe \((\w+)\) must be larger than source timeframe \((\w+)\)")
DIVISIBLE = re.compile(r"Target timeframe \((\w+)\) is not evenly divisible by source timeframe \((\w+)\)")


def _candles(raw: list[dict[str, Any]]) -> list[Candle]:
    return msgspec.json.decode(json.dumps(raw), type=list[Candle])


def _bits(candle: dict[str, Any]) -> dict[str, Any]:
    """A candle's JSON object with every number as its exact double (float.hex): equal only when bit-identical."""
    return {k: float(v).hex() if k in NUMBERS else v for k, v in candle.items()}


def _python_message(node_message: str) -> str:
    """The ValidationError message this library gives where Node threw ``node_message``."""
    if m := LARGER.fullmatch(node_message):
        return f"target_timeframe must be larger than source timeframe ({m[2]}), got {m[1]!r}"
    m = DIVISIBLE.fullmatch(node_message)
    assert m, node_message
    return f"target_timeframe must be a whole multiple of source timeframe ({m[2]}), got {m[1]!r}"


def test_the_cases_cover_what_they_claim() -> None:
    assert len(CASES) == 120
    assert sum("error" in case for case in CASES) == 12
    timestamps = [[c["timestamp"] for c in case["candles"]] for case in CASES]
    assert sum(ts != sorted(ts) for ts in timestamps) > 50
    assert sum(len(set(ts)) < len(ts) for ts in timestamps) > 20
    assert sum(len({c["symbol"] for c in case["candles"]}) > 1 for case in CASES) > 100
    assert sum(bool(case.get("result")) for case in CASES) > 90


@pytest.mark.parametrize("case", CASES, ids=[f"{i}-{case['source']}-{case['target']}" for i, case in enumerate(CASES)])
def test_node_case(case: dict[str, Any]) -> None:
    candles = _candles(case["candles"])
    if "error" in case:
        with pytest.raises(ValidationError) as raised:
            aggregate_candles(candles, case["source"], case["target"])
        assert isinstance(raised.value, ValueError)
        assert (raised.value.field, raised.value.value) == ("target_timeframe", case["target"])
        assert str(raised.value) == _python_message(case["error"])
        return
    result = aggregate_candles(candles, case["source"], case["target"])
    assert all(type(c) is Candle for c in result)
    ours = [json.loads(encode_candle(c)) for c in result]
    assert [list(c) for c in ours] == [NODE_FIELDS] * len(case["result"])  # the same fields, in Node's order
    assert [_bits(c) for c in ours] == [_bits(c) for c in case["result"]]
    assert [type(c["isSynthetic"]) for c in ours] == [bool] * len(ours)


# --- Node semantics the captured cases do not pin down (read from the upstream source) ---


def _candle(minute: int, *, open_: float = 10.0, close: float = 10.0, volume: float = 1.0, **extra: Any) -> Candle:
    fields: dict[str, Any] = {
        "timestamp": T0 + minute * MINUTE,
        "open": open_,
        "high": max(open_, close) + 1,
        "low": min(open_, close) / 2,
        "close": close,
        "volume": volume,
        "symbol": "BTC-USD",
        "timeframe": "1m",
    }
    fields.update(extra)
    return Candle(**fields)


def test_a_duplicate_timestamp_counts_and_keeps_its_input_order() -> None:
    # minutes 0, 1, 1, 3, 4: five candles (a duplicate and a hole) make a "complete" 5m period in Node
    holed = [_candle(4, close=44.0), _candle(1), _candle(0, open_=1.0), _candle(1), _candle(3)]
    [result] = aggregate_candles(holed, "1m", "5m")
    assert (result.timestamp, result.open, result.close) == (T0, 1.0, 44.0)
    six = [_candle(0), _candle(1), _candle(2), _candle(3), _candle(4), _candle(4)]
    assert aggregate_candles(six, "1m", "5m") == []  # six candles: not exactly five
    # two candles at the first (last) timestamp keep their input order, as a stable sort does
    first, second = _candle(0, open_=1.0, close=2.0), _candle(0, open_=3.0, close=4.0)
    middle = [_candle(1), _candle(2), _candle(3)]
    assert aggregate_candles([*middle, first, second], "1m", "5m")[0].open == 1.0
    assert aggregate_candles([*middle, second, first], "1m", "5m")[0].open == 3.0
    last, later = _candle(4, close=5.0), _candle(4, close=6.0)
    assert aggregate_candles([later, *middle[:2], _candle(0), last], "1m", "5m")[0].close == 5.0
    assert aggregate_candles([last, *middle[:2], _candle(0), later], "1m", "5m")[0].close == 6.0


def test_empty_input_returns_empty_for_any_pair_as_node_does() -> None:
    assert aggregate_candles([], "5m", "5m") == []
    assert aggregate_candles([], "4h", "6h") == []
    with pytest.raises(ValidationError, match="target_timeframe must be one of"):
        aggregate_candles([], "5m", "3m")  # not a Timeframe at all: refused even when empty


def test_timeframes_and_inputs_are_checked() -> None:
    with pytest.raises(ValidationError, match=r"source_timeframe must be one of .*got '2m'"):
        aggregate_candles([_candle(0)], "2m", "1h")
    with pytest.raises(ValidationError, match=r"candles\[1\] must be a Candle"):
        aggregate_candles([_candle(0), {"timestamp": T0}], "1m", "5m")  # type: ignore[list-item]
    with pytest.raises(ValidationError, match="candles must be an iterable"):
        aggregate_candles(None, "1m", "5m")  # type: ignore[arg-type]


def test_output_fields() -> None:
    sources = [
        UnifiedCandle(**{**msgspec.structs.asdict(_candle(m, volume=m)), "exchange": "coinbase", "sequence_num": m})
        for m in range(15)
    ]
    sources[7].is_synthetic = True
    sources[0].symbol = "ETH-USD"
    result = aggregate_candles(iter(sources), Timeframe.M1, Timeframe.M15)
    assert [c.timestamp for c in result] == [T0]
    [candle] = result
    assert type(candle) is Candle  # a plain candle, as Node's object literal: no exchange fields
    assert candle.symbol == "ETH-USD"  # the first input candle's, for every output candle
    assert candle.timeframe == "15m"
    assert type(candle.timeframe) is str
    assert candle.is_synthetic is True
    assert candle.volume == float(sum(range(15)))
    assert type(candle.volume) is float
    none_synthetic = aggregate_candles([_candle(m) for m in range(5)], "1m", "5m")
    assert json.loads(encode_candle(none_synthetic[0]))["isSynthetic"] is False  # always in the JSON


def test_prices_are_the_source_values_and_extremes_the_first_of_equals() -> None:
    candles = [_candle(m, open_=7, close=9) for m in range(5)]  # ints, as Node's JSON may hold them
    [result] = aggregate_candles(candles, "1m", "5m")
    assert (result.open, result.close, result.high, result.low) == (7, 9, 10, 3.5)
    assert b'"open":7,' in encode_candle(result)


def test_volume_is_summed_in_timestamp_order_from_zero() -> None:
    volumes = [1e16, 1.0, 1.0, -0.0, 1.0]  # order matters for a double sum
    candles = [_candle(m, volume=abs(v)) for m, v in enumerate(volumes)]
    [result] = aggregate_candles(reversed(candles), "1m", "5m")
    expected = 0.0
    for v in volumes:
        expected += abs(v)
    assert result.volume.hex() == expected.hex()
    assert result.volume != math.fsum(volumes)
    [zero] = aggregate_candles([_candle(m, volume=-0.0) for m in range(5)], "1m", "5m")
    assert math.copysign(1.0, zero.volume) == 1.0  # JavaScript's 0 + -0 is +0


@given(st.data())
def test_a_shuffle_that_keeps_the_first_candle_and_equal_timestamps_order_changes_nothing(data: st.DataObject) -> None:
    minutes = data.draw(st.lists(st.integers(0, 29), min_size=1, max_size=40))
    volumes = data.draw(st.lists(st.floats(0, 1e6), min_size=len(minutes), max_size=len(minutes)))
    candles = [_candle(m, volume=v, close=1.0 + i) for i, (m, v) in enumerate(zip(minutes, volumes, strict=True))]
    expected = aggregate_candles(candles, "1m", "5m")
    rest = data.draw(st.permutations(list(range(1, len(candles)))))
    order = list(rest)  # then equal timestamps put back in their original relative order:
    for m in set(minutes):
        same = [i for i in order if minutes[i] == m]
        positions = [k for k, i in enumerate(order) if minutes[i] == m]
        for k, i in zip(positions, sorted(same), strict=True):
            order[k] = i
    shuffled = [candles[0], *(candles[i] for i in order)]
    assert [encode_candle(c) for c in aggregate_candles(shuffled, "1m", "5m")] == [encode_candle(c) for c in expected]
    for candle in expected:
        assert candle.timestamp % (5 * MINUTE) == 0


# --- validate_rollups ---


def test_the_issue_mapping() -> None:
    plan = validate_rollups({"5m": ["15m", "1d", "4h", "1h"], "1m": ["5m"]})
    assert plan == (
        Rollup("1m", "5m", 5),
        Rollup("5m", "15m", 3),
        Rollup("5m", "1h", 12),
        Rollup("5m", "4h", 48),
        Rollup("5m", "1d", 288),
    )
    assert validate_rollups({Timeframe.H1: (Timeframe.D1,), "1m": []}) == (Rollup("1h", "1d", 24),)
    assert type(validate_rollups({Timeframe.H1: [Timeframe.D1]})[0].source) is str
    with pytest.raises(ValidationError, match=r"^rollups\['5m'\] must be larger"):
        validate_rollups({Timeframe.M5: [Timeframe.M1]})  # the field names the value, not the enum member
    assert validate_rollups({}) == ()


@pytest.mark.parametrize(
    ("mapping", "message"),
    [
        ({"2m": ["5m"]}, r"rollups key '2m' must be one of"),
        ({"1m": ["5m", "1w"]}, r"rollups\['1m'\]\[1\] must be one of .*got '1w'"),
        ({"5m": ["1m"]}, r"rollups\['5m'\] must be larger than source timeframe \(5m\), got '1m'"),
        ({"5m": ["5m"]}, r"rollups\['5m'\] closes a cycle: 5m -> 5m, got '5m'"),
        ({"4h": ["6h"]}, r"rollups\['4h'\] must be a whole multiple of source timeframe \(4h\), got '6h'"),
        ({"1m": ["15m"], "5m": ["15m"]}, r"rollups\['5m'\]\[0\] already has source 1m"),
        ({"1m": ["5m", "5m"]}, r"rollups\['1m'\]\[1\] is listed twice"),
        ({"1m": ["5m"], "5m": ["1m"]}, r"rollups\['1m'\] closes a cycle: 5m -> 1m -> 5m, got '5m'"),
        ({"1h": ["4h"], "4h": ["1d"], "1d": ["1h"]}, r"rollups\['1h'\] closes a cycle: 4h -> 1d -> 1h -> 4h, got '4h'"),
        ({"1m": "5m"}, r"rollups\['1m'\] must be an iterable of target timeframes \(a list, not a string\)"),
        ([("1m", ["5m"])], r"rollups must be a mapping"),
    ],
)
def test_refused_mappings(mapping: Any, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        validate_rollups(mapping)


TIMEFRAMES = [t.value for t in Timeframe]


@given(st.dictionaries(st.sampled_from(TIMEFRAMES), st.lists(st.sampled_from(TIMEFRAMES), max_size=4), max_size=5))
def test_validate_rollups_against_a_model(mapping: dict[str, list[str]]) -> None:
    pairs = [(s, t) for s, targets in mapping.items() for t in targets]
    targets = [t for _, t in pairs]
    valid = len(set(targets)) == len(targets) and all(
        timeframe_ms(t) > timeframe_ms(s) and timeframe_ms(t) % timeframe_ms(s) == 0 for s, t in pairs
    )
    if not valid:
        with pytest.raises(ValidationError):
            validate_rollups(mapping)
        return
    plan = validate_rollups(mapping)
    assert sorted((e.source, e.target) for e in plan) == sorted(pairs)
    assert all(e.factor == timeframe_ms(e.target) // timeframe_ms(e.source) for e in plan)
    built: set[str] = set()
    for edge in plan:  # topological: an edge comes after the edge that builds its source
        assert edge.target not in built
        built.add(edge.target)
    position = {e.target: i for i, e in enumerate(plan)}
    assert all(position.get(e.source, -1) < i for i, e in enumerate(plan))


# --- derived_sequence ---


def test_derived_sequence_examples() -> None:
    assert derived_sequence([3, 4, 5]) == 12
    assert derived_sequence(iter([0, 0])) == 0
    assert derived_sequence([3, None, 5]) is None
    assert derived_sequence([None]) is None
    assert derived_sequence([MAX_SEQUENCE_NUM, 1]) == MAX_SEQUENCE_NUM  # capped
    bound = MAX_SEQUENCE_NUM // 1440  # the documented per-source bound for 1m -> 1d
    assert bound == 6_254_999_482_459
    assert derived_sequence([bound] * 1440) == bound * 1440 <= MAX_SEQUENCE_NUM
    assert derived_sequence([bound] * 1439 + [bound + 1]) == bound * 1440 + 1  # still exact above the bound of one


@pytest.mark.parametrize(
    ("sequences", "message"),
    [
        ([], "sequences must hold at least one source sequence"),
        ([1, -1], r"sequences\[1\] must be None or an int from 0 to"),
        ([MAX_SEQUENCE_NUM + 1], r"sequences\[0\] must be None or an int"),
        ([True], r"sequences\[0\] must be None or an int"),
        ([1.0], r"sequences\[0\] must be None or an int"),
        (5, "sequences must be an iterable"),
    ],
)
def test_derived_sequence_refusals(sequences: Any, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        derived_sequence(sequences)


SEQUENCE = st.integers(0, MAX_SEQUENCE_NUM)


@given(st.lists(SEQUENCE, min_size=1, max_size=288), st.data())
def test_newer_sources_give_a_higher_sequence(sequences: list[int], data: st.DataObject) -> None:
    before = derived_sequence(sequences)
    assert before is not None
    assert 0 <= before <= MAX_SEQUENCE_NUM
    assert derived_sequence(list(sequences)) == before  # an unchanged recomputation: the same sequence
    newer = list(sequences)
    for i in data.draw(st.lists(st.integers(0, len(newer) - 1), min_size=1, unique=True)):
        newer[i] = data.draw(st.integers(newer[i], MAX_SEQUENCE_NUM))
    after = derived_sequence(newer)
    assert after is not None
    assert before <= after <= MAX_SEQUENCE_NUM
    if sum(newer) <= MAX_SEQUENCE_NUM:  # within the bound, any newer source strictly raises it
        assert (after > before) == (newer != sequences)
    else:
        assert after == MAX_SEQUENCE_NUM


@given(st.lists(st.integers(0, MAX_SEQUENCE_NUM // 1440), min_size=1440, max_size=1440))
def test_within_the_documented_bound_the_sum_is_exact(sequences: list[int]) -> None:
    # a 1d candle from 1m sources: 1440 leaves, whether summed directly or through 5m (288 sums of 5)
    direct = derived_sequence(sequences)
    through_5m = derived_sequence([derived_sequence(sequences[i : i + 5]) for i in range(0, 1440, 5)])
    assert direct == through_5m == sum(sequences) <= MAX_SEQUENCE_NUM

"""Candle-series health: timeframes, open times, gaps and readiness, against a plain-Python model."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import event, given, settings
from hypothesis import strategies as st

from livermore_cache.errors import ValidationError
from livermore_cache.health import Gap, find_gaps, is_ready
from livermore_cache.limits import MAX_SAFE_INTEGER as MAX_SEQUENCE_NUM
from livermore_cache.timeframes import Timeframe, candle_open_time, timeframe_ms
from tests.support.constants import MINUTE, T0, TIMEFRAME_MINUTES
from tests.support.models import model_gaps, model_ready


def utc_ms(text: str) -> int:
    return int(datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp() * 1000)


# ---- timeframe_ms ------------------------------------------------------------------------------


@pytest.mark.parametrize("timeframe", list(TIMEFRAME_MINUTES))
def test_timeframe_ms(timeframe: str) -> None:
    assert timeframe_ms(timeframe) == TIMEFRAME_MINUTES[timeframe] * MINUTE


def test_every_timeframe_has_a_length() -> None:
    assert {timeframe_ms(t) for t in Timeframe} == {n * MINUTE for n in TIMEFRAME_MINUTES.values()}
    assert timeframe_ms(Timeframe.H4) == 4 * 60 * MINUTE


@pytest.mark.parametrize("bad", ["2m", "1M", "1H", "60m", "1w", "", " 1m", None, 1, b"1m"])
def test_timeframe_ms_refuses_others(bad: Any) -> None:
    with pytest.raises(ValidationError) as raised:
        timeframe_ms(bad)
    assert raised.value.field == "timeframe"
    assert raised.value.value == bad


# ---- candle_open_time -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("at", "timeframe", "opens"),
    [
        ("2024-01-01T00:00:00", "1m", "2024-01-01T00:00:00"),
        ("2024-01-01T00:00:59.999", "1m", "2024-01-01T00:00:00"),
        ("2024-01-01T00:01:00", "1m", "2024-01-01T00:01:00"),
        ("2024-03-05T13:47:12.5", "5m", "2024-03-05T13:45:00"),
        ("2024-03-05T13:47:12.5", "15m", "2024-03-05T13:45:00"),
        ("2024-03-05T13:29:59.999", "30m", "2024-03-05T13:00:00"),
        ("2024-03-05T13:47:12.5", "1h", "2024-03-05T13:00:00"),
        ("2024-03-05T13:47:12.5", "2h", "2024-03-05T12:00:00"),
        ("2024-03-05T13:47:12.5", "4h", "2024-03-05T12:00:00"),
        ("2024-03-05T03:59:59.999", "4h", "2024-03-05T00:00:00"),
        ("2024-03-05T17:59:59.999", "6h", "2024-03-05T12:00:00"),
        ("2024-03-05T23:59:59.999", "1d", "2024-03-05T00:00:00"),
        ("2024-02-29T12:00:00", "1d", "2024-02-29T00:00:00"),
        ("2024-03-06T00:00:00", "1d", "2024-03-06T00:00:00"),
        ("1970-01-01T00:00:00", "1d", "1970-01-01T00:00:00"),
    ],
)
def test_open_time_is_the_utc_boundary(at: str, timeframe: str, opens: str) -> None:
    assert candle_open_time(utc_ms(at), timeframe) == utc_ms(opens)


@given(st.integers(0, MAX_SEQUENCE_NUM), st.sampled_from(list(TIMEFRAME_MINUTES)))
def test_open_time_floors(ts: int, timeframe: str) -> None:
    step = TIMEFRAME_MINUTES[timeframe] * MINUTE
    opens = candle_open_time(ts, timeframe)
    assert opens % step == 0
    assert opens <= ts < opens + step
    assert candle_open_time(opens, timeframe) == opens


@given(st.integers(0, 10**13))
def test_a_day_opens_at_midnight_utc(ts: int) -> None:
    opens = datetime.fromtimestamp(candle_open_time(ts, "1d") / 1000, UTC)
    assert (opens.hour, opens.minute, opens.second, opens.microsecond) == (0, 0, 0, 0)
    assert opens.date() == datetime.fromtimestamp(ts / 1000, UTC).date()


@pytest.mark.parametrize("bad", [-1, 1.5, float(T0), True, "1704067200000", None, MAX_SEQUENCE_NUM + 1])
def test_open_time_refuses_bad_timestamps(bad: Any) -> None:
    with pytest.raises(ValidationError) as raised:
        candle_open_time(bad, "1m")
    assert raised.value.field == "ts_ms"


def test_open_time_refuses_bad_timeframes() -> None:
    with pytest.raises(ValidationError, match=r"^timeframe"):
        candle_open_time(T0, "3m")


# ---- the model ----------------------------------------------------------------------------------------


@st.composite
def series(draw: st.DrawFn) -> tuple[list[int], str, int]:
    """Timestamps of one series: boundaries with holes, duplicates and strays, in any order."""
    timeframe = draw(st.sampled_from(list(TIMEFRAME_MINUTES)))
    step = TIMEFRAME_MINUTES[timeframe] * MINUTE
    base = draw(st.integers(0, 10**6)) * step
    slots = draw(st.lists(st.integers(0, 80), max_size=120))
    stamps = [base + k * step for k in slots]
    stamps += draw(st.lists(st.sampled_from(stamps), max_size=10)) if stamps else []  # duplicates
    strays = draw(st.lists(st.integers(0, 80 * step), max_size=3))  # not on a boundary, mostly
    stamps += [base + s for s in strays]
    return draw(st.permutations(stamps)), timeframe, base


# ---- find_gaps ------------------------------------------------------------------------------------------


@settings(max_examples=400)
@given(series(), st.integers(-3, 85), st.integers(-3, 85), st.integers(-MINUTE, MINUTE))
def test_find_gaps_matches_the_model(drawn: tuple[list[int], str, int], first: int, length: int, jitter: int) -> None:
    stamps, timeframe, base = drawn
    step = timeframe_ms(timeframe)
    start = max(0, base + first * step + jitter)
    end = start + max(0, length) * step + abs(jitter)
    gaps = find_gaps(stamps, timeframe, start, end)
    event(f"gaps={min(len(gaps), 3)}")
    assert gaps == model_gaps(stamps, step, start, end)
    assert all(g.count == (g.end - g.start) // step + 1 for g in gaps)
    assert find_gaps(reversed(stamps), timeframe, start, end) == gaps  # any iterable, any order


def test_find_gaps_examples() -> None:
    stamps = [T0, T0 + MINUTE, T0 + 4 * MINUTE, T0 + 4 * MINUTE, T0 + 6 * MINUTE]
    assert find_gaps(stamps, "1m", T0, T0 + 6 * MINUTE) == [
        Gap(T0 + 2 * MINUTE, T0 + 3 * MINUTE, 2),
        Gap(T0 + 5 * MINUTE, T0 + 5 * MINUTE, 1),
    ]
    assert find_gaps([], "1h", T0, T0 + 3 * 60 * MINUTE) == [Gap(T0, T0 + 3 * 60 * MINUTE, 4)]
    assert find_gaps([T0], "1m", T0, T0) == []
    assert find_gaps([], "1m", T0, T0) == [Gap(T0, T0, 1)]


def test_find_gaps_range_ends_off_a_boundary() -> None:
    """Only the boundaries b with start <= b <= end count."""
    assert find_gaps([], "1m", T0 + 1, T0 + 3 * MINUTE - 1) == [Gap(T0 + MINUTE, T0 + 2 * MINUTE, 2)]
    assert find_gaps([], "1m", T0 + 1, T0 + MINUTE - 1) == []  # no boundary inside
    assert find_gaps([T0 + MINUTE], "1m", T0 - 1, T0 + MINUTE + 1) == [Gap(T0, T0, 1)]


def test_a_stray_timestamp_covers_no_boundary() -> None:
    assert find_gaps([T0, T0 + MINUTE + 1, T0 + 2 * MINUTE], "1m", T0, T0 + 2 * MINUTE) == [
        Gap(T0 + MINUTE, T0 + MINUTE, 1)
    ]


def test_timestamps_outside_the_range_are_ignored() -> None:
    assert find_gaps([T0 - MINUTE, T0 + 9 * MINUTE], "1m", T0, T0 + MINUTE) == [Gap(T0, T0 + MINUTE, 2)]


def test_a_long_range_costs_nothing_per_boundary() -> None:
    """Years of 1m boundaries with few candles: gaps are computed from the candles, not by walking the range."""
    end = T0 + 10 * 365 * 1440 * MINUTE
    assert find_gaps([T0 + MINUTE], "1m", T0, end) == [
        Gap(T0, T0, 1),
        Gap(T0 + 2 * MINUTE, end, (end - T0) // MINUTE - 1),
    ]


@pytest.mark.parametrize(
    ("args", "field"),
    [
        (([T0], "2m", T0, T0), "timeframe"),
        (([T0], "1m", -1, T0), "start"),
        (([T0], "1m", T0, 1.5), "end"),
        (([T0], "1m", T0, T0 - 1), "end"),
        (([T0], "1m", True, T0), "start"),
        (([T0, "x"], "1m", T0, T0), "timestamps[1]"),
        (([T0, float(T0)], "1m", T0, T0), "timestamps[1]"),
        (([True], "1m", T0, T0), "timestamps[0]"),
        (([-MINUTE], "1m", T0, T0), "timestamps[0]"),
        (([None], "1m", T0, T0), "timestamps[0]"),
        ((T0, "1m", T0, T0), "timestamps"),
        (("12", "1m", T0, T0), "timestamps"),
    ],
)
def test_find_gaps_validates(args: tuple[Any, ...], field: str) -> None:
    with pytest.raises(ValidationError) as raised:
        find_gaps(*args)
    assert raised.value.field == field


# ---- is_ready -------------------------------------------------------------------------------------------


@settings(max_examples=400)
@given(series(), st.integers(1, 12))
def test_is_ready_matches_the_model(drawn: tuple[list[int], str, int], count: int) -> None:
    stamps, timeframe, _ = drawn
    expected = model_ready(stamps, timeframe_ms(timeframe), count)
    event(f"ready={expected}")
    assert is_ready(stamps, timeframe, count) == expected


@given(
    st.sampled_from(list(TIMEFRAME_MINUTES)),
    st.integers(0, 10**6),
    st.integers(1, 100),
    st.lists(st.integers(0, 99), max_size=20),
    st.randoms(),
)
def test_a_complete_run_is_ready_whatever_the_duplicates_and_order(
    timeframe: str, base_slot: int, count: int, duplicates: list[int], rnd: Any
) -> None:
    step = timeframe_ms(timeframe)
    base = base_slot * step
    stamps = [base + k * step for k in range(count)]
    stamps += [base + (k % count) * step for k in duplicates]
    rnd.shuffle(stamps)
    assert is_ready(stamps, timeframe, count)
    assert not is_ready(stamps, timeframe, count + 1)  # fewer distinct timestamps than asked for
    if count > 2:
        holed = [t for t in stamps if t != base + step]  # a hole among the newest count
        assert not is_ready(holed, timeframe, count - 1)
        assert is_ready(holed, timeframe, count - 2)  # the newest count - 2 are still complete


def test_is_ready_examples() -> None:
    run = [T0 + k * MINUTE for k in range(60)]
    assert is_ready(run, "1m")  # count defaults to 60
    assert not is_ready(run[1:], "1m")
    assert is_ready(run + run, "1m")  # duplicates count once
    assert is_ready([*run, T0 - 5 * MINUTE], "1m")  # an old hole behind the newest 60 does not matter
    assert not is_ready([*run[:-1], T0 + 60 * MINUTE], "1m")  # a hole among the newest
    assert not is_ready([*run, T0 + 60 * MINUTE + 1], "1m")  # a stray newest timestamp
    assert is_ready([T0], "1d", 1)
    assert not is_ready([T0 + 1], "1d", 1)
    assert not is_ready([], "1m", 1)


def test_is_ready_ignores_the_wall_clock() -> None:
    """Complete but decades old, or in the far future: ready all the same."""
    old = [k * MINUTE for k in range(60)]
    future = [2**52 // MINUTE * MINUTE - k * MINUTE for k in range(60)]
    assert is_ready(old, "1m")
    assert is_ready(future, "1m")


@pytest.mark.parametrize(
    ("args", "field"),
    [
        (([T0], "1m", 0), "count"),
        (([T0], "1m", -1), "count"),
        (([T0], "1m", 1.0), "count"),
        (([T0], "1m", True), "count"),
        (([T0], "1x", 1), "timeframe"),
        (([T0, -1], "1m", 1), "timestamps[1]"),
        (([1.5], "1m", 1), "timestamps[0]"),
        ((None, "1m", 1), "timestamps"),
    ],
)
def test_is_ready_validates(args: tuple[Any, ...], field: str) -> None:
    with pytest.raises(ValidationError) as raised:
        is_ready(*args)
    assert raised.value.field == field


def test_gap_is_a_value() -> None:
    gap = Gap(T0, T0 + MINUTE, 2)
    assert (gap.start, gap.end, gap.count) == (T0, T0 + MINUTE, 2)
    assert gap == Gap(start=T0, end=T0 + MINUTE, count=2)
    assert hash(gap) == hash(Gap(T0, T0 + MINUTE, 2))
    with pytest.raises(AttributeError):
        gap.count = 3  # type: ignore[misc]

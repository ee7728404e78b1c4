"""Series health on a real server, sync and asyncio: ``get_candle_timestamps``, ``find_gaps``, ``is_ready``.

Each example writes a series through ``add_candles_if_newer``, then adds
duplicate members at some of its timestamps with a raw ZADD of another member at
the same score (what a non-atomic Node writer leaves), and compares the cache's
answers with a plain-Python model that walks every boundary one by one.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import redis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from livermore_cache import Gap, ValidationError, candle_key
from livermore_cache.candles import Candle, encode_candle
from tests.support.builders import unified
from tests.support.constants import EXCHANGE, MINUTE, SYMBOL, T0, TIMEFRAME_MINUTES, USER
from tests.support.models import model_gaps, model_ready

STEPS = {t: TIMEFRAME_MINUTES[t] * MINUTE for t in ("1m", "5m", "15m", "1h", "4h", "1d")}
HEALTH = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


# ---- the model: every boundary, one at a time -------------------------------------------------------------------


def model_timestamps(stamps: list[int], start: int, end: int) -> list[int]:
    return sorted({t for t in stamps if start <= t <= end})


def key_of(timeframe: str) -> str:
    return candle_key(USER, EXCHANGE, SYMBOL, timeframe)


def write_series(cache: Any, r: redis.Redis, timeframe: str, stamps: list[int], duplicates: dict[int, int]) -> None:
    """The candles through the cache's versioned write, then ``duplicates[t]`` more members at score t, raw.

    A stamp off the timeframe's boundaries is one the cache refuses to write: such a
    member can only come from another writer, so it is added raw (ZADD), as one.
    """
    r.delete(key_of(timeframe))
    on_boundary = [t for t in stamps if t % STEPS[timeframe] == 0]
    if on_boundary:
        candles = [unified(t, 1, timeframe=timeframe) for t in on_boundary]
        assert cache.add_candles_if_newer(USER, EXCHANGE, candles) == [True] * len(candles)
    for t in stamps:
        if t % STEPS[timeframe]:
            assert r.zadd(key_of(timeframe), {encode_candle(unified(t, 1, timeframe=timeframe)): t}) == 1
    for t, extra in duplicates.items():
        for i in range(extra):
            member = encode_candle(
                Candle(t, 42000.0, 42001.0, 41999.0, 42000.0 + i + 1, 1.5, SYMBOL, timeframe)
            )  # another member (its close differs), the same score: a non-atomic writer's leftover
            assert r.zadd(key_of(timeframe), {member: t}) == 1


@st.composite
def series(draw: st.DrawFn) -> tuple[str, list[int], dict[int, int]]:
    """A timeframe, distinct timestamps (mostly boundaries, with holes, some off a boundary), duplicates."""
    timeframe = draw(st.sampled_from(list(STEPS)))
    step = STEPS[timeframe]
    slots = draw(st.lists(st.integers(-2, 40), unique=True, max_size=30))
    stamps = []
    for slot in slots:
        offset = draw(st.one_of(st.just(0), st.just(0), st.just(0), st.integers(1, step - 1)))
        stamps.append(T0 + slot * step + offset)
    stamps = sorted(set(stamps))
    at = draw(st.lists(st.sampled_from(stamps), unique=True, max_size=5)) if stamps else []
    duplicates = {t: draw(st.integers(1, 3)) for t in at}
    return timeframe, draw(st.permutations(stamps)), duplicates


def edge(step: int) -> st.SearchStrategy[int]:
    """An end of a range: a boundary near the series, or off one by some milliseconds."""
    return st.builds(
        lambda slot, offset: T0 + slot * step + offset,
        st.integers(-5, 45),
        st.one_of(st.just(0), st.integers(-step + 1, step - 1)),
    )


# ---- against the model -------------------------------------------------------------------------------------------


@HEALTH
@given(st.data())
def test_timestamps_and_gaps_match_the_model(cache: Any, r: redis.Redis, data: st.DataObject) -> None:
    timeframe, stamps, duplicates = data.draw(series())
    step = STEPS[timeframe]
    start, end = sorted((data.draw(edge(step)), data.draw(edge(step))))
    write_series(cache, r, timeframe, stamps, duplicates)
    assert cache.get_candle_count(USER, EXCHANGE, SYMBOL, timeframe) == len(stamps) + sum(duplicates.values())

    got = cache.get_candle_timestamps(USER, EXCHANGE, SYMBOL, timeframe, start, end)
    assert got == model_timestamps(stamps, start, end)
    assert all(type(t) is int for t in got)
    assert got == sorted(set(got)), "distinct, ascending"
    assert all(start <= t <= end for t in got)

    assert cache.find_gaps(USER, EXCHANGE, SYMBOL, timeframe, start, end) == model_gaps(stamps, step, start, end)


@HEALTH
@given(series(), st.integers(1, 25))
def test_is_ready_matches_the_model(
    cache: Any, r: redis.Redis, drawn: tuple[str, list[int], dict[int, int]], count: int
) -> None:
    timeframe, stamps, duplicates = drawn
    write_series(cache, r, timeframe, stamps, duplicates)
    assert cache.is_ready(USER, EXCHANGE, SYMBOL, timeframe, count) is model_ready(stamps, STEPS[timeframe], count)


@HEALTH
@given(st.sampled_from(list(STEPS)), st.integers(1, 30), st.integers(0, 29), st.integers(1, 40))
def test_a_complete_run_with_duplicates_is_ready(
    cache: Any, r: redis.Redis, timeframe: str, length: int, hole: int, count: int
) -> None:
    """A run of ``length`` boundaries, one hole among them (or none when ``hole >= length``), duplicates everywhere."""
    step = STEPS[timeframe]
    stamps = [T0 + k * step for k in range(length) if k != hole]
    write_series(cache, r, timeframe, stamps, dict.fromkeys(stamps, 2))
    if hole >= length:  # no hole: the whole run
        newest_complete = length
    elif hole == length - 1:  # the newest one missing: the rest is a run
        newest_complete = length - 1
    else:  # the run above the hole
        newest_complete = length - 1 - hole
    assert cache.is_ready(USER, EXCHANGE, SYMBOL, timeframe, count) is (count <= newest_complete)
    assert cache.is_ready(USER, EXCHANGE, SYMBOL, timeframe, count) is model_ready(stamps, step, count)


# ---- examples ----------------------------------------------------------------------------------------------------


def test_an_empty_series(cache: Any) -> None:
    assert cache.get_candle_timestamps(USER, EXCHANGE, SYMBOL, "1m", T0, T0 + 10 * MINUTE) == []
    assert cache.find_gaps(USER, EXCHANGE, SYMBOL, "1m", T0, T0 + 10 * MINUTE) == [Gap(T0, T0 + 10 * MINUTE, 11)]
    assert cache.find_gaps(USER, EXCHANGE, SYMBOL, "1m", T0 + 1, T0 + MINUTE - 1) == [], "no boundary in the range"
    assert cache.is_ready(USER, EXCHANGE, SYMBOL, "1m", 1) is False
    assert cache.is_ready(USER, EXCHANGE, SYMBOL, "1m") is False


def test_range_ends_off_a_boundary(cache: Any, r: redis.Redis) -> None:
    stamps = [T0 + k * 5 * MINUTE for k in (0, 1, 3, 4, 7)]
    write_series(cache, r, "5m", stamps, {})
    start, end = T0 + 1, T0 + 35 * MINUTE - 1  # boundaries inside: T0+5m ... T0+30m
    assert cache.get_candle_timestamps(USER, EXCHANGE, SYMBOL, "5m", start, end) == stamps[1:4]
    assert cache.find_gaps(USER, EXCHANGE, SYMBOL, "5m", start, end) == [
        Gap(T0 + 10 * MINUTE, T0 + 10 * MINUTE, 1),
        Gap(T0 + 25 * MINUTE, T0 + 30 * MINUTE, 2),
    ]
    # both ends included
    assert cache.get_candle_timestamps(USER, EXCHANGE, SYMBOL, "5m", stamps[1], stamps[3]) == stamps[1:4]
    assert cache.get_candle_timestamps(USER, EXCHANGE, SYMBOL, "5m", stamps[4], stamps[4]) == [stamps[4]]
    assert cache.get_candle_timestamps(USER, EXCHANGE, SYMBOL, "5m", stamps[4] + 1, stamps[4] + 2) == []


def test_a_timestamp_off_a_boundary_covers_none(cache: Any, r: redis.Redis) -> None:
    stamps = [T0, T0 + MINUTE + 1, T0 + 2 * MINUTE]  # the middle one is a millisecond late
    write_series(cache, r, "1m", stamps, {T0 + MINUTE + 1: 2})
    assert cache.get_candle_timestamps(USER, EXCHANGE, SYMBOL, "1m", T0, T0 + 2 * MINUTE) == stamps
    assert cache.find_gaps(USER, EXCHANGE, SYMBOL, "1m", T0, T0 + 2 * MINUTE) == [Gap(T0 + MINUTE, T0 + MINUTE, 1)]
    assert cache.is_ready(USER, EXCHANGE, SYMBOL, "1m", 1) is True
    assert cache.is_ready(USER, EXCHANGE, SYMBOL, "1m", 2) is False


def test_duplicates_beyond_a_page_at_the_newest_timestamps(cache: Any, r: redis.Redis) -> None:
    """``is_ready`` reads newest-first in pages of count + 16 members: 50 duplicates take several pages."""
    stamps = [T0 + k * MINUTE for k in range(5)]
    write_series(cache, r, "1m", stamps, {stamps[-1]: 50, stamps[-2]: 30})
    assert cache.get_candle_count(USER, EXCHANGE, SYMBOL, "1m") == 85
    for count in range(1, 6):
        assert cache.is_ready(USER, EXCHANGE, SYMBOL, "1m", count) is True
    assert cache.is_ready(USER, EXCHANGE, SYMBOL, "1m", 6) is False
    assert cache.get_candle_timestamps(USER, EXCHANGE, SYMBOL, "1m", 0, 2**53 - 1) == stamps


def test_a_ready_series_need_not_be_recent(cache: Any, r: redis.Redis) -> None:
    stamps = [k * 3_600_000 for k in range(1, 61)]  # January 1970
    write_series(cache, r, "1h", stamps, {})
    assert cache.is_ready(USER, EXCHANGE, SYMBOL, "1h") is True
    assert cache.is_ready(USER, EXCHANGE, SYMBOL, "1h", 61) is False
    assert cache.find_gaps(USER, EXCHANGE, SYMBOL, "1h", 0, 61 * 3_600_000) == [
        Gap(0, 0, 1),
        Gap(61 * 3_600_000, 61 * 3_600_000, 1),
    ]


def test_only_the_series_asked_for_counts(cache: Any, r: redis.Redis) -> None:
    write_series(cache, r, "1m", [T0], {})
    write_series(cache, r, "5m", [T0 + 5 * MINUTE], {})
    assert cache.get_candle_timestamps(USER, EXCHANGE, SYMBOL, "1m", 0, 2**53 - 1) == [T0]
    assert cache.get_candle_timestamps(USER, EXCHANGE, SYMBOL, "5m", 0, 2**53 - 1) == [T0 + 5 * MINUTE]
    assert cache.get_candle_timestamps(USER, EXCHANGE, "ETH-USD", "1m", 0, 2**53 - 1) == []


@pytest.mark.parametrize(
    ("call", "field"),
    [
        (lambda c: c.find_gaps(USER, EXCHANGE, SYMBOL, "1m", T0, T0 - 1), "end"),
        (lambda c: c.find_gaps(USER, EXCHANGE, SYMBOL, "1m", -1, T0), "start"),
        (lambda c: c.find_gaps(USER, EXCHANGE, SYMBOL, "2m", T0, T0), "timeframe"),
        (lambda c: c.get_candle_timestamps(USER, EXCHANGE, SYMBOL, "1m", float(T0), T0), "start"),
        (lambda c: c.get_candle_timestamps(USER, EXCHANGE, SYMBOL, "1m", T0, "x"), "end"),
        (lambda c: c.is_ready(USER, EXCHANGE, SYMBOL, "1m", 0), "count"),
        (lambda c: c.is_ready(USER, EXCHANGE, SYMBOL, "1m", True), "count"),
        (lambda c: c.is_ready(USER, EXCHANGE, "BAD SYMBOL", "1m"), "symbol"),
    ],
)
def test_bad_arguments_are_refused(cache: Any, call: Callable[[Any], Any], field: str) -> None:
    with pytest.raises(ValidationError) as raised:
        call(cache)
    assert raised.value.field == field


def test_a_non_integral_score_is_no_open_time(cache: Any, r: redis.Redis) -> None:
    """A foreign score such as T0 + 60000.25 is read as no open time (not truncated to the boundary T0 + 60000)."""
    key = key_of("1m")
    write_series(cache, r, "1m", [T0 + MINUTE], {})
    r.zadd(key, {b"stray-a": T0 + 0.5, b"stray-b": T0 + MINUTE + 0.25})
    got = cache.get_candle_timestamps(USER, EXCHANGE, SYMBOL, "1m", T0, T0 + 2 * MINUTE)
    assert got == sorted(set(got)), "distinct"
    assert T0 not in got, "no candle opens at T0: only a score of T0 + 0.5 is there"
    assert got == [T0 + MINUTE]
    assert cache.find_gaps(USER, EXCHANGE, SYMBOL, "1m", T0, T0 + MINUTE) == [Gap(T0, T0, 1)]
    assert cache.is_ready(USER, EXCHANGE, SYMBOL, "1m", 1) is False, "the newest score, T0 + 60000.25, is no open time"
    assert cache.add_candles_if_newer(USER, EXCHANGE, [unified(T0 + 2 * MINUTE, 1)]) == [True]
    assert cache.is_ready(USER, EXCHANGE, SYMBOL, "1m", 1) is True
    assert cache.is_ready(USER, EXCHANGE, SYMBOL, "1m", 2) is False, "a stray among the newest: not ready"
    r.zadd(key, {b"stray-c": T0 + 2 * MINUTE + 0.5})  # the newest score is no open time again
    assert cache.is_ready(USER, EXCHANGE, SYMBOL, "1m", 1) is False
    r.zadd(key, {b"stray-c": "+inf"})
    assert cache.is_ready(USER, EXCHANGE, SYMBOL, "1m", 1) is False
    assert cache.get_candle_timestamps(USER, EXCHANGE, SYMBOL, "1m", 0, 2**53 - 1) == [T0 + MINUTE, T0 + 2 * MINUTE]

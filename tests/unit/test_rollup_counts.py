"""The roll-up run's count rounds (``rollups.RollupRun``, no I/O): which periods it counts, and when.

A period is counted only once every due period inside it (same source series) is known to be
complete; an incomplete or failed inner period settles every period around it. The replies
are handed in as the write loop would hand them (``ReadPlan.results``/``partial_results``).
"""

from __future__ import annotations

from typing import Any

from hypothesis import given
from hypothesis import strategies as st
from redis.exceptions import ResponseError

from livermore_cache import candle_key, timeframe_ms
from livermore_cache.plans.candles import plan_write
from livermore_cache.rollups import Period, RangeCall, ReadPlan, RollupRun, validate_rollups
from tests.support.builders import unified
from tests.support.constants import EXCHANGE, MINUTE, SYMBOL, T0, USER

FIVE = 5 * MINUTE
HOUR = 60 * MINUTE
CHAIN = {"5m": ["15m", "1h", "4h"]}


def run_after(slots: list[int], rollups: dict[str, list[str]] = CHAIN) -> RollupRun:
    """The run that follows a write of 5m candles at ``T0 + slot * 5 min``, every one stored."""
    candles = [unified(T0 + slot * FIVE, 1, timeframe="5m") for slot in slots]
    plan = plan_write(USER, EXCHANGE, candles, versioned=True, ttl_seconds=None, max_candles=100)
    return RollupRun(validate_rollups(rollups), plan, [True] * len(candles), ttl_seconds=None, max_candles=100)


def counted(plan: ReadPlan | None) -> list[tuple[str, int, int]]:
    """(command, low, high) of each call of a count round."""
    assert plan is not None
    calls: list[Any] = list(plan.calls)
    assert all(isinstance(call, RangeCall) and call.count for call in calls)
    return [(call.command("", b"", by_sha=True)[0], call.low, call.high) for call in calls]


def answer(run: RollupRun, plan: ReadPlan, replies: list[Any]) -> None:
    plan.results(replies)
    run.take_counts(plan, {})


def zcount(low: int, minutes: int) -> tuple[str, int, int]:
    return ("ZCOUNT", low, low + minutes * MINUTE - 1)


def test_only_the_smallest_period_is_counted_first() -> None:
    run = run_after([0])
    assert counted(run.source_reads()) == [zcount(T0, 15)]


def test_an_incomplete_inner_period_settles_every_period_around_it() -> None:
    run = run_after([0])
    plan = run.source_reads()
    assert plan is not None
    answer(run, plan, [2])  # two of the 15m period's three 5m candles
    assert run.source_members() is None
    assert run.target_writes() is None
    assert run.source_reads() is None  # the 1h and 4h periods were never counted: the run is over
    assert run.errors == {}


def test_complete_periods_are_counted_one_nesting_level_at_a_time_before_any_read() -> None:
    run = run_after([0])
    first = run.source_reads()
    assert first is not None
    answer(run, first, [3])
    assert run.source_members() is None  # a count is still owed
    second = run.source_reads()
    assert counted(second) == [zcount(T0, 60)]
    assert second is not None
    answer(run, second, [12])
    third = run.source_reads()
    assert counted(third) == [zcount(T0, 240)]
    assert third is not None
    answer(run, third, [47])  # the 4h period misses one
    reads = run.source_members()
    assert reads is not None
    # one read of the merged range of the complete 15m and 1h periods, newest first
    assert [call.command("", b"", by_sha=True) for call in reads.calls] == [
        ("ZREVRANGEBYSCORE", candle_key(USER, EXCHANGE, SYMBOL, "5m"), b"%d" % (T0 + HOUR - 1), b"%d" % T0)
    ]


def test_a_period_waits_for_every_inner_period_and_any_incomplete_one_settles_it() -> None:
    # 5m candles in two 15m periods of the first hour: the 1h period waits on both
    run = run_after([0, 5])
    first = run.source_reads()
    assert counted(first) == [zcount(T0, 15), zcount(T0 + 15 * MINUTE, 15)]
    assert first is not None
    answer(run, first, [3, 1])
    assert run.source_reads() is None  # the second 15m period is incomplete: so are its 1h and 4h


def test_every_inner_period_complete_releases_the_outer_one() -> None:
    run = run_after([0, 5])
    first = run.source_reads()
    assert first is not None
    answer(run, first, [3, 3])
    assert counted(run.source_reads()) == [zcount(T0, 60)]


def test_periods_in_other_series_or_outside_do_not_hold_each_other_off() -> None:
    # a 15m period of the second hour is inside no 1h period of the first; another symbol is another series
    candles = [
        unified(T0, 1, timeframe="5m"),
        unified(T0 + HOUR, 1, timeframe="5m"),
        unified(T0, 1, timeframe="5m", symbol="ETH-USD"),
    ]
    plan = plan_write(USER, EXCHANGE, candles, versioned=True, ttl_seconds=None, max_candles=100)
    run = RollupRun(validate_rollups({"5m": ["15m", "1h"]}), plan, [True] * 3, ttl_seconds=None, max_candles=100)
    first = run.source_reads()
    assert first is not None
    assert sorted((call.key, call.low) for call in first.calls if isinstance(call, RangeCall)) == sorted(
        [
            (candle_key(USER, EXCHANGE, SYMBOL, "5m"), T0),
            (candle_key(USER, EXCHANGE, SYMBOL, "5m"), T0 + HOUR),
            (candle_key(USER, EXCHANGE, "ETH-USD", "5m"), T0),
        ]
    )
    assert all(call.high - call.low == 15 * MINUTE - 1 for call in first.calls if isinstance(call, RangeCall))


def test_a_period_across_a_larger_ones_boundary_holds_it_off_not() -> None:
    """1h -> 4h, 6h: the 4h period from 04:00 lies across the 6h periods' 06:00 boundary, so both are counted
    at once (a missing 07:00 candle would not make 00:00-06:00 incomplete)."""
    candle = unified(T0 + 5 * HOUR, 1, timeframe="1h")
    plan = plan_write(USER, EXCHANGE, [candle], versioned=True, ttl_seconds=None, max_candles=100)
    run = RollupRun(validate_rollups({"1h": ["4h", "6h"]}), plan, [True], ttl_seconds=None, max_candles=100)
    assert counted(run.source_reads()) == [zcount(T0 + 4 * HOUR, 240), zcount(T0, 360)]


def test_a_failed_count_fails_every_period_waiting_around_it() -> None:
    run = run_after([0])
    plan = run.source_reads()
    assert plan is not None
    error = ResponseError("WRONGTYPE Operation against a key holding the wrong kind of value")
    source = candle_key(USER, EXCHANGE, SYMBOL, "5m")
    plan.partial_results([None])
    run.take_counts(plan, {source: error})
    assert run.source_reads() is None
    assert run.errors == {candle_key(USER, EXCHANGE, SYMBOL, tf): error for tf in ("15m", "1h", "4h")}


MAPPINGS = [
    CHAIN,
    {"5m": ["15m", "30m", "2h", "6h", "1d"]},
    {"1m": ["5m", "15m"], "5m": ["1h"]},  # the 1h periods read 5m candles: none waits on a 1m series' period
    {"1h": ["4h", "6h", "1d"]},  # a 4h period may lie across two 6h ones: it holds neither off
]
DAY_OF_5M = 288


@given(
    mapping=st.sampled_from(MAPPINGS),
    written=st.lists(st.integers(0, DAY_OF_5M - 1), min_size=1, max_size=12),
    run=st.tuples(st.integers(0, DAY_OF_5M - 1), st.integers(0, DAY_OF_5M)),
    holes=st.sets(st.integers(0, DAY_OF_5M - 1), max_size=4),
    doubled=st.sets(st.integers(0, DAY_OF_5M - 1), max_size=8),
)
def test_the_counts_keep_every_complete_period_and_only_periods_that_count_enough(
    mapping: dict[str, list[str]], written: list[int], run: tuple[int, int], holes: set[int], doubled: set[int]
) -> None:
    """Against a model key: the periods left for reading after every count round include each period whose
    every source slot is stored, and only periods whose ZCOUNT reaches their factor (a duplicate member at a
    timestamp, as a non-atomic writer leaves, counts twice, as ZCOUNT counts it)."""
    source = min(mapping, key=timeframe_ms)
    step = timeframe_ms(source)
    stored = set(range(run[0], run[0] + run[1])) - holes  # a stretch of stored candles, with a few missing
    held = stored | set(written)  # what the key holds once the written candles are stored
    members = {T0 + slot * step: 2 if slot in doubled else 1 for slot in held}

    def count(low: int, high: int) -> int:
        return sum(n for stamp, n in members.items() if low <= stamp <= high)

    candles = [unified(T0 + slot * step, 1, timeframe=source) for slot in dict.fromkeys(written)]
    plan = plan_write(USER, EXCHANGE, candles, versioned=True, ttl_seconds=None, max_candles=1000)
    edges = validate_rollups(mapping)
    rollup = RollupRun(edges, plan, [True] * len(candles), ttl_seconds=None, max_candles=1000)
    counted: list[RangeCall] = []
    while rollup.source_members() is None:  # every count round of this round, until the reads
        counts = rollup.source_reads()
        if counts is None:
            break
        calls = [call for call in counts.calls if isinstance(call, RangeCall)]
        counted += calls
        counts.results([count(call.low, call.high) for call in calls])
        rollup.take_counts(counts, {})
    kept = {period for periods in rollup._complete.values() for period in periods}
    due = {
        Period(candle.symbol, edge, candle.timestamp // timeframe_ms(edge.target) * timeframe_ms(edge.target))
        for candle in candles
        for edge in edges
        if edge.source == source
    }
    for period in due:
        slots = range(period.boundary, period.last + 1, step)
        if all(stamp in members for stamp in slots):
            assert period in kept, period
    for period in kept:
        assert count(period.boundary, period.last) >= period.edge.factor
    assert len(counted) == len({(call.low, call.high) for call in counted})  # no period counted twice
    assert rollup.errors == {}

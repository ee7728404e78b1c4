"""The health of a candle series, from its candles' open times alone: pure functions, no I/O.

Boundaries are ``timeframes``': the multiples of a timeframe's length since the epoch.
A candle "is there" for a boundary when one of the timestamps equals that
boundary exactly. Timestamps may repeat (several members at one timestamp, left
by a non-atomic writer: they count once) and come in any order. A timestamp that
is not a boundary of the timeframe covers no boundary: ``find_gaps`` reports its
boundary as missing, and ``is_ready`` is False while one is among the newest.
The wall clock plays no part anywhere.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from .errors import ValidationError
from .timeframes import candle_open_time, check_ms, timeframe_ms

__all__ = ["Gap", "candle_open_time", "find_gaps", "is_ready", "timeframe_ms"]


@dataclass(frozen=True, slots=True)
class Gap:
    """A run of consecutive missing candles: the first and last missing open time, and how many."""

    start: int
    end: int
    count: int


def _timestamps(values: Iterable[int]) -> set[int]:
    """The distinct timestamps, each checked (``ValidationError`` naming ``timestamps[i]``)."""
    if isinstance(values, str | bytes) or not isinstance(values, Iterable):
        raise ValidationError("timestamps", values, "must be an iterable of ints")
    seen: set[int] = set()
    for i, value in enumerate(values):
        seen.add(check_ms(f"timestamps[{i}]", value))
    return seen


def find_gaps(timestamps: Iterable[int], timeframe: str, start: int, end: int) -> list[Gap]:
    """The runs of missing candles among the boundaries b with ``start <= b <= end``, oldest first.

    ``start`` and ``end`` need not be boundaries: the range covers the boundaries
    inside it (the first at or after ``start``, the last at or before ``end``), so
    a range holding no boundary has no gaps. Timestamps outside the range are ignored.
    """
    step = timeframe_ms(timeframe)
    first, last = check_ms("start", start), check_ms("end", end)
    if last < first:
        raise ValidationError("end", end, f"must be >= start ({start})")
    present = sorted(t for t in _timestamps(timestamps) if t % step == 0 and first <= t <= last)
    gaps: list[Gap] = []
    expected = -(-first // step) * step  # the next boundary that should be there
    for t in [*present, last // step * step + step]:  # a sentinel one past the last boundary
        if t > expected:
            gaps.append(Gap(expected, t - step, (t - expected) // step))
        expected = t + step
    return gaps


def is_ready(timestamps: Iterable[int], timeframe: str, count: int = 60) -> bool:
    """True when the newest ``count`` distinct timestamps are ``count`` consecutive boundaries of ``timeframe``.

    Fewer than ``count`` distinct timestamps: False. Nothing is compared with the
    current time: a series whose newest candles are complete but old is ready.
    """
    step = timeframe_ms(timeframe)
    if type(count) is not int or count < 1:
        raise ValidationError("count", count, "must be an int >= 1")
    newest = sorted(_timestamps(timestamps), reverse=True)[:count]
    if len(newest) < count or any(t % step for t in newest):
        return False
    # count distinct boundaries, descending: consecutive exactly when they span count - 1 steps
    return newest[0] - newest[-1] == (count - 1) * step

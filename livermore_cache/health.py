"""The health of a candle series, from its candles' open times alone: pure functions, no I/O.

A timeframe's boundaries are the multiples of its length in milliseconds since
the Unix epoch, so every one of them lies on a UTC boundary: ``1d`` candles open
at 00:00 UTC, ``4h`` at 00:00, 04:00, ... UTC (a UTC day is a whole number of
every timeframe, and Unix time has no leap seconds).

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
from typing import Final

from .errors import ValidationError
from .models import MAX_SEQUENCE_NUM, Timeframe, check_timeframe

__all__ = ["Gap", "candle_open_time", "find_gaps", "is_ready", "timeframe_ms"]

_MINUTE: Final = 60_000
_HOUR: Final = 60 * _MINUTE
_TIMEFRAME_MS: Final[dict[str, int]] = {
    Timeframe.M1.value: _MINUTE,
    Timeframe.M5.value: 5 * _MINUTE,
    Timeframe.M15.value: 15 * _MINUTE,
    Timeframe.M30.value: 30 * _MINUTE,
    Timeframe.H1.value: _HOUR,
    Timeframe.H2.value: 2 * _HOUR,
    Timeframe.H4.value: 4 * _HOUR,
    Timeframe.H6.value: 6 * _HOUR,
    Timeframe.D1.value: 24 * _HOUR,
}
_MS_RULE: Final = f"must be an int (milliseconds since the epoch) from 0 to {MAX_SEQUENCE_NUM}"


@dataclass(frozen=True, slots=True)
class Gap:
    """A run of consecutive missing candles: the first and last missing open time, and how many."""

    start: int
    end: int
    count: int


def timeframe_ms(timeframe: str) -> int:
    """The length of one candle of ``timeframe`` (``1m`` ... ``1d``) in milliseconds."""
    check_timeframe("timeframe", timeframe)
    return _TIMEFRAME_MS[str(timeframe)]


def _ms(field: str, value: object) -> int:
    if type(value) is not int or not 0 <= value <= MAX_SEQUENCE_NUM:
        raise ValidationError(field, value, _MS_RULE)
    return value


def _timestamps(values: Iterable[int]) -> set[int]:
    """The distinct timestamps, each checked (``ValidationError`` naming ``timestamps[i]``)."""
    if isinstance(values, str | bytes) or not isinstance(values, Iterable):
        raise ValidationError("timestamps", values, "must be an iterable of ints")
    seen: set[int] = set()
    for i, value in enumerate(values):
        seen.add(_ms(f"timestamps[{i}]", value))
    return seen


def candle_open_time(ts_ms: int, timeframe: str) -> int:
    """The open time of the ``timeframe`` candle that ``ts_ms`` falls in: ``ts_ms`` floored to a boundary."""
    step = timeframe_ms(timeframe)
    return _ms("ts_ms", ts_ms) // step * step


def find_gaps(timestamps: Iterable[int], timeframe: str, start: int, end: int) -> list[Gap]:
    """The runs of missing candles among the boundaries b with ``start <= b <= end``, oldest first.

    ``start`` and ``end`` need not be boundaries: the range covers the boundaries
    inside it (the first at or after ``start``, the last at or before ``end``), so
    a range holding no boundary has no gaps. Timestamps outside the range are ignored.
    """
    step = timeframe_ms(timeframe)
    first, last = _ms("start", start), _ms("end", end)
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

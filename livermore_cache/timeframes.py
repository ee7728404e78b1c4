"""Candle timeframes: the names the Node service uses, their lengths, and open times.

A timeframe's boundaries are the multiples of its length in milliseconds since
the Unix epoch, so every one of them lies on a UTC boundary: ``1d`` candles open
at 00:00 UTC, ``4h`` at 00:00, 04:00, ... UTC (a UTC day is a whole number of
every timeframe, and Unix time has no leap seconds).
"""

from __future__ import annotations

from enum import StrEnum
from typing import Final, Literal, TypeAlias

from .errors import ValidationError
from .limits import MAX_SAFE_INTEGER

__all__ = [
    "TIMEFRAME_VALUES",
    "Timeframe",
    "TimeframeLike",
    "TimeframeName",
    "candle_open_time",
    "check_timeframe",
    "timeframe_ms",
]


class Timeframe(StrEnum):
    """A candle interval, spelled as the Node service spells it."""

    M1 = "1m"
    M5 = "5m"
    M15 = "15m"
    M30 = "30m"
    H1 = "1h"
    H2 = "2h"
    H4 = "4h"
    H6 = "6h"
    D1 = "1d"


TimeframeName: TypeAlias = Literal["1m", "5m", "15m", "30m", "1h", "2h", "4h", "6h", "1d"]
"""A timeframe spelled as a string: what a type checker accepts where a ``Timeframe`` is asked for."""

TimeframeLike: TypeAlias = Timeframe | TimeframeName
"""The type of every ``timeframe`` parameter: a ``Timeframe`` member or its string (``"60m"`` is a type error)."""

TIMEFRAME_VALUES: Final = frozenset(t.value for t in Timeframe)
"""Every timeframe's string value."""

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
_TIMEFRAME_RULE: Final = f"must be one of {', '.join(t.value for t in Timeframe)}"
_MS_RULE: Final = f"must be an int (milliseconds since the epoch) from 0 to {MAX_SAFE_INTEGER}"


def check_timeframe(field: str, value: object) -> None:
    """Raise ``ValidationError`` naming ``field`` unless ``value`` is one of ``Timeframe``."""
    if not (isinstance(value, str) and value in TIMEFRAME_VALUES):
        raise ValidationError(field, value, _TIMEFRAME_RULE)


def timeframe_ms(timeframe: str) -> int:
    """The length of one candle of ``timeframe`` (``1m`` ... ``1d``) in milliseconds."""
    check_timeframe("timeframe", timeframe)
    return _TIMEFRAME_MS[str(timeframe)]


def check_ms(field: str, value: object) -> int:
    """``value`` when it is an int from 0 to 2**53 - 1 (milliseconds since the epoch); else ``ValidationError``."""
    if type(value) is not int or not 0 <= value <= MAX_SAFE_INTEGER:
        raise ValidationError(field, value, _MS_RULE)
    return value


def candle_open_time(ts_ms: int, timeframe: str) -> int:
    """The open time of the ``timeframe`` candle that holds the instant ``ts_ms`` (a UTC boundary)."""
    length = timeframe_ms(timeframe)
    return check_ms("ts_ms", ts_ms) // length * length

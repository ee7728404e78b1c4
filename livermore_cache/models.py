"""Candle models: msgspec Structs whose JSON is the Node service's JSON.

Attributes are snake_case; the encoded JSON uses the Node service's camelCase
names, in its field order, and leaves unset optional fields out (never null).
Every Struct validates itself in ``__post_init__``, which msgspec runs both on
construction and on decoding, so an invalid candle never exists.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from enum import StrEnum
from typing import Any, Final

import msgspec

from .errors import ValidationError

__all__ = ["MAX_SEQUENCE_NUM", "Candle", "Timeframe", "UnifiedCandle"]

MAX_SEQUENCE_NUM: Final = 2**53 - 1
"""The largest sequence number: every integer up to it is exact as a double (Lua, JavaScript)."""


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


TIMEFRAME_VALUES: Final = frozenset(t.value for t in Timeframe)


def check_timeframe(field: str, value: object) -> None:
    if not isinstance(value, str) or value not in TIMEFRAME_VALUES:
        raise ValidationError(field, value, f"must be one of {', '.join(t.value for t in Timeframe)}")


_NUMBER_TYPES: Final = (int, float)
_INF: Final = math.inf


def _is_number(value: object) -> bool:
    """A float, or an int that a double holds exactly (as JSON readers in Lua and JavaScript will)."""
    if isinstance(value, bool) or not isinstance(value, _NUMBER_TYPES):
        return False
    return isinstance(value, float) or abs(value) <= MAX_SEQUENCE_NUM


def _check_price(field: str, value: object) -> None:
    if not _is_number(value) or not (0 < value < _INF):  # type: ignore[operator]
        raise ValidationError(field, value, "must be a finite number > 0 (an int at most 2**53 - 1)")


def _check_text(field: str, value: object) -> None:
    if not isinstance(value, str) or not value:
        raise ValidationError(field, value, "must be a non-empty string")


def _plain_fields_valid(candle: Candle) -> bool:
    """The common case in one expression (exact float types); anything else takes the slow path."""
    o, h, lo, c, v = candle.open, candle.high, candle.low, candle.close, candle.volume
    return (
        type(candle.timestamp) is int
        and 0 < candle.timestamp <= MAX_SEQUENCE_NUM
        and type(o) is float
        and type(h) is float
        and type(lo) is float
        and type(c) is float
        and type(v) is float
        and 0 < o < _INF
        and 0 < h < _INF
        and 0 < lo < _INF
        and 0 < c < _INF
        and 0 <= v < _INF
        and type(candle.symbol) is str
        and candle.symbol != ""
        and type(candle.timeframe) in _FAST_TEXT
        and candle.timeframe in TIMEFRAME_VALUES
        and (candle.is_synthetic is None or type(candle.is_synthetic) is bool)
    )


_FAST_TEXT: Final = frozenset((str, Timeframe))


def _check_timestamp(field: str, value: object) -> None:
    if type(value) is not int or not 0 < value <= MAX_SEQUENCE_NUM:
        raise ValidationError(field, value, f"must be an int (milliseconds) from 1 to {MAX_SEQUENCE_NUM}")


def _check_volume(field: str, value: object) -> None:
    if not _is_number(value) or not (0 <= value < _INF):  # type: ignore[operator]
        raise ValidationError(field, value, "must be a finite number >= 0 (an int at most 2**53 - 1)")


def _check_optional_bool(field: str, value: object) -> None:
    if value is not None and type(value) is not bool:
        raise ValidationError(field, value, "must be a bool or None")


def _check_optional_text(field: str, value: object) -> None:
    if value is not None and not isinstance(value, str):
        raise ValidationError(field, value, "must be a string or None")


def _check_sequence(field: str, value: object) -> None:
    if value is not None and (type(value) is not int or not 0 <= value <= MAX_SEQUENCE_NUM):
        raise ValidationError(field, value, f"must be an int from 0 to {MAX_SEQUENCE_NUM} or None")


_FIELD_CHECKS: Final[dict[str, Callable[[str, object], None]]] = {
    "timestamp": _check_timestamp,
    "open": _check_price,
    "high": _check_price,
    "low": _check_price,
    "close": _check_price,
    "volume": _check_volume,
    "symbol": _check_text,
    "timeframe": check_timeframe,
    "is_synthetic": _check_optional_bool,
    "exchange": _check_text,
    "exchange_timestamp": _check_optional_text,
    "sequence_num": _check_sequence,
}


def _check_plain_fields(candle: Candle) -> None:
    """Every rule of ``Candle``, one by one: raises naming the first field that breaks one."""
    for name in Candle.__struct_fields__:
        _FIELD_CHECKS[name](name, getattr(candle, name))


class Candle(msgspec.Struct, omit_defaults=True, rename="camel"):
    """One OHLCV candle. ``timestamp`` is its open time in milliseconds since the epoch."""

    timestamp: int
    open: float
    high: float
    low: float
    close: float
    volume: float
    symbol: str
    timeframe: str
    """One of ``Timeframe`` (a ``Timeframe`` member or its string value)."""
    is_synthetic: bool | None = None

    def __post_init__(self) -> None:
        if not _plain_fields_valid(self):
            _check_plain_fields(self)

    def __setattr__(self, name: str, value: Any) -> None:
        """A change is checked like a new value, so a Candle is valid for as long as it exists."""
        check = _FIELD_CHECKS.get(name)
        if check is not None:
            check(name, value)
        super().__setattr__(name, value)


class UnifiedCandle(Candle, kw_only=True, omit_defaults=True, rename="camel"):
    """A candle as an exchange adapter delivers it, with the fields that version it."""

    exchange: str
    exchange_timestamp: str | None = None
    sequence_num: int | None = None

    def __post_init__(self) -> None:
        seq = self.sequence_num
        if (
            _plain_fields_valid(self)
            and type(self.exchange) is str
            and self.exchange != ""
            and (self.exchange_timestamp is None or type(self.exchange_timestamp) is str)
            and (seq is None or (type(seq) is int and 0 <= seq <= MAX_SEQUENCE_NUM))
        ):
            return
        for name in self.__struct_fields__:
            _FIELD_CHECKS[name](name, getattr(self, name))

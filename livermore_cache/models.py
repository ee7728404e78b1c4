"""Candle models: msgspec Structs whose JSON is the Node service's JSON.

Attributes are snake_case; the encoded JSON uses the Node service's camelCase
names, in its field order, and leaves unset optional fields out (never null).
Every Struct validates itself in ``__post_init__``, which msgspec runs both on
construction and on decoding, so an invalid candle never exists.
"""

from __future__ import annotations

import math
from enum import StrEnum
from typing import Final

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


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _check_price(field: str, value: object) -> None:
    if not _is_number(value) or not (0 < value < math.inf):  # type: ignore[operator]
        raise ValidationError(field, value, "must be a finite number > 0")


def _check_text(field: str, value: object) -> None:
    if not isinstance(value, str) or not value:
        raise ValidationError(field, value, "must be a non-empty string")


class Candle(msgspec.Struct, kw_only=True, omit_defaults=True, rename="camel"):
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
        ts = self.timestamp
        if type(ts) is not int or ts <= 0:
            raise ValidationError("timestamp", ts, "must be an int (milliseconds) > 0")
        _check_price("open", self.open)
        _check_price("high", self.high)
        _check_price("low", self.low)
        _check_price("close", self.close)
        volume = self.volume
        if not _is_number(volume) or not (0 <= volume < math.inf):
            raise ValidationError("volume", volume, "must be a finite number >= 0")
        _check_text("symbol", self.symbol)
        check_timeframe("timeframe", self.timeframe)
        synthetic = self.is_synthetic
        if synthetic is not None and type(synthetic) is not bool:
            raise ValidationError("is_synthetic", synthetic, "must be a bool or None")


class UnifiedCandle(Candle, kw_only=True, omit_defaults=True, rename="camel"):
    """A candle as an exchange adapter delivers it, with the fields that version it."""

    exchange: str
    exchange_timestamp: str | None = None
    sequence_num: int | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        _check_text("exchange", self.exchange)
        stamp = self.exchange_timestamp
        if stamp is not None and not isinstance(stamp, str):
            raise ValidationError("exchange_timestamp", stamp, "must be a string or None")
        seq = self.sequence_num
        if seq is not None and (type(seq) is not int or not 0 <= seq <= MAX_SEQUENCE_NUM):
            raise ValidationError("sequence_num", seq, f"must be an int from 0 to {MAX_SEQUENCE_NUM} or None")

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


# Every rule, once: a field's test as an expression of ``{v}``, and the words of its error.
# From this one table come the fast whole-candle test (one compiled expression,
# run on construction, decoding and before every write) and the per-field checks
# that name the first broken field (run when the fast test fails, and on assignment).
# (each test puts the common exact type first: ``type(x) is float`` costs less than isinstance)
_POSITIVE: Final = (
    "(type({v}) is float and 0 < {v} < INF or isinstance({v}, float) and 0 < {v} < INF"
    " or isinstance({v}, int) and not isinstance({v}, bool) and 0 < {v} <= MAX_SAFE)"
)
_NON_NEGATIVE: Final = (
    "(type({v}) is float and 0 <= {v} < INF or isinstance({v}, float) and 0 <= {v} < INF"
    " or isinstance({v}, int) and not isinstance({v}, bool) and 0 <= {v} <= MAX_SAFE)"
)
_TEXT: Final = '(type({v}) is str and {v} != "" or isinstance({v}, str) and {v} != "")'
_PRICE_RULE: Final = "must be a finite number > 0 (an int at most 2**53 - 1)"
_RULES: Final[dict[str, tuple[str, str]]] = {
    "timestamp": (
        "type({v}) is int and 0 < {v} <= MAX_SAFE",
        f"must be an int (milliseconds) from 1 to {MAX_SEQUENCE_NUM}",
    ),
    "open": (_POSITIVE, _PRICE_RULE),
    "high": (_POSITIVE, _PRICE_RULE),
    "low": (_POSITIVE, _PRICE_RULE),
    "close": (_POSITIVE, _PRICE_RULE),
    "volume": (_NON_NEGATIVE, "must be a finite number >= 0 (an int at most 2**53 - 1)"),
    "symbol": (_TEXT, "must be a non-empty string"),
    "timeframe": (
        "isinstance({v}, str) and {v} in TIMEFRAMES",
        f"must be one of {', '.join(t.value for t in Timeframe)}",
    ),
    "is_synthetic": ("({v} is None or type({v}) is bool)", "must be a bool or None"),
    "exchange": (_TEXT, "must be a non-empty string"),
    "exchange_timestamp": ("({v} is None or type({v}) is str or isinstance({v}, str))", "must be a string or None"),
    "sequence_num": (
        "({v} is None or type({v}) is int and 0 <= {v} <= MAX_SAFE)",
        f"must be an int from 0 to {MAX_SEQUENCE_NUM} or None",
    ),
}
_NAMES: Final = {"INF": math.inf, "MAX_SAFE": MAX_SEQUENCE_NUM, "TIMEFRAMES": TIMEFRAME_VALUES}


def _compile(source: str, name: str) -> Callable[..., Any]:
    namespace: dict[str, Any] = {}
    exec(compile(source, f"<livermore_cache.models rules: {name}>", "exec"), dict(_NAMES), namespace)
    return namespace[name]  # type: ignore[no-any-return]


def _whole_test(fields: tuple[str, ...]) -> Callable[[Any], bool]:
    """One expression over every field of a candle: True when each passes its rule."""
    body = " and ".join(_RULES[f][0].format(v=f"c.{f}") for f in fields)
    return _compile(f"def whole(c):\n    return {body}\n", "whole")


def _field_check(field: str) -> Callable[[str, object], None]:
    test, rule = _RULES[field]
    source = f"def check(field, v):\n    if not ({test.format(v='v')}):\n        raise Refused(field, v, {rule!r})\n"
    namespace: dict[str, Any] = {}
    exec(
        compile(source, f"<livermore_cache.models rules: {field}>", "exec"),
        {**_NAMES, "Refused": ValidationError},
        namespace,
    )
    return namespace["check"]  # type: ignore[no-any-return]


_FIELD_CHECKS: Final[dict[str, Callable[[str, object], None]]] = {name: _field_check(name) for name in _RULES}


def check_timeframe(field: str, value: object) -> None:
    _FIELD_CHECKS["timeframe"](field, value)


def _check_each(candle: Candle) -> None:
    """Every rule, field by field in order: raises naming the first field that breaks one."""
    for name in candle.__struct_fields__:
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
        if not _CANDLE_VALID(self):
            _check_each(self)

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
        if not _UNIFIED_VALID(self):
            _check_each(self)


_CANDLE_VALID: Final = _whole_test(Candle.__struct_fields__)
_UNIFIED_VALID: Final = _whole_test(UnifiedCandle.__struct_fields__)

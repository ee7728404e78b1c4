"""Candles and their JSON: msgspec Structs whose JSON is the Node service's, one encoder, one decoder.

Attributes are snake_case; the encoded JSON uses the Node service's camelCase
names, in its field order, and leaves unset optional fields out (never null).
Every Struct validates itself in ``__post_init__``, which msgspec runs both on
construction and on decoding, so an invalid candle never exists.

The decoding rule, the same for reads, backfill and subscriptions: a member is
decoded as the model asked for. Asked for ``UnifiedCandle`` (or a subclass), a
member that has no ``exchange`` field is in the plain Candle schema (written by
``add_candle`` here or ``addCandle`` in the Node service) and comes back as a
``Candle``, since it has no versioned fields to return. Any other member that
is not a valid candle of the model is refused: a read raises ``ValidationError``
naming the key, a subscriber counts the message as malformed.

One widening, for members the Node service's schema accepts: its
``sequenceNum`` is any non-negative integer *JavaScript number*, which it may
write as ``1e+21`` or ``9007199254740993``. Such a member is read with that
sequence as a Python int (exact up to 2**53 - 1; above, the double JavaScript
holds), and the script compares it as JavaScript does. A candle read that way
cannot be written back (writes refuse sequences above 2**53 - 1).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from typing import Any, Final, TypeVar

import msgspec

from .errors import ValidationError
from .limits import MAX_SAFE_INTEGER
from .timeframes import TIMEFRAME_VALUES, Timeframe

__all__ = ["Candle", "UnifiedCandle", "check_candle", "decode_candle", "decode_members", "encode_candle"]

CandleT = TypeVar("CandleT", bound="Candle")

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
        f"must be an int (milliseconds) from 1 to {MAX_SAFE_INTEGER}",
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
        f"must be an int from 0 to {MAX_SAFE_INTEGER} or None",
    ),
}
_NAMES: Final = {"INF": math.inf, "MAX_SAFE": MAX_SAFE_INTEGER, "TIMEFRAMES": TIMEFRAME_VALUES}


def _compile(source: str, name: str) -> Callable[..., Any]:
    namespace: dict[str, Any] = {}
    exec(compile(source, f"<livermore_cache.candles rules: {name}>", "exec"), dict(_NAMES), namespace)
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
        compile(source, f"<livermore_cache.candles rules: {field}>", "exec"),
        {**_NAMES, "Refused": ValidationError},
        namespace,
    )
    return namespace["check"]  # type: ignore[no-any-return]


_FIELD_CHECKS: Final[dict[str, Callable[[str, object], None]]] = {name: _field_check(name) for name in _RULES}


def _check_each(candle: Candle, fields: tuple[str, ...] | None = None) -> None:
    """Every rule, field by field in order: raises naming the first field that breaks one."""
    for name in candle.__struct_fields__ if fields is None else fields:
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
candle_valid: Final = _CANDLE_VALID
"""True when a candle passes every rule of ``Candle``'s fields (the fast test ``check_candle`` runs)."""
unified_valid: Final = _UNIFIED_VALID
"""True when a candle passes every rule of ``UnifiedCandle``'s fields."""


def check_candle(candle: Candle) -> None:
    """Every rule of the library's own fields, run by the library itself: a subclass that overrides
    ``__post_init__`` (or a value put in by ``msgspec.structs.force_setattr``) cannot skip it."""
    if isinstance(candle, UnifiedCandle):
        if not _UNIFIED_VALID(candle):
            _check_each(candle, UnifiedCandle.__struct_fields__)
    elif not _CANDLE_VALID(candle):
        _check_each(candle, Candle.__struct_fields__)


_ENCODER: Final = msgspec.json.Encoder()
_DECODERS: dict[type[Candle], msgspec.json.Decoder[Any]] = {
    Candle: msgspec.json.Decoder(Candle),
    UnifiedCandle: msgspec.json.Decoder(UnifiedCandle),
}


class _VersionFields(msgspec.Struct, rename="camel"):
    """Only a member's versioned fields: tells the plain Candle schema, and a wide sequence, from a broken member."""

    exchange: Any = msgspec.UNSET
    sequence_num: Any = msgspec.UNSET


_VERSION_PROBE: Final = msgspec.json.Decoder(_VersionFields)
_AS_DICT: Final = msgspec.json.Decoder(dict[str, Any])


def _javascript_integer(value: object) -> int | None:
    """A non-negative integer JavaScript number that ``UnifiedCandle`` refuses (a float form, or above 2**53 - 1)."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value < math.inf:
        return None
    if isinstance(value, float) and not value.is_integer():
        return None
    number = int(value)
    if number > MAX_SAFE_INTEGER:
        return int(float(number))  # the double JavaScript reads for it
    return number if isinstance(value, float) else None


def encode_candle(candle: Candle) -> bytes:
    """The candle's JSON: the Node service's field names and order, unset optionals left out."""
    return _ENCODER.encode(candle)


def _decoder(model: type[Candle]) -> msgspec.json.Decoder[Any]:
    decoder = _DECODERS.get(model)
    if decoder is None:
        decoder = _DECODERS[model] = msgspec.json.Decoder(model)
    return decoder


def decode_candle(data: bytes | str, model: type[CandleT]) -> CandleT | Candle:
    """One member or message as ``model`` (see the module docstring for the fallback to ``Candle``).

    Raises ``msgspec.ValidationError`` (JSON, but not a valid candle) or
    ``msgspec.DecodeError`` (not JSON).
    """
    try:
        return _decoder(model).decode(data)  # type: ignore[no-any-return]
    except msgspec.ValidationError:
        if not issubclass(model, UnifiedCandle):
            raise
        fields = _VERSION_PROBE.decode(data)
        if fields.exchange is msgspec.UNSET:
            return _DECODERS[Candle].decode(data)  # type: ignore[no-any-return]
        sequence = _javascript_integer(fields.sequence_num)
        if sequence is None:
            raise
    # a wide sequence: decode without it, then set it past the write-side bound (see the module docstring)
    members = _AS_DICT.decode(data)
    members["sequenceNum"] = None
    candle = msgspec.convert(members, model)
    msgspec.structs.force_setattr(candle, "sequence_num", sequence)
    return candle


def decode_members(members: Iterable[bytes | str], model: type[CandleT], key: str) -> list[CandleT | Candle]:
    """Stored members decoded by ``decode_candle``; a member that is not a valid candle raises, naming the key."""
    out: list[CandleT | Candle] = []
    for member in members:
        try:
            out.append(decode_candle(member, model))
        except msgspec.ValidationError as error:
            raise ValidationError(f"member of {key}", member, f"is not a valid {model.__name__} ({error})") from None
        except msgspec.DecodeError as error:
            raise ValidationError(f"member of {key}", member, f"is not valid JSON ({error})") from None
    return out

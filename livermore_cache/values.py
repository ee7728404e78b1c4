"""Ticker, orderbook and indicator models: msgspec Structs whose JSON is the Node service's JSON.

The rules are the Node service's zod schemas (``TickerSchema``, ``OrderSchema``,
``OrderbookSchema`` of ``@livermore/schemas``), no more and no fewer, plus two that
JSON and doubles impose: every number is finite (zod lets Infinity through, and
``JSON.stringify`` then stores ``null``, which no schema reads back) and an int is
at most 2**53 - 1 in magnitude (beyond it a double is not exact). ``bool`` is not
a number. ``IndicatorValue`` has no Node schema (``setIndicator`` stores its input
as given), so only its types and those two rules are checked.

Attributes are snake_case; the JSON uses the Node names (``changePercent24h``,
``numOrders``) in the Node field order. An optional field is ``msgspec.UNSET``
when it is not set and is then left out of the JSON: never ``null``, which the
Node schemas refuse (so decoding ``"bid":null`` is refused too).

Every Struct validates itself in ``__post_init__``, which msgspec runs on
construction and on decoding, and checks every attribute assignment. What those
cannot see (``msgspec.structs.force_setattr``, an ``Order`` changed inside a
book's list, a changed ``value`` dict) the ``check_*`` functions catch: the
``encode_*`` functions run them before encoding. ``decode_*`` raise
``ValidationError`` naming the field (by attribute path, ``bids[0].size``) and
the value.

Numbers: a float is encoded as msgspec writes it (``42000.0``, ``1e-6``), an int
as digits (``42000``); JavaScript writes ``42000`` and ``0.000001``. The text
differs, the JSON number (the double) is the same, and both services read it the
same.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, Final, TypeVar

import msgspec
from msgspec import UNSET, UnsetType

from .errors import ValidationError
from .limits import MAX_SAFE_INTEGER

__all__ = [
    "IndicatorParam",
    "IndicatorValue",
    "Order",
    "Orderbook",
    "Ticker",
    "check_indicator",
    "check_order",
    "check_orderbook",
    "check_ticker",
    "decode_indicator",
    "decode_orderbook",
    "decode_ticker",
    "encode_indicator",
    "encode_orderbook",
    "encode_ticker",
]

IndicatorParam = str | int | float | bool
"""The type of one ``IndicatorValue.params`` value."""

_INF: Final = math.inf
_NUMBER_RULE: Final = f"must be a finite number (an int at most {MAX_SAFE_INTEGER} in magnitude)"
_POSITIVE_RULE: Final = f"must be a finite number > 0 (an int at most {MAX_SAFE_INTEGER})"
_NON_NEGATIVE_RULE: Final = f"must be a finite number >= 0 (an int at most {MAX_SAFE_INTEGER})"
_TIMESTAMP_RULE: Final = f"must be an int (milliseconds) from 1 to {MAX_SAFE_INTEGER}"


# ---- field rules: each raises ValidationError(field, value, rule) ---------------------------


def _number(value: object) -> float | None:
    """``value`` when it is a finite number (an int within the exact range of a double), else None."""
    kind = type(value)
    if kind is float:
        return value if -_INF < value < _INF else None  # type: ignore[operator, return-value]
    if kind is int:
        return value if -MAX_SAFE_INTEGER <= value <= MAX_SAFE_INTEGER else None  # type: ignore[operator, return-value]
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    # a subclass of int or float (not bool): judged by its value
    return _number(float(value) if isinstance(value, float) else int(value))


def _finite(field: str, value: object) -> None:
    if _number(value) is None:
        raise ValidationError(field, value, _NUMBER_RULE)


def _positive(field: str, value: object) -> None:
    number = _number(value)
    if number is None or not number > 0:
        raise ValidationError(field, value, _POSITIVE_RULE)


def _non_negative(field: str, value: object) -> None:
    number = _number(value)
    if number is None or not number >= 0:
        raise ValidationError(field, value, _NON_NEGATIVE_RULE)


def _optional_positive(field: str, value: object) -> None:
    if value is not UNSET:
        number = _number(value)
        if number is None or not number > 0:
            raise ValidationError(field, value, _POSITIVE_RULE + ", or unset (msgspec.UNSET)")


def _timestamp(field: str, value: object) -> None:
    if type(value) is not int or not 0 < value <= MAX_SAFE_INTEGER:
        raise ValidationError(field, value, _TIMESTAMP_RULE)


def _any_timestamp(field: str, value: object) -> None:
    if type(value) is not int or not -MAX_SAFE_INTEGER <= value <= MAX_SAFE_INTEGER:
        raise ValidationError(field, value, f"must be an int (milliseconds) at most {MAX_SAFE_INTEGER} in magnitude")


def _symbol(field: str, value: object) -> None:
    if not isinstance(value, str) or not value:
        raise ValidationError(field, value, "must be a non-empty string")


def _text(field: str, value: object) -> None:
    if not isinstance(value, str):
        raise ValidationError(field, value, "must be a string")


def _optional_count(field: str, value: object) -> None:
    if value is not UNSET and (type(value) is not int or not 0 < value <= MAX_SAFE_INTEGER):
        raise ValidationError(field, value, f"must be an int from 1 to {MAX_SAFE_INTEGER}, or unset (msgspec.UNSET)")


def _levels(field: str, value: object) -> None:
    """A list of valid ``Order``: each one's fields are checked again (it may have been changed since)."""
    if type(value) is not list:
        raise ValidationError(field, value, "must be a list of Order")
    for i, level in enumerate(value):
        if not isinstance(level, Order):
            raise ValidationError(f"{field}[{i}]", level, "must be an Order")
        if not _order_ok(level):
            try:
                _check_fields(level, _ORDER_CHECKS)
            except ValidationError as error:
                raise error.at(f"{field}[{i}]") from None


def _level_types(field: str, value: object) -> None:
    """A list of ``Order`` (each valid by construction): only the types are checked."""
    if type(value) is not list:
        raise ValidationError(field, value, "must be a list of Order")
    for i, level in enumerate(value):
        if not isinstance(level, Order):
            raise ValidationError(f"{field}[{i}]", level, "must be an Order")


def _indicator_values(field: str, value: object) -> None:
    if type(value) is not dict:
        raise ValidationError(field, value, "must be a dict of str to finite numbers")
    for name, number in value.items():
        if not isinstance(name, str):
            raise ValidationError(f"{field} key", name, "must be a string")
        if _number(number) is None:
            raise ValidationError(f"{field}[{name!r}]", number, _NUMBER_RULE)


def _indicator_params(field: str, value: object) -> None:
    if value is UNSET:
        return
    if type(value) is not dict:
        raise ValidationError(
            field, value, "must be a dict of str to str, int, float or bool, or unset (msgspec.UNSET)"
        )
    for name, param in value.items():
        if not isinstance(name, str):
            raise ValidationError(f"{field} key", name, "must be a string")
        if not isinstance(param, str | bool) and _number(param) is None:
            raise ValidationError(
                f"{field}[{name!r}]",
                param,
                f"must be a str, a bool or a finite number (an int at most {MAX_SAFE_INTEGER} in magnitude)",
            )


_Checks = dict[str, Callable[[str, object], None]]

_S = TypeVar("_S", bound=msgspec.Struct)


def _check_fields(value: msgspec.Struct, checks: _Checks) -> None:
    """Every rule, field by field in field order: raises naming the first field that breaks one."""
    for name in value.__struct_fields__:
        checks[name](name, getattr(value, name))


def _check_assignment(checks: _Checks, name: str, value: object) -> None:
    check = checks.get(name)
    if check is not None:
        check(name, value)


# ---- models ---------------------------------------------------------------------------------


class Ticker(msgspec.Struct, kw_only=True, omit_defaults=True, rename={"change_percent24h": "changePercent24h"}):
    """A ticker, as the Node ``TickerSchema`` has it (JSON field order: as declared here)."""

    symbol: str
    """Non-empty."""
    price: float
    """> 0."""
    change24h: float
    change_percent24h: float
    """JSON ``changePercent24h``."""
    high24h: float
    """> 0 (not checked against ``low24h``: the Node schema does not either)."""
    low24h: float
    """> 0."""
    volume24h: float
    """>= 0."""
    bid: float | UnsetType = UNSET
    """> 0, or unset."""
    ask: float | UnsetType = UNSET
    """> 0, or unset."""
    timestamp: int
    """Milliseconds since the epoch, > 0; the value's version (a newer one replaces it)."""

    def __post_init__(self) -> None:
        if not _ticker_ok(self):
            _check_fields(self, _TICKER_CHECKS)

    def __setattr__(self, name: str, value: Any) -> None:
        """A change is checked like a new value."""
        _check_assignment(_TICKER_CHECKS, name, value)
        super().__setattr__(name, value)


class Order(msgspec.Struct, omit_defaults=True, rename={"num_orders": "numOrders"}):
    """One price level of an orderbook (the Node ``OrderSchema``)."""

    price: float
    """> 0."""
    size: float
    """> 0."""
    num_orders: int | UnsetType = UNSET
    """JSON ``numOrders``: an int > 0, or unset."""

    def __post_init__(self) -> None:
        if not _order_ok(self):
            _check_fields(self, _ORDER_CHECKS)

    def __setattr__(self, name: str, value: Any) -> None:
        _check_assignment(_ORDER_CHECKS, name, value)
        super().__setattr__(name, value)


class Orderbook(msgspec.Struct):
    """An orderbook (the Node ``OrderbookSchema``). Levels are kept as given: no ordering rule."""

    symbol: str
    """Non-empty."""
    bids: list[Order]
    asks: list[Order]
    timestamp: int
    """Milliseconds since the epoch, > 0; the value's version."""

    def __post_init__(self) -> None:
        symbol, timestamp = self.symbol, self.timestamp
        if not (
            type(symbol) is str
            and symbol != ""
            and type(timestamp) is int
            and 0 < timestamp <= MAX_SAFE_INTEGER
            and _all_orders(self.bids)
            and _all_orders(self.asks)
        ):
            _check_fields(self, _ORDERBOOK_BUILD_CHECKS)

    def __setattr__(self, name: str, value: Any) -> None:
        _check_assignment(_ORDERBOOK_CHECKS, name, value)
        super().__setattr__(name, value)


class IndicatorValue(msgspec.Struct, omit_defaults=True):
    """An indicator reading. The Node service has no schema for it: only types and the finite/2**53 rules.

    JSON field order: ``timestamp, type, symbol, timeframe, value, params``, the
    order the Node service's callers build it in (it stores its input as given).
    """

    timestamp: int
    """Milliseconds since the epoch (an int, at most 2**53 - 1 in magnitude); the value's version."""
    type: str
    symbol: str
    timeframe: str
    value: dict[str, float]
    """Finite numbers by name."""
    params: dict[str, IndicatorParam] | UnsetType = UNSET
    """Strings, bools and finite numbers by name, or unset."""

    def __post_init__(self) -> None:
        if not _indicator_ok(self):
            _check_fields(self, _INDICATOR_CHECKS)

    def __setattr__(self, name: str, value: Any) -> None:
        _check_assignment(_INDICATOR_CHECKS, name, value)
        super().__setattr__(name, value)


_TICKER_CHECKS: Final[_Checks] = {
    "symbol": _symbol,
    "price": _positive,
    "change24h": _finite,
    "change_percent24h": _finite,
    "high24h": _positive,
    "low24h": _positive,
    "volume24h": _non_negative,
    "bid": _optional_positive,
    "ask": _optional_positive,
    "timestamp": _timestamp,
}
_ORDER_CHECKS: Final[_Checks] = {"price": _positive, "size": _positive, "num_orders": _optional_count}
_ORDERBOOK_CHECKS: Final[_Checks] = {"symbol": _symbol, "bids": _levels, "asks": _levels, "timestamp": _timestamp}
_ORDERBOOK_BUILD_CHECKS: Final[_Checks] = {**_ORDERBOOK_CHECKS, "bids": _level_types, "asks": _level_types}
_INDICATOR_CHECKS: Final[_Checks] = {
    "timestamp": _any_timestamp,
    "type": _text,
    "symbol": _text,
    "timeframe": _text,
    "value": _indicator_values,
    "params": _indicator_params,
}


# ---- fast paths: the common case in one expression (exact types); anything else takes the slow path


def _ticker_ok(t: Ticker) -> bool:
    bid, ask, ts = t.bid, t.ask, t.timestamp
    p, c, cp, h, lo, v = t.price, t.change24h, t.change_percent24h, t.high24h, t.low24h, t.volume24h
    return (
        type(t.symbol) is str
        and t.symbol != ""
        and type(p) is float
        and type(c) is float
        and type(cp) is float
        and type(h) is float
        and type(lo) is float
        and type(v) is float
        and 0 < p < _INF
        and -_INF < c < _INF
        and -_INF < cp < _INF
        and 0 < h < _INF
        and 0 < lo < _INF
        and 0 <= v < _INF
        and (bid is UNSET or (type(bid) is float and 0 < bid < _INF))
        and (ask is UNSET or (type(ask) is float and 0 < ask < _INF))
        and type(ts) is int
        and 0 < ts <= MAX_SAFE_INTEGER
    )


def _order_ok(o: Order) -> bool:
    p, s, n = o.price, o.size, o.num_orders
    return (
        type(p) is float
        and type(s) is float
        and 0 < p < _INF
        and 0 < s < _INF
        and (n is UNSET or (type(n) is int and 0 < n <= MAX_SAFE_INTEGER))
    )


def _all_orders(levels: object) -> bool:
    if type(levels) is not list:
        return False
    return all(type(level) is Order for level in levels)


def _all_orders_ok(levels: object) -> bool:
    if type(levels) is not list:
        return False
    return all(type(level) is Order and _order_ok(level) for level in levels)


def _indicator_ok(i: IndicatorValue) -> bool:
    ts, value, params = i.timestamp, i.value, i.params
    if not (
        type(ts) is int
        and -MAX_SAFE_INTEGER <= ts <= MAX_SAFE_INTEGER
        and type(i.type) is str
        and type(i.symbol) is str
        and type(i.timeframe) is str
        and type(value) is dict
    ):
        return False
    for name, number in value.items():
        if type(name) is not str or type(number) is not float or not -_INF < number < _INF:
            return False
    if params is UNSET:
        return True
    if type(params) is not dict:
        return False
    for name, param in params.items():
        kind = type(param)
        if type(name) is not str:
            return False
        if kind is float:
            if not -_INF < param < _INF:  # type: ignore[operator]
                return False
        elif kind is int:
            if not -MAX_SAFE_INTEGER <= param <= MAX_SAFE_INTEGER:  # type: ignore[operator]
                return False
        elif kind is not str and kind is not bool:
            return False
    return True


# ---- encode-time checks ---------------------------------------------------------------------


_ROOT: Final[dict[type[msgspec.Struct], str]] = {
    Ticker: "ticker",
    Order: "order",
    Orderbook: "orderbook",
    IndicatorValue: "indicator",
}
"""The field name an error gives a whole value (not a JSON object, not valid JSON, not the model)."""


def _checked(value: object, model: type[_S], ok: Callable[[Any], bool], checks: _Checks) -> _S:
    if not isinstance(value, model):
        raise ValidationError(_ROOT[model], value, f"must be a {model.__name__}")
    if not ok(value):
        _check_fields(value, checks)
    return value


def check_ticker(value: object) -> Ticker:
    """``value`` itself once it is a valid ``Ticker``; every field is checked again (cheaply).

    A Struct checks itself when it is made, decoded or assigned to, but
    ``msgspec.structs.force_setattr`` goes around that: the write path calls this.
    """
    return _checked(value, Ticker, _ticker_ok, _TICKER_CHECKS)


def check_order(value: object) -> Order:
    """``value`` itself once it is a valid ``Order``; every field is checked again."""
    return _checked(value, Order, _order_ok, _ORDER_CHECKS)


def _orderbook_ok(o: Orderbook) -> bool:
    symbol, timestamp = o.symbol, o.timestamp
    return (
        type(symbol) is str
        and symbol != ""
        and type(timestamp) is int
        and 0 < timestamp <= MAX_SAFE_INTEGER
        and _all_orders_ok(o.bids)
        and _all_orders_ok(o.asks)
    )


def check_orderbook(value: object) -> Orderbook:
    """``value`` itself once it is a valid ``Orderbook``; every field and every level is checked again.

    A level's ``Order`` may have been changed (or replaced in the list) after the book was made.
    """
    return _checked(value, Orderbook, _orderbook_ok, _ORDERBOOK_CHECKS)


def check_indicator(value: object) -> IndicatorValue:
    """``value`` itself once it is a valid ``IndicatorValue``; every field and entry is checked again."""
    return _checked(value, IndicatorValue, _indicator_ok, _INDICATOR_CHECKS)


# ---- encode / decode ------------------------------------------------------------------------

_ENCODER: Final = msgspec.json.Encoder()
_TICKER_DECODER: Final = msgspec.json.Decoder(Ticker)
_ORDERBOOK_DECODER: Final = msgspec.json.Decoder(Orderbook)
_INDICATOR_DECODER: Final = msgspec.json.Decoder(IndicatorValue)


def encode_ticker(ticker: Ticker) -> bytes:
    """The ticker's JSON (Node names and order, unset fields left out), after ``check_ticker``."""
    return _ENCODER.encode(check_ticker(ticker))


def encode_orderbook(orderbook: Orderbook) -> bytes:
    """The orderbook's JSON, after ``check_orderbook``."""
    return _ENCODER.encode(check_orderbook(orderbook))


def encode_indicator(indicator: IndicatorValue) -> bytes:
    """The indicator's JSON (``timestamp, type, symbol, timeframe, value[, params]``), after ``check_indicator``."""
    return _ENCODER.encode(check_indicator(indicator))


def decode_ticker(data: bytes | str) -> Ticker:
    """A ``Ticker`` from JSON (unknown fields ignored, as zod strips them); ``ValidationError`` if invalid."""
    return _decode(_TICKER_DECODER, Ticker, data)


def decode_orderbook(data: bytes | str) -> Orderbook:
    """An ``Orderbook`` from JSON; ``ValidationError`` naming the field (``asks[0].size``) if invalid."""
    return _decode(_ORDERBOOK_DECODER, Orderbook, data)


def decode_indicator(data: bytes | str) -> IndicatorValue:
    """An ``IndicatorValue`` from JSON; ``ValidationError`` if invalid (a Node ``null`` for NaN is refused)."""
    return _decode(_INDICATOR_DECODER, IndicatorValue, data)


_RAW_DECODER: Final = msgspec.json.Decoder(float_hook=float)  # 1e999 -> inf, for _explain to name it


def _decode(decoder: msgspec.json.Decoder[_S], model: type[_S], data: bytes | str) -> _S:
    name = _ROOT[model]
    try:
        return decoder.decode(data)
    except msgspec.ValidationError as error:
        failure = error
    except msgspec.DecodeError as error:
        raise ValidationError(name, data, f"is not valid JSON ({error})") from None
    # Rebuild the value from plain JSON with the models' own rules, to name the field and the value.
    _explain(model, _RAW_DECODER.decode(data), "")
    raise ValidationError(name, data, f"is not a valid {model.__name__} ({failure})")


_FLOAT_FIELDS: Final = frozenset(
    ("price", "change24h", "change_percent24h", "high24h", "low24h", "volume24h", "bid", "ask", "size")
)


def _as_float(value: object) -> object:
    """What msgspec makes of a JSON int in a float field."""
    if type(value) is int:
        try:
            return float(value)
        except OverflowError:
            return value
    return value


def _explain(model: type[msgspec.Struct], raw: object, where: str) -> msgspec.Struct:
    """``model`` built from decoded plain JSON, converting as msgspec does.

    Raises ``ValidationError`` naming the first field (in field order) that is
    missing or breaks a rule, by attribute path (``bids[0].num_orders``).
    """

    def named(field: str) -> str:
        return f"{where}.{field}" if where else field

    if type(raw) is not dict:
        raise ValidationError(where or _ROOT[model], raw, f"must be a JSON object ({model.__name__})")
    checks = _BUILD_CHECKS[model]
    kwargs: dict[str, Any] = {}
    for info in msgspec.structs.fields(model):
        if info.encode_name not in raw:
            if info.required:
                raise ValidationError(named(info.name), UNSET, "is required")
            continue
        value = raw[info.encode_name]
        if info.name in _FLOAT_FIELDS:
            value = _as_float(value)
        elif model is Orderbook and type(value) is list:
            value = [_explain(Order, level, named(f"{info.name}[{i}]")) for i, level in enumerate(value)]
        elif model is IndicatorValue and info.name == "value" and type(value) is dict:
            value = {name: _as_float(number) for name, number in value.items()}
        try:
            checks[info.name](info.name, value)
        except ValidationError as error:
            raise (error.at(where) if where else error) from None
        kwargs[info.name] = value
    return model(**kwargs)


_BUILD_CHECKS: Final[dict[type[msgspec.Struct], _Checks]] = {
    Ticker: _TICKER_CHECKS,
    Order: _ORDER_CHECKS,
    Orderbook: _ORDERBOOK_BUILD_CHECKS,
    IndicatorValue: _INDICATOR_CHECKS,
}

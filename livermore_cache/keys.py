r"""Key and channel builders: byte-for-byte the Node service's (``@livermore/cache``) formats.

Every part that comes from outside is checked, so that no input can reach into
another part of the key space: ids are non-negative ints, a timeframe is one of
``Timeframe``, and a symbol or indicator type is refused (``ValueError``) when it
is empty or holds ``:``, whitespace, control characters, a lone surrogate (no
UTF-8 for it), or the glob characters ``* ? [ ]`` and the glob escape ``\``.
Wildcards appear only in the ``*_pattern`` builders, and only for a symbol,
timeframe or type left out: ids are always given.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import Any, Final

from .errors import ValidationError
from .limits import MAX_SAFE_INTEGER
from .timeframes import check_timeframe

__all__ = [
    "alert_channel",
    "candle_channel",
    "candle_close_channel",
    "candle_close_pattern",
    "candle_key",
    "check_ids",
    "indicator_channel",
    "indicator_channel_pattern",
    "indicator_key",
    "js_string",
    "orderbook_channel",
    "orderbook_key",
    "parse_candle_close_channel",
    "parse_indicator_channel",
    "parse_orderbook_channel",
    "parse_ticker_channel",
    "ticker_channel",
    "ticker_channel_pattern",
    "ticker_key",
]

_UNSAFE: Final = re.compile(r"[:*?\[\]\\\s\x00-\x1f\x7f\ud800-\udfff]")
_UNSAFE_PARAM: Final = re.compile(r"[:*?\[\]\\\s\x00-\x1f\x7f\ud800-\udfff,=]")


def _id(field: str, value: object) -> int:
    """An id as both services write it: a JavaScript number is exact only up to 2**53 - 1, so larger ids are refused."""
    if type(value) is not int or not 0 <= value <= MAX_SAFE_INTEGER:
        raise ValidationError(field, value, f"must be an int from 0 to {MAX_SAFE_INTEGER}")
    return value


def check_ids(user_id: object, exchange_id: object) -> None:
    """Refuse ids that are not non-negative ints."""
    _id("user_id", user_id)
    _id("exchange_id", exchange_id)


def _segment(field: str, value: object, unsafe: re.Pattern[str] = _UNSAFE) -> str:
    if not isinstance(value, str) or not value or unsafe.search(value):
        raise ValidationError(
            field,
            value,
            "must be a non-empty string without ':', whitespace, control, glob ('*?[]\\') or lone surrogate characters",
        )
    return value


def _timeframe(value: object) -> str:
    check_timeframe("timeframe", value)
    return str(value)


def _series(user_id: int, exchange_id: int, symbol: str, timeframe: str) -> str:
    return f"{_id('user_id', user_id)}:{_id('exchange_id', exchange_id)}:{_segment('symbol', symbol)}:{_timeframe(timeframe)}"


def candle_key(user_id: int, exchange_id: int, symbol: str, timeframe: str) -> str:
    """``candles:{user}:{exchange}:{symbol}:{timeframe}``: the sorted set of one series."""
    return f"candles:{_series(user_id, exchange_id, symbol, timeframe)}"


def ticker_key(user_id: int, exchange_id: int, symbol: str) -> str:
    """``ticker:{user}:{exchange}:{symbol}``."""
    return f"ticker:{_id('user_id', user_id)}:{_id('exchange_id', exchange_id)}:{_segment('symbol', symbol)}"


def orderbook_key(user_id: int, exchange_id: int, symbol: str) -> str:
    """``orderbook:{user}:{exchange}:{symbol}``."""
    return f"orderbook:{_id('user_id', user_id)}:{_id('exchange_id', exchange_id)}:{_segment('symbol', symbol)}"


def js_string(value: object) -> str:
    """Render ``value`` as JavaScript's ``String()`` does, so both services build the same key.

    An int beyond 2**53 - 1 is the nearest double in JavaScript, and renders as
    that double does (``2**53 + 1`` -> ``9007199254740992``, ``10**21`` -> ``1e+21``).
    Lists and objects are refused: their renderings hold ``,``, the params separator.
    """
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        if abs(value) <= MAX_SAFE_INTEGER:
            return str(value)
        try:
            return _js_number(float(value))
        except OverflowError:  # beyond the largest double: JavaScript would read it as Infinity
            return "-Infinity" if value < 0 else "Infinity"
    if isinstance(value, float):
        return _js_number(value)
    if isinstance(value, str):
        return value
    raise ValidationError("params value", value, "must be a str, int, float, bool or None")


def _utf16_order(name: str) -> bytes:
    """JavaScript's default sort compares UTF-16 code units; big-endian UTF-16 bytes compare the same way."""
    return name.encode("utf-16-be", "surrogatepass")


def _js_number(value: float) -> str:
    """ECMAScript Number::toString for a double, from Python's shortest round-trip digits."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    if value == 0:
        return "0"
    if value < 0:
        return "-" + _js_number(-value)
    _, digit_tuple, exponent = Decimal(repr(value)).normalize().as_tuple()
    assert isinstance(exponent, int)
    digits = "".join(map(str, digit_tuple))
    k = len(digits)
    n = exponent + k  # value == 0.<digits> * 10**n
    if k <= n <= 21:
        return digits + "0" * (n - k)
    if 0 < n <= 21:
        return f"{digits[:n]}.{digits[n:]}"
    if -6 < n <= 0:
        return "0." + "0" * -n + digits
    e = n - 1
    mantissa = digits if k == 1 else f"{digits[0]}.{digits[1:]}"
    return f"{mantissa}e{'+' if e >= 0 else '-'}{abs(e)}"


def indicator_key(
    user_id: int,
    exchange_id: int,
    symbol: str,
    timeframe: str,
    type: str,  # noqa: A002 - the Node service's name for it
    params: Mapping[str, object] | None = None,
) -> str:
    """``indicator:{user}:{exchange}:{symbol}:{timeframe}:{type}``, then ``:name=value,...`` when params are given.

    Params are sorted by name as JavaScript sorts (by UTF-16 code unit) and each
    value rendered as JavaScript's ``String()`` renders it (``True`` -> ``true``,
    ``12.0`` -> ``12``). ``params={}`` gives the trailing ``:`` the Node service
    writes for it (an empty object is truthy in JavaScript); ``None`` gives none.
    """
    key = f"indicator:{_series(user_id, exchange_id, symbol, timeframe)}:{_segment('type', type)}"
    if params is not None:
        if not isinstance(params, Mapping):
            raise ValidationError("params", params, "must be a mapping of names (str) to values, or None")
        for name in params:
            _segment("params name", name, _UNSAFE_PARAM)
        rendered = []
        for name in sorted(params, key=_utf16_order):
            value = params[name]
            text = js_string(value)
            if isinstance(value, str):
                _segment(f"params[{name!r}]", value, _UNSAFE_PARAM)
            rendered.append(f"{name}={text}")
        key += ":" + ",".join(rendered)
    return key


def candle_channel(user_id: int, exchange_id: int, symbol: str, timeframe: str) -> str:
    """``channel:candle:{user}:{exchange}:{symbol}:{timeframe}``: every update of a series."""
    return f"channel:candle:{_series(user_id, exchange_id, symbol, timeframe)}"


def candle_close_channel(user_id: int, exchange_id: int, symbol: str, timeframe: str) -> str:
    """``channel:candle:close:{user}:{exchange}:{symbol}:{timeframe}``: closed candles of a series."""
    return f"channel:candle:close:{_series(user_id, exchange_id, symbol, timeframe)}"


def candle_close_pattern(
    user_id: int,
    exchange_id: int,
    symbol: str | None = None,
    timeframe: str | None = None,
) -> str:
    """The PSUBSCRIBE pattern for one user's and exchange's close channels; a symbol or timeframe left out is ``*``.

    The ids are required: a pattern never reaches another user's or exchange's channels.
    """
    parts = (
        str(_id("user_id", user_id)),
        str(_id("exchange_id", exchange_id)),
        "*" if symbol is None else _segment("symbol", symbol),
        "*" if timeframe is None else _timeframe(timeframe),
    )
    return "channel:candle:close:" + ":".join(parts)


def ticker_channel(user_id: int, exchange_id: int, symbol: str) -> str:
    """``channel:ticker:{user}:{exchange}:{symbol}``."""
    return f"channel:ticker:{_id('user_id', user_id)}:{_id('exchange_id', exchange_id)}:{_segment('symbol', symbol)}"


def orderbook_channel(user_id: int, exchange_id: int, symbol: str) -> str:
    """``channel:orderbook:{user}:{exchange}:{symbol}``."""
    return f"channel:orderbook:{_id('user_id', user_id)}:{_id('exchange_id', exchange_id)}:{_segment('symbol', symbol)}"


def indicator_channel(
    user_id: int,
    exchange_id: int,
    symbol: str,
    timeframe: str,
    type: str,  # noqa: A002 - the Node service's name for it
) -> str:
    """``channel:indicator:{user}:{exchange}:{symbol}:{timeframe}:{type}``."""
    return f"channel:indicator:{_series(user_id, exchange_id, symbol, timeframe)}:{_segment('type', type)}"


def ticker_channel_pattern(user_id: int, exchange_id: int, symbol: str | None = None) -> tuple[str, bool]:
    """The ticker channel to SUBSCRIBE to, or (``symbol=None``) the pattern to PSUBSCRIBE to, and which it is."""
    if symbol is not None:
        return ticker_channel(user_id, exchange_id, symbol), False
    return f"channel:ticker:{_id('user_id', user_id)}:{_id('exchange_id', exchange_id)}:*", True


def indicator_channel_pattern(
    user_id: int,
    exchange_id: int,
    symbol: str | None = None,
    timeframe: str | None = None,
    type: str | None = None,  # noqa: A002 - the Node service's name for it
) -> tuple[str, bool]:
    """The indicator channel, or the pattern with ``*`` for each part left out (None), and which it is."""
    if symbol is not None and timeframe is not None and type is not None:
        return indicator_channel(user_id, exchange_id, symbol, timeframe, type), False
    parts = (
        str(_id("user_id", user_id)),
        str(_id("exchange_id", exchange_id)),
        "*" if symbol is None else _segment("symbol", symbol),
        "*" if timeframe is None else _timeframe(timeframe),
        "*" if type is None else _segment("type", type),
    )
    return "channel:indicator:" + ":".join(parts), True


def alert_channel(user_id: int) -> str:
    """``channel:alerts:{user}``."""
    return f"channel:alerts:{_id('user_id', user_id)}"


# ---- channel parsers: a channel back into its parts, by the builders' own rules -------------------

_ID_TEXT: Final = re.compile(r"0|[1-9][0-9]{0,15}")
"""An id as a builder renders it: no sign, no leading zero, ASCII digits only (at most 16: 2**53 - 1 has 16)."""


def _parse(channel: str | bytes, prefix: str, count: int, build: Callable[..., str]) -> tuple[Any, ...] | None:
    """The parts of ``channel`` when ``build(*parts)`` gives back exactly ``channel``, else None (never raises).

    So a channel parses only when the builder would make it from those parts: the
    same id range, the same refused characters, the same timeframes. A backslash
    (a glob escape in patterns) is refused here too, whatever the builders accept.
    """
    if isinstance(channel, bytes | bytearray):
        try:
            channel = bytes(channel).decode("utf-8")
        except UnicodeDecodeError:
            return None
    if not isinstance(channel, str) or not channel.startswith(prefix):
        return None
    parts = channel[len(prefix) :].split(":")
    if len(parts) != count or not _ID_TEXT.fullmatch(parts[0]) or not _ID_TEXT.fullmatch(parts[1]):
        return None
    if any("\\" in part for part in parts[2:]):
        return None
    values = (int(parts[0]), int(parts[1]), *parts[2:])
    try:
        rebuilt = build(*values)
    except (ValidationError, UnicodeError):
        return None
    return values if rebuilt == channel else None


def parse_candle_close_channel(channel: str | bytes) -> tuple[int, int, str, str] | None:
    """``(user_id, exchange_id, symbol, timeframe)`` of a ``candle_close_channel``, or None if it is not one."""
    return _parse(channel, "channel:candle:close:", 4, candle_close_channel)


def parse_ticker_channel(channel: str | bytes) -> tuple[int, int, str] | None:
    """``(user_id, exchange_id, symbol)`` of a ``ticker_channel``, or None if it is not one."""
    return _parse(channel, "channel:ticker:", 3, ticker_channel)


def parse_orderbook_channel(channel: str | bytes) -> tuple[int, int, str] | None:
    """``(user_id, exchange_id, symbol)`` of an ``orderbook_channel``, or None if it is not one."""
    return _parse(channel, "channel:orderbook:", 3, orderbook_channel)


def parse_indicator_channel(channel: str | bytes) -> tuple[int, int, str, str, str] | None:
    """``(user_id, exchange_id, symbol, timeframe, type)`` of an ``indicator_channel``, or None if it is not one."""
    return _parse(channel, "channel:indicator:", 5, indicator_channel)

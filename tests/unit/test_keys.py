"""Key builders: exactly the Node service's formats, and nothing that can escape its place."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

import livermore_cache
from livermore_cache import ValidationError, keys


def test_formats() -> None:
    assert keys.candle_key(1, 2, "BTC-USD", "1m") == "candles:1:2:BTC-USD:1m"
    assert keys.ticker_key(1, 2, "BTC-USD") == "ticker:1:2:BTC-USD"
    assert keys.orderbook_key(1, 2, "BTC-USD") == "orderbook:1:2:BTC-USD"
    assert keys.indicator_key(1, 2, "BTC-USD", "5m", "rsi") == "indicator:1:2:BTC-USD:5m:rsi"
    assert keys.candle_channel(1, 2, "BTC-USD", "1h") == "channel:candle:1:2:BTC-USD:1h"
    assert keys.candle_close_channel(1, 2, "BTC-USD", "1h") == "channel:candle:close:1:2:BTC-USD:1h"
    assert keys.ticker_channel(1, 2, "BTC-USD") == "channel:ticker:1:2:BTC-USD"
    assert keys.orderbook_channel(1, 2, "BTC-USD") == "channel:orderbook:1:2:BTC-USD"
    assert keys.indicator_channel(1, 2, "BTC-USD", "1d", "macd") == "channel:indicator:1:2:BTC-USD:1d:macd"
    assert keys.alert_channel(3) == "channel:alerts:3"


def test_exported_at_top_level() -> None:
    for name in keys.__all__:
        if name not in ("js_string", "check_ids"):
            assert getattr(livermore_cache, name) is getattr(keys, name)


def test_indicator_params_sorted_and_rendered_as_javascript() -> None:
    params = {"period": 14.0, "adjust": True, "source": "close", "k": 1.5, "off": False, "none": None}
    assert (
        keys.indicator_key(1, 2, "BTC-USD", "1m", "rsi", params)
        == "indicator:1:2:BTC-USD:1m:rsi:adjust=true,k=1.5,none=null,off=false,period=14,source=close"
    )
    assert keys.indicator_key(1, 2, "BTC-USD", "1m", "rsi") == "indicator:1:2:BTC-USD:1m:rsi"
    # the Node service writes a trailing ':' for params={} (an empty object is truthy in JavaScript)
    assert keys.indicator_key(1, 2, "BTC-USD", "1m", "rsi", {}) == "indicator:1:2:BTC-USD:1m:rsi:"


def test_indicator_key_matches_the_node_service_beyond_plain_inputs() -> None:
    """Captured from the Node service's getIndicator (tests/data/node-snapshots.json)."""
    params = {"period": 21, "source": "close", "flag": True, "nil": None, "small": 1e-07, "half": 0.5, "Zeta": 3}
    assert (
        keys.indicator_key(1, 1, "BTC-USD", "1h", "ema", {**params, "big": 10**21})
        == "indicator:1:1:BTC-USD:1h:ema:Zeta=3,big=1e+21,flag=true,half=0.5,nil=null,period=21,small=1e-7,source=close"
    )
    # ints beyond 2**53 - 1 render as the double JavaScript holds for them
    assert keys.js_string(2**53 + 1) == "9007199254740992"
    assert keys.js_string(10**21) == "1e+21"
    assert keys.js_string(-(2**60)) == "-1152921504606847000"
    assert keys.js_string(10**400) == "Infinity"
    # names sort by UTF-16 code unit, as Array.prototype.sort does: U+1F600 (a surrogate pair, 0xD83D...) before U+FF5E
    name_outside_bmp, name_inside_bmp = "\U0001f600", "\uff5e"
    assert (
        keys.indicator_key(1, 1, "BTC-USD", "1h", "ema", {name_inside_bmp: 1, name_outside_bmp: 2})
        == f"indicator:1:1:BTC-USD:1h:ema:{name_outside_bmp}=2,{name_inside_bmp}=1"
    )


@pytest.mark.parametrize("user_id", [2**53, 2**63, -1])
def test_ids_beyond_what_a_javascript_number_holds_are_refused(user_id: int) -> None:
    with pytest.raises(ValueError, match="user_id"):
        keys.candle_key(user_id, 1, "BTC-USD", "1m")
    assert keys.candle_key(2**53 - 1, 1, "BTC-USD", "1m") == f"candles:{2**53 - 1}:1:BTC-USD:1m"


@pytest.mark.parametrize(
    ("value", "rendered"),
    [
        (12.0, "12"), (1.5, "1.5"), (0.1, "0.1"), (-2.5, "-2.5"), (-0.0, "0"), (1e21, "1e+21"),
        (1e20, "100000000000000000000"), (1e-7, "1e-7"), (1e-6, "0.000001"), (1.5e300, "1.5e+300"),
        (5e-324, "5e-324"), (float("inf"), "Infinity"), (float("-inf"), "-Infinity"), (float("nan"), "NaN"),
        (True, "true"), (False, "false"), (None, "null"), (10, "10"), ("abc", "abc"),
    ],
)  # fmt: skip
def test_js_string_matches_javascript(value: Any, rendered: str) -> None:
    """Expected values are what Node's String() printed for the same inputs."""
    assert keys.js_string(value) == rendered


def test_close_pattern() -> None:
    assert keys.candle_close_pattern(1, 2) == "channel:candle:close:1:2:*:*"
    assert keys.candle_close_pattern(1, 2, timeframe="5m") == "channel:candle:close:1:2:*:5m"
    assert keys.candle_close_pattern(1, 2, "ETH-USD", "5m") == keys.candle_close_channel(1, 2, "ETH-USD", "5m")


BAD_SEGMENTS = [
    "",
    "BTC:USD",
    "BTC USD",
    "BTC\tUSD",
    "BTC\nUSD",
    "BTC\x00",
    "BTC\x7f",
    "*",
    "BTC?",
    "[BTC]",
    "a]b",
    "a\\",
    "\\*",
    "BTC\ud800",
]


@pytest.mark.parametrize(("user_id", "exchange_id"), [(None, None), (None, 1), (1, None), ("1", 1), (1, -1)])
def test_close_pattern_needs_both_ids(user_id: object, exchange_id: object) -> None:
    """A pattern never reaches another user's or exchange's channels: the ids are always given."""
    with pytest.raises((ValidationError, TypeError)):
        keys.candle_close_pattern(user_id, exchange_id)  # type: ignore[arg-type]


@pytest.mark.parametrize("symbol", BAD_SEGMENTS)
def test_unsafe_symbol_refused(symbol: str) -> None:
    builders: list[Callable[[], str]] = [
        lambda: keys.candle_key(1, 2, symbol, "1m"),
        lambda: keys.ticker_key(1, 2, symbol),
        lambda: keys.orderbook_key(1, 2, symbol),
        lambda: keys.candle_close_pattern(1, 2, symbol),
        lambda: keys.indicator_key(1, 2, "BTC", "1m", symbol),
        lambda: keys.indicator_channel(1, 2, "BTC", "1m", symbol),
    ]
    for build in builders:
        with pytest.raises(ValueError, match=r"symbol|type") as raised:
            build()
        assert repr(symbol) in str(raised.value)


@pytest.mark.parametrize("bad_id", [-1, 1.0, "1", True, None])
def test_ids_must_be_non_negative_ints(bad_id: Any) -> None:
    with pytest.raises(ValidationError, match="user_id"):
        keys.candle_key(bad_id, 2, "BTC", "1m")
    with pytest.raises(ValidationError, match="exchange_id"):
        keys.ticker_key(1, bad_id, "BTC")
    with pytest.raises(ValidationError, match="user_id"):
        keys.alert_channel(bad_id)


@pytest.mark.parametrize("timeframe", ["2m", "", "*", "1m:x", None])
def test_timeframe_must_be_known(timeframe: Any) -> None:
    with pytest.raises(ValidationError, match="timeframe"):
        keys.candle_key(1, 2, "BTC", timeframe)


def test_param_names_and_string_values_cannot_break_structure() -> None:
    for params in ({"a,b": 1}, {"a=b": 1}, {"a": "x,y"}, {"a": "x=y"}, {"a": "x:y"}, {"": 1}):
        with pytest.raises(ValueError, match="params"):
            keys.indicator_key(1, 2, "BTC", "1m", "rsi", params)
    with pytest.raises(ValueError, match="params"):
        keys.indicator_key(1, 2, "BTC", "1m", "rsi", {"a": [1, 2]})

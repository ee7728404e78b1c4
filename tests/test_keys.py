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
    assert keys.indicator_key(1, 2, "BTC-USD", "1m", "rsi", {}) == "indicator:1:2:BTC-USD:1m:rsi"


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
    assert keys.candle_close_pattern() == "channel:candle:close:*:*:*:*"
    assert keys.candle_close_pattern(1, 2) == "channel:candle:close:1:2:*:*"
    assert keys.candle_close_pattern(1, 2, timeframe="5m") == "channel:candle:close:1:2:*:5m"
    assert keys.candle_close_pattern(1, 2, "ETH-USD", "5m") == keys.candle_close_channel(1, 2, "ETH-USD", "5m")


BAD_SEGMENTS = ["", "BTC:USD", "BTC USD", "BTC\tUSD", "BTC\nUSD", "BTC\x00", "BTC\x7f", "*", "BTC?", "[BTC]", "a]b"]


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

"""Untrusted input: every value is accepted and round-trips exactly, or refused with ValidationError/ValueError."""

from __future__ import annotations

from typing import Any

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from livermore_cache import Candle, UnifiedCandle, ValidationError, keys

anything = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.integers(min_value=2**52, max_value=2**80),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(),
    st.binary(max_size=8),
    st.lists(st.integers(), max_size=2),
)
texts = st.text(min_size=0, max_size=20)

FIELDS_SAFE: dict[str, Any] = {
    "timestamp": 1_704_067_200_000, "open": 1.0, "high": 2.0, "low": 0.5, "close": 1.5, "volume": 3.0,
    "symbol": "BTC-USD", "timeframe": "1m", "exchange": "coinbase",
}  # fmt: skip


@settings(max_examples=400, deadline=None)
@given(user=st.integers(-5, 2**70) | anything, symbol=texts | anything, timeframe=texts | st.sampled_from(["1m", "1d"]))
def test_candle_key_accepts_and_round_trips_or_refuses(user: Any, symbol: Any, timeframe: Any) -> None:
    try:
        key = keys.candle_key(user, 2, symbol, timeframe)
    except ValueError:
        return
    assert key.split(":") == ["candles", str(user), "2", symbol, timeframe]
    assert not any(ch in key for ch in "*?[] \t\r\n")


@settings(max_examples=300, deadline=None)
@given(
    kind=texts,
    params=st.dictionaries(texts, st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), texts), max_size=4),
)
def test_indicator_key_accepts_and_round_trips_or_refuses(kind: str, params: dict[str, Any]) -> None:
    try:
        key = keys.indicator_key(1, 2, "BTC-USD", "1m", kind, params)
    except ValueError:
        return
    parts = key.split(":")
    assert parts[:6] == ["indicator", "1", "2", "BTC-USD", "1m", kind]
    if params:
        rendered = dict(pair.split("=", 1) for pair in parts[6].split(","))
        assert rendered == {name: keys.js_string(value) for name, value in params.items()}
        assert list(rendered) == sorted(params, key=lambda name: name.encode("utf-16-be", "surrogatepass"))
    else:
        assert parts[6:] == [""]  # params={}: the trailing ':' the Node service writes


@settings(max_examples=300, deadline=None)
@given(
    user=st.none() | st.integers(-3, 10),
    exchange=st.none() | st.integers(-3, 10),
    symbol=st.none() | texts,
    tf=st.none() | texts,
)
def test_close_pattern_only_wildcards_where_left_out(user: Any, exchange: Any, symbol: Any, tf: Any) -> None:
    try:
        pattern = keys.candle_close_pattern(user, exchange, symbol, tf)
    except ValueError:
        return
    parts = pattern.split(":")[3:]
    for given_part, part in zip((user, exchange, symbol, tf), parts, strict=True):
        assert part == ("*" if given_part is None else str(given_part))


@settings(max_examples=500, deadline=None)
@given(field=st.sampled_from(sorted(UnifiedCandle.__struct_fields__)), value=anything)
def test_model_field_accepts_and_round_trips_or_refuses(field: str, value: Any) -> None:
    try:
        candle = UnifiedCandle(**{**FIELDS_SAFE, field: value})
    except ValidationError:
        return
    encoded = msgspec.json.encode(candle)
    assert msgspec.json.decode(encoded, type=UnifiedCandle) == candle


@settings(max_examples=500, deadline=None)
@given(
    document=st.dictionaries(st.sampled_from([*UnifiedCandle.__struct_encode_fields__, "other"]), anything, max_size=14)
)
def test_decoding_arbitrary_documents_accepts_or_refuses(document: dict[str, Any]) -> None:
    payload = msgspec.json.encode({k: (v.hex() if isinstance(v, bytes) else v) for k, v in document.items()})
    for model in (Candle, UnifiedCandle):
        try:
            candle = msgspec.json.decode(payload, type=model)
        except msgspec.ValidationError:
            continue
        assert msgspec.json.decode(msgspec.json.encode(candle), type=model) == candle


@settings(max_examples=300, deadline=None)
@given(field=st.sampled_from(sorted(UnifiedCandle.__struct_fields__)), value=anything)
def test_changing_a_field_is_checked_the_same_way(field: str, value: Any) -> None:
    candle = UnifiedCandle(**FIELDS_SAFE)
    try:
        setattr(candle, field, value)
    except ValidationError:
        assert candle == UnifiedCandle(**FIELDS_SAFE)
        return
    assert msgspec.json.decode(msgspec.json.encode(candle), type=UnifiedCandle) == candle


def test_validation_error_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="timestamp"):
        UnifiedCandle(**{**FIELDS_SAFE, "timestamp": 0})

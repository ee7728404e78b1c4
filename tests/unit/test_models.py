"""Models: every validation rule names the field and the value, and JSON uses the Node service's names."""

from __future__ import annotations

import math
from typing import Any

import msgspec
import pytest

from livermore_cache import MAX_SEQUENCE_NUM, Candle, Timeframe, UnifiedCandle, ValidationError
from tests.support.builders import unified
from tests.support.constants import T0

VALID: dict[str, Any] = {
    "timestamp": T0,
    "open": 42000.0,
    "high": 42001.25,
    "low": 41999.0,
    "close": 42000.5,
    "volume": 0.0,
    "symbol": "BTC-USD",
    "timeframe": "1m",
    "exchange": "coinbase",
}

BAD_VALUES = [
    ("timestamp", 0),
    ("timestamp", -1),
    ("timestamp", 1.5),
    ("timestamp", True),
    ("timestamp", "1704067200000"),
    ("timestamp", MAX_SEQUENCE_NUM + 1),
    ("open", 0),
    ("open", -1.0),
    ("open", math.inf),
    ("open", math.nan),
    ("open", True),
    ("open", "42000"),
    ("high", 0.0),
    ("low", -math.inf),
    ("close", None),
    ("volume", -0.5),
    ("volume", math.inf),
    ("volume", math.nan),
    ("volume", False),
    ("symbol", ""),
    ("symbol", 5),
    ("timeframe", "2m"),
    ("timeframe", "1M"),
    ("timeframe", None),
    ("is_synthetic", 1),
    ("is_synthetic", "true"),
    ("exchange", ""),
    ("exchange", None),
    ("exchange_timestamp", 12),
    ("sequence_num", -1),
    ("sequence_num", MAX_SEQUENCE_NUM + 1),
    ("sequence_num", 1.0),
    ("sequence_num", True),
]


@pytest.mark.parametrize(("field", "value"), BAD_VALUES, ids=[f"{f}={v!r}" for f, v in BAD_VALUES])
def test_bad_value_is_refused_naming_field_and_value(field: str, value: Any) -> None:
    with pytest.raises(ValidationError) as raised:
        UnifiedCandle(**{**VALID, field: value})
    assert isinstance(raised.value, ValueError)
    assert raised.value.field == field
    message = str(raised.value)
    assert message.startswith(field)
    assert repr(value) in message


def test_plain_candle_validates_too() -> None:
    plain = {k: v for k, v in VALID.items() if k != "exchange"}
    with pytest.raises(ValidationError, match=r"^volume .*-1"):
        Candle(**{**plain, "volume": -1})


@pytest.mark.parametrize("timeframe", [t.value for t in Timeframe])
def test_every_timeframe_is_accepted(timeframe: str) -> None:
    assert UnifiedCandle(**{**VALID, "timeframe": timeframe}).timeframe == timeframe


def test_timeframes_are_the_node_services() -> None:
    assert [t.value for t in Timeframe] == ["1m", "5m", "15m", "30m", "1h", "2h", "4h", "6h", "1d"]


def test_json_uses_node_names_and_order_and_omits_unset() -> None:
    candle = unified(T0, 7, exchange_timestamp="2024-01-01T00:00:59.123Z", is_synthetic=False)
    encoded = msgspec.json.decode(msgspec.json.encode(candle))
    assert list(encoded) == [
        "timestamp", "open", "high", "low", "close", "volume", "symbol", "timeframe",
        "isSynthetic", "exchange", "exchangeTimestamp", "sequenceNum",
    ]  # fmt: skip
    bare = msgspec.json.encode(unified(T0))
    assert b"null" not in bare
    assert b"sequenceNum" not in bare
    assert b"exchangeTimestamp" not in bare
    assert b"isSynthetic" not in bare


def test_decoding_validates() -> None:
    member = msgspec.json.encode({**VALID, "open": -5})
    with pytest.raises(msgspec.ValidationError, match="open"):
        msgspec.json.decode(member, type=UnifiedCandle)
    with pytest.raises(msgspec.ValidationError, match="bool"):
        msgspec.json.decode(msgspec.json.encode({**VALID, "timestamp": True}), type=UnifiedCandle)


def test_round_trip() -> None:
    candle = unified(T0, MAX_SEQUENCE_NUM, exchange_timestamp="x", is_synthetic=True)
    assert msgspec.json.decode(msgspec.json.encode(candle), type=UnifiedCandle) == candle


def test_candle_fields_may_be_positional_and_versioned_fields_are_keywords() -> None:
    candle = Candle(T0, 1.0, 2.0, 0.5, 1.5, 3.0, "BTC-USD", "1m")
    assert candle.timeframe == Timeframe.M1
    unified_candle = UnifiedCandle(T0, 1.0, 2.0, 0.5, 1.5, 3.0, "BTC-USD", "1m", exchange="x", sequence_num=1)
    assert msgspec.json.decode(msgspec.json.encode(unified_candle))["sequenceNum"] == 1
    with pytest.raises(ValidationError, match="open"):
        Candle(T0, -1.0, 2.0, 0.5, 1.5, 3.0, "BTC-USD", "1m")

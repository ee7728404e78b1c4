"""Ticker, Order, Orderbook and IndicatorValue against the Node service's own zod schemas and stored bytes.

``data/node-snapshots.json`` was captured by running the Node strategies and
schemas (see its ``about``). Every ``schema_checks`` entry is replayed twice:
built from Python values (as a caller makes a model) and decoded from JSON (as
a stored value is read). Accepted -> ours accepts and writes the same JSON;
refused -> ``ValidationError`` naming the field Node's first issue names.

JSON numbers: JavaScript writes a whole double as ``42000`` and picks its own
exponent thresholds (``0.000001``, ``1e+21``); msgspec writes a float as
``42000.0``, ``1e-6``, ``1e21``. A model built from Python ints and floats that
both render alike encodes byte for byte as Node; a decoded one holds floats and
writes the same JSON numbers in other text (``same_json`` compares those).
"""

from __future__ import annotations

import json
import math
from typing import Any, cast

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st
from msgspec import UNSET

from livermore_cache.errors import ValidationError
from livermore_cache.limits import MAX_SAFE_INTEGER
from livermore_cache.values import (
    IndicatorValue,
    Order,
    Orderbook,
    Ticker,
    check_indicator,
    check_order,
    check_orderbook,
    check_ticker,
    decode_indicator,
    decode_orderbook,
    decode_ticker,
    encode_indicator,
    encode_orderbook,
    encode_ticker,
)
from tests.support.builders import indicator, orderbook, ticker
from tests.support.constants import T0
from tests.support.node import ATTRIBUTE, doubles, field_of, js, node_snapshots, ordered

SNAPSHOT = node_snapshots()
CHECKS: list[dict[str, Any]] = SNAPSHOT["schema_checks"]
CASES: list[dict[str, Any]] = SNAPSHOT["cases"]

NODE_ACCEPTS_WE_REFUSE = {
    "price Infinity (accepted; JSON.stringify then writes null)": ("price", math.inf),
    "timestamp 1e16 (beyond 2^53, still an integer)": ("timestamp", 10**16),
}
"""The two rules JSON and doubles add to the schemas: finite numbers, ints at most 2**53 - 1."""


# ---- helpers --------------------------------------------------------------------------------


def python_fields(doc: dict[str, Any]) -> dict[str, Any]:
    return {ATTRIBUTE.get(name, name): value for name, value in doc.items()}


def build(schema: str, doc: Any) -> Any:
    """The model built from Python values, as a caller would build it; unknown fields dropped (as zod does)."""
    if schema == "OrderSchema":
        return build_order(doc, "")
    if schema == "TickerSchema":
        known = set(Ticker.__struct_encode_fields__)
        return Ticker(**python_fields({k: v for k, v in doc.items() if k in known}))
    known = set(Orderbook.__struct_encode_fields__)
    fields = {k: v for k, v in doc.items() if k in known}
    for side in ("bids", "asks"):
        if isinstance(fields.get(side), list):
            fields[side] = [build_order(level, f"{side}[{i}]") for i, level in enumerate(fields[side])]
    return Orderbook(**fields)


def build_order(doc: Any, where: str) -> Any:
    if not isinstance(doc, dict):
        return doc  # left for Orderbook to refuse
    known = set(Order.__struct_encode_fields__)
    try:
        return Order(**python_fields({k: v for k, v in doc.items() if k in known}))
    except ValidationError as error:
        raise error.at(where) if where else error from None


def decoder(schema: str) -> Any:
    return {"TickerSchema": decode_ticker, "OrderbookSchema": decode_orderbook, "OrderSchema": order_decode}[schema]


def order_decode(data: bytes | str) -> Order:
    """An Order on its own, decoded through an Orderbook (the public decoders are per stored value)."""
    book = decode_orderbook(
        b'{"symbol":"X","bids":[' + (data if isinstance(data, bytes) else data.encode()) + b'],"asks":[],"timestamp":1}'
    )
    return book.bids[0]


def encode(value: Any) -> bytes:
    if isinstance(value, Ticker):
        return encode_ticker(value)
    if isinstance(value, Orderbook):
        return encode_orderbook(value)
    if isinstance(value, IndicatorValue):
        return encode_indicator(value)
    return msgspec.json.encode(check_order(value))


def at_path(doc: Any, path: list[str | int]) -> Any:
    for part in path:
        if isinstance(part, int):
            doc = doc[part]
        elif part not in doc:
            return UNSET
        else:
            doc = doc[part]
    return doc


def same_value(ours: Any, expected: Any) -> bool:
    """Equal, and of the same type, except that a JSON int read for a float field is that float."""
    if isinstance(expected, float) and math.isnan(expected):
        return isinstance(ours, float) and math.isnan(ours)
    if type(ours) is float and type(expected) is int:
        return ours == expected
    return bool(ours == expected) and type(ours) is type(expected)


def same_json(ours: bytes, node: str) -> bool:
    """The same names in the same order and the same JSON numbers (as doubles); ints stay ints."""

    def norm(value: Any) -> Any:
        if isinstance(value, list):
            return [norm(v) for v in value]
        if isinstance(value, tuple):
            return (value[0], norm(value[1]))
        if type(value) is float and value.is_integer():
            return ("number", value)
        if type(value) is int:
            return ("number", float(value))
        if type(value) is float:
            return ("number", value)
        return value

    return bool(norm(ordered(ours)) == norm(ordered(node)))


def has_int_timestamps(ours: bytes) -> bool:
    """Timestamps are written as integer literals (the Node schema's int)."""
    return all(type(v) is int for k, v in _pairs(ordered(ours)) if k in ("timestamp", "numOrders"))


def _pairs(value: Any) -> list[tuple[str, Any]]:
    out: list[tuple[str, Any]] = []
    if isinstance(value, list):
        for item in value:
            if isinstance(item, tuple):
                out.append(item)
                out.extend(_pairs(item[1]))
            else:
                out.extend(_pairs(item))
    return out


# ---- every schema check, both ways ------------------------------------------------------------


def check_id(check: dict[str, Any]) -> str:
    return f"{check['schema']}: {check['what']}"


@pytest.mark.parametrize("check", CHECKS, ids=check_id)
def test_schema_check_built_from_python_values(check: dict[str, Any]) -> None:
    doc = js(check["input"])
    if check["what"] in NODE_ACCEPTS_WE_REFUSE:
        field, value = NODE_ACCEPTS_WE_REFUSE[check["what"]]
        assert check["accepted"]
        with pytest.raises(ValidationError) as raised:
            build(check["schema"], doc)
        assert raised.value.field == field
        assert raised.value.value == value
    elif check["accepted"]:
        ours = encode(build(check["schema"], doc))
        assert ours == check["output"].encode(), "built from ints and floats that render alike: byte for byte"
    else:
        path = check["issues"][0]["path"]
        if at_path(doc, path) is UNSET:  # a required argument left out: Python's own TypeError
            with pytest.raises(TypeError, match=str(path[-1])):
                build(check["schema"], doc)
            return
        with pytest.raises(ValidationError) as raised:
            build(check["schema"], doc)
        assert raised.value.field == field_of(path)
        assert same_value(raised.value.value, at_path(doc, path))
        assert str(raised.value).startswith(field_of(path))


def json_input(check: dict[str, Any]) -> bytes | None:
    """The check's input as JSON text, or None when JSON cannot hold it (NaN, Infinity)."""
    doc = js(check["input"])
    try:
        return json.dumps(doc, allow_nan=False, ensure_ascii=False).encode()
    except ValueError:
        return None


DECODABLE = [c for c in CHECKS if json_input(c) is not None]
"""The checks whose input JSON can hold (not NaN or Infinity: those are covered by the built-from-values test)."""


@pytest.mark.parametrize("check", DECODABLE, ids=check_id)
def test_schema_check_decoded_from_json(check: dict[str, Any]) -> None:
    data = json_input(check)
    assert data is not None
    decode = decoder(check["schema"])
    if check["what"] in NODE_ACCEPTS_WE_REFUSE:
        field, _ = NODE_ACCEPTS_WE_REFUSE[check["what"]]
        with pytest.raises(ValidationError) as raised:
            decode(data)
        assert raised.value.field == field
    elif check["accepted"]:
        ours = encode(decode(data))
        assert same_json(ours, check["output"])
        assert has_int_timestamps(ours)
        assert b"null" not in ours
    else:
        path = check["issues"][0]["path"]
        with pytest.raises(ValidationError) as raised:
            decode(data)
        assert raised.value.field == field_of(path)
        assert same_value(raised.value.value, at_path(json.loads(data), path))


def test_every_schema_and_outcome_is_covered() -> None:
    seen = {(c["schema"], c["accepted"]) for c in CHECKS}
    assert {("TickerSchema", True), ("TickerSchema", False), ("OrderbookSchema", True)} <= seen
    assert ("OrderbookSchema", False) in seen
    assert ("OrderSchema", True) in seen


# ---- the strategies' stored bytes -------------------------------------------------------------

WRITES = [c for c in CASES if c["call"] in ("setTicker", "setOrderbook", "setIndicator")]


def case_id(case: dict[str, Any]) -> str:
    return f"{case['call']}: {case['note']}"


def model_of_call(call: str) -> tuple[str, Any]:
    return {
        "setTicker": ("TickerSchema", decode_ticker),
        "setOrderbook": ("OrderbookSchema", decode_orderbook),
        "setIndicator": ("IndicatorValue", decode_indicator),
    }[call]


def build_any(schema: str, doc: dict[str, Any]) -> Any:
    if schema == "IndicatorValue":
        return IndicatorValue(**doc)
    return build(schema, doc)


# Written differently by design (the same values, other text or other order):
NOT_BYTE_FOR_BYTE = {
    "small numbers (JS writes 0.00001234 and 1e-7), -0, a 21-digit integer volume",  # -0.0, 1e-6, 1.2e20
    "large numbers: 17-digit integer, 1e16, 1e21; 0.1+0.2; 1e-7; 0.0001",  # 1.2345678901234568e16, 1e16, 1e21
    "no schema: the value is stored in the input key order",  # ours: the IndicatorValue field order
}


@pytest.mark.parametrize("case", WRITES, ids=case_id)
def test_node_write_is_reproduced(case: dict[str, Any]) -> None:
    schema, decode = model_of_call(case["call"])
    doc = js(case["args"][2])
    if "error" in case:
        issue = case["error"]["issues"][0]
        with pytest.raises(ValidationError) as raised:
            build_any(schema, doc)
        assert raised.value.field == field_of(issue["path"])
        return
    if "null" in case["stored"]:  # Node stored Infinity or NaN as null: refused here, never stored
        with pytest.raises(ValidationError) as raised:
            build_any(schema, doc)
        assert not math.isfinite(cast(float, raised.value.value))
        with pytest.raises(ValidationError):
            decode(case["stored"])
        return
    ours = encode(build_any(schema, doc))
    if case["note"] in NOT_BYTE_FOR_BYTE:
        assert ours != case["stored"].encode()
        if schema == "IndicatorValue":
            assert json.loads(ours) == json.loads(case["stored"])
        else:
            assert same_json(ours, case["stored"])
    else:
        assert ours == case["stored"].encode()
    # what Node stored reads back, and writes the same JSON numbers again
    again = encode(decode(case["stored"]))
    assert doubles(again) == doubles(case["stored"])


def test_set_indicators_writes_are_reproduced() -> None:
    writes = [w for c in CASES if c["call"] == "setIndicators" and "writes" in c for w in c["writes"]]
    assert writes
    for write in writes:
        stored = write["stored"]
        assert encode_indicator(IndicatorValue(**json.loads(stored))) == stored.encode()
        assert doubles(encode_indicator(decode_indicator(stored))) == doubles(stored)


READS = [
    c for c in CASES if c["call"] in ("getTicker", "getTickers", "getOrderbook", "getOrderbooks") and "preset" in c
]


@pytest.mark.parametrize("case", READS, ids=case_id)
def test_node_verdict_on_stored_values_is_ours(case: dict[str, Any]) -> None:
    """A stored value the Node reader returns, we decode to the same; one it throws on or skips, we refuse."""
    decode = decode_ticker if case["call"].startswith("getTicker") else decode_orderbook
    returned: Any = case.get("returned")
    for preset in case["preset"]:
        symbol = preset["key"].rsplit(":", 1)[1]
        found = dict(returned["$map"]).get(symbol) if case["call"] in ("getTickers", "getOrderbooks") else returned
        if found is None:
            with pytest.raises(ValidationError):
                decode(preset["value"])
        else:
            assert msgspec.to_builtins(decode(preset["value"])) == found


def test_indicator_reads_return_what_is_stored() -> None:
    """getIndicator returns stored JSON unvalidated; decode_indicator refuses the nulls Node wrote for NaN."""
    for case in (c for c in CASES if c["call"] == "getIndicator" and "preset" in c):
        for preset in case["preset"]:
            if "null" in preset["value"]:
                with pytest.raises(ValidationError) as raised:
                    decode_indicator(preset["value"])
                assert raised.value.field == "value['macdV']"
                assert raised.value.value is None
            else:
                assert msgspec.to_builtins(decode_indicator(preset["value"])) == json.loads(preset["value"])


# ---- names, order, omission ---------------------------------------------------------------------


def test_json_names_and_order_are_the_node_schemas() -> None:
    assert Ticker.__struct_encode_fields__ == (
        "symbol", "price", "change24h", "changePercent24h", "high24h", "low24h", "volume24h", "bid", "ask", "timestamp",
    )  # fmt: skip
    assert Ticker.__struct_fields__[3] == "change_percent24h"
    assert Order.__struct_encode_fields__ == ("price", "size", "numOrders")
    assert Order.__struct_fields__ == ("price", "size", "num_orders")
    assert Orderbook.__struct_encode_fields__ == ("symbol", "bids", "asks", "timestamp")
    assert IndicatorValue.__struct_encode_fields__ == ("timestamp", "type", "symbol", "timeframe", "value", "params")


def test_unset_optionals_are_left_out_never_null() -> None:
    assert ticker().bid is UNSET
    assert b"bid" not in encode_ticker(ticker())
    assert b"ask" not in encode_ticker(ticker(bid=1.5))
    assert b"numOrders" not in encode_orderbook(orderbook(bids=[Order(1.0, 1.0)]))
    assert b"params" not in encode_indicator(indicator())
    assert b'"params":{"period":21}' in encode_indicator(indicator(params={"period": 21}))
    for text in (encode_ticker(ticker()), encode_orderbook(orderbook()), encode_indicator(indicator())):
        assert b"null" not in text


@pytest.mark.parametrize(
    ("make", "field"),
    [(ticker, "bid"), (ticker, "ask"), (indicator, "params")],
)
def test_none_is_not_unset(make: Any, field: str) -> None:
    """None would be written as null, which the Node schemas refuse: it is refused here too."""
    with pytest.raises(ValidationError, match=f"^{field} "):
        make(**{field: None})
    with pytest.raises(ValidationError, match=r"^num_orders "):
        Order(1.0, 1.0, None)  # type: ignore[arg-type]


def test_unknown_fields_are_ignored_on_decode() -> None:
    text = encode_ticker(ticker())[:-1] + b',"extra":{"deep":[1]}}'
    assert decode_ticker(text) == ticker()


# ---- the two rules beyond the schemas ------------------------------------------------------------

TICKER_NUMBERS = ["price", "change24h", "change_percent24h", "high24h", "low24h", "volume24h", "bid", "ask"]


@pytest.mark.parametrize("field", TICKER_NUMBERS)
@pytest.mark.parametrize(
    "bad", [math.inf, -math.inf, math.nan, True, False, MAX_SAFE_INTEGER + 1, -MAX_SAFE_INTEGER - 1]
)
def test_ticker_numbers_are_finite_and_exact(field: str, bad: Any) -> None:
    with pytest.raises(ValidationError) as raised:
        ticker(**{field: bad})
    assert raised.value.field == field
    assert repr(bad) in str(raised.value)


@pytest.mark.parametrize("field", ["price", "size"])
@pytest.mark.parametrize("bad", [math.inf, math.nan, True, MAX_SAFE_INTEGER + 1, 0, -1.0, "1"])
def test_order_numbers(field: str, bad: Any) -> None:
    fields: dict[str, Any] = {"price": 1.0, "size": 1.0, field: bad}
    with pytest.raises(ValidationError) as raised:
        Order(**fields)
    assert raised.value.field == field


@pytest.mark.parametrize("bad", [0, -1, 1.0, 2.5, True, MAX_SAFE_INTEGER + 1, "2"])
def test_num_orders_is_a_positive_exact_int(bad: Any) -> None:
    with pytest.raises(ValidationError, match=r"^num_orders "):
        Order(1.0, 1.0, bad)


@pytest.mark.parametrize("bad", [0, -1, 1.5, float(T0), True, MAX_SAFE_INTEGER + 1, "1704067200000"])
def test_timestamps_are_positive_exact_ints(bad: Any) -> None:
    with pytest.raises(ValidationError, match=r"^timestamp "):
        ticker(timestamp=bad)
    with pytest.raises(ValidationError, match=r"^timestamp "):
        orderbook(timestamp=bad)


def test_largest_exact_ints_are_accepted() -> None:
    big = ticker(timestamp=MAX_SAFE_INTEGER, price=MAX_SAFE_INTEGER, change24h=-MAX_SAFE_INTEGER)
    assert decode_ticker(encode_ticker(big)).timestamp == MAX_SAFE_INTEGER
    assert Order(1.0, 1.0, MAX_SAFE_INTEGER).num_orders == MAX_SAFE_INTEGER
    assert indicator(timestamp=-MAX_SAFE_INTEGER, params={"n": MAX_SAFE_INTEGER}).timestamp == -MAX_SAFE_INTEGER
    # a double beyond 2**53 is a number like any other: only an int must be exact
    assert ticker(volume24h=1.2345678901234568e20).volume24h == 1.2345678901234568e20


@pytest.mark.parametrize(
    ("text", "field", "value"),
    [
        (b'"price":1e999', "price", math.inf),
        (b'"price":-1e999', "price", -math.inf),
        (b'"change24h":true', "change24h", True),
        (b'"timestamp":9007199254740992', "timestamp", 9007199254740992),
        (b'"timestamp":1704067200000.0', "timestamp", 1704067200000.0),
        (b'"timestamp":1.7040672e12', "timestamp", 1.7040672e12),
        (b'"bid":null', "bid", None),
        (b'"ask":"1"', "ask", "1"),
        (b'"symbol":7', "symbol", 7),
    ],
)
def test_decoding_a_ticker_names_field_and_value(text: bytes, field: str, value: Any) -> None:
    good = ordered(encode_ticker(ticker()))
    name = text.split(b":", 1)[0].strip(b'"').decode()
    doc = dict(good)
    doc.pop(name, None)
    data = json.dumps(doc).encode()[:-1] + b"," + text + b"}"
    with pytest.raises(ValidationError) as raised:
        decode_ticker(data)
    assert raised.value.field == field
    assert same_value(raised.value.value, value)


@pytest.mark.parametrize(
    ("data", "field"),
    [
        (b"not json", "ticker"),
        (b"", "ticker"),
        (b"null", "ticker"),
        (b"[1, 2]", "ticker"),
        (b'{"symbol":"BTC-USD"}', "price"),
        (b"\xff", "ticker"),
    ],
)
def test_decoding_junk_names_the_model(data: bytes, field: str) -> None:
    with pytest.raises(ValidationError) as raised:
        decode_ticker(data)
    assert raised.value.field == field


@pytest.mark.parametrize(
    ("doc", "field", "value"),
    [
        ({"bids": "x"}, "bids", "x"),
        ({"bids": [{"price": 1, "size": 1}, 5]}, "bids[1]", 5),
        ({"asks": [{"price": 1}]}, "asks[0].size", UNSET),
        ({"asks": [{"price": 1, "size": 1, "numOrders": 1e999}]}, "asks[0].num_orders", math.inf),
        ({"asks": [{"price": 1, "size": 1e999}]}, "asks[0].size", math.inf),
        ({"symbol": ""}, "symbol", ""),
    ],
)
def test_decoding_an_orderbook_names_the_level(doc: dict[str, Any], field: str, value: Any) -> None:
    base: dict[str, Any] = {"symbol": "BTC-USD", "bids": [], "asks": [], "timestamp": T0, **doc}
    data = json.dumps(base).replace("Infinity", "1e999").encode()
    with pytest.raises(ValidationError) as raised:
        decode_orderbook(data)
    assert raised.value.field == field
    assert same_value(raised.value.value, value)


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"value": {"a": math.nan}}, "value['a']"),
        ({"value": {"a": math.inf}}, "value['a']"),
        ({"value": {"a": True}}, "value['a']"),
        ({"value": {"a": MAX_SAFE_INTEGER + 1}}, "value['a']"),
        ({"value": {1: 1.0}}, "value key"),
        ({"value": [1.0]}, "value"),
        ({"params": {"p": math.nan}}, "params['p']"),
        ({"params": {"p": MAX_SAFE_INTEGER + 1}}, "params['p']"),
        ({"params": {"p": None}}, "params['p']"),
        ({"params": {"p": [1]}}, "params['p']"),
        ({"params": []}, "params"),
        ({"timestamp": 1.0}, "timestamp"),
        ({"timestamp": True}, "timestamp"),
        ({"timestamp": MAX_SAFE_INTEGER + 1}, "timestamp"),
        ({"type": None}, "type"),
        ({"symbol": 1}, "symbol"),
        ({"timeframe": b"1h"}, "timeframe"),
    ],
)
def test_indicator_rules(overrides: dict[str, Any], field: str) -> None:
    with pytest.raises(ValidationError) as raised:
        indicator(**overrides)
    assert raised.value.field == field


def test_indicator_has_no_rules_beyond_types() -> None:
    """No Node schema: empty strings, any timeframe text and any finite numbers are taken as given."""
    odd = indicator(type="", symbol="", timeframe="7m", value={}, params={"s": "", "b": False, "f": -0.5, "i": -3})
    assert decode_indicator(encode_indicator(odd)) == odd
    assert decode_indicator(encode_indicator(odd)).params == {"s": "", "b": False, "f": -0.5, "i": -3}


def test_indicator_decode_keeps_param_types() -> None:
    text = b'{"timestamp":1,"type":"ema","symbol":"X","timeframe":"1h","value":{"ema":2},"params":{"period":21,"k":2.5,"on":true,"src":"close"}}'
    value = decode_indicator(text)
    assert value.params == {"period": 21, "k": 2.5, "on": True, "src": "close"}
    assert type(value.value["ema"]) is float
    assert encode_indicator(value) == text.replace(b'"ema":2}', b'"ema":2.0}')


# ---- assignment and the encode-time checks ---------------------------------------------------------


def test_assignment_is_checked() -> None:
    t = ticker()
    with pytest.raises(ValidationError, match=r"^price "):
        t.price = 0.0
    assert t.price == 42000.5
    t.price = 1.5
    assert t.price == 1.5
    book = orderbook()
    with pytest.raises(ValidationError, match=r"^bids\[0\] "):
        book.bids = [{"price": 1, "size": 1}]  # type: ignore[list-item]
    order = Order(1.0, 1.0)
    with pytest.raises(ValidationError, match=r"^size "):
        order.size = -1.0
    value = indicator()
    with pytest.raises(ValidationError, match=r"^value\['x'\] "):
        value.value = {"x": math.nan}


@pytest.mark.parametrize(
    ("make", "field", "bad", "check"),
    [
        (ticker, "price", 0.0, check_ticker),
        (ticker, "bid", None, check_ticker),
        (ticker, "timestamp", -5, check_ticker),
        (ticker, "symbol", "", check_ticker),
        (orderbook, "timestamp", 1.5, check_orderbook),
        (orderbook, "asks", (), check_orderbook),
        (indicator, "value", {"a": math.inf}, check_indicator),
        (indicator, "params", {"a": None}, check_indicator),
    ],
)
def test_force_setattr_is_caught_at_encode_time(make: Any, field: str, bad: Any, check: Any) -> None:
    value = make()
    check(value)
    msgspec.structs.force_setattr(value, field, bad)
    with pytest.raises(ValidationError) as raised:
        check(value)
    assert raised.value.field.startswith(field)
    with pytest.raises(ValidationError):
        encode(value)


def test_a_changed_level_is_caught_at_encode_time() -> None:
    book = orderbook()
    msgspec.structs.force_setattr(book.bids[1], "size", math.nan)
    with pytest.raises(ValidationError) as raised:
        encode_orderbook(book)
    assert raised.value.field == "bids[1].size"
    book = orderbook()
    book.asks.append("level")  # type: ignore[arg-type]
    with pytest.raises(ValidationError) as raised:
        encode_orderbook(book)
    assert raised.value.field == "asks[1]"
    book = orderbook()
    msgspec.structs.force_setattr(book.asks[0], "num_orders", 0)
    with pytest.raises(ValidationError, match=r"^asks\[0\]\.num_orders "):
        check_orderbook(book)


def test_a_changed_dict_is_caught_at_encode_time() -> None:
    value = indicator(params={"n": 1})
    value.value["signal"] = math.inf
    with pytest.raises(ValidationError, match=r"^value\['signal'\] "):
        encode_indicator(value)
    value = indicator(params={"n": 1})
    assert isinstance(value.params, dict)
    value.params["n"] = None  # type: ignore[assignment]
    with pytest.raises(ValidationError, match=r"^params\['n'\] "):
        encode_indicator(value)


@pytest.mark.parametrize(
    ("check", "name"),
    [(check_ticker, "ticker"), (check_order, "order"), (check_orderbook, "orderbook"), (check_indicator, "indicator")],
)
def test_checks_refuse_other_types(check: Any, name: str) -> None:
    with pytest.raises(ValidationError) as raised:
        check({"symbol": "BTC-USD"})
    assert raised.value.field == name


def test_checks_return_the_value() -> None:
    t, b, i = ticker(), orderbook(), indicator()
    assert check_ticker(t) is t
    assert check_orderbook(b) is b
    assert check_indicator(i) is i
    assert check_order(b.bids[0]) is b.bids[0]


# ---- round trips --------------------------------------------------------------------------------------

positive = st.floats(min_value=5e-324, allow_infinity=False, allow_nan=False)
finite = st.floats(allow_infinity=False, allow_nan=False)
stamps = st.integers(min_value=1, max_value=MAX_SAFE_INTEGER)
texts = st.text(min_size=1, max_size=12)
levels = st.lists(st.builds(Order, positive, positive, st.integers(1, MAX_SAFE_INTEGER) | st.just(UNSET)), max_size=5)


@given(
    st.builds(
        Ticker,
        symbol=texts,
        price=positive,
        change24h=finite,
        change_percent24h=finite,
        high24h=positive,
        low24h=positive,
        volume24h=st.floats(min_value=0.0, allow_infinity=False, allow_nan=False),
        bid=positive | st.just(UNSET),
        ask=positive | st.just(UNSET),
        timestamp=stamps,
    )
)
def test_ticker_round_trip(value: Ticker) -> None:
    assert decode_ticker(encode_ticker(value)) == value


@given(st.builds(Orderbook, texts, levels, levels, stamps))
def test_orderbook_round_trip(value: Orderbook) -> None:
    assert decode_orderbook(encode_orderbook(value)) == value


@given(
    st.builds(
        IndicatorValue,
        st.integers(-MAX_SAFE_INTEGER, MAX_SAFE_INTEGER),
        st.text(max_size=8),
        st.text(max_size=8),
        st.text(max_size=4),
        st.dictionaries(st.text(max_size=6), finite, max_size=4),
        st.dictionaries(
            st.text(max_size=6),
            st.text(max_size=6) | st.booleans() | finite | st.integers(-MAX_SAFE_INTEGER, MAX_SAFE_INTEGER),
            max_size=4,
        )
        | st.just(UNSET),
    )
)
def test_indicator_round_trip(value: IndicatorValue) -> None:
    decoded = decode_indicator(encode_indicator(value))
    assert decoded == value
    if isinstance(value.params, dict):
        assert isinstance(decoded.params, dict)
        assert [type(v) for v in decoded.params.values()] == [type(v) for v in value.params.values()]

"""The value caches against what the Node service's own code stored, read and published (``data/node-snapshots.json``).

Every case of the snapshot is replayed through the cache, sync and asyncio:

- writes: Node's stored bytes, written under the case's key, read back through
  ``get_*``; our value for the same arguments, written by the plain setter and by
  ``*_if_newer``, lands under the same key with the same TTL, and parses to the
  same JSON as Node's (same names in the same order, same numbers as doubles);
- reads: the same presets give the same result (or both refuse the value);
- publishUpdate: the same channel, and Node's message parses into our model.

Bytes differ only where the text of a JSON number or the field order differs by
design: msgspec writes a whole float as ``42000.0`` and ``1e21`` where JavaScript
writes ``42000`` and ``1e+21``, and our indicator JSON has one field order where
Node stores its input's. The cases that differ are named below, exactly.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import msgspec
import pytest
import redis
from redis.client import PubSub

from livermore_cache import (
    IndicatorValue,
    Order,
    Orderbook,
    Ticker,
    ValidationError,
    indicator_channel,
    indicator_key,
    orderbook_channel,
    orderbook_key,
    ticker_channel,
    ticker_key,
)
from livermore_cache.values import (
    decode_indicator,
    decode_orderbook,
    decode_ticker,
    encode_indicator,
    encode_orderbook,
    encode_ticker,
)
from tests.support.node import ATTRIBUTE, doubles, field_of, js, node_snapshots, ordered
from tests.support.stored import assert_ttl, messages

SNAPSHOT = node_snapshots()
CASES: list[dict[str, Any]] = SNAPSHOT["cases"]
KIND = {"TickerCacheStrategy": "ticker", "OrderbookCacheStrategy": "orderbook", "IndicatorCacheStrategy": "indicator"}

BUILT_BYTES_DIFFER = {
    "small numbers (JS writes 0.00001234 and 1e-7), -0, a 21-digit integer volume",  # 1.234e-5, -0.0, 1.2345678901234568e20
    "large numbers: 17-digit integer, 1e16, 1e21; 0.1+0.2; 1e-7; 0.0001",  # 1.2345678901234568e16, 1e16, 1e21
    "no schema: the value is stored in the input key order",  # ours: timestamp, type, symbol, timeframe, value, params
}
"""Write cases whose value, built from the case's own arguments, we store in other bytes than Node."""

FIELD_ORDER_DIFFERS = {"no schema: the value is stored in the input key order"}
"""Write cases whose stored JSON has the same names and values as Node's, in another order."""

DECODED_BYTES_SAME = {
    "bid and ask set, fractional numbers",
    "setup for the reads below (same as the first case)",
    "empty bids and asks",  # no number but the timestamp
}
"""Write cases whose Node-stored value, decoded (numbers become floats) and written by us, is Node's bytes again.

Every other one differs in the text of its whole numbers at least (``42000.0``).
"""

PUBLISHED_BYTES_DIFFER = {
    "publishUpdate does not parse: input key order and the unknown field are kept",
    "publishUpdate does not parse: input order and unknown fields kept",
    "message keeps the input key order",
}
"""publishUpdate cases whose message (Node's input as given) is not the JSON of our model: unknown fields, order."""

NODE_RETURNS_WE_REFUSE = {"getIndicator returns the nulls as stored"}
"""getIndicator returns any stored JSON; ours decodes it, and refuses the nulls Node stores for NaN and Infinity."""


# ---- helpers --------------------------------------------------------------------------------------------------------


def known(model: type[msgspec.Struct], doc: dict[str, Any]) -> dict[str, Any]:
    """The fields the model has, by attribute name (unknown ones dropped, as zod drops them)."""
    names = set(model.__struct_encode_fields__)
    return {ATTRIBUTE.get(k, k): v for k, v in doc.items() if k in names}


def build(kind: str, doc: dict[str, Any]) -> Any:
    """Our model for a Node input, built from Python values as a caller builds it."""
    if kind == "ticker":
        return Ticker(**known(Ticker, doc))
    if kind == "orderbook":
        fields = known(Orderbook, doc)
        for side in ("bids", "asks"):
            fields[side] = [level_of(level, f"{side}[{i}]") for i, level in enumerate(fields[side])]
        return Orderbook(**fields)
    return IndicatorValue(**doc)


def level_of(doc: dict[str, Any], where: str) -> Order:
    try:
        return Order(**known(Order, doc))
    except ValidationError as error:
        raise error.at(where) from None


DECODE: dict[str, Callable[[bytes | str], Any]] = {
    "ticker": decode_ticker,
    "orderbook": decode_orderbook,
    "indicator": decode_indicator,
}
ENCODE: dict[str, Callable[[Any], bytes]] = {
    "ticker": encode_ticker,
    "orderbook": encode_orderbook,
    "indicator": encode_indicator,
}


def key_of(kind: str, user: int, exchange: int, value: Any) -> str:
    if kind == "ticker":
        return ticker_key(user, exchange, value.symbol)
    if kind == "orderbook":
        return orderbook_key(user, exchange, value.symbol)
    return indicator_key(user, exchange, value.symbol, value.timeframe, value.type)


def channel_of(kind: str, user: int, exchange: int, value: Any) -> str:
    if kind == "ticker":
        return ticker_channel(user, exchange, value.symbol)
    if kind == "orderbook":
        return orderbook_channel(user, exchange, value.symbol)
    return indicator_channel(user, exchange, value.symbol, value.timeframe, value.type)


def normalized(value: Any) -> Any:
    """JSON parsed with every object as (name, value) pairs (order counts) and every number as a double."""
    if isinstance(value, list):
        return [normalized(v) for v in value]
    if isinstance(value, tuple):
        return (value[0], normalized(value[1]))
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    return value


def builtins(value: Any) -> Any:
    """Our model as the JSON object it encodes to, numbers as doubles."""
    return doubles(msgspec.json.encode(value))


def as_javascript(value: Any) -> Any:
    """A snapshot's ``returned`` object with numbers as doubles."""
    return doubles(json.dumps(value))


def server_commands(r: redis.Redis) -> int:
    """Commands the server has processed, this INFO included."""
    return int(r.info("stats")["total_commands_processed"])


def preset(r: redis.Redis, case: dict[str, Any]) -> None:
    """The values the case's database held: its presets, or (a read right after a write) what that write stored."""
    for item in case.get("preset", []):
        r.set(item["key"], item["value"], ex=item.get("ttl"))
    if "preset" not in case and "key" in case:
        before = CASES[: CASES.index(case)]
        earlier = [c for c in before if c.get("key") == case["key"] and "stored" in c]
        if earlier and case["call"].startswith("get") and (case.get("returned") is not None or "error" in case):
            r.set(case["key"], earlier[-1]["stored"])


# ---- the snapshot's facts about TTLs --------------------------------------------------------------------------------


def test_default_ttls_are_the_snapshot_ones(make_value_cache: Callable[..., Any]) -> None:
    assert {kind: make_value_cache(kind).ttl_seconds for kind in ("ticker", "orderbook", "indicator")} == SNAPSHOT[
        "ttl_seconds"
    ]


# ---- writes ---------------------------------------------------------------------------------------------------------


def replay_write(case: dict[str, Any], make_value_cache: Callable[..., Any], r: redis.Redis, sub: PubSub) -> None:
    kind = KIND[case["strategy"]]
    cache = make_value_cache(kind)
    user, exchange, doc = case["args"][0], case["args"][1], js(case["args"][2])
    if "error" in case:  # Node's parse throws; our model cannot even be built, so nothing can be written
        with pytest.raises(ValidationError) as raised:
            build(kind, doc)
        assert raised.value.field == field_of(case["error"]["issues"][0]["path"])
        assert r.dbsize() == 0
        return

    node_key, node_stored, node_ttl = case["key"], case["stored"], case["ttl"]
    assert node_ttl == SNAPSHOT["ttl_seconds"][kind] == cache.ttl_seconds
    location = (node_key.split(":")[3],) if kind != "indicator" else tuple(node_key.split(":")[3:6])

    # Node's stored bytes, under Node's key, read through get_*
    r.set(node_key, node_stored, ex=node_ttl)
    if "null" in node_stored:  # Infinity or NaN stored as null: no valid value of ours, refused on read
        with pytest.raises(ValidationError) as raised:
            getattr(cache, f"get_{kind}")(user, exchange, *location)
        assert raised.value.field == f"value of {node_key}"
        with pytest.raises(ValidationError):
            build(kind, doc)
        return
    read = getattr(cache, f"get_{kind}")(user, exchange, *location)
    assert read is not None
    assert builtins(read) == doubles(node_stored)
    assert read == DECODE[kind](node_stored)

    # our value for the same arguments: same key, same TTL, the same JSON
    ours = build(kind, doc)
    assert key_of(kind, user, exchange, ours) == node_key
    for write in ("plain", "if_newer"):
        r.flushall()
        if write == "plain":
            getattr(cache, f"set_{kind}")(user, exchange, ours)
        else:
            assert getattr(cache, f"set_{kind}_if_newer")(user, exchange, ours, publish=True) is True
        assert r.keys("*") == [node_key.encode()]
        stored = r.get(node_key)
        assert stored is not None
        assert_ttl(r, node_key, node_ttl)
        assert doubles(stored) == doubles(node_stored), "the same names and values"
        assert (normalized(ordered(stored)) == normalized(ordered(node_stored))) is (
            case["note"] not in FIELD_ORDER_DIFFERS
        )
        assert (stored != node_stored.encode()) is (case["note"] in BUILT_BYTES_DIFFER)
        assert DECODE[kind](stored) == read, "Node's reading of ours is ours of Node's"
    assert messages(sub) == [(channel_of(kind, user, exchange, ours), r.get(node_key))]

    # Node's value as we read it, written again by us: the same JSON, other number text where it was whole
    r.flushall()
    assert getattr(cache, f"set_{kind}_if_newer")(user, exchange, read) is True
    again = r.get(node_key)
    assert again is not None
    assert doubles(again) == doubles(node_stored)
    assert (again == node_stored.encode()) is (case["note"] in DECODED_BYTES_SAME)


def replay_set_indicators(
    case: dict[str, Any], make_value_cache: Callable[..., Any], r: redis.Redis, sub: PubSub
) -> None:
    cache = make_value_cache("indicator")
    user, exchange, docs = case["args"][0], case["args"][1], js(case["args"][2])
    values = [IndicatorValue(**doc) for doc in docs]
    writes = case.get("writes") or (
        [{"key": case["key"], "stored": case["stored"], "ttl": case["ttl"]}] if docs else []
    )
    for write in ("plain", "if_newer"):
        r.flushall()
        before = server_commands(r)
        if write == "plain":
            assert cache.set_indicators(user, exchange, values) is None
        else:
            # all newer than nothing, and a later one for the same key is newer here: all written
            assert cache.set_indicators_if_newer(user, exchange, values) == [True] * len(values)
        if not docs:
            assert server_commands(r) - before == 1, "an empty list: no command (only this INFO)"
        assert sorted(r.keys("*")) == sorted(w["key"].encode() for w in writes)
        for expected in writes:
            stored = r.get(expected["key"])
            assert stored == expected["stored"].encode(), "built from the case's values: byte for byte"
            assert_ttl(r, expected["key"], expected["ttl"])


# ---- reads ----------------------------------------------------------------------------------------------------------


READ_METHOD = {
    "getTicker": "get_ticker",
    "getOrderbook": "get_orderbook",
    "getIndicator": "get_indicator",
    "hasTicker": "has_ticker",
    "hasIndicator": "has_indicator",
}


def replay_get(case: dict[str, Any], make_value_cache: Callable[..., Any], r: redis.Redis, sub: PubSub) -> None:
    kind = KIND[case["strategy"]]
    cache = make_value_cache(kind)
    user, exchange, *location = js(case["args"])
    preset(r, case)
    if kind == "indicator":
        symbol, timeframe, type_, *rest = location
        params = rest[0] if rest else None
        if (
            case["call"] == "getIndicator"
            and params is not None
            and any(isinstance(v, list | dict) for v in params.values())
        ):
            # Node renders lists and objects into the key ("opts=[object Object]"); we refuse them, before any I/O
            with pytest.raises(ValidationError) as raised:
                cache.get_indicator(user, exchange, symbol, timeframe, type_, params)
            assert raised.value.field == "params value"
            return
        assert indicator_key(user, exchange, symbol, timeframe, type_, params) == case["key"]
    else:
        assert (ticker_key if kind == "ticker" else orderbook_key)(user, exchange, location[0]) == case["key"]

    call = getattr(cache, READ_METHOD[case["call"]])
    if "error" in case or case["note"] in NODE_RETURNS_WE_REFUSE:
        with pytest.raises(ValidationError) as raised:
            call(user, exchange, *location)
        assert raised.value.field == f"value of {case['key']}"
        return
    got = call(user, exchange, *location)
    if case["call"].startswith("has"):
        assert got is case["returned"]
    elif case["returned"] is None:
        assert got is None
    else:
        assert builtins(got) == as_javascript(case["returned"])
    assert cache.invalid_values == 0


def replay_bulk(case: dict[str, Any], make_value_cache: Callable[..., Any], r: redis.Redis, sub: PubSub) -> None:
    kind = KIND[case["strategy"]]
    cache = make_value_cache(kind)
    user, exchange, requested = case["args"]
    preset(r, case)
    if kind == "indicator":
        requests = [(q["symbol"], q["timeframe"], *([q["type"]] if "type" in q else [])) for q in requested]
        keys_read = [
            indicator_key(user, exchange, q[0], q[1], (q[2] if len(q) > 2 else "") or "macd-v") for q in requests
        ]
        names = [f"{q[0]}:{q[1]}" for q in requests]
        before = server_commands(r)
        got = cache.get_indicators_bulk(user, exchange, requests)
    else:
        keys_read = [(ticker_key if kind == "ticker" else orderbook_key)(user, exchange, s) for s in requested]
        names = list(requested)
        before = server_commands(r)
        got = getattr(cache, f"get_{kind}s")(user, exchange, requested)
    if not requested:
        assert server_commands(r) - before == 1, "an empty request: no command (only this INFO)"
    assert keys_read == case.get("keys_read", [case["key"]] if "key" in case else [])
    returned = case["returned"]["$map"]
    assert [(name, builtins(value)) for name, value in got.items()] == [
        (name, as_javascript(value)) for name, value in returned
    ]
    # what Node skipped we skip too, and count: the keys read that hold a value Node left out of its Map
    held = {item["key"] for item in case.get("preset", [])}
    node_skipped = sum(
        1 for key, name in zip(keys_read, names, strict=True) if key in held and name not in dict(returned)
    )
    assert cache.invalid_values == node_skipped


# ---- publishUpdate ----------------------------------------------------------------------------------------------------


def replay_publish(case: dict[str, Any], make_value_cache: Callable[..., Any], r: redis.Redis, sub: PubSub) -> None:
    kind = KIND[case["strategy"]]
    cache = make_value_cache(kind)
    user, exchange, doc = case["args"][0], case["args"][1], js(case["args"][2])
    decode = DECODE[kind]
    try:
        node_message = decode(case["message"])
    except ValidationError:
        # Node publishes its input unvalidated; an invalid one is neither read nor published by us
        with pytest.raises(ValidationError):
            build(kind, doc)
        assert case["note"] == "publishUpdate does not validate: an invalid ticker is published as given"
        return
    ours = build(kind, doc)
    assert node_message == ours, "Node's message parses into our model of the same input"
    assert cache.publish_update(user, exchange, ours) == 1
    got = messages(sub)
    assert got == [(case["channel"], ENCODE[kind](ours))]
    assert decode(got[0][1]) == node_message
    assert (got[0][1] != case["message"].encode()) is (case["note"] in PUBLISHED_BYTES_DIFFER)
    assert r.dbsize() == 0


HANDLERS = {
    "setTicker": replay_write,
    "setOrderbook": replay_write,
    "setIndicator": replay_write,
    "setIndicators": replay_set_indicators,
    "getTicker": replay_get,
    "getOrderbook": replay_get,
    "getIndicator": replay_get,
    "hasTicker": replay_get,
    "hasIndicator": replay_get,
    "getTickers": replay_bulk,
    "getOrderbooks": replay_bulk,
    "getIndicatorsBulk": replay_bulk,
    "publishUpdate": replay_publish,
}


@pytest.mark.parametrize("case", CASES, ids=[f"{i:02d}-{c['call']}" for i, c in enumerate(CASES)])
def test_node_case(case: dict[str, Any], make_value_cache: Callable[..., Any], r: redis.Redis, sub: PubSub) -> None:
    HANDLERS[case["call"]](case, make_value_cache, r, sub)


def test_every_case_has_a_replay() -> None:
    assert {c["call"] for c in CASES} == set(HANDLERS)
    assert len(CASES) == 54
    notes = {c["note"] for c in CASES}
    for named in (
        BUILT_BYTES_DIFFER,
        FIELD_ORDER_DIFFERS,
        DECODED_BYTES_SAME,
        PUBLISHED_BYTES_DIFFER,
        NODE_RETURNS_WE_REFUSE,
    ):
        assert named <= notes

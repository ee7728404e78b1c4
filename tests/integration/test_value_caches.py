"""The ticker, orderbook and indicator caches against a real server, rule by rule, through both facades.

Every test body runs for each of the three caches (``spec``) and for the sync and
the asyncio facade (``make_value_cache``). The newer-wins write (``*_if_newer``):
an empty key, an older value or a foreign value is replaced; an equal or newer
one is kept, bytes and TTL untouched; a key of another type is an error. The
plain setters write unconditionally, as the Node service's ``SETEX``/``SET EX``.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import msgspec
import pytest
import redis
from redis.client import PubSub
from redis.exceptions import ResponseError

from livermore_cache import (
    IndicatorValue,
    Order,
    Orderbook,
    PartialWriteError,
    Ticker,
    ValidationError,
    indicator_channel,
    indicator_key,
    orderbook_channel,
    orderbook_key,
    ticker_channel,
    ticker_key,
)
from livermore_cache.values import encode_indicator, encode_orderbook, encode_ticker
from tests.support.builders import indicator, orderbook, ticker
from tests.support.constants import EXCHANGE, INDICATOR_TIMEFRAME, INDICATOR_TYPE, SYMBOL, T0, USER
from tests.support.facade import AsyncAsSync
from tests.support.stored import assert_ttl, drain, messages

PARAMS: dict[str, str | int | float | bool] = {"slowPeriod": 26, "fastPeriod": 12, "source": "close"}


# ---- values of each kind ----------------------------------------------------------------------------------------


def make_ticker(symbol: str, timestamp: int, price: float) -> Ticker:
    return ticker(symbol, timestamp, price, bid=price - 0.5)


def make_orderbook(symbol: str, timestamp: int, price: float) -> Orderbook:
    return orderbook(
        symbol, timestamp, price, bids=[Order(price, 1.5, 3), Order(price - 1.0, 0.25)], asks=[Order(price + 0.5, 2.0)]
    )


def make_indicator(symbol: str, timestamp: int, price: float) -> IndicatorValue:
    return indicator(symbol, timestamp, price, signal=1.25, params=dict(PARAMS))


def break_ticker(value: Any) -> tuple[str, object]:
    msgspec.structs.force_setattr(value, "price", -1.0)
    return "price", -1.0


def break_orderbook(value: Any) -> tuple[str, object]:
    msgspec.structs.force_setattr(value.bids[1], "size", 0.0)
    return "bids[1].size", 0.0


def break_indicator(value: Any) -> tuple[str, object]:
    value.value["signal"] = math.inf  # a changed dict: no __setattr__ sees it
    return "value['signal']", math.inf


@dataclass(frozen=True)
class Spec:
    """One cache kind: how to make its values and call its methods by name."""

    kind: str
    ttl: int
    make: Callable[[str, int, float], Any]
    encode: Callable[[Any], bytes]
    break_value: Callable[[Any], tuple[str, object]]
    invalid_json: bytes
    """A stored value that is JSON with a timestamp, yet not valid for this kind."""

    def key(self, symbol: str) -> str:
        if self.kind == "ticker":
            return ticker_key(USER, EXCHANGE, symbol)
        if self.kind == "orderbook":
            return orderbook_key(USER, EXCHANGE, symbol)
        return indicator_key(USER, EXCHANGE, symbol, INDICATOR_TIMEFRAME, INDICATOR_TYPE)

    def channel(self, symbol: str) -> str:
        if self.kind == "ticker":
            return ticker_channel(USER, EXCHANGE, symbol)
        if self.kind == "orderbook":
            return orderbook_channel(USER, EXCHANGE, symbol)
        return indicator_channel(USER, EXCHANGE, symbol, INDICATOR_TIMEFRAME, INDICATOR_TYPE)

    def address(self, symbol: str) -> tuple[str, ...]:
        """The arguments after (user, exchange) that name a value for get/has/delete."""
        return (symbol,) if self.kind != "indicator" else (symbol, INDICATOR_TIMEFRAME, INDICATOR_TYPE)

    def one(self, cache: Any, value: Any, **options: Any) -> bool:
        return bool(getattr(cache, f"set_{self.kind}_if_newer")(USER, EXCHANGE, value, **options))

    def many(self, cache: Any, values: list[Any], **options: Any) -> list[bool]:
        return list(getattr(cache, f"set_{self.kind}s_if_newer")(USER, EXCHANGE, values, **options))

    def plain(self, cache: Any, value: Any) -> None:
        getattr(cache, f"set_{self.kind}")(USER, EXCHANGE, value)

    def get(self, cache: Any, symbol: str) -> Any:
        return getattr(cache, f"get_{self.kind}")(USER, EXCHANGE, *self.address(symbol))

    def has(self, cache: Any, symbol: str) -> bool:
        return bool(getattr(cache, f"has_{self.kind}")(USER, EXCHANGE, *self.address(symbol)))

    def delete(self, cache: Any, symbol: str) -> None:
        getattr(cache, f"delete_{self.kind}")(USER, EXCHANGE, *self.address(symbol))

    def bulk_name(self, symbol: str) -> str:
        return symbol if self.kind != "indicator" else f"{symbol}:{INDICATOR_TIMEFRAME}"

    def bulk(self, cache: Any, symbols: list[str]) -> dict[str, Any]:
        if self.kind == "ticker":
            return dict(cache.get_tickers(USER, EXCHANGE, symbols))
        if self.kind == "orderbook":
            return dict(cache.get_orderbooks(USER, EXCHANGE, symbols))
        return dict(
            cache.get_indicators_bulk(USER, EXCHANGE, [(s, INDICATOR_TIMEFRAME, INDICATOR_TYPE) for s in symbols])
        )


SPECS = {
    "ticker": Spec(
        "ticker",
        60,
        make_ticker,
        encode_ticker,
        break_ticker,
        b'{"symbol":"X","price":0,"change24h":1,"changePercent24h":1,"high24h":1,"low24h":1,"volume24h":1,'
        b'"timestamp":1}',
    ),
    "orderbook": Spec(
        "orderbook",
        30,
        make_orderbook,
        encode_orderbook,
        break_orderbook,
        b'{"symbol":"X","bids":[{"price":1,"size":1,"numOrders":0}],"asks":[],"timestamp":1}',
    ),
    "indicator": Spec(
        "indicator",
        90000,
        make_indicator,
        encode_indicator,
        break_indicator,
        b'{"timestamp":1,"type":"macd-v","symbol":"X","timeframe":"1h","value":{"macdV":null}}',
    ),
}


@pytest.fixture(params=list(SPECS))
def spec(request: pytest.FixtureRequest) -> Spec:
    return SPECS[request.param]


@pytest.fixture
def vc(spec: Spec, make_value_cache: Callable[..., Any]) -> Any:
    """The spec's cache with the default settings, sync or async."""
    return make_value_cache(spec.kind)


def server_reads(r: redis.Redis) -> int:
    """The server's count of read events (one per round trip of a small pipeline), this INFO's own included."""
    return int(r.info("stats")["total_reads_processed"])


def evalsha_calls(r: redis.Redis) -> int:
    stats: dict[str, Any] = r.info("commandstats")
    return int(stats.get("cmdstat_evalsha", {"calls": 0})["calls"])


def symbols(n: int) -> list[str]:
    return [f"S{i:02d}-USD" for i in range(n)]


# ---- settings ----------------------------------------------------------------------------------------------------


def test_default_ttls_are_the_node_services() -> None:
    assert {name: s.ttl for name, s in SPECS.items()} == {"ticker": 60, "orderbook": 30, "indicator": 90000}


def test_default_and_custom_ttl(spec: Spec, make_value_cache: Callable[..., Any], r: redis.Redis) -> None:
    default = make_value_cache(spec.kind)
    custom = make_value_cache(spec.kind, ttl_seconds=7)
    assert default.ttl_seconds == spec.ttl
    assert custom.ttl_seconds == 7
    assert spec.one(custom, spec.make("A-USD", T0, 1.5)) is True
    assert spec.many(custom, [spec.make("B-USD", T0, 1.5)]) == [True]
    spec.plain(custom, spec.make("C-USD", T0, 1.5))
    for symbol in ("A-USD", "B-USD", "C-USD"):
        assert_ttl(r, spec.key(symbol), 7)


@pytest.mark.parametrize("bad", [0, -1, 1.5, True, "60", 2**53])
def test_ttl_must_be_a_positive_int(spec: Spec, make_value_cache: Callable[..., Any], bad: object) -> None:
    with pytest.raises(ValidationError) as raised:
        make_value_cache(spec.kind, ttl_seconds=bad)
    assert raised.value.field == "ttl_seconds"
    assert raised.value.value is bad


# ---- the newer-wins write, rule by rule --------------------------------------------------------------------------


def test_empty_key_is_written_with_the_ttl(spec: Spec, vc: Any, r: redis.Redis) -> None:
    value = spec.make(SYMBOL, T0, 42000.5)
    assert spec.one(vc, value) is True
    assert r.get(spec.key(SYMBOL)) == spec.encode(value)
    assert_ttl(r, spec.key(SYMBOL), spec.ttl)
    assert r.keys("*") == [spec.key(SYMBOL).encode()]


@pytest.mark.parametrize("arranged", ["ours", "raw, no ttl"])
def test_an_older_value_is_replaced(spec: Spec, vc: Any, r: redis.Redis, arranged: str) -> None:
    older = spec.make(SYMBOL, T0 - 1, 1.5)
    if arranged == "ours":
        assert spec.one(vc, older) is True
    else:
        r.set(spec.key(SYMBOL), spec.encode(older))
    newer = spec.make(SYMBOL, T0, 2.5)
    assert spec.one(vc, newer) is True
    assert r.get(spec.key(SYMBOL)) == spec.encode(newer)
    assert_ttl(r, spec.key(SYMBOL), spec.ttl)


@pytest.mark.parametrize("ahead", [0, 1, 10**6])
@pytest.mark.parametrize("ttl_before", [5000, None])
def test_an_equal_or_newer_value_is_kept_with_its_ttl(
    spec: Spec, vc: Any, r: redis.Redis, ahead: int, ttl_before: int | None
) -> None:
    stored = spec.encode(spec.make(SYMBOL, T0 + ahead, 1.5))
    r.set(spec.key(SYMBOL), stored, ex=ttl_before)
    assert spec.one(vc, spec.make(SYMBOL, T0, 2.5)) is False
    assert spec.many(vc, [spec.make(SYMBOL, T0, 3.5)]) == [False]
    assert r.get(spec.key(SYMBOL)) == stored
    if ttl_before is None:
        assert r.ttl(spec.key(SYMBOL)) == -1
    else:
        assert_ttl(r, spec.key(SYMBOL), ttl_before)


FOREIGN = [
    b"not json",
    b'{"symbol":"BTC-USD","price":1}',  # JSON without a timestamp
    b'{"symbol":"BTC-USD","timestamp":"9999999999999"}',  # a timestamp string (larger as text, and as a number)
    b'{"timestamp":null}',
    b"[1704067200001]",
    b"null",
    b'{"value":{"timestamp":9999999999999}}',  # only a nested timestamp
]


@pytest.mark.parametrize("foreign", FOREIGN, ids=[f.decode() for f in FOREIGN])
def test_a_foreign_value_is_replaced(spec: Spec, vc: Any, r: redis.Redis, foreign: bytes) -> None:
    r.set(spec.key(SYMBOL), foreign)
    value = spec.make(SYMBOL, T0, 2.5)
    assert spec.one(vc, value) is True
    assert r.get(spec.key(SYMBOL)) == spec.encode(value)
    assert_ttl(r, spec.key(SYMBOL), spec.ttl)


def test_a_key_of_another_type_is_an_error_and_unchanged(spec: Spec, vc: Any, r: redis.Redis) -> None:
    key = spec.key(SYMBOL)
    r.rpush(key, "a", "b")
    with pytest.raises(ResponseError, match=r"WRONGTYPE") as raised:
        spec.one(vc, spec.make(SYMBOL, T0, 2.5))
    assert not isinstance(raised.value, PartialWriteError)
    with pytest.raises(ResponseError, match=r"WRONGTYPE"):
        spec.many(vc, [spec.make(SYMBOL, T0, 2.5)])
    assert r.type(key) == b"list"
    assert r.lrange(key, 0, -1) == [b"a", b"b"]
    assert r.ttl(key) == -1


def test_a_batch_over_many_symbols_in_one_round_trip(spec: Spec, vc: Any, r: redis.Redis) -> None:
    names = symbols(30)
    stored_ahead = {s: [-1, 0, 1, None][i % 4] for i, s in enumerate(names)}  # older, equal, newer, nothing
    for s, ahead in stored_ahead.items():
        if ahead is not None:
            r.set(spec.key(s), spec.encode(spec.make(s, T0 + ahead, 1.5)))
    batch = [spec.make(s, T0, 2.5) for s in names]
    random.Random(5).shuffle(batch)
    expected = [stored_ahead[v.symbol] in (-1, None) for v in batch]
    assert spec.one(vc, spec.make("WARM-USD", T0, 1.5)) is True  # the script loaded, a connection in the pool

    calls = evalsha_calls(r)
    reads = server_reads(r)
    assert spec.many(vc, batch) == expected
    assert server_reads(r) - reads == 2, "one round trip (and the INFO after it)"
    assert evalsha_calls(r) - calls == 30, "one script call per value"

    for v, written in zip(batch, expected, strict=True):
        key = spec.key(v.symbol)
        if written:
            assert r.get(key) == spec.encode(v)
            assert_ttl(r, key, spec.ttl)
        else:
            ahead = stored_ahead[v.symbol]
            assert ahead is not None
            assert r.get(key) == spec.encode(spec.make(v.symbol, T0 + ahead, 1.5))
            assert r.ttl(key) == -1


def test_values_for_one_symbol_in_a_batch_are_applied_in_order(
    spec: Spec, vc: Any, r: redis.Redis, sub: PubSub
) -> None:
    batch = [
        spec.make(SYMBOL, T0 + 2, 1.5),
        spec.make(SYMBOL, T0 + 1, 2.5),  # older than the one before it
        spec.make(SYMBOL, T0 + 3, 3.5),
        spec.make(SYMBOL, T0 + 3, 4.5),  # equal to the one before it
        spec.make("ETH-USD", T0, 5.5),
    ]
    assert spec.many(vc, batch, publish=True) == [True, False, True, False, True]
    assert r.get(spec.key(SYMBOL)) == spec.encode(batch[2])
    assert messages(sub) == [
        (spec.channel(SYMBOL), spec.encode(batch[0])),
        (spec.channel(SYMBOL), spec.encode(batch[2])),
        (spec.channel("ETH-USD"), spec.encode(batch[4])),
    ]


def test_an_empty_batch_sends_nothing(spec: Spec, vc: Any, r: redis.Redis) -> None:
    reads = server_reads(r)
    assert spec.many(vc, []) == []
    assert server_reads(r) - reads == 1
    assert r.dbsize() == 0


def test_a_batch_with_one_wrong_type_key_is_a_partial_write(spec: Spec, vc: Any, r: redis.Redis, sub: PubSub) -> None:
    names = symbols(5)
    r.rpush(spec.key(names[2]), "x")
    batch = [spec.make(s, T0, 2.5) for s in names]
    with pytest.raises(PartialWriteError) as raised:
        spec.many(vc, batch, publish=True)
    assert raised.value.results == [True, True, None, True, True]
    assert list(raised.value.errors) == [spec.key(names[2])]
    error = raised.value.errors[spec.key(names[2])]
    assert isinstance(error, ResponseError)
    assert "WRONGTYPE" in str(error)  # Redis 6.2 wraps it: "Error running script ... WRONGTYPE ..."
    for v in batch:
        if v.symbol == names[2]:
            assert r.lrange(spec.key(v.symbol), 0, -1) == [b"x"]
        else:
            assert r.get(spec.key(v.symbol)) == spec.encode(v)
    assert messages(sub) == [(spec.channel(v.symbol), spec.encode(v)) for i, v in enumerate(batch) if i != 2]


# ---- publish on win ----------------------------------------------------------------------------------------------


def test_publish_announces_exactly_the_winning_writes(spec: Spec, vc: Any, r: redis.Redis, sub: PubSub) -> None:
    # A holds an older value, B a newer one, C nothing, D an equal one
    r.set(spec.key("A-USD"), spec.encode(spec.make("A-USD", T0 - 5, 1.5)))
    r.set(spec.key("B-USD"), spec.encode(spec.make("B-USD", T0 + 5, 1.5)))
    r.set(spec.key("D-USD"), spec.encode(spec.make("D-USD", T0, 1.5)))
    batch = [spec.make(s, T0, 2.5) for s in ("A-USD", "B-USD", "C-USD", "D-USD")]
    assert spec.many(vc, batch, publish=True) == [True, False, True, False]
    got = messages(sub)
    assert got == [(spec.channel("A-USD"), spec.encode(batch[0])), (spec.channel("C-USD"), spec.encode(batch[2]))]
    for channel, data in got:
        assert data == r.get(channel.removeprefix("channel:")), "the message is the stored JSON"

    assert spec.one(vc, spec.make("C-USD", T0, 3.5), publish=True) is False  # equal: skipped, nothing published
    assert spec.one(vc, spec.make("C-USD", T0 + 1, 3.5), publish=True) is True
    assert messages(sub) == [(spec.channel("C-USD"), spec.encode(spec.make("C-USD", T0 + 1, 3.5)))]


def test_without_publish_nothing_is_published(spec: Spec, vc: Any, sub: PubSub) -> None:
    assert spec.many(vc, [spec.make(s, T0, 2.5) for s in symbols(3)]) == [True] * 3
    assert spec.one(vc, spec.make(SYMBOL, T0, 2.5)) is True
    spec.plain(vc, spec.make(SYMBOL, T0 + 1, 2.5))
    assert messages(sub) == []


def test_publish_update_publishes_the_json_on_the_node_channel(
    spec: Spec, vc: Any, r: redis.Redis, sub: PubSub
) -> None:
    value = spec.make(SYMBOL, T0, 2.5)
    assert vc.publish_update(USER, EXCHANGE, value) == 1
    assert messages(sub) == [(spec.channel(SYMBOL), spec.encode(value))]
    spec.break_value(value)
    with pytest.raises(ValidationError):
        vc.publish_update(USER, EXCHANGE, value)
    assert messages(sub) == []
    assert r.dbsize() == 0


# ---- invalid input -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("position", [0, 2])
def test_an_invalid_value_is_refused_naming_its_field_and_nothing_is_written(
    spec: Spec, vc: Any, r: redis.Redis, sub: PubSub, position: int
) -> None:
    batch = [spec.make(s, T0, 2.5) for s in symbols(3)]
    field, bad = spec.break_value(batch[position])
    with pytest.raises(ValidationError) as raised:
        spec.many(vc, batch, publish=True)
    assert raised.value.field == f"{spec.kind}s[{position}].{field}"
    assert raised.value.value == bad
    with pytest.raises(ValidationError) as raised:
        spec.one(vc, batch[position], publish=True)
    assert raised.value.field == f"{spec.kind}s[0].{field}"
    with pytest.raises(ValidationError) as raised:
        spec.plain(vc, batch[position])
    assert raised.value.field == f"{spec.kind}s[0].{field}"
    assert r.dbsize() == 0
    assert messages(sub) == []


def test_another_model_is_refused(spec: Spec, vc: Any, r: redis.Redis) -> None:
    other = make_orderbook(SYMBOL, T0, 1.5) if spec.kind == "ticker" else make_ticker(SYMBOL, T0, 1.5)
    for wrong in (other, {"symbol": SYMBOL, "timestamp": T0}, None):
        with pytest.raises(ValidationError) as raised:
            spec.many(vc, [spec.make(SYMBOL, T0, 2.5), wrong])
        # the whole value is named by its position, as in candle batches (`tickers[1] must be a Ticker`)
        assert raised.value.field == f"{spec.kind}s[1]"
        assert raised.value.value is wrong
    assert r.dbsize() == 0


@pytest.mark.parametrize(("user", "exchange", "field"), [(-1, 1, "user_id"), (1, 2**53, "exchange_id")])
def test_bad_ids_are_refused(spec: Spec, vc: Any, r: redis.Redis, user: int, exchange: int, field: str) -> None:
    with pytest.raises(ValidationError) as raised:
        getattr(vc, f"set_{spec.kind}s_if_newer")(user, exchange, [spec.make(SYMBOL, T0, 2.5)])
    assert raised.value.field == field
    assert r.dbsize() == 0


# ---- the plain setters: unconditional, as the Node service's ---------------------------------------------------


def test_plain_setter_overwrites_unconditionally(spec: Spec, vc: Any, r: redis.Redis) -> None:
    key = spec.key(SYMBOL)
    r.set(key, spec.encode(spec.make(SYMBOL, T0 + 1000, 1.5)), ex=5000)
    older = spec.make(SYMBOL, T0, 2.5)
    spec.plain(vc, older)
    assert r.get(key) == spec.encode(older)
    assert_ttl(r, key, spec.ttl)
    r.delete(key)
    r.rpush(key, "a")  # SET replaces a key of any type, as the Node SETEX does
    spec.plain(vc, older)
    assert r.get(key) == spec.encode(older)
    assert_ttl(r, key, spec.ttl)


def test_set_indicators_writes_each_unconditionally(make_value_cache: Callable[..., Any], r: redis.Redis) -> None:
    cache = make_value_cache("indicator")
    spec = SPECS["indicator"]
    r.set(spec.key("ETH-USD"), spec.encode(make_indicator("ETH-USD", T0 + 1000, 1.5)))
    values = [
        make_indicator("BTC-USD", T0, 1.5),
        make_indicator("ETH-USD", T0, 2.5),  # older than the stored one: written anyway
        make_indicator("BTC-USD", T0 - 1, 3.5),  # same key, later in the list: wins, though older
    ]
    assert cache.has_indicator(USER, EXCHANGE, "BTC-USD", "1h", "macd-v") is False  # a connection in the pool
    reads = server_reads(r)
    assert cache.set_indicators(USER, EXCHANGE, values) is None
    assert server_reads(r) - reads == 2, "one pipeline"
    assert r.get(spec.key("BTC-USD")) == spec.encode(values[2])
    assert r.get(spec.key("ETH-USD")) == spec.encode(values[1])
    assert sorted(r.keys("*")) == sorted(k.encode() for k in (spec.key("BTC-USD"), spec.key("ETH-USD")))
    for symbol in ("BTC-USD", "ETH-USD"):
        assert_ttl(r, spec.key(symbol), 90000)
    reads = server_reads(r)
    cache.set_indicators(USER, EXCHANGE, [])
    assert server_reads(r) - reads == 1, "an empty list sends nothing"


# ---- reads -------------------------------------------------------------------------------------------------------


def test_get_returns_the_model_or_none(spec: Spec, vc: Any, r: redis.Redis) -> None:
    assert spec.get(vc, SYMBOL) is None
    value = spec.make(SYMBOL, T0, 2.5)
    spec.one(vc, value)
    got = spec.get(vc, SYMBOL)
    assert type(got) is type(value)
    assert got == value
    assert spec.encode(got) == spec.encode(value)


@pytest.mark.parametrize("stored", [b"not json", b"{}", b"invalid json of the kind"])
def test_get_of_an_invalid_stored_value_raises(spec: Spec, vc: Any, r: redis.Redis, stored: bytes) -> None:
    """get_ticker and get_orderbook throw as Node's do; get_indicator too (Node's returns any JSON as it is)."""
    data = spec.invalid_json if stored == b"invalid json of the kind" else stored
    r.set(spec.key(SYMBOL), data)
    with pytest.raises(ValidationError) as raised:
        spec.get(vc, SYMBOL)
    assert raised.value.field == f"value of {spec.key(SYMBOL)}"
    assert raised.value.value == data
    assert vc.invalid_values == 0


def test_bulk_reads_skip_invalid_values_and_count_them(spec: Spec, vc: Any, r: redis.Redis) -> None:
    names = ["A-USD", "B-USD", "C-USD", "D-USD", "EXCHANGE-USD", "F-USD"]
    values = {s: spec.make(s, T0 + i, 2.5 + i) for i, s in enumerate(names)}
    spec.one(vc, values["EXCHANGE-USD"])
    spec.one(vc, values["A-USD"])
    r.set(spec.key("C-USD"), b"not json")
    r.set(spec.key("D-USD"), spec.invalid_json)
    spec.one(vc, values["F-USD"])
    # B-USD missing
    got = spec.bulk(vc, names)
    assert list(got) == [spec.bulk_name(s) for s in ("A-USD", "EXCHANGE-USD", "F-USD")], (
        "request order, missing left out"
    )
    assert got == {spec.bulk_name(s): values[s] for s in ("A-USD", "EXCHANGE-USD", "F-USD")}
    assert vc.invalid_values == 2
    assert spec.bulk(vc, ["D-USD", "B-USD"]) == {}
    assert vc.invalid_values == 3
    reads = server_reads(r)
    assert spec.bulk(vc, []) == {}
    assert server_reads(r) - reads == 1, "an empty request sends nothing"


def test_bulk_read_names_by_the_request_not_the_stored_symbol(spec: Spec, vc: Any, r: redis.Redis) -> None:
    r.set(spec.key("OTHER-USD"), spec.encode(spec.make(SYMBOL, T0, 2.5)))
    assert spec.bulk(vc, ["OTHER-USD"]) == {spec.bulk_name("OTHER-USD"): spec.make(SYMBOL, T0, 2.5)}


def test_delete_and_has(spec: Spec, vc: Any, r: redis.Redis) -> None:
    assert spec.has(vc, SYMBOL) is False
    spec.delete(vc, SYMBOL)  # deleting what is not there is no error
    spec.one(vc, spec.make(SYMBOL, T0, 2.5))
    spec.one(vc, spec.make("ETH-USD", T0, 2.5))
    assert spec.has(vc, SYMBOL) is True
    r.set(spec.key("JUNK-USD"), b"not json")
    assert spec.has(vc, "JUNK-USD") is True, "EXISTS: any value counts"
    spec.delete(vc, SYMBOL)
    assert spec.has(vc, SYMBOL) is False
    assert spec.get(vc, SYMBOL) is None
    assert r.exists(spec.key("ETH-USD")) == 1
    assert spec.one(vc, spec.make(SYMBOL, T0 - 1, 2.5)) is True, "after a delete an older value is written"


# ---- indicators: the Node service's keys and bulk reads ----------------------------------------------------------


def test_get_indicators_bulk_keys_default_type_and_later_request_wins(
    make_value_cache: Callable[..., Any], r: redis.Redis
) -> None:
    cache = make_value_cache("indicator")
    macd = make_indicator("BTC-USD", T0, 1.5)
    ema = IndicatorValue(timestamp=T0, type="ema", symbol="BTC-USD", timeframe="1h", value={"ema": 42000.5})
    eth = IndicatorValue(timestamp=T0, type="macd-v", symbol="ETH-USD", timeframe="4h", value={"macdV": 3.0})
    assert cache.set_indicators_if_newer(USER, EXCHANGE, [macd, ema, eth]) == [True, True, True]
    assert sorted(r.keys("*")) == [
        b"indicator:7:1:BTC-USD:1h:ema",
        b"indicator:7:1:BTC-USD:1h:macd-v",
        b"indicator:7:1:ETH-USD:4h:macd-v",
    ]
    got = cache.get_indicators_bulk(USER, EXCHANGE, [("BTC-USD", "1h"), ("SOL-USD", "1d"), ("ETH-USD", "4h", "")])
    assert got == {"BTC-USD:1h": macd, "ETH-USD:4h": eth}
    assert list(got) == ["BTC-USD:1h", "ETH-USD:4h"]
    assert cache.get_indicators_bulk(USER, EXCHANGE, [("BTC-USD", "1h", "ema"), ("BTC-USD", "1h")]) == {
        "BTC-USD:1h": macd
    }
    assert cache.get_indicators_bulk(USER, EXCHANGE, [("BTC-USD", "1h"), ("BTC-USD", "1h", "ema")]) == {
        "BTC-USD:1h": ema
    }
    assert cache.get_indicators_bulk(USER, EXCHANGE, [("BTC-USD", "1h", "ema"), ("BTC-USD", "1h", "rsi")]) == {
        "BTC-USD:1h": ema
    }, "a later request that finds nothing leaves the earlier one's value"
    assert cache.invalid_values == 0


@pytest.mark.parametrize("setter", ["set_indicator", "set_indicator_if_newer", "set_indicators"])
def test_indicator_key_quirk_as_in_node(make_value_cache: Callable[..., Any], r: redis.Redis, setter: str) -> None:
    """Set with params: the key has none; get/has/delete with the same params read another key and miss."""
    cache = make_value_cache("indicator")
    value = make_indicator("BTC-USD", T0, 1.5)
    assert value.params == PARAMS
    if setter == "set_indicators":
        cache.set_indicators(USER, EXCHANGE, [value])
    else:
        getattr(cache, setter)(USER, EXCHANGE, value)
    assert r.keys("*") == [b"indicator:7:1:BTC-USD:1h:macd-v"]
    assert indicator_key(USER, EXCHANGE, "BTC-USD", "1h", "macd-v", PARAMS) == (
        "indicator:7:1:BTC-USD:1h:macd-v:fastPeriod=12,slowPeriod=26,source=close"
    )
    assert cache.get_indicator(USER, EXCHANGE, "BTC-USD", "1h", "macd-v") == value
    assert cache.get_indicator(USER, EXCHANGE, "BTC-USD", "1h", "macd-v", PARAMS) is None
    assert cache.get_indicator(USER, EXCHANGE, "BTC-USD", "1h", "macd-v", {}) is None  # the key with a trailing ':'
    assert cache.has_indicator(USER, EXCHANGE, "BTC-USD", "1h", "macd-v") is True
    assert cache.has_indicator(USER, EXCHANGE, "BTC-USD", "1h", "macd-v", PARAMS) is False
    cache.delete_indicator(USER, EXCHANGE, "BTC-USD", "1h", "macd-v", PARAMS)
    assert r.keys("*") == [b"indicator:7:1:BTC-USD:1h:macd-v"], "a delete with params misses it too"
    cache.delete_indicator(USER, EXCHANGE, "BTC-USD", "1h", "macd-v")
    assert r.keys("*") == []
    # a value stored under the params key (by some other writer) is what the lookup with params finds
    r.set(indicator_key(USER, EXCHANGE, "BTC-USD", "1h", "macd-v", PARAMS), encode_indicator(value))
    assert cache.get_indicator(USER, EXCHANGE, "BTC-USD", "1h", "macd-v", PARAMS) == value
    assert cache.get_indicator(USER, EXCHANGE, "BTC-USD", "1h", "macd-v") is None


# ---- typed subscribers on one server -----------------------------------------------------------------------------


def started(cache: Any, subscription: Any) -> Any:
    """The subscription subscribed, with a synchronous face (the asyncio one on the cache's loop)."""
    if hasattr(subscription, "aclose"):
        subscription = AsyncAsSync(subscription, cache.loop)
        subscription.start()
    return subscription


def closed(subscription: Any) -> None:
    if hasattr(subscription, "aclose"):
        subscription.aclose()
    else:
        subscription.close()


@pytest.mark.parametrize("one_symbol", [True, False])
def test_ticker_subscriber_receives_the_winning_writes(
    make_value_cache: Callable[..., Any], r: redis.Redis, one_symbol: bool
) -> None:
    cache = make_value_cache("ticker")
    r.set(ticker_key(USER, EXCHANGE, "ETH-USD"), encode_ticker(make_ticker("ETH-USD", T0 + 9, 1.5)))
    subscription = started(cache, cache.subscribe_tickers(USER, EXCHANGE, "BTC-USD" if one_symbol else None))
    try:
        batch = [
            make_ticker("BTC-USD", T0, 1.5),
            make_ticker("ETH-USD", T0, 1.5),  # older than the stored one: skipped, not published
            make_ticker("BTC-USD", T0 - 1, 2.5),  # older: skipped
            make_ticker("SOL-USD", T0, 3.5),
            make_ticker("BTC-USD", T0 + 1, 4.5),
        ]
        assert cache.set_tickers_if_newer(USER, EXCHANGE, batch, publish=True) == [True, False, False, True, True]
        got = [(e.key, e.ticker, e.backfilled) for e in drain(subscription)]
    finally:
        closed(subscription)
    # each key's values are decided in one script call, in input order; keys in the order first seen
    expected = [(ticker_key(USER, EXCHANGE, t.symbol), t, False) for t in (batch[0], batch[4], batch[3])]
    assert got == ([e for e in expected if e[0].endswith(":BTC-USD")] if one_symbol else expected)
    assert subscription.malformed == 0


def test_indicator_subscriber_receives_the_winning_writes(make_value_cache: Callable[..., Any]) -> None:
    cache = make_value_cache("indicator")
    subscription = started(cache, cache.subscribe_indicators(USER, EXCHANGE, timeframe="1h"))
    try:
        batch = [
            make_indicator("BTC-USD", T0, 1.5),
            IndicatorValue(timestamp=T0, type="rsi", symbol="BTC-USD", timeframe="4h", value={"rsi": 55.5}),
            make_indicator("ETH-USD", T0, 2.5),
            make_indicator("BTC-USD", T0, 3.5),  # equal: skipped
        ]
        assert cache.set_indicators_if_newer(USER, EXCHANGE, batch, publish=True) == [True, True, True, False]
        got = [(e.key, e.indicator) for e in drain(subscription)]
    finally:
        closed(subscription)
    assert got == [
        (indicator_key(USER, EXCHANGE, "BTC-USD", "1h", INDICATOR_TYPE), batch[0]),
        (indicator_key(USER, EXCHANGE, "ETH-USD", "1h", INDICATOR_TYPE), batch[2]),
    ]

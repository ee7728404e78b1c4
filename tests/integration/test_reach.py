"""Nothing reaches past its key, and replies agree with what is stored (issue 18, items 3, 4 and 7), both facades.

Every bad input raises ``ValidationError`` (or ``TypeError`` for a wrong type) before any
I/O, so the database stays empty; the script reads a stored sequence as the decoder
does, whatever its JSON spelling; values for one key in one batch keep their order
whatever happens to the script cache; ``ttl_seconds=None`` means no expiry everywhere;
an empty stored string reads as missing.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import msgspec
import pytest
import redis

from livermore_cache import (
    AsyncIndicatorCache,
    AsyncTickerCache,
    CandleCache,
    IndicatorCache,
    TickerCache,
    UnifiedCandle,
    ValidationError,
    candle_key,
    ticker_key,
)
from livermore_cache.candles import encode_candle
from tests.support.builders import indicator, orderbook, ticker, unified
from tests.support.constants import EXCHANGE, KEY, SYMBOL, T0, TIMEFRAME, USER

MakeValueCache = Callable[..., Any]


@pytest.mark.parametrize(
    ("call", "field"),
    [
        (lambda c: c.add_candle_if_newer(USER, EXCHANGE, unified(T0, 1, symbol="BTC\ud800")), "symbol"),
        (lambda c: c.add_candle_if_newer(USER, EXCHANGE, unified(T0, 1, symbol="a\\")), "symbol"),
        (lambda c: c.get_recent_candles(USER, EXCHANGE, SYMBOL, TIMEFRAME, 10**20), "count"),
        (lambda c: c.get_candles_in_range(USER, EXCHANGE, SYMBOL, TIMEFRAME, 0, 10**30), "end"),
        (lambda c: c.is_ready(USER, EXCHANGE, SYMBOL, TIMEFRAME, 10**20), "count"),
        (lambda c: c.subscribe_closes(None, None), "user_id"),
        (lambda c: c.subscribe_closes(USER, EXCHANGE, "a\\"), "symbol"),
        (lambda c: c.subscribe_closes(USER, EXCHANGE, "BTC*"), "symbol"),
    ],
)
def test_bad_candle_cache_inputs_raise_before_any_io(cache: Any, r: redis.Redis, call: Any, field: str) -> None:
    with pytest.raises(ValidationError, match=field):
        call(cache)
    assert r.dbsize() == 0


@pytest.mark.parametrize(
    ("settings", "field"),
    [
        ({"retry_timeout_s": 10**400}, "retry_timeout_s"),
        ({"retries": 10**30}, "retries"),
        ({"max_candles": 2**40}, "max_candles"),
    ],
)
def test_unbounded_settings_are_refused(redis_url: str, settings: dict[str, Any], field: str) -> None:
    with pytest.raises(ValidationError, match=field):
        CandleCache.from_url(redis_url, **settings)
    if "max_candles" not in settings:  # the value caches have no max_candles
        with pytest.raises(ValidationError, match=field):
            TickerCache.from_url(redis_url, **settings)


@pytest.mark.parametrize(
    ("call", "field"),
    [
        (lambda c: c.get_indicator(USER, EXCHANGE, SYMBOL, TIMEFRAME, "macd-v", {1: 2}), "params name"),
        (lambda c: c.get_indicator(USER, EXCHANGE, SYMBOL, TIMEFRAME, "macd-v", {"a\\": 2}), "params name"),
        (lambda c: c.get_indicator(USER, EXCHANGE, SYMBOL, TIMEFRAME, "a\\b"), "type"),
        (lambda c: c.get_indicator(USER, EXCHANGE, SYMBOL, TIMEFRAME, "macd-v", [("a", 1)]), "params"),
        (lambda c: c.get_indicators_bulk(USER, EXCHANGE, [("BTC",)]), r"requests\[0\]"),
        (lambda c: c.get_indicators_bulk(USER, EXCHANGE, ["BTC-USD:1m"]), r"requests\[0\]"),
        (lambda c: c.get_indicators_bulk(USER, EXCHANGE, [(SYMBOL, "60m")]), r"requests\[0\]\.timeframe"),
        (lambda c: c.subscribe_indicators(USER, EXCHANGE, "BTC\ud800"), "symbol"),
    ],
)
def test_bad_indicator_inputs_raise_before_any_io(
    make_value_cache: MakeValueCache, r: redis.Redis, call: Any, field: str
) -> None:
    with pytest.raises(ValidationError, match=field):
        call(make_value_cache("indicator"))
    assert r.dbsize() == 0


class SkipsItsChecks(UnifiedCandle, kw_only=True):
    """A subclass whose ``__post_init__`` does not call ``super()``: the library's own checks still run."""

    def __post_init__(self) -> None:
        pass


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("close", float("nan")),
        ("open", -1.0),
        ("exchange", ""),
        ("sequence_num", -3),
        ("timestamp", 1.5),
    ],
)
def test_a_subclass_cannot_skip_the_write_check(cache: Any, r: redis.Redis, field: str, value: Any) -> None:
    fields = {name: getattr(unified(T0, 1), name) for name in UnifiedCandle.__struct_fields__}
    fields[field] = value
    sneaky = SkipsItsChecks(**fields)  # its own __post_init__ lets it be made
    with pytest.raises(ValidationError, match=rf"candles\[0\]\.{field}"):
        cache.add_candles_if_newer(USER, EXCHANGE, [sneaky])
    with pytest.raises(ValidationError, match=field):
        cache.add_candle(USER, EXCHANGE, sneaky)
    assert r.dbsize() == 0


@pytest.mark.parametrize(
    "spelling", ['"sequenceNum": 7', '"sequenceNum" : 7', '"sequenceNum":\n7', '"sequence\\u004eum":7']
)
def test_a_stored_sequence_is_read_as_the_decoder_reads_it(cache: Any, r: redis.Redis, spelling: str) -> None:
    """A member Python's json.dumps (or any JSON writer) stored: sequence 7, for the script as for reads."""
    member = encode_candle(unified(T0, 7)).decode().replace('"sequenceNum":7', spelling)
    assert json.loads(member)["sequenceNum"] == 7
    r.zadd(KEY, {member: T0})
    (stored,) = cache.get_recent_candles(USER, EXCHANGE, SYMBOL, TIMEFRAME, model=UnifiedCandle)
    assert stored.sequence_num == 7
    assert cache.add_candle_if_newer(USER, EXCHANGE, unified(T0, 3)) is False  # older than the stored 7
    assert cache.add_candle_if_newer(USER, EXCHANGE, unified(T0, 7)) is False  # equal
    assert r.zrange(KEY, 0, -1) == [member.encode()]
    assert cache.add_candle_if_newer(USER, EXCHANGE, unified(T0, 8)) is True


def test_values_for_one_key_keep_their_order_after_noscript(
    make_value_cache: MakeValueCache, r: redis.Redis, sub: Any
) -> None:
    """One script call per key: after SCRIPT FLUSH the batch is resent by EVAL whole, in input order."""
    cache = make_value_cache("ticker")
    batch = [ticker(SYMBOL, T0 + i, price=float(i + 1)) for i in (1, 3, 2, 5, 4)]
    r.script_flush()
    assert cache.set_tickers_if_newer(USER, EXCHANGE, batch, publish=True) == [True, True, False, True, False]
    assert TickerCache(r).get_ticker(USER, EXCHANGE, SYMBOL) == batch[3]
    published = []
    while (message := sub.get_message(timeout=0.3)) is not None:
        published.append(msgspec.json.decode(message["data"])["timestamp"])
    assert published == [T0 + 1, T0 + 3, T0 + 5]


@pytest.mark.parametrize("kind", ["ticker", "orderbook", "indicator"])
def test_ttl_none_never_expires_on_value_caches(make_value_cache: MakeValueCache, r: redis.Redis, kind: str) -> None:
    builders: dict[str, Callable[..., Any]] = {"ticker": ticker, "orderbook": orderbook, "indicator": indicator}
    build = builders[kind]
    cache = make_value_cache(kind, ttl_seconds=None)
    assert cache.ttl_seconds is None
    setter = getattr(cache, f"set_{kind}")
    newer = getattr(cache, f"set_{kind}_if_newer")
    setter(USER, EXCHANGE, build(timestamp=T0))
    (key,) = r.keys("*")
    assert r.ttl(key) == -1
    r.expire(key, 500)
    assert newer(USER, EXCHANGE, build(timestamp=T0 + 1)) is True
    assert r.ttl(key) == -1  # a write with no expiry clears an old TTL, as a plain SET does
    default = make_value_cache(kind)
    assert default.ttl_seconds == {"ticker": 60, "orderbook": 30, "indicator": 90_000}[kind]


def test_candle_cache_ttl_none_never_expires(make_cache: Callable[..., Any], r: redis.Redis) -> None:
    cache = make_cache(ttl_seconds=None)
    assert cache.add_candle_if_newer(USER, EXCHANGE, unified(T0, 1))
    assert r.ttl(candle_key(USER, EXCHANGE, SYMBOL, TIMEFRAME)) == -1


def test_an_empty_stored_string_reads_as_missing(make_value_cache: MakeValueCache, r: redis.Redis) -> None:
    """As the Node getters: an empty string is null, for one read and for a bulk read (not counted invalid)."""
    tickers = make_value_cache("ticker")
    r.set(ticker_key(USER, EXCHANGE, SYMBOL), "")
    assert tickers.get_ticker(USER, EXCHANGE, SYMBOL) is None
    assert tickers.get_tickers(USER, EXCHANGE, [SYMBOL]) == {}
    assert tickers.invalid_values == 0
    assert tickers.set_ticker_if_newer(USER, EXCHANGE, ticker(timestamp=T0)) is True  # a foreign value: replaced


def test_async_value_caches_refuse_bad_input_too(redis_url: str, r: redis.Redis) -> None:
    import asyncio

    async def scenario() -> None:
        async with (
            AsyncIndicatorCache.from_url(redis_url) as indicators,
            AsyncTickerCache.from_url(redis_url) as tickers,
        ):
            with pytest.raises(ValidationError, match=r"requests\[0\]"):
                await indicators.get_indicators_bulk(USER, EXCHANGE, [("BTC",)])  # type: ignore[list-item]
            with pytest.raises(ValidationError, match="symbol"):
                await tickers.get_ticker(USER, EXCHANGE, "a\\")

    asyncio.run(scenario())
    assert r.dbsize() == 0
    assert IndicatorCache(r).get_indicator(USER, EXCHANGE, SYMBOL, TIMEFRAME, "macd-v") is None

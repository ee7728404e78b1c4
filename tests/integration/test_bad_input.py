"""Bad input through the facades: a clear error, and nothing written."""

from __future__ import annotations

from typing import Any

import msgspec
import pytest
import redis

from livermore_cache import AsyncCandleCache, CandleCache, ValidationError
from tests.support.builders import unified
from tests.support.constants import EXCHANGE, MINUTE, T0, USER


@pytest.mark.parametrize("method", ["add_candles_if_newer", "add_candles"])
@pytest.mark.parametrize(
    ("symbol", "match"),
    [("BTC:USD", r"candles\[7\]\.symbol .*'BTC:USD'"), ("BTC*", r"candles\[7\]\.symbol .*'BTC\*'"), ("a b", "symbol")],
)
def test_one_bad_candle_fails_the_whole_batch(cache: Any, r: redis.Redis, method: str, symbol: str, match: str) -> None:
    """A symbol that is a valid Candle field but cannot be part of a key: the batch is refused, nothing written."""
    batch = [unified(T0 + i * MINUTE, 1, symbol=("BTC-USD", "ETH-USD")[i % 2]) for i in range(10)]
    batch[7] = unified(T0, 1, symbol=symbol)
    with pytest.raises(ValidationError, match=match):
        getattr(cache, method)(USER, EXCHANGE, batch)
    assert r.dbsize() == 0


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("close", -3.0),
        ("timeframe", "7m"),
        ("sequence_num", -4),
        ("timestamp", True),
        ("volume", float("nan")),
        ("exchange", ""),
    ],
)
def test_a_candle_cannot_be_made_invalid_after_construction(name: str, value: Any) -> None:
    """A change is checked like a new value, so a Candle in a batch is always valid."""
    candle = unified(T0, 1)
    before = msgspec.structs.asdict(candle)
    with pytest.raises(ValidationError) as raised:
        setattr(candle, name, value)
    assert str(raised.value).startswith(name)
    assert repr(value) in str(raised.value)
    assert msgspec.structs.asdict(candle) == before
    candle.close = 5.0
    assert candle.close == 5.0


def test_not_a_candle(cache: Any, r: redis.Redis) -> None:
    with pytest.raises(ValidationError, match=r"candles\[1\] must be a Candle"):
        cache.add_candles_if_newer(USER, EXCHANGE, [unified(T0, 1), {"timestamp": T0}])
    with pytest.raises(ValidationError, match=r"candle"):
        cache.add_candle_if_newer(USER, EXCHANGE, "not a candle")
    assert r.dbsize() == 0


@pytest.mark.parametrize(
    ("user_id", "exchange_id", "field"), [(-1, 1, "user_id"), (1, "x", "exchange_id"), (True, 1, "user_id")]
)
def test_bad_ids(cache: Any, r: redis.Redis, user_id: Any, exchange_id: Any, field: str) -> None:
    with pytest.raises(ValidationError, match=field):
        cache.add_candles_if_newer(user_id, exchange_id, [unified(T0, 1)])
    with pytest.raises(ValidationError, match=field):
        cache.add_candles_if_newer(user_id, exchange_id, [])
    with pytest.raises(ValidationError, match=field):
        cache.get_recent_candles(user_id, exchange_id, "BTC-USD", "1m")
    assert r.dbsize() == 0


def test_bad_read_arguments(cache: Any) -> None:
    with pytest.raises(ValidationError, match=r"count .*0"):
        cache.get_recent_candles(USER, EXCHANGE, "BTC-USD", "1m", 0)
    with pytest.raises(ValidationError, match=r"start .*'a'"):
        cache.get_candles_in_range(USER, EXCHANGE, "BTC-USD", "1m", "a", 5)
    with pytest.raises(ValidationError, match="model"):
        cache.get_recent_candles(USER, EXCHANGE, "BTC-USD", "1m", model=dict)
    with pytest.raises(ValidationError, match="symbol"):
        cache.get_candle_count(USER, EXCHANGE, "a b", "1m")


@pytest.mark.parametrize(
    ("settings", "match"),
    [
        ({"ttl_seconds": 0}, "ttl_seconds"),
        ({"ttl_seconds": 1.5}, "ttl_seconds"),
        ({"max_candles": 0}, "max_candles"),
        ({"max_candles": True}, "max_candles"),
    ],
)
def test_bad_settings(r: redis.Redis, settings: dict[str, Any], match: str) -> None:
    with pytest.raises(ValidationError, match=match):
        CandleCache(r, **settings)


def test_facade_refuses_the_wrong_kind_of_client(r: redis.Redis) -> None:
    with pytest.raises(TypeError, match=r"redis\.asyncio"):
        AsyncCandleCache(r)  # type: ignore[arg-type]

"""Clients as users configure them: decoded responses, RESP3, a single connection."""

from __future__ import annotations

from typing import Any

import pytest
import redis
import redis.asyncio

from livermore_cache import CandleCache, UnifiedCandle
from tests.support.builders import unified
from tests.support.constants import EXCHANGE, MINUTE, SYMBOL, T0, TIMEFRAME, USER
from tests.support.facade import Facade

OPTIONS = [
    pytest.param({"decode_responses": True}, id="decode_responses"),
    pytest.param({"protocol": 3}, id="resp3"),
    pytest.param({"protocol": 3, "decode_responses": True}, id="resp3-decoded"),
    pytest.param({"single_connection_client": True}, id="single-connection"),
]


@pytest.mark.parametrize("options", OPTIONS)
def test_whole_api_with_client_options(redis_url: str, facade: Facade, options: dict[str, Any]) -> None:
    cache = facade.cache(CandleCache, facade.client(redis_url, **options), max_candles=3)
    batch = [unified(T0 + i * MINUTE, 1, close=float(i + 1)) for i in range(4)] + [unified(T0, 0)]
    assert cache.add_candles_if_newer(USER, EXCHANGE, batch) == [False, True, True, True, False]
    assert cache.add_candle_if_newer(USER, EXCHANGE, unified(T0 + 3 * MINUTE, 2, close=9.0)) is True
    cache.add_candle(USER, EXCHANGE, unified(T0 + 4 * MINUTE, 1))
    recent = cache.get_recent_candles(USER, EXCHANGE, SYMBOL, TIMEFRAME, model=UnifiedCandle)
    assert [(c.timestamp, c.close) for c in recent] == [
        (T0 + 2 * MINUTE, 3.0),
        (T0 + 3 * MINUTE, 9.0),
        (T0 + 4 * MINUTE, 42000.5),
    ]
    latest = cache.get_latest_candle(USER, EXCHANGE, SYMBOL, TIMEFRAME)
    assert latest is not None
    assert latest.timestamp == T0 + 4 * MINUTE
    assert len(cache.get_candles_in_range(USER, EXCHANGE, SYMBOL, TIMEFRAME, T0, T0 + 3 * MINUTE)) == 2
    assert cache.get_candle_count(USER, EXCHANGE, SYMBOL, TIMEFRAME) == 3
    assert cache.publish_close(USER, EXCHANGE, unified(T0, 1)) == 0
    cache.clear_candles(USER, EXCHANGE, SYMBOL, TIMEFRAME)
    assert cache.get_candle_count(USER, EXCHANGE, SYMBOL, TIMEFRAME) == 0


@pytest.mark.parametrize("options", OPTIONS[:3])
def test_subscriber_with_client_options(redis_url: str, options: dict[str, Any]) -> None:
    client = redis.Redis.from_url(redis_url, **options)
    cache = CandleCache(client)
    with cache.subscribe_closes(USER, EXCHANGE) as closes:
        assert cache.add_candles_if_newer(USER, EXCHANGE, [unified(T0, 1), unified(T0, 2)], publish_close=True) == [
            False,
            True,
        ]
        client.publish("channel:candle:close:7:1:BTC-USD:1m", "garbage")
        events = list(iter(lambda: closes.get(timeout=0.5), None))
        assert [e.candle.sequence_num for e in events] == [2]  # type: ignore[attr-defined]
        assert closes.malformed == 1
    client.close()

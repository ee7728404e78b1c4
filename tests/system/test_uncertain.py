"""A retried call that cannot know whether its first attempt was written says so: ``WriteResults.uncertain``."""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable
from typing import Any

import redis

from livermore_cache import CandleCache, TickerCache, WriteResults
from tests.support.builders import ticker, unified
from tests.support.constants import EXCHANGE, MINUTE, T0, USER
from tools.servers.process import ServerProcess

Start = Callable[..., ServerProcess]


def test_a_plain_false_is_certain(cache: Any) -> None:
    assert cache.add_candles_if_newer(USER, EXCHANGE, [unified(T0, 2)]) == [True]
    results = cache.add_candles_if_newer(USER, EXCHANGE, [unified(T0, 1), unified(T0 + MINUTE, 1)])
    assert isinstance(results, WriteResults)
    assert results == [False, True]
    assert results.uncertain == frozenset()


def _race(server: ServerProcess, write: Callable[[], Any], newer: Callable[[redis.Redis], Any]) -> Any:
    """``write`` against a paused server while another client queues a newer version; the server resumes later."""
    other = redis.Redis.from_url(server.url)
    other.ping()  # connected before the pause
    server.signal(signal.SIGSTOP)
    rival = threading.Timer(0.1, newer, args=(other,))
    resume = threading.Timer(1.0, server.signal, args=(signal.SIGCONT,))
    rival.start()
    resume.start()
    try:
        return write()
    finally:
        resume.join()
        rival.join()
        other.close()


def test_a_candle_possibly_written_then_replaced_is_uncertain(private_server: Start) -> None:
    server = private_server()
    with redis.Redis.from_url(server.url, socket_timeout=0.3) as client:
        cache = CandleCache(client)
        assert cache.add_candle_if_newer(USER, EXCHANGE, unified(T0 - MINUTE, 1))  # connected, script cached
        newer = CandleCache(redis.Redis.from_url(server.url))

        def rival(_: redis.Redis) -> None:
            assert newer.add_candle_if_newer(USER, EXCHANGE, unified(T0, 9))
            newer.client.close()

        results = _race(server, lambda: cache.add_candles_if_newer(USER, EXCHANGE, [unified(T0, 1)]), rival)
        assert results == [False]  # the rival's version 9 is stored, whoever came first
        assert results.uncertain == {0}  # and the first attempt may have written (and announced) version 1
        assert cache.stats.retried_rounds >= 1
        stored = cache.get_latest_candle(USER, EXCHANGE, "BTC-USD", "1m", model=type(unified()))
        assert stored is not None
        assert stored == unified(T0, 9)


def test_a_value_possibly_written_then_replaced_is_uncertain(private_server: Start) -> None:
    server = private_server()
    with redis.Redis.from_url(server.url, socket_timeout=0.3) as client:
        tickers = TickerCache(client)
        assert tickers.set_ticker_if_newer(USER, EXCHANGE, ticker(timestamp=T0 - 1))

        def rival(other: redis.Redis) -> None:
            assert TickerCache(other).set_ticker_if_newer(USER, EXCHANGE, ticker(timestamp=T0 + 9))

        results = _race(server, lambda: tickers.set_tickers_if_newer(USER, EXCHANGE, [ticker(timestamp=T0)]), rival)
        assert results == [False]
        assert results.uncertain == {0}
        current = tickers.get_ticker(USER, EXCHANGE, "BTC-USD")
        assert current is not None
        assert current.timestamp == T0 + 9

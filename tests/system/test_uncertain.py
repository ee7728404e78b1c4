"""A retried call that cannot know whether its first attempt was written says so: ``WriteResults.uncertain``."""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable
from typing import Any

import redis

from livermore_cache import CandleCache, TickerCache, WriteResults, candle_key, ticker_key
from livermore_cache.candles import encode_candle
from livermore_cache.values import encode_ticker
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
    """``write`` against a paused server while another client queues a newer version; the server resumes later.

    The rival writes with a plain command on a connection made before the pause, so its command reaches
    the server's queue at once, after the first attempt and before the retries: the server runs them in
    that order when it resumes. (A client connecting during the pause would wait for its handshake's
    reply, and write only after the resume.) Its outcome is checked too.
    """
    other = redis.Redis.from_url(server.url)
    other.ping()  # connected before the pause
    outcome: list[BaseException | None] = []

    def rival() -> None:
        try:
            newer(other)
        except BaseException as error:  # reported below, in the test's own thread
            outcome.append(error)
        else:
            outcome.append(None)

    server.signal(signal.SIGSTOP)
    racer = threading.Timer(0.1, rival)
    resume = threading.Timer(1.0, server.signal, args=(signal.SIGCONT,))
    racer.start()
    resume.start()
    try:
        return write()
    finally:
        resume.join()
        racer.join()
        other.close()
        assert outcome == [None], f"the rival writer failed: {outcome}"


def test_a_candle_possibly_written_then_replaced_is_uncertain(private_server: Start) -> None:
    server = private_server()
    key = candle_key(USER, EXCHANGE, "BTC-USD", "1m")
    newer = encode_candle(unified(T0, 9))
    with redis.Redis.from_url(server.url, socket_timeout=0.3) as client:
        cache = CandleCache(client)
        assert cache.add_candle_if_newer(USER, EXCHANGE, unified(T0 - MINUTE, 1))  # connected, script cached

        def rival(other: redis.Redis) -> None:
            assert other.zadd(key, {newer: T0}) == 1  # another writer's version 9, as a Node writer adds it

        results = _race(server, lambda: cache.add_candles_if_newer(USER, EXCHANGE, [unified(T0, 1)]), rival)
        assert results == [False]  # version 9 was there when the retry ran
        assert results.uncertain == {0}  # and the first attempt may have written (and announced) version 1
        assert cache.stats.retried_rounds >= 1
        assert newer in client.zrange(key, 0, -1)


def test_a_value_possibly_written_then_replaced_is_uncertain(private_server: Start) -> None:
    server = private_server()
    with redis.Redis.from_url(server.url, socket_timeout=0.3) as client:
        tickers = TickerCache(client)
        assert tickers.set_ticker_if_newer(USER, EXCHANGE, ticker(timestamp=T0 - 1))

        def rival(other: redis.Redis) -> None:
            assert other.set(ticker_key(USER, EXCHANGE, "BTC-USD"), encode_ticker(ticker(timestamp=T0 + 9)))

        results = _race(server, lambda: tickers.set_tickers_if_newer(USER, EXCHANGE, [ticker(timestamp=T0)]), rival)
        assert results == [False]
        assert results.uncertain == {0}
        current = tickers.get_ticker(USER, EXCHANGE, "BTC-USD")
        assert current is not None
        assert current.timestamp == T0 + 9

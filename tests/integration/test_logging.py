"""Log records of the write path and the subscribers, on real servers (``caplog``): keys may appear, values never."""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Callable
from typing import Any

import pytest
import redis

import livermore_cache
from livermore_cache import CandleCache, candle_close_channel, candle_key
from livermore_cache.candles import encode_candle
from tests.support.builders import unified
from tests.support.constants import EXCHANGE, MINUTE, SYMBOL, T0, TIMEFRAME, USER
from tools.servers.process import ServerProcess

Start = Callable[..., ServerProcess]
KEY = candle_key(USER, EXCHANGE, SYMBOL, TIMEFRAME)


def _records(caplog: pytest.LogCaptureFixture, level: int, text: str) -> list[logging.LogRecord]:
    return [
        record
        for record in caplog.records
        if record.levelno == level and record.name.startswith("livermore_cache") and text in record.getMessage()
    ]


def _no_values(caplog: pytest.LogCaptureFixture, *values: bytes) -> None:
    for record in caplog.records:
        message = record.getMessage()
        for value in values:
            assert value.decode() not in message, f"a value reached a log record: {message}"


def test_the_package_logger_has_a_null_handler() -> None:
    handlers = logging.getLogger("livermore_cache").handlers
    assert any(isinstance(handler, logging.NullHandler) for handler in handlers)
    assert livermore_cache.__name__ == "livermore_cache"


def test_a_paused_server_logs_each_retried_round(
    private_server: Start, cache_at: Callable[..., Any], caplog: pytest.LogCaptureFixture
) -> None:
    server = private_server()
    cache = cache_at(server.url, {"socket_timeout": 0.3})
    assert cache.add_candle_if_newer(USER, EXCHANGE, unified(T0 - MINUTE, 1))
    candle = unified(T0, 2, close=43210.125)
    caplog.set_level(logging.DEBUG, logger="livermore_cache")
    server.signal(signal.SIGSTOP)
    resumer = threading.Timer(1.0, server.signal, args=(signal.SIGCONT,))
    resumer.start()
    try:
        assert cache.add_candle_if_newer(USER, EXCHANGE, candle) is True
    finally:
        resumer.join()
    retried = _records(caplog, logging.WARNING, "write round failed")
    assert retried, caplog.text
    assert len(retried) == cache.stats.retried_rounds
    message = retried[0].getMessage()
    assert "TimeoutError" in message  # the cause
    assert f"1 keys ({KEY})" in message  # how many keys, and which
    assert "attempt 2 of 21" in message
    assert "after the write began" in message  # elapsed
    _no_values(caplog, encode_candle(candle))


def test_a_write_that_gives_up_says_so(
    private_server: Start, cache_at: Callable[..., Any], caplog: pytest.LogCaptureFixture
) -> None:
    server = private_server()
    cache = cache_at(server.url, {"socket_timeout": 0.2}, retries=1)
    assert cache.add_candle_if_newer(USER, EXCHANGE, unified(T0 - MINUTE, 1))
    caplog.set_level(logging.WARNING, logger="livermore_cache")
    server.signal(signal.SIGSTOP)
    try:
        with pytest.raises(redis.TimeoutError):
            cache.add_candle_if_newer(USER, EXCHANGE, unified(T0, 2))
    finally:
        server.signal(signal.SIGCONT)
    gave_up = _records(caplog, logging.WARNING, "gave up after 1 retries")
    assert len(gave_up) == 1, caplog.text
    assert KEY in gave_up[0].getMessage()


def test_noscript_resend_is_logged_at_debug(
    make_cache: Callable[..., Any], r: redis.Redis, caplog: pytest.LogCaptureFixture
) -> None:
    cache = make_cache()
    assert cache.add_candle_if_newer(USER, EXCHANGE, unified(T0, 1))
    r.script_flush()
    caplog.set_level(logging.DEBUG, logger="livermore_cache")
    assert cache.add_candle_if_newer(USER, EXCHANGE, unified(T0, 2))
    noscript = _records(caplog, logging.DEBUG, "NOSCRIPT")
    assert len(noscript) == 1
    assert "1 script calls sent again by EVAL" in noscript[0].getMessage()
    assert not _records(caplog, logging.WARNING, "")  # nothing worse than DEBUG happened


def test_a_restarted_subscriber_logs_loss_reconnects_and_backfill(
    private_server: Start, caplog: pytest.LogCaptureFixture
) -> None:
    server = private_server()
    client = redis.Redis.from_url(server.url, socket_timeout=1.0)
    cache = CandleCache(client)
    caplog.set_level(logging.INFO, logger="livermore_cache")
    try:
        with cache.subscribe_closes(USER, EXCHANGE, SYMBOL, TIMEFRAME) as subscription:
            assert cache.add_candle_if_newer(USER, EXCHANGE, unified(T0, 1), publish_close=True)
            first = subscription.get(timeout=5)
            assert first is not None
            server.restart()
            assert cache.add_candle_if_newer(USER, EXCHANGE, unified(T0 + MINUTE, 1))  # not announced: backfilled
            backfilled = subscription.get(timeout=15)
            assert backfilled is not None
            assert backfilled.candle.timestamp == T0 + MINUTE
    finally:
        client.close()
    assert _records(caplog, logging.WARNING, "reconnected and resubscribed"), caplog.text
    assert _records(caplog, logging.WARNING, "lost its connection"), caplog.text
    infos = _records(caplog, logging.INFO, "backfilled")
    assert infos, caplog.text
    assert "after a reconnect" in infos[0].getMessage()


def test_malformed_messages_are_logged_rate_limited(r: redis.Redis, caplog: pytest.LogCaptureFixture) -> None:
    cache = CandleCache(r)
    channel = candle_close_channel(USER, EXCHANGE, SYMBOL, TIMEFRAME)
    secret = b'{"not": "a candle", "secret": "value-must-not-be-logged"}'
    caplog.set_level(logging.WARNING, logger="livermore_cache")
    with cache.subscribe_closes(USER, EXCHANGE, SYMBOL, TIMEFRAME) as subscription:
        for _ in range(5):
            r.publish(channel, secret)
        assert cache.add_candle_if_newer(USER, EXCHANGE, unified(T0, 1), publish_close=True)
        event = subscription.get(timeout=5)
        assert event is not None
        assert subscription.malformed == 5
    warnings = _records(caplog, logging.WARNING, "malformed")
    assert len(warnings) == 1, caplog.text  # five skipped messages within the interval: one record
    assert channel in warnings[0].getMessage()
    _no_values(caplog, secret, b"value-must-not-be-logged")

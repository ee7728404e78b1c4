"""Give-up bounds from a cold start: a cache over a client that never connected, against a server that is not there.

A closed port and a paused (SIGSTOP) server: the write gives up within
``retry_timeout_s`` plus one connect timeout, whatever redis-py's own connect
retries would do (three, with seconds of backoff, from redis-py 6). The bound is
asserted, not a speed; the times are printed (docs/durability.md quotes them per
redis-py release).
"""

from __future__ import annotations

import signal
import time
from collections.abc import Callable
from typing import Any

import pytest
import redis

from livermore_cache import _compat
from tests.support.builders import unified
from tests.support.constants import EXCHANGE, USER
from tests.support.facade import Facade
from tools.servers.process import ServerProcess, free_port

CONNECT_TIMEOUT_S = 1.0
SLACK_S = 0.5  # scheduling, process start-up of the event loop, the last pause's rounding


@pytest.mark.parametrize("retry_timeout_s", [1.0, 3.0])
def test_closed_port_from_a_cold_start(cache_at: Callable[..., Any], facade: Facade, retry_timeout_s: float) -> None:
    cache = cache_at(
        f"redis://127.0.0.1:{free_port()}/0",
        {"socket_timeout": CONNECT_TIMEOUT_S},
        retry_timeout_s=retry_timeout_s,
    )
    started = time.monotonic()
    with pytest.raises(redis.ConnectionError):
        cache.add_candle_if_newer(USER, EXCHANGE, unified())
    elapsed = time.monotonic() - started
    version = ".".join(map(str, _compat.REDIS_PY_VERSION))
    print(
        f"cold start, closed port, redis-py {version} ({facade.name}, retry_timeout_s={retry_timeout_s}): {elapsed:.2f} s"
    )
    assert elapsed <= retry_timeout_s + CONNECT_TIMEOUT_S + SLACK_S


@pytest.mark.parametrize("retry_timeout_s", [1.0, 3.0])
def test_paused_server_from_a_cold_start(
    private_server: Callable[..., ServerProcess], cache_at: Callable[..., Any], facade: Facade, retry_timeout_s: float
) -> None:
    server = private_server()
    cache = cache_at(server.url, {"socket_timeout": CONNECT_TIMEOUT_S}, retry_timeout_s=retry_timeout_s)
    server.signal(signal.SIGSTOP)
    try:
        started = time.monotonic()
        with pytest.raises((redis.TimeoutError, redis.ConnectionError)):
            cache.add_candle_if_newer(USER, EXCHANGE, unified())
        elapsed = time.monotonic() - started
    finally:
        server.signal(signal.SIGCONT)
    version = ".".join(map(str, _compat.REDIS_PY_VERSION))
    print(
        f"cold start, paused server, redis-py {version} ({facade.name}, retry_timeout_s={retry_timeout_s}): {elapsed:.2f} s"
    )
    assert elapsed <= retry_timeout_s + CONNECT_TIMEOUT_S + SLACK_S
    # and once the server is back, the same cache writes (its pool was never poisoned by the failed rounds)
    assert cache.add_candle_if_newer(USER, EXCHANGE, unified())


def test_connect_timeout_is_bounded_by_the_deadline_and_restored() -> None:
    make: Any = redis.Connection
    connection: Any = make(host="127.0.0.1", port=free_port(), socket_timeout=5, socket_connect_timeout=4)
    with _compat.connect_once(connection, limit=0.25):
        assert (connection.socket_connect_timeout, connection.socket_timeout) == (0.25, 0.25)
    assert (connection.socket_connect_timeout, connection.socket_timeout) == (4, 5)
    unbounded: Any = make(host="127.0.0.1", port=free_port(), socket_timeout=None)
    with _compat.connect_once(unbounded, limit=0.0):
        assert unbounded.socket_timeout == 0.01, "a deadline already passed still allows a 10 ms attempt"
    assert unbounded.socket_timeout is None

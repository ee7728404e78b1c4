"""Reliability against real servers, each through both facades (sync, and asyncio driven through ``AsyncAsSync``).

Partial batches (one series' key of the wrong type, on one server and on a
cluster), a server that runs out of memory partway through a batch, a server
busy in another client's script, how long a write takes to give up, bounded
settings, single-connection clients, a replica, and validation that
``msgspec.structs.force_setattr`` cannot get around.
"""

from __future__ import annotations

import math
import re
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any, cast

import msgspec
import pytest
import redis
import redis.asyncio
import redis.asyncio.cluster
import redis.backoff
import redis.cluster
import redis.retry
from redis.asyncio.retry import Retry as AsyncRetry
from redis.exceptions import OutOfMemoryError, ReadOnlyError, RedisError, ResponseError

from livermore_cache import (
    CandleCache,
    PartialWriteError,
    UnifiedCandle,
    ValidationError,
    candle_close_channel,
    candle_close_pattern,
    candle_key,
)
from livermore_cache.engine import backoff_s
from livermore_cache.limits import MAX_CANDLES, MAX_TTL_SECONDS
from tests.support.builders import unified
from tests.support.constants import EXCHANGE, MINUTE, T0, USER
from tests.support.facade import Facade
from tests.support.stored import flush_cluster, zmembers, zscored
from tools.servers.cluster import ClusterProcess
from tools.servers.discovery import private_server_binary
from tools.servers.process import ServerProcess, free_port

Start = Callable[..., ServerProcess]
CacheAt = Callable[..., Any]
MAYBE_APPLIED = "may or may not have been applied"


def notes(error: BaseException) -> list[str]:
    return list(getattr(error, "__notes__", []))


def key_of(symbol: str) -> str:
    return candle_key(USER, EXCHANGE, symbol, "1m")


def channel_of(symbol: str) -> str:
    return candle_close_channel(USER, EXCHANGE, symbol, "1m")


def encoded(candle: UnifiedCandle) -> bytes:
    return msgspec.json.encode(candle)


class CloseListener:
    """A plain redis-py pubsub on every close channel of (USER, EXCHANGE), subscribed before anything is written."""

    def __init__(self, client: redis.Redis) -> None:
        self.pubsub = client.pubsub()  # type: ignore[no-untyped-call, unused-ignore]
        self.pubsub.psubscribe(candle_close_pattern(USER, EXCHANGE))
        confirmed = self.pubsub.get_message(timeout=5)
        assert confirmed is not None
        assert confirmed["type"] == "psubscribe"

    def drain(self, quiet_s: float = 0.5) -> list[tuple[str, bytes]]:
        """Every message until none has come for ``quiet_s``, as (channel, data), in arrival order."""
        got: list[tuple[str, bytes]] = []
        while (message := self.pubsub.get_message(timeout=quiet_s)) is not None:
            assert message["type"] == "pmessage"
            got.append((message["channel"].decode(), message["data"]))
        return got

    def close(self) -> None:
        self.pubsub.close()


def is_wrongtype(error: BaseException) -> bool:
    """WRONGTYPE as the script's caller sees it: as is (Redis 7, Valkey), or wrapped in "Error running script" (6.2)."""
    text = str(error)
    return text.startswith("WRONGTYPE") or (text.startswith("Error running script") and "WRONGTYPE" in text)


def per_channel(events: list[tuple[str, bytes]]) -> dict[str, list[bytes]]:
    out: dict[str, list[bytes]] = {}
    for channel, data in events:
        out.setdefault(channel, []).append(data)
    return out


# 1. Partial batches: one series' key holds a string ------------------------------------------------------------

BAD = "ETH-USD"
SEED = unified(T0, 5, symbol="SOL-USD", close=9.0)
PARTIAL_BATCH = [
    unified(T0, 2, symbol="BTC-USD", close=1.0),  # written
    unified(T0, 1, symbol=BAD),  # its series fails: None
    unified(T0, 3, symbol="SOL-USD", close=2.0),  # skipped: SOL holds sequence 5 at T0
    unified(T0 + MINUTE, 1, symbol="BTC-USD", close=3.0),  # written
    unified(T0 + MINUTE, 1, symbol=BAD),  # None
    unified(T0 + MINUTE, 1, symbol="SOL-USD", close=4.0),  # written
    unified(T0, 1, symbol="BTC-USD", close=5.0),  # skipped: older than the first candle of this call
]
PARTIAL_RESULTS = [True, None, False, True, None, True, False]


def check_partial_batch(cache: Any, admin: Any, listener: CloseListener) -> list[tuple[str, bytes]]:
    """The partial-batch contract through ``cache``; ``admin`` arranges and inspects. Returns the events seen."""
    assert cache.add_candle_if_newer(USER, EXCHANGE, SEED) is True
    assert listener.drain(0.2) == []  # the seed was written without publish_close
    admin.set(key_of(BAD), b"not a sorted set")
    with pytest.raises(PartialWriteError) as raised:
        cache.add_candles_if_newer(USER, EXCHANGE, PARTIAL_BATCH, publish_close=True)
    error = raised.value
    assert isinstance(error, RedisError)
    assert error.results == PARTIAL_RESULTS
    assert list(error.errors) == [key_of(BAD)]
    cause = error.errors[key_of(BAD)]
    assert type(cause) is ResponseError
    assert is_wrongtype(cause)
    assert error.__cause__ is cause
    assert key_of(BAD) in str(error)
    assert key_of("BTC-USD") not in str(error)
    # the healthy series were written, the bad key is untouched
    assert admin.zrange(key_of("BTC-USD"), 0, -1) == [encoded(PARTIAL_BATCH[0]), encoded(PARTIAL_BATCH[3])]
    assert admin.zrange(key_of("SOL-USD"), 0, -1) == [encoded(SEED), encoded(PARTIAL_BATCH[5])]
    assert admin.get(key_of(BAD)) == b"not a sorted set"
    # close events for exactly the healthy series' winners, each series' in the order they were applied
    events = listener.drain()
    assert per_channel(events) == {
        channel_of("BTC-USD"): [encoded(PARTIAL_BATCH[0]), encoded(PARTIAL_BATCH[3])],
        channel_of("SOL-USD"): [encoded(PARTIAL_BATCH[5])],
    }
    return events


def check_every_series_failing(cache: Any, admin: Any, listener: CloseListener) -> None:
    """When every series fails, the first error itself is raised, with a note naming its key."""
    admin.set(key_of(BAD), b"not a sorted set")
    admin.set(key_of("ADA-USD"), b"nor is this")
    batch = [unified(T0, 1, symbol=BAD), unified(T0, 1, symbol="ADA-USD"), unified(T0 + MINUTE, 1, symbol=BAD)]
    with pytest.raises(ResponseError) as raised:
        cache.add_candles_if_newer(USER, EXCHANGE, batch, publish_close=True)
    error = raised.value
    assert type(error) is ResponseError  # not PartialWriteError: nothing was applied
    assert is_wrongtype(error)
    assert [n for n in notes(error) if key_of(BAD) in n] == [
        f"livermore_cache: series {key_of(BAD)} failed: the script refused it before writing anything."
    ]
    assert not any(key_of("ADA-USD") in n for n in notes(error)), "the note names this error's series only"
    with pytest.raises(ResponseError) as single:
        cache.add_candle_if_newer(USER, EXCHANGE, unified(T0, 2, symbol="ADA-USD"))
    assert type(single.value) is ResponseError
    assert any(key_of("ADA-USD") in n for n in notes(single.value))
    assert admin.get(key_of(BAD)) == b"not a sorted set"
    assert admin.get(key_of("ADA-USD")) == b"nor is this"
    assert listener.drain(0.3) == []


def test_partial_batch_raises_partial_write_error(make_cache: Callable[..., Any], r: redis.Redis) -> None:
    listener = CloseListener(r)
    try:
        events = check_partial_batch(make_cache(), r, listener)
    finally:
        listener.close()
    # one server: the calls run in the batch's first-seen key order, so the events arrive in that order
    assert events == [
        (channel_of("BTC-USD"), encoded(PARTIAL_BATCH[0])),
        (channel_of("BTC-USD"), encoded(PARTIAL_BATCH[3])),
        (channel_of("SOL-USD"), encoded(PARTIAL_BATCH[5])),
    ]


def test_every_series_failing_raises_the_first_error(make_cache: Callable[..., Any], r: redis.Redis) -> None:
    listener = CloseListener(r)
    try:
        check_every_series_failing(make_cache(), r, listener)
    finally:
        listener.close()


# 2. Out of memory partway through a batch ------------------------------------------------------------------------

OOM_SERIES = [f"M{i}-USD" for i in range(10)]
OOM_CANDLES_PER_SERIES = 300


def test_out_of_memory_partway_through_a_batch(private_server: Start, cache_at: CacheAt) -> None:
    """The limit is set 3.5 series above what the server holds: the first series of the batch are applied, the rest
    refused whole. Redis checks maxmemory when each script call starts, and the script's first write is refused."""
    server = private_server("--maxmemory-policy", "noeviction")
    admin = redis.Redis.from_url(server.url)
    cache = cache_at(server.url)
    for symbol in OOM_SERIES:  # every series holds two older candles before the batch
        seed = [unified(T0 - (10 - i) * MINUTE, 1, symbol=symbol, close=7.0) for i in range(2)]
        assert cache.add_candles_if_newer(USER, EXCHANGE, seed) == [True, True]
    for filler in range(20):
        admin.set(f"filler:{filler}", b"x" * 50_000)
    before_probe = int(admin.info("memory")["used_memory"])
    probe = [unified(T0 + i * MINUTE, 1, symbol="PROBE-USD") for i in range(OOM_CANDLES_PER_SERIES)]
    assert cache.add_candles_if_newer(USER, EXCHANGE, probe) == [True] * OOM_CANDLES_PER_SERIES
    used = int(admin.info("memory")["used_memory"])
    series_cost = used - before_probe
    admin.config_set("maxmemory", used + int(3.5 * series_cost))
    before = {symbol: (zscored(admin, key_of(symbol)), admin.dump(key_of(symbol))) for symbol in OOM_SERIES}
    batch = [unified(T0 + i * MINUTE, 2, symbol=s) for i in range(OOM_CANDLES_PER_SERIES) for s in OOM_SERIES]

    with pytest.raises(PartialWriteError) as raised:
        cache.add_candles_if_newer(USER, EXCHANGE, batch)
    error = raised.value
    by_series: dict[str, set[bool | None]] = {}
    for candle, result in zip(batch, error.results, strict=True):
        by_series.setdefault(candle.symbol, set()).add(result)
    outcome = [by_series[s] for s in OOM_SERIES]
    applied = sum(1 for o in outcome if o == {True})
    print(f"OOM partway: {applied} of {len(OOM_SERIES)} series applied (series cost {series_cost} B)")
    assert 1 <= applied < len(OOM_SERIES), "the limit is met partway through the batch"
    assert outcome == [{True}] * applied + [{None}] * (len(OOM_SERIES) - applied), (
        "once over the limit every later call is refused: the applied series are the first ones"
    )
    failed = OOM_SERIES[applied:]
    assert list(error.errors) == [key_of(s) for s in failed]
    for refused in error.errors.values():
        # Redis 7 and Valkey answer OutOfMemoryError; 6.2 wraps the same OOM in "Error running script"
        assert isinstance(refused, ResponseError)
        assert "maxmemory" in str(refused)
        assert isinstance(refused, OutOfMemoryError) or str(refused).startswith("Error running script")
    assert error.__cause__ is error.errors[key_of(failed[0])]
    for symbol in OOM_SERIES[:applied]:  # True candles are stored, after the two older ones
        new = [encoded(c) for c in batch if c.symbol == symbol]
        assert zmembers(admin, key_of(symbol)) == [m for m, _ in before[symbol][0]] + new
    for symbol in failed:  # the refused series are byte for byte as before
        assert (zscored(admin, key_of(symbol)), admin.dump(key_of(symbol))) == before[symbol]
    admin.close()


# 3. BUSY: another client's script is running ---------------------------------------------------------------------

BUSY_LOOP = """
local t = redis.call('TIME')
local start = t[1] * 1000000 + t[2]
while true do
  t = redis.call('TIME')
  if t[1] * 1000000 + t[2] - start > tonumber(ARGV[1]) then return 1 end
end
"""


def answers_busy(client: redis.Redis) -> bool:
    """PING: False on PONG, True on BUSY (another client's script has run past the threshold)."""
    try:
        client.ping()
    except ResponseError as answer:
        if str(answer).startswith("BUSY"):
            return True
        raise
    return False


def busy_errors(client: redis.Redis) -> int:
    return int(client.info("errorstats").get("errorstat_BUSY", {}).get("count", 0))


def test_busy_server_is_retried(private_server: Start, cache_at: CacheAt) -> None:
    binary = private_server_binary()  # the binary private_server starts
    assert binary is not None
    option = "--busy-reply-threshold" if int(ServerProcess(binary).version().split(".")[0]) >= 7 else "--lua-time-limit"
    server = private_server(option, "100")
    admin = redis.Redis.from_url(server.url)
    cache = cache_at(server.url)
    assert cache.add_candle_if_newer(USER, EXCHANGE, unified(T0 - MINUTE, 1))  # script loaded, connection made
    replies: list[object] = []
    busy_client = redis.Redis.from_url(server.url)
    busy = threading.Thread(target=lambda: replies.append(busy_client.eval(BUSY_LOOP, 0, 1_500_000)))
    busy.start()
    probe = redis.Redis.from_url(server.url)
    try:
        deadline = time.monotonic() + 5
        while not answers_busy(probe):  # until the loop has run past the threshold
            assert time.monotonic() < deadline, "the busy script never made the server answer BUSY"
            time.sleep(0.01)
        assert cache.add_candle_if_newer(USER, EXCHANGE, unified(T0, 1)) is True
    finally:
        busy.join()
        probe.close()
        busy_client.close()
    assert replies == [1]
    print(f"BUSY: {cache.stats.retried_rounds} retried rounds")
    assert cache.stats.retried_rounds > 0
    assert cache.stats.last_failure.startswith("ResponseError: BUSY")
    # the probe's BUSY, one per retried round, and (on servers that know CLIENT SETINFO) the handshake's BUSYs
    assert busy_errors(admin) >= 1 + cache.stats.retried_rounds
    assert zmembers(admin, key_of("BTC-USD")) == [encoded(unified(T0 - MINUTE, 1)), encoded(unified(T0, 1))]
    admin.close()


# 4. Give-up time -------------------------------------------------------------------------------------------------

MAX_BACKOFF_S = 0.5


@pytest.mark.slow
def test_closed_port_gives_up_within_the_deadline(cache_at: CacheAt, facade: Facade) -> None:
    """Default settings (retries=20, retry_timeout_s=10) against a port nothing listens on."""
    cache = cache_at(f"redis://127.0.0.1:{free_port()}/0")
    assert (cache.retries, cache.retry_timeout_s) == (20, 10.0)
    started = time.monotonic()
    with pytest.raises(redis.ConnectionError) as raised:
        cache.add_candle_if_newer(USER, EXCHANGE, unified())
    elapsed = time.monotonic() - started
    print(f"closed port ({facade.name}): gave up after {elapsed:.2f} s, {cache.stats.retried_rounds} retried rounds")
    assert elapsed < 15
    # it stops at whichever comes first: 20 retries (their pauses add up to 8.75 s) or the 10 s deadline
    pauses = sum(backoff_s(attempt) for attempt in range(1, cache.retries + 1))
    assert elapsed >= min(pauses, cache.retry_timeout_s - MAX_BACKOFF_S), "it retried until the budget ran out"
    prefix = re.escape(f"livermore_cache: series {key_of('BTC-USD')}: gave up after ")
    gave_up = [n for n in notes(raised.value) if re.match(prefix, n)]
    assert len(gave_up) == 1
    budget = re.fullmatch(
        prefix + r"(\d+) retries( \(retries=20\)|: the retry_timeout_s deadline has passed)\.", gave_up[0]
    )
    assert budget is not None
    assert int(budget[1]) == cache.stats.retried_rounds, "the note and the stats count the same rounds sent again"
    assert not any(MAYBE_APPLIED in n for n in notes(raised.value)), "no connection was made: nothing was sent"
    assert cache.stats.retried_rounds == 20 if budget[2] == " (retries=20)" else cache.stats.retried_rounds < 20


def test_paused_server_gives_up_within_the_deadline(private_server: Start, cache_at: CacheAt, facade: Facade) -> None:
    server = private_server()
    socket_timeout, retry_timeout_s = 1.0, 3.0
    cache = cache_at(server.url, {"socket_timeout": socket_timeout}, retry_timeout_s=retry_timeout_s)
    assert cache.add_candle_if_newer(USER, EXCHANGE, unified(T0 - MINUTE, 1))
    server.signal(signal.SIGSTOP)
    try:
        started = time.monotonic()
        with pytest.raises(redis.TimeoutError) as raised:
            cache.add_candle_if_newer(USER, EXCHANGE, unified(T0, 1))
        elapsed = time.monotonic() - started
    finally:
        server.signal(signal.SIGCONT)
    print(f"paused server ({facade.name}): gave up after {elapsed:.2f} s")
    assert elapsed <= retry_timeout_s + socket_timeout + 2
    assert elapsed >= retry_timeout_s - MAX_BACKOFF_S
    assert any(MAYBE_APPLIED in n for n in notes(raised.value))
    assert any("retry_timeout_s deadline has passed" in n for n in notes(raised.value))


def test_a_refused_connection_is_not_reported_as_maybe_applied(cache_at: CacheAt) -> None:
    cache = cache_at(f"redis://127.0.0.1:{free_port()}/0", retries=1)
    with pytest.raises(redis.ConnectionError) as raised:
        cache.add_candle_if_newer(USER, EXCHANGE, unified())
    assert any("gave up after 1 retries" in n for n in notes(raised.value))
    assert not any(MAYBE_APPLIED in n for n in notes(raised.value)), "nothing was sent: it was not applied"


def connections_received(server: ServerProcess) -> int:
    """The server's ``total_connections_received``, read over a connection counted before the figure is read."""
    admin = redis.Redis.from_url(server.url)
    try:
        return int(admin.info("stats")["total_connections_received"])
    finally:
        admin.close()


@pytest.mark.parametrize("blocking", [False, True], ids=["pool", "blocking-pool"])
def test_a_new_cache_sends_its_first_round_over_an_idle_pooled_connection(
    private_server: Start, facade: Facade, blocking: bool
) -> None:
    server = private_server()
    used = facade.client(server.url, blocking=blocking)
    assert facade.command(used, "PING")  # the pool now holds one idle connected connection
    before = connections_received(server)
    cache = facade.cache(CandleCache, used)
    assert cache.add_candle_if_newer(USER, EXCHANGE, unified(T0, 1))
    assert cache.add_candle_if_newer(USER, EXCHANGE, unified(T0 + MINUTE, 1))
    assert connections_received(server) == before + 1, "only the figure's own reading connected"

    # a fresh client has no idle connection: the first round goes over a private one, the next over the pool's
    fresh_cache = facade.cache(CandleCache, facade.client(server.url, blocking=blocking))
    before = connections_received(server)
    assert fresh_cache.add_candle_if_newer(USER, EXCHANGE, unified(T0 + 2 * MINUTE, 1))
    assert fresh_cache.add_candle_if_newer(USER, EXCHANGE, unified(T0 + 3 * MINUTE, 1))
    assert connections_received(server) == before + 3, "private, then pooled, then the figure's own"
    admin = redis.Redis.from_url(server.url)
    assert zscored(admin, key_of("BTC-USD")) == [
        (encoded(unified(T0 + i * MINUTE, 1)), float(T0 + i * MINUTE)) for i in range(4)
    ]
    admin.close()


def slow_retries(facade: Facade, retries: int, pause_s: float) -> Any:
    """A redis-py ``Retry`` of this facade that would pause ``pause_s`` before each of ``retries`` retries."""
    if facade.is_async:
        return AsyncRetry(redis.backoff.ConstantBackoff(pause_s), retries)
    return redis.retry.Retry(redis.backoff.ConstantBackoff(pause_s), retries)


def test_a_stale_idle_connection_is_reconnected_once_within_the_deadline(private_server: Start, facade: Facade) -> None:
    """The client's own retry policy (3 retries, 2 s apart) would stretch the first round past the deadline."""
    server = private_server()
    client = facade.client(server.url, retry=slow_retries(facade, 3, 2.0))
    assert facade.command(client, "PING")
    server.kill()  # the pool's idle connection is now stale: the pool reconnects it when handed out
    cache = facade.cache(CandleCache, client, retry_timeout_s=1.0)
    started = time.monotonic()
    with pytest.raises(redis.ConnectionError) as raised:
        cache.add_candle_if_newer(USER, EXCHANGE, unified())
    elapsed = time.monotonic() - started
    print(f"stale idle connection, server down ({facade.name}): gave up after {elapsed:.2f} s")
    assert elapsed < 1.0 + 2.0, "no connect took redis-py's 2 s pause"
    assert any("retry_timeout_s deadline has passed" in n for n in notes(raised.value))
    if not facade.is_async:  # the pool saw the closed socket before anything was sent
        assert not any(MAYBE_APPLIED in n for n in notes(raised.value)), "nothing was sent: it was not applied"
    # asyncio's pool may not have seen the close yet: the round is then sent and its reply lost, and saying
    # "may or may not have been applied" is the truth as the client knows it

    server.start()  # back on the same port, empty: the stale connection reconnects at once, with no retry
    assert facade.command(client, "PING")
    fresh = facade.cache(CandleCache, client, retry_timeout_s=1.0)
    server.kill()
    server.start()
    assert fresh.add_candle_if_newer(USER, EXCHANGE, unified(T0, 1))
    if facade.is_async:  # as above, the close may be seen only once the round was sent: one round sent again
        assert fresh.stats.retried_rounds <= 1
    else:
        assert fresh.stats.retried_rounds == 0, "the pool reconnected its stale connection within the first round"
    admin = redis.Redis.from_url(server.url)
    assert zmembers(admin, key_of("BTC-USD")) == [encoded(unified(T0, 1))]
    admin.close()


def test_a_warm_cache_whose_server_died_gives_up_within_the_deadline(private_server: Start, facade: Facade) -> None:
    """The pooled connection a warm cache reuses is stale once its server died: the pool's one reconnect
    must not take the client's own retry policy (3 retries, 2 s apart), which would stretch the round."""
    server = private_server()
    client = facade.client(server.url, retry=slow_retries(facade, 3, 2.0))
    cache = facade.cache(CandleCache, client, retry_timeout_s=1.0)
    assert cache.add_candle_if_newer(USER, EXCHANGE, unified(T0 - MINUTE, 1))
    server.kill()
    started = time.monotonic()
    with pytest.raises(redis.ConnectionError) as raised:
        cache.add_candle_if_newer(USER, EXCHANGE, unified(T0, 1))
    elapsed = time.monotonic() - started
    print(f"warm cache, server down ({facade.name}): gave up after {elapsed:.2f} s")
    assert elapsed < 1.0 + 2.0, "no connect took redis-py's 2 s pause"
    assert any("retry_timeout_s deadline has passed" in n for n in notes(raised.value))
    if not facade.is_async:  # as for a new cache's first round: the sync pool sees the close before sending
        assert not any(MAYBE_APPLIED in n for n in notes(raised.value)), "nothing was sent: it was not applied"


def test_retried_rounds_counts_only_rounds_sent_again(cache_at: CacheAt) -> None:
    cache = cache_at(f"redis://127.0.0.1:{free_port()}/0", retries=0)
    with pytest.raises(redis.ConnectionError):
        cache.add_candle_if_newer(USER, EXCHANGE, unified())
    assert cache.stats.retried_rounds == 0, "retries=0: no round was sent again"


# 5. Settings are bounded -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("ttl_seconds", sys.maxsize),
        ("ttl_seconds", MAX_TTL_SECONDS + 1),
        ("max_candles", sys.maxsize),
        ("max_candles", MAX_CANDLES + 1),
        ("retry_timeout_s", 0),
        ("retry_timeout_s", -1),
        ("retry_timeout_s", math.inf),
        ("retry_timeout_s", math.nan),
        ("retry_timeout_s", True),
    ],
)
def test_settings_out_of_bounds_are_refused(make_cache: Callable[..., Any], name: str, value: object) -> None:
    with pytest.raises(ValidationError) as raised:
        make_cache(**{name: value})
    assert raised.value.field == name
    assert str(raised.value).startswith(f"{name} ")
    assert repr(value) in str(raised.value)


def test_largest_settings_write_publish_and_expire(make_cache: Callable[..., Any], r: redis.Redis) -> None:
    cache = make_cache(ttl_seconds=MAX_TTL_SECONDS, max_candles=MAX_CANDLES)
    listener = CloseListener(r)
    try:
        candle = unified(T0, 1)
        assert cache.add_candle_if_newer(USER, EXCHANGE, candle, publish_close=True) is True
        assert listener.drain() == [(channel_of("BTC-USD"), encoded(candle))]
    finally:
        listener.close()
    assert zmembers(r, key_of("BTC-USD")) == [encoded(candle)]
    assert MAX_TTL_SECONDS - 1 <= r.ttl(key_of("BTC-USD")) <= MAX_TTL_SECONDS
    assert cache.add_candles(USER, EXCHANGE, [unified(T0 + MINUTE, 1)]) is None
    assert r.zcard(key_of("BTC-USD")) == 2
    assert MAX_TTL_SECONDS - 1 <= r.ttl(key_of("BTC-USD")) <= MAX_TTL_SECONDS


# 6. Single-connection clients ------------------------------------------------------------------------------------


def test_single_connection_client_with_one_connection(
    redis_url: str, cache_at: CacheAt, facade: Facade, r: redis.Redis
) -> None:
    cache = cache_at(redis_url, {"single_connection_client": True, "max_connections": 1})
    assert cache.add_candle_if_newer(USER, EXCHANGE, unified(T0, 1)) is True
    assert cache.get_recent_candles(USER, EXCHANGE, "BTC-USD", "1m", model=UnifiedCandle) == [unified(T0, 1)]
    assert cache.add_candles_if_newer(USER, EXCHANGE, [unified(T0, 2), unified(T0 + MINUTE, 1)]) == [True, True]
    assert cache.get_latest_candle(USER, EXCHANGE, "BTC-USD", "1m", model=UnifiedCandle) == unified(T0 + MINUTE, 1)
    assert facade.command(cache.client, "PING") is True
    assert facade.command(cache.client, "ZCARD", key_of("BTC-USD")) == 2
    assert zmembers(r, key_of("BTC-USD")) == [encoded(unified(T0, 2)), encoded(unified(T0 + MINUTE, 1))]


# 7. A replica ----------------------------------------------------------------------------------------------------


def wait_link_up(replica: redis.Redis, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while replica.info("replication").get("master_link_status") != "up":
        assert time.monotonic() < deadline, "the replica never synced"
        time.sleep(0.05)


def test_replica_refuses_at_once(private_server: Start, cache_at: CacheAt) -> None:
    primary = private_server("--repl-diskless-sync-delay", "0")  # the replica syncs at once, not after 5 s
    replica = private_server("--replicaof", "127.0.0.1", str(primary.port))
    primary_client, replica_client = redis.Redis.from_url(primary.url), redis.Redis.from_url(replica.url)
    wait_link_up(replica_client)
    cache = cache_at(replica.url)
    writes: list[tuple[str, Any]] = [
        ("add_candle_if_newer", unified(T0, 1)),
        ("add_candles_if_newer", [unified(T0, 1), unified(T0, 1, symbol="ETH-USD")]),  # every series fails
    ]
    for method, argument in writes:
        started = time.monotonic()
        with pytest.raises(ReadOnlyError) as raised:
            getattr(cache, method)(USER, EXCHANGE, argument)
        assert time.monotonic() - started < 1.0
        assert cache.stats.retried_rounds == 0
        said = notes(raised.value)
        assert any("the server is a replica" in n and "nothing was written" in n for n in said)
        assert not any(MAYBE_APPLIED in n for n in said)
    for client in (primary_client, replica_client):
        assert client.exists(key_of("BTC-USD"), key_of("ETH-USD")) == 0
    primary_client.close()
    replica_client.close()


# 8. Validation cannot be bypassed ---------------------------------------------------------------------------------


@pytest.mark.parametrize("value", [None, math.nan, "x"], ids=["None", "nan", "str"])
@pytest.mark.parametrize("method", ["add_candle_if_newer", "add_candles_if_newer", "add_candle", "add_candles"])
def test_force_setattr_cannot_reach_the_server(
    make_cache: Callable[..., Any], r: redis.Redis, method: str, value: object
) -> None:
    cache = make_cache()
    candle = unified(T0, 1)
    msgspec.structs.force_setattr(candle, "close", value)
    argument: Any = candle if method in ("add_candle_if_newer", "add_candle") else [candle]
    with pytest.raises(ValidationError) as raised:
        getattr(cache, method)(USER, EXCHANGE, argument)
    assert raised.value.field == "candles[0].close"
    assert str(raised.value).startswith("candles[0].close ")
    assert repr(value) in str(raised.value)
    if method in ("add_candles_if_newer", "add_candles"):  # in a batch, the valid candle before it is not written
        with pytest.raises(ValidationError) as in_batch:
            getattr(cache, method)(USER, EXCHANGE, [unified(T0 + MINUTE, 1, symbol="ETH-USD"), candle])
        assert in_batch.value.field == "candles[1].close"
    assert r.exists(key_of("BTC-USD"), key_of("ETH-USD")) == 0


# 1, again on Redis Cluster ---------------------------------------------------------------------------------------


@pytest.fixture
def cluster_cache(facade: Facade, cluster: ClusterProcess) -> Any:
    flush_cluster(cluster)
    return facade.cache(CandleCache, facade.client(cluster.url, cluster=True))


@pytest.fixture
def cluster_admin(cluster: ClusterProcess) -> Iterator[tuple[Any, CloseListener]]:
    """A sync cluster client to arrange and inspect, and a close listener on one primary (PUBLISH reaches every node)."""
    admin: Any = redis.cluster.RedisCluster.from_url(cluster.url)
    subscriber = redis.Redis.from_url(cluster.primary_nodes()[-1].url)
    listener = CloseListener(subscriber)
    yield admin, listener
    listener.close()
    subscriber.close()
    admin.close()


@pytest.mark.cluster
def test_partial_batch_on_a_cluster(cluster_cache: Any, cluster_admin: tuple[Any, CloseListener]) -> None:
    admin, listener = cluster_admin
    owners = {cast(Any, admin.get_node_from_key(key_of(s))).name for s in ("BTC-USD", BAD, "SOL-USD")}
    print(f"partial batch on a cluster: the three series live on {len(owners)} primaries")
    check_partial_batch(cluster_cache, admin, listener)


@pytest.mark.cluster
def test_every_series_failing_on_a_cluster(cluster_cache: Any, cluster_admin: tuple[Any, CloseListener]) -> None:
    admin, listener = cluster_admin
    check_every_series_failing(cluster_cache, admin, listener)

"""Durable acknowledgements (``min_replicas``): settings, the engine's decisions, the scripts' proving mode, real replicas.

A primary and a replica of the test's own; the replica is paused (SIGSTOP) to
make WAIT fall short. Both facades, candles and values.
"""

from __future__ import annotations

import asyncio
import signal
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import redis
from redis.exceptions import TimeoutError as RedisTimeoutError

from livermore_cache import (
    AsyncCandleCache,
    AsyncIndicatorCache,
    AsyncOrderbookCache,
    AsyncTickerCache,
    CandleCache,
    IndicatorCache,
    NotReplicatedError,
    OrderbookCache,
    Ticker,
    TickerCache,
    ValidationError,
    candle_key,
    ticker_key,
)
from livermore_cache.engine import Durability, WriteRounds, WriteStats
from livermore_cache.plans.candles import PROVING_RETRY_MODE, plan_write
from livermore_cache.plans.values import TICKERS, plan_values
from livermore_cache.scripts import script_source
from tests.support.builders import unified
from tests.support.constants import EXCHANGE, MINUTE, T0, USER
from tests.support.facade import Facade
from tools.servers.discovery import local_server_binary, packaged_server_binary
from tools.servers.process import ServerProcess

Start = Callable[..., ServerProcess]
ALL_CLASSES = [
    CandleCache,
    TickerCache,
    OrderbookCache,
    IndicatorCache,
    AsyncCandleCache,
    AsyncTickerCache,
    AsyncOrderbookCache,
    AsyncIndicatorCache,
]


def ticker(timestamp: int = T0, symbol: str = "BTC-USD", price: float = 42000.5) -> Ticker:
    return Ticker(
        symbol=symbol,
        price=price,
        change24h=1.0,
        change_percent24h=0.5,
        volume24h=10.0,
        low24h=41000.0,
        high24h=43000.0,
        timestamp=timestamp,
    )


# 1. Settings ------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("cls", ALL_CLASSES, ids=lambda c: c.__name__)
@pytest.mark.parametrize(
    ("setting", "value"),
    [
        ("min_replicas", -1),
        ("min_replicas", True),
        ("min_replicas", 1.0),
        ("min_replicas", "1"),
        ("min_replicas", 1001),
        ("replica_timeout_ms", 0),
        ("replica_timeout_ms", -5),
        ("replica_timeout_ms", 1.5),
        ("replica_timeout_ms", None),
        ("replica_timeout_ms", 3_600_001),
        ("wait_aof", 1),
        ("wait_aof", None),
    ],
)
def test_bad_settings_are_refused_naming_field_and_value(cls: type[Any], setting: str, value: object) -> None:
    client: Any = redis.asyncio.Redis() if cls.__name__.startswith("Async") else redis.Redis()
    with pytest.raises(ValidationError) as raised:
        cls(client, **{setting: value})
    assert raised.value.field == setting
    assert raised.value.value is value
    assert setting in str(raised.value)
    assert repr(value) in str(raised.value)
    with pytest.raises(ValidationError, match=setting):
        cls.from_url("redis://127.0.0.1:1/0", **{setting: value})


@pytest.mark.parametrize("cls", ALL_CLASSES, ids=lambda c: c.__name__)
def test_settings_defaults_and_from_url(cls: type[Any]) -> None:
    client: Any = redis.asyncio.Redis() if cls.__name__.startswith("Async") else redis.Redis()
    cache = cls(client)
    assert (cache.min_replicas, cache.replica_timeout_ms, cache.wait_aof) == (0, 1000, False)
    assert "min_replicas" not in repr(cache)
    made = cls.from_url("redis://127.0.0.1:1/0", min_replicas=2, replica_timeout_ms=250, wait_aof=True)
    assert made.durability == Durability(2, 250, True)
    assert "min_replicas=2, replica_timeout_ms=250, wait_aof=True" in repr(made)
    if cls.__name__.startswith("Async"):
        asyncio.run(made.aclose())
    else:
        made.close()


# 2. The engine's decisions (no I/O) -------------------------------------------------------------------------------


def candle_rounds(durability: Durability, symbols: tuple[str, ...] = ("AAA-USD", "BBB-USD")) -> WriteRounds:
    plan = plan_write(
        USER,
        EXCHANGE,
        [unified(T0 + i * MINUTE, 1, symbol=s) for s in symbols for i in range(2)],
        versioned=True,
        ttl_seconds=60,
        max_candles=100,
    )
    return WriteRounds(
        plan, "f" * 40, "-- source", retries=3, deadline=100.0, stats=WriteStats(), durability=durability
    )


def test_wait_and_waitaof_commands() -> None:
    assert Durability().command() is None
    assert Durability(1, 500).command() == ("WAIT", 1, 500)
    assert Durability(2, 500, wait_aof=True).command() == ("WAITAOF", 1, 2, 500)
    assert Durability(1).acknowledged(1) == (1, "")
    assert Durability(1).acknowledged(redis.ResponseError("NOPERM")) == (0, "ResponseError: NOPERM")
    assert Durability(1, wait_aof=True).acknowledged([1, 3]) == (3, "")
    assert Durability(1, wait_aof=True).acknowledged([0, 3])[0] == 0


def test_enough_replicas_report_true() -> None:
    state = candle_rounds(Durability(1))
    state.next_round() or []
    assert state.wait_command() == ("WAIT", 1, 1000)
    state.feed([[1, 1], [1, 1]], now=0.0, waits=[1, 1])
    assert state.results() == [True] * 4


def test_too_few_replicas_raise_with_the_results() -> None:
    state = candle_rounds(Durability(2, 300))
    state.next_round()
    state.feed([[1, 0], [1, 1]], now=0.0, waits=[2, 1])
    with pytest.raises(NotReplicatedError) as raised:
        state.results()
    error = raised.value
    assert isinstance(error, redis.RedisError)
    assert error.results == [True, False, True, True]
    assert error.acknowledged == [2, 2, 1, 1]
    assert (error.replicas, error.required) == (1, 2)
    assert "2 of 3 written candles were acknowledged by 1 replicas, fewer than min_replicas=2" in str(error)
    assert any("written on the primary" in note for note in error.__notes__)


def test_nothing_reported_true_needs_no_proof() -> None:
    state = candle_rounds(Durability(1))
    state.next_round()
    state.feed([[0, 0], [0, 0]], now=0.0, waits=[0, 0])
    assert state.results() == [False] * 4


def test_a_failed_wait_is_no_proof_and_says_why() -> None:
    state = candle_rounds(Durability(1))
    state.next_round()
    state.feed([[1, 1], [1, 1]], now=0.0, waits=[redis.ResponseError("NOPERM no WAIT for you")] * 2)
    with pytest.raises(NotReplicatedError, match="NOPERM") as raised:
        state.results()
    assert raised.value.problem.startswith("ResponseError: NOPERM")


def test_retry_rounds_prove_what_they_find_stored() -> None:
    """After an ambiguous round, a cache with min_replicas sends mode "3" (candles) / ARGV[5] "2" (values)."""
    state = candle_rounds(Durability(1))
    first = state.next_round() or []
    assert [c[4] for c in first] == [b"1", b"1"]
    state.feed([RedisTimeoutError("Timeout"), [1, 1]], now=0.0, waits=[None, 1])
    (again,) = state.next_round() or []
    assert again[4] == PROVING_RETRY_MODE
    state.feed([[1, 1]], now=1.0, waits=[1])
    assert state.results() == [True] * 4

    plain = candle_rounds(Durability())
    plain.next_round()
    plain.feed([RedisTimeoutError("Timeout"), [1, 1]], now=0.0)
    (command,) = plain.next_round() or []
    assert command[4] == b"2", "without min_replicas the retry mode is unchanged"

    values = plan_values(TICKERS, USER, EXCHANGE, [ticker()], ttl_seconds=60, publish=False)
    call = values.calls[0]
    # EVALSHA sha 1 key ttl channel ATTEMPT (timestamp json)...: one call per key
    assert call.command("s", "", by_sha=True, retry=True, prove=True)[6] == b"2"
    assert call.command("s", "", by_sha=True, retry=True)[6] == b"1"


def test_a_round_whose_wait_reply_was_lost_is_unproven() -> None:
    state = candle_rounds(Durability(1))
    state.next_round()
    state.feed([[1, 1], [1, 1]], now=0.0, waits=None)
    with pytest.raises(NotReplicatedError):
        state.results()


# 3. Real servers: a primary and its replica -----------------------------------------------------------------------


@pytest.fixture
def pair(private_server: Start) -> Iterator[tuple[ServerProcess, ServerProcess]]:
    primary = private_server()
    replica = private_server("--replicaof", "127.0.0.1", str(primary.port))
    deadline = time.monotonic() + 20
    with redis.Redis.from_url(replica.url, socket_timeout=1) as client:
        while client.info("replication").get("master_link_status") != "up":
            assert time.monotonic() < deadline, "the replica did not sync"
            time.sleep(0.05)
    with redis.Redis.from_url(primary.url, socket_timeout=1) as client:
        while int(client.info("replication").get("connected_slaves", 0)) < 1:
            assert time.monotonic() < deadline, "the primary does not see its replica"
            time.sleep(0.05)
    yield primary, replica
    replica.signal(signal.SIGCONT)


def value_cache(facade: Facade, url: str, **settings: Any) -> Any:
    return facade.cache(TickerCache, facade.client(url, socket_timeout=2), **settings)


def test_live_replica_acknowledges_and_holds_the_write(
    pair: tuple[ServerProcess, ServerProcess], cache_at: Callable[..., Any], facade: Facade
) -> None:
    primary, replica = pair
    cache = cache_at(primary.url, {"socket_timeout": 2}, min_replicas=1, replica_timeout_ms=2000)
    candles = [unified(T0 + i * MINUTE, 1) for i in range(5)]
    assert cache.add_candles_if_newer(USER, EXCHANGE, candles) == [True] * 5
    tickers = value_cache(facade, primary.url, min_replicas=1, replica_timeout_ms=2000)
    assert tickers.set_tickers_if_newer(USER, EXCHANGE, [ticker(T0), ticker(T0, "ETH-USD")]) == [True, True]
    with redis.Redis.from_url(replica.url, socket_timeout=1) as r:
        # acknowledged means applied on the replica: readable there at once, without waiting
        assert r.zcard(candle_key(USER, EXCHANGE, "BTC-USD", "1m")) == 5
        assert r.exists(ticker_key(USER, EXCHANGE, "BTC-USD"), ticker_key(USER, EXCHANGE, "ETH-USD")) == 2


def test_paused_replica_raises_not_replicated_within_the_timeout(
    pair: tuple[ServerProcess, ServerProcess], cache_at: Callable[..., Any], facade: Facade
) -> None:
    primary, replica = pair
    timeout_ms = 400
    cache = cache_at(primary.url, {"socket_timeout": 0.2}, min_replicas=1, replica_timeout_ms=timeout_ms)
    tickers = value_cache(facade, primary.url, min_replicas=1, replica_timeout_ms=timeout_ms)
    assert cache.add_candle_if_newer(USER, EXCHANGE, unified(T0 - MINUTE, 1))
    replica.signal(signal.SIGSTOP)
    try:
        started = time.monotonic()
        with pytest.raises(NotReplicatedError) as raised:
            cache.add_candles_if_newer(USER, EXCHANGE, [unified(T0, 1), unified(T0 - MINUTE, 0)])
        elapsed = time.monotonic() - started
        with pytest.raises(NotReplicatedError) as raised_value:
            tickers.set_ticker_if_newer(USER, EXCHANGE, ticker())
    finally:
        replica.signal(signal.SIGCONT)
    print(f"paused replica ({facade.name}): NotReplicatedError after {elapsed:.3f} s (replica_timeout_ms={timeout_ms})")
    # WAIT's reply is read with the socket timeout (0.2 s) plus replica_timeout_ms: no TimeoutError, no retry
    assert timeout_ms / 1000 * 0.9 <= elapsed < timeout_ms / 1000 + 1.5
    error = raised.value
    assert error.results == [True, False]
    assert error.acknowledged == [0, 0]
    assert (error.replicas, error.required) == (0, 1)
    assert cache.stats.retried_rounds == 0
    assert raised_value.value.results == [True]
    with redis.Redis.from_url(primary.url) as r:
        assert r.zcard(candle_key(USER, EXCHANGE, "BTC-USD", "1m")) == 2, "applied on the primary, as reported"
    # once the replica is back, the same write is proven (and reports as a first attempt would)
    assert cache.add_candles_if_newer(USER, EXCHANGE, [unified(T0 + MINUTE, 1)]) == [True]


def test_waitaof_without_appendonly_is_no_proof(
    pair: tuple[ServerProcess, ServerProcess], cache_at: Callable[..., Any]
) -> None:
    """WAITAOF needs appendonly (and Redis 7.2+): otherwise its error reply is the reason given."""
    primary, _ = pair
    cache = cache_at(primary.url, {"socket_timeout": 2}, min_replicas=1, wait_aof=True, replica_timeout_ms=200)
    with pytest.raises(NotReplicatedError) as raised:
        cache.add_candle_if_newer(USER, EXCHANGE, unified())
    assert raised.value.problem.startswith("ResponseError"), raised.value.problem
    assert raised.value.results == [True]


def start_pair(binary: str, *args: str) -> tuple[ServerProcess, ServerProcess]:
    primary = ServerProcess(binary, ["--repl-diskless-sync-delay", "0", *args]).start()
    replica = ServerProcess(binary, ["--replicaof", "127.0.0.1", str(primary.port), *args])
    try:
        replica.start()
        deadline = time.monotonic() + 20
        with redis.Redis.from_url(primary.url, socket_timeout=1) as client:
            while int(client.info("replication").get("connected_slaves", 0)) < 1:
                assert time.monotonic() < deadline, "the primary does not see its replica"
                time.sleep(0.05)
    except BaseException:
        primary.stop()
        replica.stop()
        raise
    return primary, replica


BINARIES = {"local": local_server_binary(), **{n: packaged_server_binary(n) for n in ("valkey-8", "valkey-9")}}


@pytest.fixture(params=sorted(BINARIES))
def any_pair(request: pytest.FixtureRequest) -> Iterator[tuple[ServerProcess, ServerProcess]]:
    """A primary and its replica of each server binary at hand (the local one, and the dev extra's valkeys)."""
    binary = BINARIES[request.param]
    if binary is None:
        pytest.skip(f"no {request.param} server binary")
    primary, replica = start_pair(binary)
    yield primary, replica
    replica.stop()
    primary.stop()


def test_waitaof_with_appendonly(cache_at: Callable[..., Any]) -> None:
    binary = packaged_server_binary("valkey-9")
    if binary is None:
        pytest.skip("WAITAOF needs Redis 7.2+ or Valkey 8+: the dev extra's valkey-9 is missing")
    primary, replica = start_pair(binary, "--appendonly", "yes")
    try:
        cache = cache_at(primary.url, {"socket_timeout": 2}, min_replicas=1, wait_aof=True, replica_timeout_ms=5000)
        assert cache.add_candle_if_newer(USER, EXCHANGE, unified())
        replica.signal(signal.SIGSTOP)
        try:
            with pytest.raises(NotReplicatedError) as raised:
                cache.add_candle_if_newer(USER, EXCHANGE, unified(T0 + MINUTE, 1))
        finally:
            replica.signal(signal.SIGCONT)
        assert raised.value.results == [True]
        assert raised.value.problem == ""
    finally:
        replica.stop()
        primary.stop()


# 4. The proving retry mode of the scripts, against WAIT itself ----------------------------------------------------


def test_a_retry_that_finds_its_write_stored_proves_it(any_pair: tuple[ServerProcess, ServerProcess]) -> None:
    """Without proof, WAIT on a connection that wrote nothing may be satisfied at once with the replica paused.

    (Valkey answers it at once; Redis 7.0 waits for a replica that is behind.)
    With the proving mode it must wait for the replica: the earlier attempt's
    write is not proven until the replica has it.
    """
    primary, replica = any_pair
    key = candle_key(USER, EXCHANGE, "BTC-USD", "1m")
    plan = plan_write(USER, EXCHANGE, [unified(T0, 1)], versioned=True, ttl_seconds=3600, max_candles=100)
    (call,) = plan.calls
    tplan = plan_values(TICKERS, USER, EXCHANGE, [ticker()], ttl_seconds=60, publish=False)
    (tcall,) = tplan.calls
    writer: Any = redis.Redis.from_url(primary.url, socket_timeout=5)
    retrier: Any = redis.Redis(host="127.0.0.1", port=primary.port, socket_timeout=5, single_connection_client=True)
    source, tsource = script_source("versioned_write"), script_source("newer_wins")
    try:
        replica.signal(signal.SIGSTOP)
        # the earlier attempt: applied on the primary, its reply lost, never replicated
        assert writer.execute_command(*call.command("", source, by_sha=False)) == [1]
        assert writer.execute_command(*tcall.command("", tsource, by_sha=False)) == [1]
        ttl_before, measured_at = writer.pttl(key), time.monotonic()
        # a plain retry reports 1 and writes nothing: WAIT proves nothing (it answers 1 at once)
        assert retrier.execute_command(*call.command("", source, by_sha=False, retry=True)) == [1]
        vacuous = retrier.execute_command("WAIT", 1, 300)
        version = writer.info("server").get("valkey_version") or writer.info("server")["redis_version"]
        print(f"{version}: WAIT on a connection that wrote nothing, replica paused: {vacuous}")
        # the proving retry: the same reply, and now WAIT waits for the paused replica
        started = time.monotonic()
        assert retrier.execute_command(*call.command("", source, by_sha=False, retry=True, prove=True)) == [1]
        assert retrier.execute_command("WAIT", 1, 300) == 0
        assert time.monotonic() - started >= 0.25
        assert retrier.execute_command(*tcall.command("", tsource, by_sha=False, retry=True, prove=True)) == [1]
        assert retrier.execute_command("WAIT", 1, 300) == 0
        # and it changed nothing: the same members, the same expiry (to the ms), the same value
        assert writer.zcard(key) == 1
        expected = ttl_before - (time.monotonic() - measured_at) * 1000
        assert expected - 100 < writer.pttl(key) < expected + 100, "the expiry is the one the first attempt set"
        assert writer.pttl(ticker_key(USER, EXCHANGE, "BTC-USD")) > 55_000
        replica.signal(signal.SIGCONT)
        assert retrier.execute_command(*call.command("", source, by_sha=False, retry=True, prove=True)) == [1]
        assert retrier.execute_command("WAIT", 1, 5000) == 1
    finally:
        replica.signal(signal.SIGCONT)
        writer.close()
        retrier.close()
    with redis.Redis.from_url(replica.url, socket_timeout=1) as r:
        assert r.zcard(key) == 1


def test_proving_write_on_a_key_without_expiry_keeps_it_without(redis_url: str) -> None:
    r: Any = redis.Redis.from_url(redis_url)
    source = script_source("versioned_write")
    plan = plan_write(USER, EXCHANGE, [unified(T0, 1)], versioned=True, ttl_seconds=None, max_candles=100)
    (call,) = plan.calls
    key = call.key
    assert r.execute_command(*call.command("", source, by_sha=False)) == [1]
    assert r.pttl(key) == -1
    assert r.execute_command(*call.command("", source, by_sha=False, retry=True, prove=True)) == [1]
    assert r.pttl(key) == -1
    assert r.zcard(key) == 1
    # a proving retry that finds nothing of its own writes as usual, and one that finds a newer candle changes nothing
    newer = plan_write(USER, EXCHANGE, [unified(T0, 5)], versioned=True, ttl_seconds=None, max_candles=100)
    assert r.execute_command(*newer.calls[0].command("", source, by_sha=False)) == [1]
    assert r.execute_command(*call.command("", source, by_sha=False, retry=True, prove=True)) == [0]
    r.close()

"""The retry module on scripted outcomes: every decision of the write loop, without a socket."""

from __future__ import annotations

import pytest
from redis.exceptions import (
    AskError,
    BusyLoadingError,
    ClusterDownError,
    MovedError,
    NoScriptError,
    OutOfMemoryError,
    ReadOnlyError,
    ResponseError,
    TryAgainError,
)
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from livermore_cache import PartialWriteError
from livermore_cache.engine import Outcome, WriteRounds, WriteStats, backoff_s, classify
from livermore_cache.plans.candles import WritePlan, plan_write
from tests.support.builders import unified
from tests.support.constants import EXCHANGE, MINUTE, T0, USER

SHA, SOURCE = "f" * 40, "return {}"


def plan(symbols: tuple[str, ...] = ("AAA-USD", "BBB-USD")) -> WritePlan:
    """Two candles per symbol, one script call per symbol."""
    candles = [unified(T0 + i * MINUTE, 1, symbol=s) for s in symbols for i in range(2)]
    return plan_write(USER, EXCHANGE, candles, versioned=True, ttl_seconds=60, max_candles=10)


def rounds(the_plan: WritePlan, *, retries: int = 3, deadline: float = 100.0, cluster: bool = False) -> WriteRounds:
    return WriteRounds(the_plan, SHA, SOURCE, retries=retries, deadline=deadline, cluster=cluster, stats=WriteStats())


@pytest.mark.parametrize(
    ("outcome", "standalone", "cluster"),
    [
        ([1, 0], Outcome.REPLY, Outcome.REPLY),
        (NoScriptError("NOSCRIPT No matching script."), Outcome.NOSCRIPT, Outcome.NOSCRIPT),
        (RedisTimeoutError("Timeout reading from socket"), Outcome.AMBIGUOUS, Outcome.AMBIGUOUS),
        (RedisConnectionError("Connection closed by server."), Outcome.AMBIGUOUS, Outcome.AMBIGUOUS),
        (ConnectionResetError(104, "reset"), Outcome.AMBIGUOUS, Outcome.AMBIGUOUS),
        (BusyLoadingError("LOADING Redis is loading the dataset in memory"), Outcome.NOT_RUN, Outcome.NOT_RUN),
        (ResponseError("BUSY Redis is busy running a script."), Outcome.NOT_RUN, Outcome.NOT_RUN),
        (TryAgainError("TRYAGAIN"), Outcome.NOT_RUN, Outcome.NOT_RUN),
        (ClusterDownError("CLUSTERDOWN The cluster is down"), Outcome.NOT_RUN, Outcome.NOT_RUN),
        (MovedError("3999 127.0.0.1:6381"), Outcome.NOT_RUN, Outcome.NOT_RUN),
        (AskError("3999 127.0.0.1:6381"), Outcome.NOT_RUN, Outcome.NOT_RUN),
        (ReadOnlyError("You can't write against a read only replica."), Outcome.FAIL, Outcome.NOT_RUN),
        (  # Redis 6.2 wraps the reply of a redis.call in a script error
            ResponseError(
                "Error running script (call to f_0): @user_script:1: -READONLY You can't write against a read only replica."
            ),
            Outcome.FAIL,
            Outcome.NOT_RUN,
        ),
        (ResponseError("NOREPLICAS Not enough good replicas to write."), Outcome.NOT_RUN, Outcome.NOT_RUN),
        (
            ResponseError("WRONGTYPE Operation against a key holding the wrong kind of value"),
            Outcome.FAIL,
            Outcome.FAIL,
        ),
        (ResponseError("BUSYKEY Target key name already exists."), Outcome.FAIL, Outcome.FAIL),
        (OutOfMemoryError("OOM command not allowed when used memory > 'maxmemory'."), Outcome.FAIL, Outcome.FAIL),
    ],
)
def test_classify(outcome: object, standalone: Outcome, cluster: Outcome) -> None:
    assert classify(outcome, cluster=False) is standalone
    assert classify(outcome, cluster=True) is cluster


def test_backoff_doubles_from_50_ms_and_caps_at_500_ms() -> None:
    assert [backoff_s(n) for n in range(1, 7)] == [0.05, 0.1, 0.2, 0.4, 0.5, 0.5]


def test_one_round_of_replies() -> None:
    state = rounds(plan())
    commands = state.next_round()
    assert commands is not None
    assert [c[0] for c in commands] == ["EVALSHA", "EVALSHA"]
    assert [c[3] for c in commands] == [call.key for call in state.plan.calls]
    assert [c[4] for c in commands] == [b"1", b"1"]  # versioned mode
    assert state.feed([[1, 0], [0, 1]], now=0.0) == 0.0
    assert state.next_round() is None
    assert state.results() == [True, False, False, True]
    assert state.stats == WriteStats()


def test_noscript_is_answered_at_once_by_eval() -> None:
    state = rounds(plan())
    state.next_round()
    assert state.feed([NoScriptError("NOSCRIPT"), [1, 1]], now=0.0) == 0.0
    (command,) = state.next_round() or []
    assert command[:2] == ("EVAL", SOURCE)
    assert command[3] == state.plan.calls[0].key
    assert command[4] == b"1"  # NOSCRIPT means not run: no retry mode
    state.feed([[1, 1]], now=0.0)
    assert state.results() == [True] * 4
    assert state.stats.noscript_calls == 1
    assert state.stats.retried_rounds == 0


def test_an_ambiguous_round_pauses_and_turns_on_retry_mode() -> None:
    state = rounds(plan())
    state.next_round()
    pause = state.feed([RedisTimeoutError("Timeout"), [1, 1]], now=0.0)
    assert pause == backoff_s(1)
    (command,) = state.next_round() or []
    assert command[0] == "EVALSHA"
    assert command[4] == b"2"
    state.feed([[1, 1]], now=1.0)
    assert state.results() == [True] * 4
    assert state.stats.retried_rounds == 1
    assert "TimeoutError" in state.stats.last_failure


def test_not_run_replies_pause_without_retry_mode() -> None:
    state = rounds(plan(), cluster=True)
    state.next_round()
    assert state.feed([ResponseError("BUSY Redis is busy"), TryAgainError("TRYAGAIN")], now=0.0) == backoff_s(1)
    commands = state.next_round() or []
    assert [c[4] for c in commands] == [b"1", b"1"]
    assert state.feed([BusyLoadingError("LOADING"), [1, 1]], now=0.1) == backoff_s(2)
    state.feed([[0, 1]], now=0.3)
    assert state.results() == [False, True, True, True]
    assert state.stats.retried_rounds == 2


def test_unconditional_calls_stay_unconditional_in_retry_mode() -> None:
    candles = [unified(T0, 1)]
    state = rounds(plan_write(USER, EXCHANGE, candles, versioned=False, ttl_seconds=None, max_candles=5))
    state.next_round()
    state.feed([RedisConnectionError("dropped")], now=0.0)
    (command,) = state.next_round() or []
    assert command[4] == b"0"
    assert command[5] == b"0"


def test_the_budget_ends_the_write_with_the_last_failure() -> None:
    state = rounds(plan(("AAA-USD",)), retries=2)
    for attempt in range(3):
        assert state.next_round() is not None
        error = RedisConnectionError(f"refused {attempt}")
        pause = state.feed([error], now=float(attempt))
    assert pause == 0.0
    assert state.next_round() is None
    with pytest.raises(RedisConnectionError, match="refused 2") as raised:
        state.results()
    notes = "\n".join(raised.value.__notes__)
    assert "candles:7:1:AAA-USD:1m" in notes
    assert "gave up after 2 retries" in notes
    assert "may or may not have been applied" in notes
    assert state.stats.retried_rounds == 2  # the round that ended the write was not sent again


def test_the_deadline_ends_the_write_before_the_budget() -> None:
    state = rounds(plan(("AAA-USD",)), retries=100, deadline=1.0)
    state.next_round()
    assert state.feed([ResponseError("BUSY Redis is busy")], now=0.0) == backoff_s(1)
    state.next_round()
    assert (
        state.feed([ResponseError("BUSY Redis is busy")], now=0.95) == 0.0
    )  # 0.95 s + the next pause passes the deadline
    assert state.next_round() is None
    with pytest.raises(ResponseError, match="BUSY") as raised:
        state.results()
    notes = "\n".join(raised.value.__notes__)
    assert "retry_timeout_s deadline" in notes
    assert "may or may not" not in notes


def test_a_failed_series_does_not_stop_the_others() -> None:
    state = rounds(plan(("AAA-USD", "BBB-USD", "CCC-USD")))
    state.next_round()
    wrongtype = ResponseError("WRONGTYPE Operation against a key holding the wrong kind of value")
    assert state.feed([[1, 1], wrongtype, RedisTimeoutError("Timeout")], now=0.0) > 0
    (command,) = state.next_round() or []
    assert command[3] == "candles:7:1:CCC-USD:1m"
    state.feed([[1, 0]], now=0.1)
    with pytest.raises(PartialWriteError) as raised:
        state.results()
    error = raised.value
    assert error.results == [True, True, None, None, True, False]
    assert error.errors == {"candles:7:1:BBB-USD:1m": wrongtype}
    assert error.__cause__ is wrongtype
    assert "candles:7:1:BBB-USD:1m" in str(error)
    assert "WRONGTYPE" in str(error)


def test_a_series_that_gave_up_is_a_partial_failure_too() -> None:
    state = rounds(plan(), retries=0)
    state.next_round()
    timeout = RedisTimeoutError("Timeout")
    state.feed([[1, 1], timeout], now=0.0)
    with pytest.raises(PartialWriteError) as raised:
        state.results()
    assert raised.value.results == [True, True, None, None]
    assert raised.value.errors == {"candles:7:1:BBB-USD:1m": timeout}
    assert any("may or may not have been applied" in note for note in timeout.__notes__)


def test_when_every_series_fails_the_first_error_is_raised_naming_its_key() -> None:
    state = rounds(plan())
    state.next_round()
    first, second = OutOfMemoryError("OOM command not allowed"), OutOfMemoryError("OOM command not allowed")
    state.feed([first, second], now=0.0)
    with pytest.raises(OutOfMemoryError) as raised:
        state.results()
    assert raised.value is first
    assert any("candles:7:1:AAA-USD:1m failed" in note and "before writing" in note for note in first.__notes__)


def test_an_error_after_an_ambiguous_round_says_it_may_have_been_applied() -> None:
    state = rounds(plan(("AAA-USD",)))
    state.next_round()
    state.feed([RedisConnectionError("dropped")], now=0.0)
    state.next_round()
    oom = OutOfMemoryError("OOM command not allowed")
    state.feed([oom], now=0.1)
    with pytest.raises(OutOfMemoryError):
        state.results()
    notes = "\n".join(oom.__notes__)
    assert "may or may not have been applied" in notes
    assert "before writing" not in notes


def test_readonly_from_a_standalone_replica_fails_at_once() -> None:
    state = rounds(plan(("AAA-USD",)))
    state.next_round()
    readonly = ReadOnlyError("You can't write against a read only replica.")
    assert state.feed([readonly], now=0.0) == 0.0
    assert state.next_round() is None
    with pytest.raises(ReadOnlyError) as raised:
        state.results()
    notes = "\n".join(raised.value.__notes__)
    assert "replica" in notes
    assert "nothing was written" in notes
    assert "may or may not" not in notes
    assert state.stats.retried_rounds == 0


def test_readonly_from_a_demoted_cluster_primary_is_sent_again() -> None:
    state = rounds(plan(("AAA-USD",)), cluster=True)
    state.next_round()
    assert state.feed([ReadOnlyError("READONLY")], now=0.0) == backoff_s(1)
    state.next_round()
    state.feed([[1, 1]], now=0.1)
    assert state.results() == [True, True]


def test_results_before_the_end_is_a_bug() -> None:
    state = rounds(plan())
    with pytest.raises(RuntimeError, match="no final outcome"):
        state.results()

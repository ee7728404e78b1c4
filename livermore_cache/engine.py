"""The write engine every cache shares, free of I/O: commands, settings, and the write loop's decisions.

The write loop's decisions: what each outcome means, what to send next, when to give up.

redis-py retries a command that met a timeout or a dropped connection on its
own, silently. For the versioned write that would be wrong: the first attempt
may have been applied, and a silent retry would then report its candles as
skipped. So the write path sends its script calls itself, one *round* (one
round trip per server) at a time, and ``WriteRounds`` decides after each round:

- a reply is final for its script call;
- NOSCRIPT (the server lost its script cache) means not run: the call is sent
  again at once by EVAL, which carries the script and cannot meet NOSCRIPT;
- BUSY, LOADING, TRYAGAIN, CLUSTERDOWN, MOVED/ASK, NOREPLICAS, and READONLY from a
  demoted cluster primary mean not run: sent again after a pause;
- a failure to connect (``NotSent``: nothing was sent) means not run: sent again after a pause;
- a timeout or a dropped connection after sending leaves it unknown whether the call ran:
  sent again after a pause, and every later round runs in the script's retry
  mode, where a candle the key holds byte for byte reports True;
- any other error reply (WRONGTYPE, OOM, READONLY from a standalone replica) is
  final for its call only; the other calls of the batch go on.

With ``Durability`` (a cache's ``min_replicas``), each round's commands on a
connection are followed by ``WAIT`` (or ``WAITAOF``) in the same write, and the
reply is fed with the round's outcomes: a True result whose round was
acknowledged by fewer replicas raises ``NotReplicatedError``. Retry rounds then
run the scripts' proving mode, where a call that finds its earlier attempt
stored (and writes nothing) makes one replicated write that changes nothing, so
that this connection's ``WAIT`` covers the earlier attempt too.

A new round starts only while the retry budget (``retries``) and the deadline
(``retry_timeout_s`` from the start of the call) both allow it. When every call
has a final outcome, ``results()`` gives the per-candle results, or raises: the
error itself when every series failed, ``PartialWriteError`` when some did.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from enum import Enum
from typing import Any, Final, Protocol

from redis.exceptions import (
    AskError,
    BusyLoadingError,
    ClusterDownError,
    NoScriptError,
    ReadOnlyError,
    ResponseError,
    SlotNotCoveredError,
    TryAgainError,
)
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from .errors import NotReplicatedError, PartialWriteError, ValidationError
from .limits import MAX_RETRIES, MAX_RETRY_TIMEOUT_S, MAX_TTL_SECONDS

__all__ = [
    "AMBIGUOUS_ERRORS",
    "MAX_REPLICAS",
    "MAX_REPLICA_TIMEOUT_MS",
    "Command",
    "Durability",
    "NotSent",
    "Outcome",
    "WriteResults",
    "WriteRounds",
    "WriteStats",
    "backoff_s",
    "classify",
    "validate_durability",
    "validate_settings",
]

_log = logging.getLogger(__name__)

Command = tuple[Any, ...]
"""One Redis command: its name and arguments (bytes, str or int)."""


def validate_settings(ttl_seconds: int | None, retries: int, retry_timeout_s: float) -> None:
    """Check the settings every cache has, once, when it is made: no accepted setting can make a write fail."""
    if type(retries) is not int or not 0 <= retries <= MAX_RETRIES:
        raise ValidationError("retries", retries, f"must be an int from 0 to {MAX_RETRIES}")
    if ttl_seconds is not None and (type(ttl_seconds) is not int or not 0 < ttl_seconds <= MAX_TTL_SECONDS):
        raise ValidationError(
            "ttl_seconds", ttl_seconds, f"must be an int from 1 to {MAX_TTL_SECONDS}, or None for no expiry"
        )
    if (
        isinstance(retry_timeout_s, bool)
        or not isinstance(retry_timeout_s, int | float)
        or not 0 < retry_timeout_s <= MAX_RETRY_TIMEOUT_S
    ):
        raise ValidationError(
            "retry_timeout_s", retry_timeout_s, f"must be a number of seconds > 0 and at most {MAX_RETRY_TIMEOUT_S:g}"
        )


MAX_REPLICAS: Final = 1000
"""The largest ``min_replicas`` a cache accepts."""
MAX_REPLICA_TIMEOUT_MS: Final = 3_600_000
"""The largest ``replica_timeout_ms`` a cache accepts: an hour."""


@dataclass(frozen=True, slots=True)
class Durability:
    """What a write must prove before it reports True: ``min_replicas`` replicas hold it (0: nothing).

    ``command()`` is what each connection of a round sends after the round's
    script calls: ``WAIT min_replicas replica_timeout_ms``, or with ``wait_aof``
    ``WAITAOF 1 min_replicas replica_timeout_ms`` (Redis 7.2+: the primary has
    fsynced its AOF and that many replicas theirs).
    """

    min_replicas: int = 0
    replica_timeout_ms: int = 1000
    wait_aof: bool = False

    @property
    def on(self) -> bool:
        return self.min_replicas > 0

    @property
    def timeout_s(self) -> float:
        return self.replica_timeout_ms / 1000

    def command(self) -> Command | None:
        """The command that follows a round's script calls on each connection, or None when nothing is proven."""
        if not self.min_replicas:
            return None
        if self.wait_aof:
            return ("WAITAOF", 1, self.min_replicas, self.replica_timeout_ms)
        return ("WAIT", self.min_replicas, self.replica_timeout_ms)

    def acknowledged(self, reply: object) -> tuple[int, str]:
        """(replicas that acknowledged, what went wrong or "") from the reply to ``command()``.

        An error reply (an ACL without WAIT, WAITAOF without appendonly, a
        replica), a failure or a reply of the wrong shape counts as 0 replicas,
        with its text; WAITAOF whose primary has not fsynced counts as 0 too.
        """
        if isinstance(reply, BaseException):
            return 0, f"{type(reply).__name__}: {reply}"
        if self.wait_aof:
            if not isinstance(reply, list | tuple) or len(reply) != 2:
                return 0, f"WAITAOF replied {reply!r}"
            local, replicas = int(reply[0]), int(reply[1])
            if local < 1:
                return 0, "WAITAOF: the primary has not fsynced its AOF in time"
            return replicas, ""
        if type(reply) is not int:
            return 0, f"WAIT replied {reply!r}"
        return reply, ""


def validate_durability(min_replicas: object, replica_timeout_ms: object, wait_aof: object) -> Durability:
    """A cache's replication settings, checked once when it is made."""
    if type(min_replicas) is not int or not 0 <= min_replicas <= MAX_REPLICAS:
        raise ValidationError("min_replicas", min_replicas, f"must be an int from 0 (off) to {MAX_REPLICAS}")
    if type(replica_timeout_ms) is not int or not 1 <= replica_timeout_ms <= MAX_REPLICA_TIMEOUT_MS:
        raise ValidationError(
            "replica_timeout_ms", replica_timeout_ms, f"must be an int from 1 to {MAX_REPLICA_TIMEOUT_MS} (ms)"
        )
    if type(wait_aof) is not bool:
        raise ValidationError("wait_aof", wait_aof, "must be True or False")
    return Durability(min_replicas, replica_timeout_ms, wait_aof)


AMBIGUOUS_ERRORS: Final = (RedisConnectionError, RedisTimeoutError, ConnectionError, TimeoutError, OSError)
"""Failures after which a call may or may not have been applied."""
_NOT_RUN: Final = (BusyLoadingError, AskError, TryAgainError, ClusterDownError, SlotNotCoveredError)
"""Replies that say the call was not run (LOADING, MOVED is an AskError, a slot map with a hole)."""
_BUSY_PREFIX: Final = "BUSY "
_NOREPLICAS: Final = "NOREPLICAS "


class Outcome(Enum):
    """What one script call's outcome in a round asks of the write loop."""

    REPLY = "reply"  # final: the script's reply
    NOSCRIPT = "noscript"  # not run: send again at once, by EVAL
    NOT_RUN = "not run"  # not run: send again after a pause
    AMBIGUOUS = "ambiguous"  # may or may not have run: send again after a pause, in retry mode
    FAIL = "fail"  # final: an error no retry can fix


class NotSent(Exception):
    """A failure before anything of the round was sent (connecting, taking a connection): the calls did not run.

    The transport wraps such a failure in ``NotSent``; the caller sees ``error``, the failure itself.
    """

    def __init__(self, error: BaseException) -> None:
        super().__init__(error)
        self.error = error


def classify(outcome: object, *, cluster: bool) -> Outcome:
    """The kind of one call's outcome: a reply, or the exception that stands for an error reply or a failure."""
    if not isinstance(outcome, BaseException):
        return Outcome.REPLY
    if isinstance(outcome, NotSent):
        return Outcome.NOT_RUN
    if isinstance(outcome, NoScriptError):
        return Outcome.NOSCRIPT
    if isinstance(outcome, _NOT_RUN):
        return Outcome.NOT_RUN
    if is_readonly(outcome):
        # A cluster primary that was demoted: the slot map is stale. A standalone replica: no retry helps.
        return Outcome.NOT_RUN if cluster else Outcome.FAIL
    if isinstance(outcome, AMBIGUOUS_ERRORS):
        return Outcome.AMBIGUOUS
    if isinstance(outcome, ResponseError):
        text = str(outcome)
        if text.startswith(_BUSY_PREFIX):
            return Outcome.NOT_RUN  # another client's script is running: ours was not started
        if text.startswith(_NOREPLICAS) or f"-{_NOREPLICAS}" in text:
            # min-replicas-to-write refused the first write (before anything changed): a primary cut off from
            # its replicas, as in a failover; the next round connects afresh (through Sentinel: to the new primary)
            return Outcome.NOT_RUN
    return Outcome.FAIL


def is_readonly(error: object) -> bool:
    """READONLY: redis-py's ``ReadOnlyError``, or, from Redis 6.2, the same reply wrapped in a script error."""
    if isinstance(error, ReadOnlyError):
        return True
    return isinstance(error, ResponseError) and "-READONLY " in str(error)


def backoff_s(attempt: int) -> float:
    """The pause before retry ``attempt`` (1, 2, ...): exponential from 50 ms, capped at 500 ms."""
    return float(min(0.05 * 2 ** (attempt - 1), 0.5))


@dataclass
class WriteStats:
    """Counters of what the write path had to absorb, for monitoring (and for the tests that cause it)."""

    retried_rounds: int = 0
    """Rounds sent again after a failure: timeouts, dropped connections, BUSY, MOVED/ASK/TRYAGAIN/CLUSTERDOWN."""
    noscript_calls: int = 0
    """Script calls that met NOSCRIPT and were sent again by EVAL."""
    last_failure: str = ""


_MAYBE_APPLIED: Final = (
    "livermore_cache: it may or may not have been applied (an earlier attempt met a timeout or a dropped "
    "connection). Sending the same {items} again is safe: the versioned write is idempotent."
)
_READONLY_NOTE: Final = (
    "livermore_cache: the server is a replica (READONLY): nothing was written. Point the client at the "
    "primary (with Sentinel: Sentinel(...).master_for(...))."
)


def _shown_keys(keys: list[str]) -> str:
    shown = ", ".join(keys[:5])
    return shown + (f" and {len(keys) - 5} more" if len(keys) > 5 else "")


class WriteResults(list[bool]):
    """A batch write's results, in input order (a ``list[bool]``), and what a retried call cannot know.

    ``uncertain`` holds the positions reported ``False`` whose script call met a
    timeout or a dropped connection after it was sent, and was sent again. The
    first attempt may have run: it may have written that item, and announced it
    (``publish_close``/``publish``), before another writer replaced it with a newer
    version, which the retry then found. So ``False`` there means "not stored now,
    and maybe written and announced once"; everywhere else ``False`` means "not
    written by this call". Empty after a write that met no such failure.
    """

    __slots__ = ("uncertain",)

    def __init__(self, results: list[bool], uncertain: frozenset[int] = frozenset()) -> None:
        super().__init__(results)
        self.uncertain = uncertain


class ScriptCallLike(Protocol):
    key: str

    def command(
        self, sha: str, source: str | bytes, *, by_sha: bool, retry: bool = False, prove: bool = False
    ) -> Command: ...


class Plan(Protocol):
    """A batch of script calls (``plans.candles.WritePlan`` for candles, ``plans.values.ValuePlan`` for values) and its results."""

    items: str
    """What the batch holds, for messages: "candles", "tickers", ..."""

    @property
    def size(self) -> int:
        """How many candles or values came in."""

    @property
    def calls(self) -> Sequence[ScriptCallLike]: ...

    def results(self, replies: Any) -> list[bool]: ...

    def partial_results(self, replies: Any) -> list[bool | None]: ...


class WriteRounds:
    """The state of one batch write across its rounds: pending calls, replies, errors, mode, budget and deadline."""

    def __init__(
        self,
        plan: Plan,
        sha: str,
        source: str | bytes,
        *,
        retries: int,
        deadline: float,
        cluster: bool = False,
        stats: WriteStats | None = None,
        started: float | None = None,
        durability: Durability | None = None,
    ) -> None:
        self.plan = plan
        self.durability = durability if durability is not None else Durability()
        self.acks: list[tuple[int, str] | None] = [None] * len(plan.calls)
        """Per call: (replicas that acknowledged, problem) of the round that gave its reply (with ``durability``)."""
        self.started = started
        """When the write began (``time.monotonic()``), for the elapsed time in log records."""
        self.sha, self.source = sha, source
        self.retries, self.deadline, self.cluster = retries, deadline, cluster
        self.stats = stats if stats is not None else WriteStats()
        self.replies: list[Any] = [None] * len(plan.calls)
        self.errors: dict[int, BaseException] = {}
        self.pending: list[int] = list(range(len(plan.calls)))
        self.by_sha = True
        self.retry_mode = False
        self.ambiguous: set[int] = set()
        """Calls that met a timeout or a dropped connection after being sent: they may have run then."""
        self.failed_rounds = 0
        self.retried = 0
        """Rounds of this write sent again after a failure (``WriteStats.retried_rounds`` sums them per cache)."""
        self.gave_up = ""
        """Why no further round was sent, when the budget or the deadline ended the write."""

    def next_round(self) -> list[Command] | None:
        """The commands of the next round, or None when every call has a final outcome."""
        if not self.pending:
            return None
        calls = self.plan.calls
        if self.retry_mode and self.durability.on:
            # a call that finds its earlier attempt stored proves it: one replicated write that changes nothing
            return [
                calls[i].command(self.sha, self.source, by_sha=self.by_sha, retry=True, prove=True)
                for i in self.pending
            ]
        return [
            calls[i].command(self.sha, self.source, by_sha=self.by_sha, retry=self.retry_mode) for i in self.pending
        ]

    def wait_command(self) -> Command | None:
        """What follows the round's script calls on each connection (``Durability.command``), or None."""
        return self.durability.command()

    def feed(self, outcomes: Sequence[object], now: float, waits: Sequence[object] | None = None) -> float:
        """Take a round's outcomes (in the order of its commands) at time ``now``: the pause before the next round.

        ``waits`` holds, per command, the reply to ``wait_command()`` on the
        connection that carried it (an exception where it failed; None or left
        out: no proof, counted as 0 replicas when ``durability`` is on).
        0.0 means: send the next round at once (only NOSCRIPT is left, or nothing).
        When the budget or the deadline forbids another round, the calls still
        pending take their latest failure as final, and ``next_round`` returns None.
        """
        pending: list[int] = []
        latest: dict[int, BaseException] = {}
        trouble: BaseException | None = None
        noscript = 0
        for position, (index, outcome) in enumerate(zip(self.pending, outcomes, strict=True)):
            if not isinstance(outcome, BaseException):
                self.replies[index] = outcome
                if self.durability.on:
                    wait = waits[position] if waits is not None else None
                    self.acks[index] = (0, "no WAIT reply") if wait is None else self.durability.acknowledged(wait)
                continue
            kind = classify(outcome, cluster=self.cluster)
            if isinstance(outcome, NotSent):
                outcome = outcome.error
            if kind is Outcome.FAIL:
                if not isinstance(outcome, ReadOnlyError) and is_readonly(outcome):
                    outcome = ReadOnlyError(str(outcome))  # the same class from every server (6.2 wraps it)
                self.errors[index] = outcome
                continue
            pending.append(index)
            latest[index] = outcome
            if kind is Outcome.NOSCRIPT:
                noscript += 1
                continue
            if kind is Outcome.AMBIGUOUS:
                self.retry_mode = True
                self.ambiguous.add(index)
            trouble = trouble or outcome
        if noscript and self.by_sha:
            self.stats.noscript_calls += noscript
            self.by_sha = False
            _log.debug("NOSCRIPT: the server lost its script cache; %d script calls sent again by EVAL", noscript)
        self.pending = pending
        if trouble is None:
            return 0.0
        self.failed_rounds += 1
        self.stats.last_failure = f"{type(trouble).__name__}: {trouble}"
        pause = backoff_s(self.failed_rounds)
        if self.failed_rounds > self.retries:
            self.gave_up = f"gave up after {self.retries} retries (retries={self.retries})"
        elif now + pause >= self.deadline:
            self.gave_up = f"gave up after {self.failed_rounds - 1} retries: the retry_timeout_s deadline has passed"
        elapsed = now - self.started if self.started is not None else 0.0
        if self.gave_up:
            self.errors.update(latest)
            self.pending = []
            _log.warning(
                "write %s: %d keys not written (%s), %.3f s after it began; last failure %s: %s",
                self.gave_up,
                len(latest),
                _shown_keys([self.plan.calls[i].key for i in latest]),
                elapsed,
                type(trouble).__name__,
                trouble,
            )
            return 0.0
        self.stats.retried_rounds += 1
        self.retried += 1
        _log.warning(
            "write round failed (%s: %s) for %d keys (%s); attempt %d of %d in %.0f ms, %.3f s after the write began",
            type(trouble).__name__,
            trouble,
            len(pending),
            _shown_keys([self.plan.calls[i].key for i in pending]),
            self.failed_rounds + 1,
            self.retries + 1,
            pause * 1000,
            elapsed,
        )
        return pause

    def results(self) -> list[bool]:
        """Per candle, in input order, whether it was stored; raises when any series failed (see module docstring)."""
        if self.pending:
            raise RuntimeError(f"{len(self.pending)} script calls have no final outcome yet")
        if not self.errors:
            complete = WriteResults(self.plan.results(self.replies), self._uncertain())
            if self.durability.on:
                self._check_replicated(list[bool | None](complete), {})
            return complete
        failed = sorted(self.errors)
        keys = {index: self.plan.calls[index].key for index in failed}
        noted: set[int] = set()
        for index in failed:
            error = self.errors[index]
            if id(error) in noted:
                continue
            noted.add(id(error))
            self._annotate(error, [keys[i] for i in failed if self.errors[i] is error])
        if len(failed) == len(self.plan.calls):
            raise self.errors[failed[0]]
        results = self.plan.partial_results(self.replies)
        errors = {keys[i]: self.errors[i] for i in failed}
        if self.durability.on:
            self._check_replicated(results, errors)
        raise PartialWriteError(results, errors, self.plan.items) from self.errors[failed[0]]

    def _uncertain(self) -> frozenset[int]:
        """Positions reported False whose call was sent again after it may have run (see ``WriteResults``)."""
        if not self.ambiguous:
            return frozenset()
        results = self.plan.results(self.replies)
        calls = self.plan.calls
        return frozenset(
            position
            for index in self.ambiguous
            for position in getattr(calls[index], "positions", ())
            if not results[position]
        )

    def _check_replicated(self, results: list[bool | None], errors: dict[str, BaseException]) -> None:
        """Raise ``NotReplicatedError`` when a True result's round was acknowledged by too few replicas."""
        required = self.durability.min_replicas
        acknowledged: list[int | None] = [None] * len(results)
        for count in sorted({ack[0] for ack in self.acks if ack is not None}):
            only = [
                r if a is not None and a[0] == count else None for r, a in zip(self.replies, self.acks, strict=True)
            ]
            for position, result in enumerate(self.plan.partial_results(only)):
                if result is not None:
                    acknowledged[position] = count
        unproven = [
            position
            for position, (result, count) in enumerate(zip(results, acknowledged, strict=True))
            if result and (count is None or count < required)
        ]
        if not unproven:
            return
        problem = next((a[1] for a in self.acks if a is not None and a[1] and a[0] < required), "")
        error = NotReplicatedError(
            results, acknowledged, required=required, items=self.plan.items, errors=errors, problem=problem
        )
        error.add_note(
            f"livermore_cache: every True result was written on the primary; {len(unproven)} of them were "
            f"acknowledged by {error.replicas} replicas within {self.durability.replica_timeout_ms} ms, fewer than "
            f"min_replicas={required}. They may still reach the replicas, or be lost if the primary fails first. "
            f"Sending the same {self.plan.items} again is safe, and proves them again."
        )
        if self.retry_mode:
            error.add_note(_MAYBE_APPLIED.format(items=self.plan.items))
        first = next(iter(errors.values()), None)
        raise error from first

    def _annotate(self, error: BaseException, keys: list[str]) -> None:
        shown = ("series " if self.plan.items == "candles" else "") + ", ".join(keys[:5])
        shown += f" and {len(keys) - 5} more" if len(keys) > 5 else ""
        final = classify(error, cluster=self.cluster) is Outcome.FAIL
        if final and is_readonly(error):
            error.add_note(_READONLY_NOTE)
        if final and not self.retry_mode:
            error.add_note(f"livermore_cache: {shown} failed: the script refused it before writing anything.")
        elif final:
            error.add_note(f"livermore_cache: {shown} failed.")
        else:
            error.add_note(f"livermore_cache: {shown}: {self.gave_up}.")
        if self.retry_mode:
            error.add_note(_MAYBE_APPLIED.format(items=self.plan.items))

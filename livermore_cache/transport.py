"""Sending script calls, with the retries under the library's control.

redis-py retries a command that met a timeout or a dropped connection on its
own, silently. For the versioned write that would be wrong: the first attempt
may have been applied, and the silent retry would then report its candles as
skipped. So the write path takes connections from the client's pool and sends
the calls itself; ``write_with_retries`` retries them and tells the script that
they are retries (see "Retries" in the README for the contract).

Against Redis Cluster the calls are grouped by the node that owns each key and
sent as one round trip per node (concurrently in asyncio), since redis-py's
cluster pipeline refuses script calls. MOVED, ASK, TRYAGAIN, CLUSTERDOWN and
READONLY (a primary that was demoted) are followed or retried after the slot
map is refreshed.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from redis.exceptions import (
    AskError,
    ClusterDownError,
    MovedError,
    NoScriptError,
    ReadOnlyError,
    RedisError,
    ResponseError,
    SlotNotCoveredError,
    TryAgainError,
)
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from .core import Outcome, ReplyCollector, WritePlan

__all__ = [
    "RETRYABLE",
    "RetryLoop",
    "WriteStats",
    "backoff_s",
    "classify",
    "send_async",
    "send_cluster_async",
    "send_cluster_sync",
    "send_sync",
    "write_with_retries",
    "write_with_retries_async",
]

RETRYABLE = (RedisConnectionError, RedisTimeoutError, ConnectionError, TimeoutError, OSError)
"""Failures after which a call may or may not have been applied (BusyLoadingError is a ConnectionError)."""
NOT_RUN = (AskError, TryAgainError, ClusterDownError, ReadOnlyError, SlotNotCoveredError)
"""Replies that say the call was not run (MovedError is an AskError); a slot map with a hole, mid-failover."""

Command = tuple[Any, ...]


def classify(outcome: object) -> Outcome:
    if isinstance(outcome, NoScriptError):
        return Outcome.NOSCRIPT
    if isinstance(outcome, RETRYABLE):
        return Outcome.AMBIGUOUS
    if isinstance(outcome, NOT_RUN):
        return Outcome.RESEND
    if isinstance(outcome, BaseException):
        return Outcome.FAIL
    return Outcome.REPLY


@dataclass
class WriteStats:
    """Counters of what the write path had to absorb, for monitoring (and for the tests that cause it)."""

    retried_rounds: int = 0
    """Rounds sent again after a failure: timeouts, dropped connections, MOVED/ASK/TRYAGAIN/CLUSTERDOWN."""
    noscript_calls: int = 0
    """Script calls that met NOSCRIPT and were sent again by EVAL."""
    last_failure: str = ""


def backoff_s(attempt: int) -> float:
    """Exponential from 50 ms, capped at 500 ms."""
    return float(min(0.05 * 2 ** (attempt - 1), 0.5))


def _explain(error: BaseException, retries: int) -> None:
    error.add_note(
        f"livermore_cache: the write failed after {retries} retries; it may or may not have been applied. "
        "Sending the same candles again is safe: the versioned write is idempotent."
    )


class RetryLoop:
    """The write loop's decisions, free of I/O: what to send next, and how long to pause after a round.

    NOSCRIPT is answered at once (by EVAL); any other failure pauses (exponential
    backoff) and counts against ``retries``; when they run out the failure is raised.
    """

    def __init__(self, plan: WritePlan, sha: str, source: str, retries: int, stats: WriteStats | None) -> None:
        self.collector = ReplyCollector(plan)
        self.sha, self.source, self.retries, self.stats = sha, source, retries, stats
        self.failures = 0

    def commands(self) -> list[Command] | None:
        """The next round's commands, or None when every call has its reply."""
        return self.collector.commands(self.sha, self.source) if self.collector.pending else None

    def feed(self, outcomes: Sequence[object]) -> float:
        """Take a round's outcomes; returns the pause (seconds, 0 for none) before the next round."""
        by_sha = self.collector.by_sha
        trouble = self.collector.accept(outcomes, classify)
        stats = self.stats
        if stats is not None and by_sha and not self.collector.by_sha:
            stats.noscript_calls += sum(isinstance(o, NoScriptError) for o in outcomes)
        if trouble is None:
            return 0.0
        self.failures += 1
        if stats is not None:
            stats.retried_rounds += 1
            stats.last_failure = f"{type(trouble).__name__}: {trouble}"
        if self.failures > self.retries:
            _explain(trouble, self.retries)
            raise trouble
        return backoff_s(self.failures)

    def results(self) -> list[bool]:
        return self.collector.results()


def write_with_retries(
    plan: WritePlan,
    sha: str,
    source: str,
    send: Callable[[list[Command]], list[Any]],
    retries: int,
    refresh: Callable[[], None] | None = None,
    stats: WriteStats | None = None,
) -> list[bool]:
    """Send the plan's calls until each has its reply (see ``RetryLoop``)."""
    loop = RetryLoop(plan, sha, source, retries, stats)
    while (commands := loop.commands()) is not None:
        try:
            outcomes = send(commands)
        except RETRYABLE as error:
            outcomes = [error] * len(commands)
        if pause := loop.feed(outcomes):
            if refresh is not None:
                refresh()
            time.sleep(pause)
    return loop.results()


async def write_with_retries_async(
    plan: WritePlan,
    sha: str,
    source: str,
    send: Callable[[list[Command]], Awaitable[list[Any]]],
    retries: int,
    refresh: Callable[[], Awaitable[None]] | None = None,
    stats: WriteStats | None = None,
) -> list[bool]:
    """``write_with_retries`` for redis.asyncio."""
    loop = RetryLoop(plan, sha, source, retries, stats)
    while (commands := loop.commands()) is not None:
        try:
            outcomes = await send(commands)
        except RETRYABLE as error:
            outcomes = [error] * len(commands)
        if pause := loop.feed(outcomes):
            if refresh is not None:
                await refresh()
            await asyncio.sleep(pause)
    return loop.results()


# one server


def _read_all_sync(connection: Any, count: int) -> list[Any]:
    outcomes: list[Any] = []
    for _ in range(count):
        try:
            outcomes.append(connection.read_response())
        except ResponseError as error:  # an error reply; the rest of the replies are still read
            outcomes.append(error)
    return outcomes


def send_sync(pool: Any, commands: Sequence[Command]) -> list[Any]:
    """One round trip on one connection; error replies come back as exception objects, in order."""
    connection = pool.get_connection()
    try:
        packed = connection.pack_commands(commands)
        # One buffer, one sendall: redis-py splits large batches into chunks, one syscall each.
        connection.send_packed_command([b"".join(packed)] if len(packed) > 1 else packed)
        return _read_all_sync(connection, len(commands))
    except BaseException:
        connection.disconnect()  # replies may be left unread: never hand this connection out again
        raise
    finally:
        pool.release(connection)


async def _read_all_async(connection: Any, count: int) -> list[Any]:
    outcomes: list[Any] = []
    for _ in range(count):
        try:
            outcomes.append(await connection.read_response())
        except ResponseError as error:
            outcomes.append(error)
    return outcomes


async def send_async(pool: Any, commands: Sequence[Command]) -> list[Any]:
    """``send_sync`` for redis.asyncio."""
    connection = await pool.get_connection()
    try:
        await connection.send_packed_command(connection.pack_commands(commands))
        return await _read_all_async(connection, len(commands))
    except BaseException:
        await connection.disconnect()
        raise
    finally:
        await pool.release(connection)


# Redis Cluster


def _group_by_node(client: Any, commands: Sequence[Command]) -> dict[str, tuple[Any, list[int]]]:
    """Command indexes per primary that owns the command's key (KEYS[1] is the command's fourth item)."""
    groups: dict[str, tuple[Any, list[int]]] = {}
    for index, command in enumerate(commands):
        node = client.get_node_from_key(command[3])
        groups.setdefault(node.name, (node, []))[1].append(index)
    return groups


def send_cluster_sync(client: Any, commands: Sequence[Command]) -> list[Any]:
    """One round trip per node; a node that cannot be reached yields its error for its calls only."""
    try:
        groups = _group_by_node(client, commands)
    except SlotNotCoveredError as error:
        return [error] * len(commands)
    outcomes: list[Any] = [None] * len(commands)
    for node, indexes in groups.values():
        batch = [commands[i] for i in indexes]
        try:
            replies = send_sync(node.redis_connection.connection_pool, batch)
        except RETRYABLE as error:
            replies = [error] * len(batch)
        for index, reply in zip(indexes, replies, strict=True):
            outcomes[index] = _follow_ask_sync(client, reply, commands[index])
    return outcomes


def _follow_ask_sync(client: Any, reply: Any, command: Command) -> Any:
    """ASK (not MOVED): the key is migrating; ask the target node once, with ASKING."""
    if not isinstance(reply, AskError) or isinstance(reply, MovedError):
        return reply
    node = client.get_node(host=reply.host, port=reply.port)
    if node is None or node.redis_connection is None:
        return reply
    try:
        return send_sync(node.redis_connection.connection_pool, [("ASKING",), command])[1]
    except RETRYABLE as error:
        return error


def refresh_cluster_sync(client: Any) -> None:
    """Reload the slot map; while a failover is under way this may fail, and the next round tries again."""
    with contextlib.suppress(RedisError, OSError):
        client.nodes_manager.initialize()


async def _send_node_async(node: Any, commands: Sequence[Command]) -> list[Any]:
    connection = node.acquire_connection()
    try:
        await connection.send_packed_command(connection.pack_commands(commands))
        return await _read_all_async(connection, len(commands))
    except RETRYABLE as error:
        await connection.disconnect()
        return [error] * len(commands)
    except BaseException:
        await connection.disconnect()
        raise
    finally:
        node.release(connection)


async def send_cluster_async(client: Any, commands: Sequence[Command]) -> list[Any]:
    """One round trip per node, all nodes at once."""
    await client.initialize()  # the asyncio cluster client loads its slot map lazily
    try:
        groups = list(_group_by_node(client, commands).values())
    except SlotNotCoveredError as error:
        return [error] * len(commands)
    replies = await asyncio.gather(*(_send_node_async(node, [commands[i] for i in idxs]) for node, idxs in groups))
    outcomes: list[Any] = [None] * len(commands)
    for (_, indexes), node_replies in zip(groups, replies, strict=True):
        for index, reply in zip(indexes, node_replies, strict=True):
            outcomes[index] = await _follow_ask_async(client, reply, commands[index])
    return outcomes


async def _follow_ask_async(client: Any, reply: Any, command: Command) -> Any:
    if not isinstance(reply, AskError) or isinstance(reply, MovedError):
        return reply
    node = client.get_node(host=reply.host, port=reply.port)
    if node is None:
        return reply
    return (await _send_node_async(node, [("ASKING",), command]))[1]


async def refresh_cluster_async(client: Any) -> None:
    with contextlib.suppress(RedisError, OSError):
        await client.nodes_manager.initialize()

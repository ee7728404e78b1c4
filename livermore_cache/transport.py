"""Sending script calls over one connection, with the retries under the library's control.

redis-py retries a command that met a timeout or a dropped connection on its
own, silently. For the versioned write that would be wrong: the first attempt
may have been applied, and the silent retry would then report its candles as
skipped. So the write path takes a connection from the client's pool and sends
the calls itself; ``write_with_retries`` retries them, and tells the script that
they are retries (see the "Retries" section of the README for the contract).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import NoScriptError, ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

from .core import ReplyCollector, WritePlan

__all__ = ["RETRYABLE", "backoff_s", "send_async", "send_sync", "write_with_retries", "write_with_retries_async"]

RETRYABLE = (RedisConnectionError, RedisTimeoutError, ConnectionError, TimeoutError, OSError)
"""Failures after which a call may or may not have been applied (BusyLoadingError is a ConnectionError)."""


def backoff_s(attempt: int) -> float:
    """Exponential from 50 ms, capped at 500 ms."""
    return float(min(0.05 * 2 ** (attempt - 1), 0.5))


def send_sync(pool: Any, commands: Sequence[tuple[Any, ...]]) -> list[Any]:
    """One round trip on one connection; error replies come back as exception objects, in order."""
    connection = pool.get_connection()
    try:
        connection.send_packed_command(connection.pack_commands(commands))
        outcomes: list[Any] = []
        for _ in commands:
            try:
                outcomes.append(connection.read_response())
            except ResponseError as error:
                outcomes.append(error)
        return outcomes
    except BaseException:
        connection.disconnect()  # replies may be left unread: never hand this connection out again
        raise
    finally:
        pool.release(connection)


async def send_async(pool: Any, commands: Sequence[tuple[Any, ...]]) -> list[Any]:
    """``send_sync`` for redis.asyncio."""
    connection = await pool.get_connection()
    try:
        await connection.send_packed_command(connection.pack_commands(commands))
        outcomes: list[Any] = []
        for _ in commands:
            try:
                outcomes.append(await connection.read_response())
            except ResponseError as error:
                outcomes.append(error)
        return outcomes
    except BaseException:
        await connection.disconnect()
        raise
    finally:
        await pool.release(connection)


def write_with_retries(
    plan: WritePlan,
    sha: str,
    source: str,
    send: Callable[[list[tuple[Any, ...]]], list[Any]],
    retries: int,
    on_retry: Callable[[], None] = lambda: None,
) -> list[bool]:
    """Send the plan's calls until every one has its reply: NOSCRIPT -> EVAL, failures -> bounded retries."""
    collector = ReplyCollector(plan)
    failures = 0
    while collector.pending:
        try:
            outcomes = send(collector.commands(sha, source))
        except RETRYABLE as error:
            failures += 1
            if failures > retries:
                _explain(error, retries)
                raise
            collector.mark_ambiguous()
            on_retry()
            time.sleep(backoff_s(failures))
            continue
        collector.accept(outcomes, NoScriptError)
    return collector.results()


async def write_with_retries_async(
    plan: WritePlan,
    sha: str,
    source: str,
    send: Callable[[list[tuple[Any, ...]]], Awaitable[list[Any]]],
    retries: int,
    on_retry: Callable[[], Awaitable[None]] | None = None,
) -> list[bool]:
    """``write_with_retries`` for redis.asyncio."""
    collector = ReplyCollector(plan)
    failures = 0
    while collector.pending:
        try:
            outcomes = await send(collector.commands(sha, source))
        except RETRYABLE as error:
            failures += 1
            if failures > retries:
                _explain(error, retries)
                raise
            collector.mark_ambiguous()
            if on_retry is not None:
                await on_retry()
            await asyncio.sleep(backoff_s(failures))
            continue
        collector.accept(outcomes, NoScriptError)
    return collector.results()


def _explain(error: BaseException, retries: int) -> None:
    error.add_note(
        f"livermore_cache: the write failed after {retries} retries; it may or may not have been applied. "
        "Sending the same candles again is safe: the versioned write is idempotent."
    )

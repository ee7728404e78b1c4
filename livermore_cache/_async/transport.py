"""Sending rounds of script calls, and the write loop around them (sync and asyncio from one source).

A round is one round trip per server: the pending script calls of a batch,
pipelined on one connection (to each cluster node that owns some of their
keys). The decisions between rounds are ``retry.WriteRounds``'s; this module
only sends a round and returns its outcomes, one per call: the script's reply,
or the exception that stands for an error reply or a failure.

Against Redis Cluster the calls are grouped by the primary that owns each key
(redis-py's cluster pipeline refuses script calls). ASK is followed at once
(ASKING, then the call, on the target node); MOVED, TRYAGAIN, CLUSTERDOWN and
READONLY (a demoted primary) are sent again after the slot map is reloaded.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Sequence
from typing import Any

from redis.commands.core import AsyncScript
from redis.exceptions import AskError, MovedError, RedisError, ResponseError, SlotNotCoveredError

from livermore_cache import _compat, telemetry
from livermore_cache._backends import aio as backend
from livermore_cache.engine import AMBIGUOUS_ERRORS, Command, NotSent, Plan, WriteRounds, WriteStats
from livermore_cache.resp import pack_commands

__all__ = ["ClusterRounds", "ServerRounds", "rounds_for", "write"]


async def _exchange(connection: Any, commands: Sequence[Command]) -> list[Any]:
    """The commands in one write on one connection, then every reply; error replies come back as exceptions.

    A failure to connect raises ``NotSent``: nothing was sent, so nothing can have run.
    """
    if not _compat.is_connected(connection):
        try:
            with _compat.connect_once(connection):
                await connection.connect()
        except AMBIGUOUS_ERRORS as error:
            await connection.disconnect()
            raise NotSent(error) from error
    try:
        # One buffer, one sendall: redis-py would send a large batch as one syscall per 6 kB piece.
        await connection.send_packed_command([pack_commands(commands)])
        outcomes: list[Any] = []
        for _ in commands:
            try:
                outcomes.append(await connection.read_response())
            except ResponseError as error:  # an error reply: the replies after it are still read
                outcomes.append(error)
        return outcomes
    except BaseException:
        await connection.disconnect()  # replies may be left unread: this connection must not be used again as is
        raise


class ServerRounds:
    """Rounds to one server (or the primary a Sentinel pool points at).

    A client made with ``single_connection_client=True`` is served over its own
    connection, under its own lock; any other over a connection of its pool,
    or, after a failure, over a private connection that connects without
    redis-py's retries (see ``_compat.private_connection``).
    """

    cluster = False

    def __init__(self, client: Any) -> None:
        self.client = client

    async def send(self, commands: Sequence[Command], after_failure: bool) -> list[Any]:
        await backend.ready(self.client)
        connection, lock = _compat.single_connection(self.client)
        if connection is not None:
            async with backend.holding(lock):
                return await _exchange(connection, commands)
        pool = self.client.connection_pool
        if after_failure:
            connection = _compat.private_connection(pool)
            try:
                return await _exchange(connection, commands)
            finally:
                await connection.disconnect()
        try:
            connection = await _compat.connection_from_pool(pool)  # connects, if it must, before anything is sent
        except AMBIGUOUS_ERRORS as error:
            raise NotSent(error) from error
        try:
            return await _exchange(connection, commands)
        finally:
            await pool.release(connection)

    async def refresh(self) -> None:
        """Nothing to reload for one server."""


_SCRIPT_COMMANDS = frozenset({"EVALSHA", "EVAL"})
"""Commands whose key is their fourth item; any other command a round sends has its key second."""


class ClusterRounds:
    """Rounds to a Redis Cluster: one round trip per primary that owns some of the round's keys."""

    cluster = True

    def __init__(self, client: Any) -> None:
        self.client = client

    async def send(self, commands: Sequence[Command], after_failure: bool) -> list[Any]:
        await backend.ready(self.client)
        groups: dict[str, tuple[Any, list[int]]] = {}
        try:
            for index, command in enumerate(commands):  # KEYS[1] is the fourth item of EVALSHA/EVAL
                key = command[3] if command[0] in _SCRIPT_COMMANDS else command[1]  # a roll-up's plain read
                node = self.client.get_node_from_key(key)
                groups.setdefault(node.name, (node, []))[1].append(index)
        except SlotNotCoveredError as error:  # a slot map with a hole, mid-failover
            return [error] * len(commands)
        batches = [(node, [commands[i] for i in indexes]) for node, indexes in groups.values()]
        replies = await backend.each_node(self._send_node, batches)
        outcomes: list[Any] = [None] * len(commands)
        for (_, indexes), node_replies in zip(groups.values(), replies, strict=True):
            for index, reply in zip(indexes, node_replies, strict=True):
                outcomes[index] = await self._follow_ask(reply, commands[index])
        return outcomes

    async def _send_node(self, node: Any, commands: list[Command]) -> list[Any]:
        """One node's share of the round; a node that cannot be reached yields its error for its calls only."""
        try:
            connection = await backend.node_connection(node)
        except AMBIGUOUS_ERRORS as error:
            return [NotSent(error)] * len(commands)
        try:
            return await _exchange(connection, commands)
        except (NotSent, *AMBIGUOUS_ERRORS) as error:
            return [error] * len(commands)
        finally:
            await backend.release_node_connection(node, connection)

    async def _follow_ask(self, reply: Any, command: Command) -> Any:
        """ASK (not MOVED): the key is migrating; ask the target node once, with ASKING."""
        if not isinstance(reply, AskError) or isinstance(reply, MovedError):
            return reply
        node = self.client.get_node(host=reply.host, port=reply.port)
        if node is None:
            return reply
        return (await self._send_node(node, [("ASKING",), command]))[1]

    async def refresh(self) -> None:
        """Reload the slot map; while a failover is under way this may fail, and the next round tries again."""
        with contextlib.suppress(RedisError, OSError):
            await self.client.nodes_manager.initialize()


def rounds_for(owner: str, client: Any) -> ServerRounds | ClusterRounds:
    """How ``owner`` (a cache class's name) sends rounds to ``client``; any client but redis-py's is refused."""
    if not isinstance(client, backend.CLIENT_TYPES):
        raise TypeError(
            f"{owner} needs {backend.CLIENT_NAMES} client "
            f"(redis-py; valkey-py clients are not supported), got {type(client).__module__}.{type(client).__name__}"
        )
    return ClusterRounds(client) if isinstance(client, backend.CLUSTER_TYPES) else ServerRounds(client)


async def write(
    plan: Plan,
    script: AsyncScript,
    rounds: ServerRounds | ClusterRounds,
    *,
    retries: int,
    retry_timeout_s: float,
    stats: WriteStats,
) -> list[bool]:
    """Send the plan's script calls round after round until each has a final outcome (see ``retry``)."""
    state = WriteRounds(
        plan,
        script.sha,
        str(script.script),
        retries=retries,
        deadline=time.monotonic() + retry_timeout_s,
        cluster=rounds.cluster,
        stats=stats,
        started=time.monotonic(),
    )
    op = telemetry.current()
    first = op is not None and op.items is None  # a later write of the same call (a roll-up) adds only its retries
    if op is not None and first:
        op.items = plan.size
    after_failure = False
    try:
        while (commands := state.next_round()) is not None:
            try:
                outcomes = await rounds.send(commands, after_failure)
            except (NotSent, *AMBIGUOUS_ERRORS) as error:
                outcomes = [error] * len(commands)
            pause = state.feed(outcomes, time.monotonic())
            if pause:
                after_failure = True
                await rounds.refresh()
                await backend.sleep(pause)
        results = state.results()
    finally:
        if op is not None:
            op.retried_rounds += state.retried
            if first:
                op.command = "EVALSHA" if state.by_sha else "EVAL"
    return op.results(results) if op is not None and first else results

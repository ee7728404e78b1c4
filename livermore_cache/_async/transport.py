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

With ``min_replicas``, the round's commands on each connection are followed
by ``WAIT`` (or ``WAITAOF``) in the same write, so proving replication costs
no round trip; its reply is read with the connection's timeout plus the WAIT's.

Connecting does not stretch a round: the connects the write path makes try
once (redis-py's own connect retries set aside) within what is left of the
deadline. A cache whose last round failed sends its next round over a private
connection for the same reason (a pooled connection would connect inside
``get_connection``, with redis-py's retries); so does a cache's first round,
unless its client's pool holds an idle connected connection. A pooled
connection that has gone stale is reconnected inside the checkout, with
redis-py's retries set aside; the exception is a connection the pool makes
when every one it holds is busy (see ``ServerRounds``).
"""

from __future__ import annotations

import contextlib
import functools
import math
import time
from collections.abc import Sequence
from typing import Any

from redis.commands.core import AsyncScript
from redis.exceptions import AskError, MovedError, RedisError, ResponseError, SlotNotCoveredError

from livermore_cache import _compat, telemetry
from livermore_cache._backends import aio as backend
from livermore_cache.engine import AMBIGUOUS_ERRORS, Command, Durability, NotSent, Plan, WriteRounds, WriteStats
from livermore_cache.resp import pack_commands

__all__ = ["ClusterRounds", "ServerRounds", "Wait", "rounds_for", "write"]


class Wait:
    """The command that follows a round's script calls on every connection, and how long its reply may take."""

    def __init__(self, command: Command, timeout_s: float) -> None:
        self.command = command
        self.timeout_s = timeout_s


async def _exchange(
    connection: Any, commands: Sequence[Command], wait: Wait | None = None, deadline: float = math.inf
) -> list[Any]:
    """The commands in one write on one connection, then every reply; error replies come back as exceptions.

    With ``wait``, its command goes last in the same write and its reply comes
    last in the list (read with the connection's timeout plus the WAIT's).
    A failure to connect raises ``NotSent``: nothing was sent, so nothing can have run.
    """
    if not _compat.is_connected(connection):
        try:
            with _compat.connect_once(connection, limit=deadline - time.monotonic()):
                await connection.connect()
        except AMBIGUOUS_ERRORS as error:
            await connection.disconnect()
            raise NotSent(error) from error
    sent = commands if wait is None else [*commands, wait.command]
    try:
        # One buffer, one sendall: redis-py would send a large batch as one syscall per 6 kB piece.
        await connection.send_packed_command([pack_commands(sent)])
        outcomes: list[Any] = []
        for _ in commands:
            try:
                outcomes.append(await connection.read_response())
            except ResponseError as error:  # an error reply: the replies after it are still read
                outcomes.append(error)
        if wait is not None:
            try:
                outcomes.append(await backend.read_slow_reply(connection, wait.timeout_s))
            except ResponseError as error:  # NOPERM, WAITAOF without appendonly, ...: not proven
                outcomes.append(error)
        return outcomes
    except BaseException:
        await connection.disconnect()  # replies may be left unread: this connection must not be used again as is
        raise


def _split(outcomes: list[Any], wait: Wait | None) -> tuple[list[Any], list[Any] | None]:
    """(the script calls' outcomes, per call the WAIT reply of its connection) of one connection's exchange."""
    if wait is None:
        return outcomes, None
    return outcomes[:-1], [outcomes[-1]] * (len(outcomes) - 1)


class ServerRounds:
    """Rounds to one server (or the primary a Sentinel pool points at).

    A client made with ``single_connection_client=True`` is served over its own
    connection, under its own lock; any other over a connection of its pool,
    or, after a failure, over a private connection that connects without
    redis-py's retries (see ``_compat.private_connection``). So is a round
    after one that failed (``warm`` is False), and a cache's first round when
    its client's pool has no idle connected connection: a fresh client against
    a server that is down gives up within ``retry_timeout_s`` and one connect
    timeout. When the pool has one, the first round takes it (a connect and a
    handshake saved per cache). Whenever a round takes an idle pooled connection
    that has gone stale, the pool reconnects it once, within the deadline, with
    redis-py's retries set aside (``_compat.connect_once`` around the checkout).
    A connection the pool makes because every one it holds is busy connects with
    the client's own retry policy: the server answered the busy ones a moment ago.
    """

    cluster = False

    def __init__(self, client: Any) -> None:
        self.client = client
        self.warm = False
        """True once a round completed over this client, until one fails: its pool then serves the first round."""
        self.sent = False
        """True once a round was tried (completed or not): only the first may take an idle pooled connection."""

    async def send(
        self, commands: Sequence[Command], after_failure: bool, *, deadline: float = math.inf, wait: Wait | None = None
    ) -> tuple[list[Any], list[Any] | None]:
        """The round's outcomes, and per call the WAIT reply of its connection (None without ``wait``)."""
        may_take_idle, self.sent = not self.sent and not after_failure, True
        try:
            outcomes = await self._send(commands, after_failure or not self.warm, may_take_idle, deadline, wait)
        except BaseException:
            self.warm = False
            raise
        self.warm = True
        return _split(outcomes, wait)

    async def _send(
        self, commands: Sequence[Command], private: bool, may_take_idle: bool, deadline: float, wait: Wait | None
    ) -> list[Any]:
        await backend.ready(self.client)
        connection, lock = _compat.single_connection(self.client)
        if connection is not None:
            async with backend.holding(lock):
                return await _exchange(connection, commands, wait, deadline)
        pool = self.client.connection_pool
        # the connection the pool hands out next, if it has one connected (a private round may take it only if first)
        idle = _compat.idle_connection(pool) if may_take_idle or not private else None
        if private and idle is None:
            connection = _compat.private_connection(pool)
            try:
                return await _exchange(connection, commands, wait, deadline)
            finally:
                await connection.disconnect()
        try:
            if idle is None:
                connection = await _compat.connection_from_pool(pool)  # connects, if it must, before anything is sent
            else:
                # a stale one (its server restarted or died) is reconnected inside the checkout: once, in the deadline
                with _compat.connect_once(idle, limit=deadline - time.monotonic()):
                    connection = await _compat.connection_from_pool(pool)
        except AMBIGUOUS_ERRORS as error:
            raise NotSent(error) from error
        try:
            return await _exchange(connection, commands, wait, deadline)
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

    async def send(
        self, commands: Sequence[Command], after_failure: bool, *, deadline: float = math.inf, wait: Wait | None = None
    ) -> tuple[list[Any], list[Any] | None]:
        """The round's outcomes, and per call the WAIT reply of its node's connection (None without ``wait``)."""
        await backend.ready(self.client)
        groups: dict[str, tuple[Any, list[int]]] = {}
        try:
            for index, command in enumerate(commands):  # KEYS[1] is the fourth item of EVALSHA/EVAL
                key = command[3] if command[0] in _SCRIPT_COMMANDS else command[1]  # a roll-up's plain read
                node = self.client.get_node_from_key(key)
                groups.setdefault(node.name, (node, []))[1].append(index)
        except SlotNotCoveredError as error:  # a slot map with a hole, mid-failover
            return [error] * len(commands), None
        batches = [(node, [commands[i] for i in indexes]) for node, indexes in groups.values()]
        replies = await backend.each_node(functools.partial(self._send_node, wait=wait, deadline=deadline), batches)
        outcomes: list[Any] = [None] * len(commands)
        waits: list[Any] = [None] * len(commands)
        for (_, indexes), node_replies in zip(groups.values(), replies, strict=True):
            # each node's WAIT reply (its last item) answers for that node's calls
            for index, reply in zip(indexes, node_replies[:-1], strict=True):
                outcomes[index], follow_wait = await self._follow_ask(reply, commands[index], wait, deadline)
                waits[index] = node_replies[-1] if follow_wait is None else follow_wait
        return outcomes, (waits if wait is not None else None)

    async def _send_node(
        self, node: Any, commands: list[Command], *, wait: Wait | None = None, deadline: float = math.inf
    ) -> list[Any]:
        """One node's share of the round, then its WAIT reply (None without WAIT); an unreachable node fails alone."""
        try:
            connection = await backend.node_connection(node)
        except AMBIGUOUS_ERRORS as error:
            return [NotSent(error)] * len(commands) + [None]
        try:
            outcomes = await _exchange(connection, commands, wait, deadline)
            return outcomes if wait is not None else [*outcomes, None]
        except (NotSent, *AMBIGUOUS_ERRORS) as error:
            return [error] * len(commands) + [None]
        finally:
            await backend.release_node_connection(node, connection)

    async def _follow_ask(
        self, reply: Any, command: Command, wait: Wait | None = None, deadline: float = math.inf
    ) -> tuple[Any, Any]:
        """ASK (not MOVED): the key is migrating; ask the target node once, with ASKING (and its WAIT reply)."""
        if not isinstance(reply, AskError) or isinstance(reply, MovedError):
            return reply, None
        node = self.client.get_node(host=reply.host, port=reply.port)
        if node is None:
            return reply, None
        replies = await self._send_node(node, [("ASKING",), command], wait=wait, deadline=deadline)
        return replies[1], replies[-1]

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
    durability: Durability | None = None,
) -> list[bool]:
    """Send the plan's script calls round after round until each has a final outcome (see ``engine``)."""
    source = script.script  # bytes, as Scripts registers them (a memoryview, were it one, is copied)
    state = WriteRounds(
        plan,
        script.sha,
        source if isinstance(source, (str, bytes)) else bytes(source),
        retries=retries,
        deadline=time.monotonic() + retry_timeout_s,
        cluster=rounds.cluster,
        stats=stats,
        started=time.monotonic(),
        durability=durability,
    )
    wait_command = state.wait_command()
    wait = None if wait_command is None else Wait(wait_command, state.durability.timeout_s)
    op = telemetry.current()
    first = op is not None and op.items is None  # a later write of the same call (a roll-up) adds only its retries
    if op is not None and first:
        op.items = plan.size
    after_failure = False
    try:
        while (commands := state.next_round()) is not None:
            waits: list[Any] | None = None
            try:
                outcomes, waits = await rounds.send(commands, after_failure, deadline=state.deadline, wait=wait)
            except (NotSent, *AMBIGUOUS_ERRORS) as error:
                outcomes = [error] * len(commands)
            pause = state.feed(outcomes, time.monotonic(), waits)
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

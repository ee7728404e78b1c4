"""What the asyncio write path does differently from the sync one, beyond ``await`` (the asyncio backend).

``_async`` is the source of the generated ``_sync``; this module and its sync
twin, outside both, hold the few operations that are not the same code with
``await`` removed: sleeping, fanning a round out to cluster nodes (all at once
here, one after another there), a cluster node's connections, the lazy set-up
of an asyncio client, and the client classes each facade accepts.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import inspect
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar

import redis.asyncio
import redis.asyncio.cluster

from livermore_cache import _compat, telemetry
from livermore_cache._backends import sync as sync_backend

__all__ = [
    "CLIENT_NAMES",
    "CLIENT_TYPES",
    "CLUSTER_TYPES",
    "check_pubsub",
    "client_from_url",
    "close_client",
    "discard_client",
    "each_node",
    "holding",
    "node_connection",
    "operation",
    "pubsub_client",
    "read_slow_reply",
    "ready",
    "release_node_connection",
    "sleep",
    "subscribed",
]

T = TypeVar("T")
F = TypeVar("F", bound=Callable[..., Any])
SubscriptionT = TypeVar("SubscriptionT")

CLIENT_TYPES = (redis.asyncio.Redis, redis.asyncio.cluster.RedisCluster)
CLIENT_NAMES = "a redis.asyncio.Redis or redis.asyncio.cluster.RedisCluster"
"""The accepted client classes, as an error message names them."""
CLUSTER_TYPES = (redis.asyncio.cluster.RedisCluster,)
sleep = asyncio.sleep


async def ready(client: Any) -> None:
    """Make the client ready: the asyncio cluster client loads its slot map, a single-connection client connects."""
    await client.initialize()


def holding(lock: Any) -> Any:
    """``async with holding(lock)``: the client's own lock around its single connection, if it has one."""
    return lock if lock is not None else contextlib.nullcontext()


async def each_node(
    send: Callable[[Any, list[T]], Awaitable[list[Any]]], groups: Sequence[tuple[Any, list[T]]]
) -> list[list[Any]]:
    """``send`` to every node at once; results in the order of ``groups``."""
    return list(await asyncio.gather(*(send(node, batch) for node, batch in groups)))


async def node_connection(node: Any) -> Any:
    return node.acquire_connection()


async def release_node_connection(node: Any, connection: Any) -> None:
    _compat.async_release_node_connection(node, connection)


def check_pubsub(client: Any) -> None:
    """Every client can subscribe: an asyncio cluster client before redis-py 8.0 through one node (``pubsub_client``)."""


async def pubsub_client(client: Any) -> tuple[Any, bool]:
    """The client to subscribe through, and whether the subscription made it (and so closes it).

    redis-py before 8.0 has no pub/sub on ``redis.asyncio.cluster.RedisCluster``.
    Classic pub/sub on a cluster reaches every node (a PUBLISH on any node is
    delivered to subscribers of every node), so a plain ``redis.asyncio.Redis``
    of one node, with the node's connection settings, serves.
    """
    if isinstance(client, CLUSTER_TYPES) and not _compat.ASYNC_CLUSTER_PUBSUB:
        await client.initialize()
        return _compat.async_node_client(client.get_default_node() or client.get_random_node()), True
    return client, False


def subscribed(subscription: SubscriptionT) -> SubscriptionT:
    """What ``subscribe_closes`` returns: here as made, since a constructor cannot await.

    It subscribes on ``start()``, on entering its ``async with`` block, or on the first read.
    """
    return subscription


def operation(method: F) -> F:
    """Decorate a public cache method: refuse a closed cache, and make the call's span and metrics (``telemetry``)."""
    if not inspect.iscoroutinefunction(method):
        return sync_backend.operation(method)
    name = method.__name__

    @functools.wraps(method)
    async def run(self: Any, *args: Any, **kwargs: Any) -> Any:
        self._check_open()
        op = telemetry.start(name, self._address) if telemetry.ENABLED else None
        if op is None:
            return await method(self, *args, **kwargs)
        with op:
            return await method(self, *args, **kwargs)

    return run  # type: ignore[return-value]


def client_from_url(url: str, *, cluster: bool) -> Any:
    """A client for ``url`` (``redis.asyncio.Redis.from_url`` or its cluster twin); connects lazily."""
    return (redis.asyncio.cluster.RedisCluster if cluster else redis.asyncio.Redis).from_url(url)


async def close_client(client: Any) -> None:
    """Close a client the cache made, and every connection of its pools."""
    await _compat.aclose_client(client)


def discard_client(client: Any) -> None:
    """Nothing to close: an asyncio client opens no connection until it is first used."""


async def read_slow_reply(connection: Any, extra_s: float) -> Any:
    """The next reply, allowing ``extra_s`` more than the connection's socket timeout (the reply to WAIT)."""
    base = connection.socket_timeout
    return await connection.read_response(timeout=None if base is None else base + extra_s)

"""What the sync write path does differently from the asyncio one, beyond ``await`` (the sync backend)."""

from __future__ import annotations

import contextlib
import functools
import time
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import redis
import redis.cluster
from redis.exceptions import ConnectionError as RedisConnectionError

from livermore_cache import _compat, telemetry

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

CLIENT_TYPES = (redis.Redis, redis.cluster.RedisCluster)
CLIENT_NAMES = "a redis.Redis or redis.cluster.RedisCluster"
"""The accepted client classes, as an error message names them."""
CLUSTER_TYPES = (redis.cluster.RedisCluster,)
sleep = time.sleep


def ready(client: Any) -> None:
    """Nothing to do: a sync client is ready when made."""


def holding(lock: Any) -> Any:
    """``with holding(lock)``: the client's own lock around its single connection, if it has one."""
    return lock if lock is not None else contextlib.nullcontext()


def each_node(send: Callable[[Any, list[T]], list[Any]], groups: Sequence[tuple[Any, list[T]]]) -> list[list[Any]]:
    """``send`` to each node in turn; results in the order of ``groups``."""
    return [send(node, batch) for node, batch in groups]


def node_connection(node: Any) -> Any:
    if node.redis_connection is None:
        raise RedisConnectionError(f"no client for cluster node {node.name} yet")
    return _compat.connection_from_pool(node.redis_connection.connection_pool)


def release_node_connection(node: Any, connection: Any) -> None:
    node.redis_connection.connection_pool.release(connection)


def check_pubsub(client: Any) -> None:
    """Every sync client of the supported redis-py releases can subscribe."""


def pubsub_client(client: Any) -> tuple[Any, bool]:
    """The client to subscribe through (the client itself: every sync client has ``pubsub``), and False: not made here."""
    return client, False


def subscribed(subscription: SubscriptionT) -> SubscriptionT:
    """What ``subscribe_closes`` returns: subscribed already, so that no event published after the call is missed."""
    return subscription.start()  # type: ignore[attr-defined, no-any-return]


def operation(method: F) -> F:
    """Decorate a public cache method: refuse a closed cache, and make the call's span and metrics (``telemetry``)."""
    name = method.__name__

    @functools.wraps(method)
    def run(self: Any, *args: Any, **kwargs: Any) -> Any:
        self._check_open()
        op = telemetry.start(name, self._address) if telemetry.ENABLED else None
        if op is None:
            return method(self, *args, **kwargs)
        with op:
            return method(self, *args, **kwargs)

    return run  # type: ignore[return-value]


def client_from_url(url: str, *, cluster: bool) -> Any:
    """A client for ``url`` (``redis.Redis.from_url`` or ``redis.cluster.RedisCluster.from_url``); connects lazily."""
    return (redis.cluster.RedisCluster if cluster else redis.Redis).from_url(url)


def close_client(client: Any) -> None:
    """Close a client the cache made, and every connection of its pools."""
    _compat.close_client(client)


def discard_client(client: Any) -> None:
    """Close a client that ``from_url`` made for a cache that was then refused."""
    _compat.close_client(client)


def read_slow_reply(connection: Any, extra_s: float) -> Any:
    """The next reply, allowing ``extra_s`` more than the connection's socket timeout (the reply to WAIT)."""
    return _compat.read_slow_reply(connection, extra_s)

"""Every redis-py API the library touches beyond the documented command methods, in one place.

The write path sends script calls over connections it takes itself (see
``retry`` for why), so it needs a few of redis-py's connection internals. Each is
named here with the releases it covers; CI runs the suite on redis-py 5.0, 5.3,
6.4, 7.4 and the newest 8.x (``make test-compat``), so the next release that
changes one of them breaks here and nowhere else.

================================  =============================================
API                               releases and differences
================================  =============================================
``ConnectionPool.get_connection`` 5.0-5.2 require a command name; 5.3+ take no
                                  argument and warn (DeprecationWarning) when
                                  given one. Detected by signature.
``Connection.retry``              5.0+: the policy ``connect()`` applies; the
                                  write path swaps in a no-retry policy for its
                                  own connects so that they cannot stretch a round.
``Connection.socket_timeout``,    5.0+ (8.x: a property with a setter): read by
``socket_connect_timeout``        ``connect()`` (the handshake reads with
                                  ``socket_timeout``); bounded by the deadline
                                  while the write path connects.
``Connection._sock``              sync 5.0+: its timeout is raised while the
                                  reply to WAIT is read (sync ``read_response``
                                  takes a ``timeout`` only from 8.x).
``read_response(timeout=)``       asyncio 5.0+.
``Connection.send_packed_command``5.0+, sync and asyncio: unchanged (given a list
``read_response``, ``disconnect``  of buffers; the library packs RESP itself).
``Connection.is_connected``       asyncio 5.0+, sync 6.0+; before, ``_sock``.
``Redis.connection``              5.0+: the one connection of a client made
                                  with ``single_connection_client=True``;
``Redis.single_connection_lock``  sync 7.2+ (a lock around it; absent before);
``Redis._single_conn_lock``       asyncio 5.0+.
``RedisCluster.get_node_from_key``5.0+, sync and asyncio.
``RedisCluster.get_node``         5.0+ (host=, port=).
``RedisCluster.nodes_manager``    5.0+: ``initialize()`` reloads the slot map.
``ClusterNode.redis_connection``  sync 5.0+: the node's ``Redis`` client.
``ClusterNode.acquire_connection``asyncio 5.0+.
``ClusterNode.release``           asyncio 6.2+; before, the free list
                                  ``ClusterNode._free`` takes it back.
``RedisCluster.pubsub``           asyncio 8.0+ only (sync 5.0+). Before 8.0 an
                                  asyncio cluster subscribes through a plain
                                  ``redis.asyncio.Redis`` of one node, made from
``ClusterNode.connection_class``  asyncio 5.0+, and ``connection_kwargs``
                                  (host and port included).
``Connection.socket_timeout``     5.0+, sync and asyncio: a subscriber bounds
``Connection.socket_connect_timeout`` its reconnect attempts with them (set on
                                  its own connection, restored at close).
``Connection.register_connect_callback`` 5.0+, sync and asyncio.
``Redis.aclose``/``close``        asyncio ``aclose`` 5.0.1+ (``close`` before);
                                  sync ``close``. A ``from_url`` client owns its
                                  pool (``auto_close_connection_pool``); the pool
                                  is disconnected here too, whatever the release.
``RedisCluster.get_nodes``        5.0+: each node's pool is disconnected on close
                                  (sync ``RedisCluster.close`` leaves it to GC).
``ConnectionPool.connection_kwargs`` 5.0+: ``host``/``port`` (or ``path``) of
                                  the server, for span attributes.
``NodesManager.startup_nodes``    5.0+, sync and asyncio.
================================  =============================================
"""

from __future__ import annotations

import contextlib
import inspect
from typing import Any, Final

import redis
import redis.asyncio
import redis.asyncio.sentinel
import redis.sentinel
from redis.backoff import NoBackoff
from redis.retry import Retry

__all__ = [
    "ASYNC_CLUSTER_PUBSUB",
    "REDIS_PY_VERSION",
    "aclose_client",
    "async_node_client",
    "async_release_node_connection",
    "bound_subscriber_connection",
    "close_client",
    "connect_once",
    "connection_from_pool",
    "deregister_connect_callback",
    "idle_connection",
    "is_connected",
    "private_connection",
    "read_slow_reply",
    "restore_subscriber_connection",
    "server_address",
    "single_connection",
]


def _version(text: str) -> tuple[int, ...]:
    parts = []
    for part in text.split(".")[:3]:
        digits = "".join(c for c in part if c.isdigit())
        parts.append(int(digits or 0))
    return tuple(parts)


REDIS_PY_VERSION: Final = _version(redis.__version__)
ASYNC_CLUSTER_PUBSUB: Final = REDIS_PY_VERSION >= (8, 0)
"""``redis.asyncio.cluster.RedisCluster.pubsub`` exists from redis-py 8.0."""

_NAME_REQUIRED: dict[type, bool] = {}


def _needs_command_name(pool: Any) -> bool:
    kind = type(pool)
    known = _NAME_REQUIRED.get(kind)
    if known is None:
        known = _NAME_REQUIRED[kind] = _command_name_required(kind)
    return known


def _command_name_required(kind: type) -> bool:
    parameter = inspect.signature(kind.get_connection).parameters.get("command_name")  # type: ignore[attr-defined]
    return parameter is not None and parameter.default is inspect.Parameter.empty


# redis-py's own pool classes are looked up once, at import (inspect.signature costs about 140 us,
# which a process would otherwise pay on its first write; forked workers share the answers).
for _kind in (
    redis.ConnectionPool,
    redis.BlockingConnectionPool,
    redis.asyncio.ConnectionPool,
    redis.asyncio.BlockingConnectionPool,
    redis.sentinel.SentinelConnectionPool,
    redis.asyncio.sentinel.SentinelConnectionPool,
):
    _NAME_REQUIRED[_kind] = _command_name_required(_kind)
del _kind


def connection_from_pool(pool: Any) -> Any:
    """``pool.get_connection()``, with the command name redis-py 5.0-5.2 require (an awaitable for asyncio pools)."""
    return pool.get_connection("EVALSHA") if _needs_command_name(pool) else pool.get_connection()


_NO_RETRY: Final = Retry(NoBackoff(), 0)


_TIMEOUTS: Final = ("socket_connect_timeout", "socket_timeout")
_SHORTEST_CONNECT_S: Final = 0.01


class connect_once:
    """Within the block, ``connection.connect()`` tries once: redis-py's own retry policy is set aside.

    The write path has its own retries and deadline; redis-py's connect retries
    (three, with backoff up to seconds, from redis-py 6) would stretch each round.
    With ``limit`` (seconds), the connect and its handshake each take at most that
    long (at least 10 ms): the socket's own timeouts are lowered to it within the
    block and restored after, so that the replies are read with the client's own.
    """

    def __init__(self, connection: Any, limit: float | None = None) -> None:
        self._connection = connection
        self._limit = None if limit is None else max(limit, _SHORTEST_CONNECT_S)
        self._saved: Any = None
        self._timeouts: dict[str, Any] = {}
        self._sock: Any = None

    def __enter__(self) -> None:
        connection = self._connection
        self._sock = getattr(connection, "_sock", None)
        self._saved = getattr(connection, "retry", None)
        if self._saved is not None:
            connection.retry = _NO_RETRY
        if self._limit is None:
            return
        for name in _TIMEOUTS:
            if hasattr(connection, name):
                value = getattr(connection, name)
                self._timeouts[name] = value
                setattr(connection, name, self._limit if value is None else min(value, self._limit))

    def __exit__(self, *exc: object) -> None:
        connection = self._connection
        if self._saved is not None:
            connection.retry = self._saved
        for name, value in self._timeouts.items():
            setattr(connection, name, value)
        sock = getattr(connection, "_sock", None)
        # sync: a socket connected within the block keeps the timeout connect() gave it
        if (
            "socket_timeout" in self._timeouts
            and sock is not None
            and sock is not self._sock
            and hasattr(sock, "settimeout")
        ):
            sock.settimeout(self._timeouts["socket_timeout"])


def read_slow_reply(connection: Any, extra_s: float) -> Any:
    """Sync ``connection.read_response()`` allowing ``extra_s`` more than the socket timeout (for WAIT's reply).

    The socket's timeout is raised for this one read and set back after; with no
    socket timeout (None: wait forever) the read is as usual.
    """
    base = getattr(connection, "socket_timeout", None)
    sock = getattr(connection, "_sock", None)
    if base is None or sock is None or not hasattr(sock, "settimeout"):
        return connection.read_response()
    sock.settimeout(base + extra_s)
    try:
        return connection.read_response()
    finally:
        sock = getattr(connection, "_sock", None)  # None once a failed read disconnected it
        if sock is not None:
            sock.settimeout(base)


def is_connected(connection: Any) -> bool:
    """Whether the connection has a socket: ``is_connected`` where redis-py has it, else ``_sock``."""
    state = getattr(connection, "is_connected", None)
    if state is None:
        return getattr(connection, "_sock", None) is not None
    return bool(state() if callable(state) else state)


def single_connection(client: Any) -> tuple[Any, Any]:
    """(connection, lock) of a ``single_connection_client=True`` client, or (None, None) for a pooled one.

    The lock is ``single_connection_lock`` (sync, redis-py 7.2+), ``_single_conn_lock``
    (asyncio) or None where redis-py keeps none (sync before 7.2).
    """
    connection = getattr(client, "connection", None)
    if connection is None:
        return None, None
    return connection, getattr(client, "single_connection_lock", None) or getattr(client, "_single_conn_lock", None)


def async_release_node_connection(node: Any, connection: Any) -> None:
    """Give an asyncio cluster node its connection back: ``release`` (6.2+) or the free list (before)."""
    release = getattr(node, "release", None)
    if release is not None:
        release(connection)
    else:
        node._free.append(connection)


def idle_connection(pool: Any) -> Any:
    """The connected connection the pool's ``get_connection`` would hand out next, or None.

    None when the pool would make (or connect) one. ``get_connection`` takes the
    last of ``_available_connections`` (``ConnectionPool``, sync and asyncio, and
    asyncio's ``BlockingConnectionPool``) or the top of the LIFO queue ``pool.pool``
    (sync ``BlockingConnectionPool``, whose free slots are None). Another thread may
    take it first: the caller must not rely on getting this one.
    """
    queue = getattr(pool, "pool", None)
    free = getattr(queue, "queue", None) if queue is not None else getattr(pool, "_available_connections", None)
    try:
        connection = free[-1]  # type: ignore[index]
    except (IndexError, TypeError, KeyError):
        return None
    return connection if connection is not None and is_connected(connection) else None


def private_connection(pool: Any) -> Any:
    """A connection of the pool's class and settings that the pool never hands out, connecting without retries.

    The write path sends its rounds after a failure over such a connection (and
    closes it after the round): a pooled connection would reconnect inside
    ``get_connection`` with redis-py's own retry policy, stretching the round.
    """
    connection = pool.connection_class(**pool.connection_kwargs)
    connection.retry = _NO_RETRY
    return connection


def server_address(client: Any) -> tuple[str | None, int | None]:
    """(host, port) the client was made for: a cluster's first startup node, a socket's path; (None, None) if unknown."""
    try:
        manager = getattr(client, "nodes_manager", None)
        if manager is not None:
            node = next(iter(manager.startup_nodes.values()))
            return str(node.host), int(node.port)
        kwargs = client.connection_pool.connection_kwargs
        if "path" in kwargs:
            return str(kwargs["path"]), None
        host, port = kwargs.get("host"), kwargs.get("port")
        return (None if host is None else str(host)), (None if port is None else int(port))
    except (AttributeError, StopIteration, TypeError, ValueError):
        return None, None


def close_client(client: Any) -> None:
    """Close a sync client and disconnect every pool it holds (each node's, for a cluster)."""
    nodes = client.get_nodes() if hasattr(client, "get_nodes") else []
    client.close()
    for node in nodes:
        connection = getattr(node, "redis_connection", None)
        if connection is not None:
            connection.connection_pool.disconnect()
    pool = getattr(client, "connection_pool", None)
    if pool is not None:
        pool.disconnect()


async def aclose_client(client: Any) -> None:
    """Close an asyncio client and disconnect every pool it holds: ``aclose`` (5.0.1+) or ``close``."""
    close = getattr(client, "aclose", None) or client.close
    await close()
    pool = getattr(client, "connection_pool", None)
    if pool is not None:
        await pool.disconnect()


_SUBSCRIBER_SETTINGS: Final = ("retry", "socket_connect_timeout", "socket_timeout")


def bound_subscriber_connection(connection: Any, seconds: float) -> dict[str, Any]:
    """Bound what redis-py's reconnect of a subscriber's connection may take; returns the settings replaced.

    redis-py reconnects a pub/sub connection inside ``get_message`` with its own
    retry policy and the client's timeouts (None: unbounded, against a paused
    server). Here it tries once, within ``seconds`` for the TCP connect and for
    each handshake read. Reads of messages pass their own timeout, so this
    changes nothing else. ``restore_subscriber_connection`` puts the settings back.
    """
    saved = {name: getattr(connection, name) for name in _SUBSCRIBER_SETTINGS if hasattr(connection, name)}
    if "retry" in saved:
        connection.retry = _async_no_retry() if isinstance(saved["retry"], _async_retry_class()) else _NO_RETRY
    bound = max(seconds, 0.001)
    for name in ("socket_connect_timeout", "socket_timeout"):
        if name in saved:
            setattr(connection, name, bound)
    return saved


def restore_subscriber_connection(connection: Any, saved: dict[str, Any]) -> None:
    for name, value in saved.items():
        setattr(connection, name, value)


def async_node_client(node: Any) -> Any:
    """A ``redis.asyncio.Redis`` of one asyncio cluster node, with the node's connection settings."""
    import redis.asyncio

    pool = redis.asyncio.ConnectionPool(connection_class=node.connection_class, **node.connection_kwargs)
    return redis.asyncio.Redis(connection_pool=pool)


def deregister_connect_callback(connection: Any, callback: Any) -> None:
    """``connection.deregister_connect_callback(callback)``, ignoring one that is not registered (any release)."""
    with contextlib.suppress(ValueError, AttributeError):
        connection.deregister_connect_callback(callback)


def _async_retry_class() -> type:
    import redis.asyncio.retry

    return redis.asyncio.retry.Retry


def _async_no_retry() -> Any:
    """An asyncio connection's no-retry policy: ``redis.asyncio.retry.Retry`` (its ``call_with_retry`` awaits)."""
    import redis.asyncio.retry

    return redis.asyncio.retry.Retry(NoBackoff(), 0)

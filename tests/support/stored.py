"""Reading what a server holds and publishes: sorted-set members, TTLs, pub/sub messages, subscription events."""

from __future__ import annotations

import time
from typing import Any, Protocol, TypeVar, cast

import redis
from redis.client import PubSub


def flush_cluster(cluster: Any) -> None:
    """Empty every primary of a ``tools.servers.cluster.ClusterProcess``."""
    for node in cluster.primary_nodes():
        with redis.Redis.from_url(node.url) as client:
            client.flushall()


def zmembers(client: redis.Redis, key: str) -> list[bytes]:
    """The key's members, lowest score first."""
    return cast(list[bytes], client.zrange(key, 0, -1))


def zscored(client: redis.Redis, key: str) -> list[tuple[bytes, float]]:
    """The key's members with their scores, lowest score first."""
    return cast(list[tuple[bytes, float]], client.zrange(key, 0, -1, withscores=True))


def assert_ttl(r: redis.Redis, key: str, ttl: int) -> None:
    """The key's TTL is exactly ``ttl`` seconds as set (allowing under a second for the time since)."""
    remaining = int(r.pttl(key))
    assert ttl * 1000 - 1000 < remaining <= ttl * 1000, (key, remaining)


def raw_messages(pubsub: PubSub, wait: float = 0.2) -> list[tuple[bytes, bytes]]:
    """What a pattern subscriber received, (channel, data), in order, until nothing more arrives within ``wait``."""
    out: list[tuple[bytes, bytes]] = []
    while (message := pubsub.get_message(timeout=wait)) is not None:
        assert message["type"] == "pmessage"
        out.append((message["channel"], message["data"]))
    return out


def messages(pubsub: PubSub, wait: float = 0.2) -> list[tuple[str, bytes]]:
    """``raw_messages`` with each channel decoded."""
    return [(channel.decode(), data) for channel, data in raw_messages(pubsub, wait)]


EventT = TypeVar("EventT", covariant=True)


class Subscription(Protocol[EventT]):
    def get(self, timeout: float | None = None) -> EventT | None: ...


def drain(subscription: Subscription[EventT], idle: float = 0.5) -> list[EventT]:
    """Every event of a cache's subscription until none arrives for ``idle`` seconds."""
    events: list[EventT] = []
    while (event := subscription.get(timeout=idle)) is not None:
        events.append(event)
    return events


def connections_named(urls: list[str], name: str, *, settle_to: int | None = None) -> int:
    """The connections named ``name`` on the servers at ``urls`` (CLIENT LIST); with ``settle_to``, polled
    (up to 2 s) until they number that: a closed socket leaves CLIENT LIST when the server next reads it."""
    deadline = time.monotonic() + (2.0 if settle_to is not None else 0.0)
    while True:
        total = 0
        for url in urls:
            with redis.Redis.from_url(url) as admin:
                total += sum(1 for client in admin.client_list() if client.get("name") == name)
        if settle_to is None or total == settle_to or time.monotonic() > deadline:
            return total
        time.sleep(0.02)

"""What every cache shares, candles and values, sync and asyncio: the client, its settings, scripts and counters."""

from __future__ import annotations

import weakref
from typing import Any, TypeVar

from . import _compat, telemetry
from .engine import WriteStats, validate_durability, validate_settings
from .errors import CacheClosedError
from .scripts import Scripts

__all__ = ["CacheBase"]

SubscriptionT = TypeVar("SubscriptionT")


class CacheBase:
    """Settings checked once, a per-client script registry, the write counters, and the cache's lifecycle state.

    ``rounds`` is the facade's transport for this client (``transport.rounds_for``),
    made before anything else so that a client of the wrong kind is refused first.
    A cache closes what it created (a ``from_url`` client, its subscriptions) and
    never a client it was given.
    """

    def __init__(
        self,
        client: Any,
        rounds: Any,
        *,
        ttl_seconds: int | None,
        retries: int,
        retry_timeout_s: float,
        min_replicas: int = 0,
        replica_timeout_ms: int = 1000,
        wait_aof: bool = False,
    ) -> None:
        validate_settings(ttl_seconds, retries, retry_timeout_s)
        self.durability = validate_durability(min_replicas, replica_timeout_ms, wait_aof)
        """What a write proves before it reports True: ``min_replicas`` (0: nothing), ``replica_timeout_ms``, ``wait_aof``."""
        self.client = client
        self.ttl_seconds = ttl_seconds
        self.retries = retries
        self.retry_timeout_s = float(retry_timeout_s)
        self.stats = WriteStats()
        """Counters of the write path: rounds, retried rounds, NOSCRIPT resends (see ``WriteStats``)."""
        self._rounds = rounds
        self._scripts = Scripts(client)
        self._owns_client = False
        self._closed = False
        self._subscriptions: weakref.WeakSet[Any] = weakref.WeakSet()
        self._address = _compat.server_address(client) if telemetry.ENABLED else (None, None)

    @property
    def closed(self) -> bool:
        """True once ``close()``/``aclose()`` was called."""
        return self._closed

    def _check_open(self) -> None:
        if self._closed:
            raise CacheClosedError(f"this {type(self).__name__} is closed: make a new one to go on")

    def _adopt(self, subscription: SubscriptionT) -> SubscriptionT:
        """Remember a subscription this cache made, to close it with the cache."""
        self._subscriptions.add(subscription)
        return subscription

    @property
    def min_replicas(self) -> int:
        return self.durability.min_replicas

    @property
    def replica_timeout_ms(self) -> int:
        return self.durability.replica_timeout_ms

    @property
    def wait_aof(self) -> bool:
        return self.durability.wait_aof

    def _settings_repr(self) -> str:
        text = f"ttl_seconds={self.ttl_seconds}, retries={self.retries}, retry_timeout_s={self.retry_timeout_s}"
        if self.durability.on:
            text += f", min_replicas={self.min_replicas}, replica_timeout_ms={self.replica_timeout_ms}"
            text += ", wait_aof=True" if self.wait_aof else ""
        return text

    def __repr__(self) -> str:
        state = ", closed" if self._closed else ""
        return f"{type(self).__name__}({self.client!r}, {self._settings_repr()}{state})"

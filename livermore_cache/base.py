"""What every cache shares, candles and values, sync and asyncio: the client, its settings, scripts and counters."""

from __future__ import annotations

from typing import Any

from .engine import WriteStats, validate_settings
from .scripts import Scripts

__all__ = ["CacheBase"]


class CacheBase:
    """Settings checked once, a per-client script registry, the write counters, and how rounds reach the client.

    ``rounds`` is the facade's transport for this client (``transport.rounds_for``),
    made before anything else so that a client of the wrong kind is refused first.
    """

    def __init__(
        self, client: Any, rounds: Any, *, ttl_seconds: int | None, retries: int, retry_timeout_s: float
    ) -> None:
        validate_settings(ttl_seconds, retries, retry_timeout_s)
        self.client = client
        self.ttl_seconds = ttl_seconds
        self.retries = retries
        self.retry_timeout_s = float(retry_timeout_s)
        self.stats = WriteStats()
        """Counters of the write path: rounds, retried rounds, NOSCRIPT resends (see ``WriteStats``)."""
        self._rounds = rounds
        self._scripts = Scripts(client)

    def _settings_repr(self) -> str:
        return f"ttl_seconds={self.ttl_seconds}, retries={self.retries}, retry_timeout_s={self.retry_timeout_s}"

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.client!r}, {self._settings_repr()})"

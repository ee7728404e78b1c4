"""``AsyncCloseSubscription``: typed candle-close events (asyncio source of the generated sync subscriber).

Redis pub/sub delivers at most once: a message published while a subscriber is
disconnected is lost. redis-py reconnects and resubscribes by itself; this
subscriber notices the reconnect and, with ``backfill=True``, reads back from
the cache every candle of each series it has seen that is newer than the newest
timestamp it saw, before going on with live events. See the README section
"Candle-close events" for what is and is not guaranteed.
"""

from __future__ import annotations

import time
from collections import deque
from typing import Any, cast

import redis.asyncio
import redis.asyncio.cluster
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from livermore_cache.events import CandleClose, SubscriptionState, subscription_target

from . import _backend

__all__ = ["AsyncCloseSubscription"]

RECONNECT_ATTEMPTS = 40
RECONNECT_DELAY_S = 0.25
SUBSCRIBE_TIMEOUT_S = 10.0
_CONFIRMATIONS = ("subscribe", "psubscribe")


class AsyncCloseSubscription:
    """``CandleClose`` events for one series, or many through a pattern.

    Subscribes (once) on ``start()``, on entering its ``with`` block, or on the
    first read; ``aclose()`` (or leaving the block) unsubscribes and releases the
    connection. ``malformed`` counts messages that were skipped.
    """

    def __init__(
        self,
        client: redis.asyncio.Redis | redis.asyncio.cluster.RedisCluster,
        user_id: int,
        exchange_id: int,
        symbol: str | None = None,
        timeframe: str | None = None,
        *,
        backfill: bool = True,
        poll_timeout: float = 1.0,
    ) -> None:
        target, is_pattern = subscription_target(user_id, exchange_id, symbol, timeframe)
        self.state = SubscriptionState(target, is_pattern, backfill)
        self._client: Any = client
        self._poll_timeout = poll_timeout
        self._pending: deque[CandleClose] = deque()
        self._pubsub: Any = None
        self._reconnected = False
        self._closed = False

    @property
    def malformed(self) -> int:
        """Messages skipped because they were not a candle of the channel's series."""
        return self.state.malformed

    @property
    def reconnects(self) -> int:
        return self.state.reconnects

    async def start(self) -> AsyncCloseSubscription:
        """Subscribe (once) and wait for the server's confirmation."""
        if self._pubsub is not None:
            return self
        await _backend.ready(self._client)
        self._pubsub = self._client.pubsub()
        subscribe = self._pubsub.psubscribe if self.state.is_pattern else self._pubsub.subscribe
        await subscribe(self.state.pattern)
        deadline = time.monotonic() + SUBSCRIBE_TIMEOUT_S
        while True:
            message = await self._pubsub.get_message(timeout=0.5)
            if message is not None and message["type"] in _CONFIRMATIONS:
                break
            if time.monotonic() > deadline:
                raise RedisTimeoutError(f"no confirmation of the subscription to {self.state.pattern}")
        self._pubsub.connection.register_connect_callback(self._on_reconnect)
        return self

    def _on_reconnect(self, connection: Any) -> None:
        self.state.reconnects += 1
        self._reconnected = True

    async def get(self, timeout: float | None = None) -> CandleClose | None:
        """The next event, or None if none arrives within ``timeout`` seconds (None: wait for ever)."""
        await self.start()
        deadline = None if timeout is None else time.monotonic() + timeout
        while not self._closed:
            if self._pending:
                return self._pending.popleft()
            remaining = self._poll_timeout if deadline is None else min(self._poll_timeout, deadline - time.monotonic())
            if remaining <= 0:
                return None
            message = await self._read(remaining)
            if self._reconnected:
                self._reconnected = False
                await self._backfill()
            event = self.state.on_message(message)
            if event is not None:
                self._pending.append(event)
        return None

    async def _read(self, timeout: float) -> dict[str, Any] | None:
        try:
            return cast(dict[str, Any] | None, await self._pubsub.get_message(timeout=timeout))
        except (RedisConnectionError, RedisTimeoutError):
            await self._reconnect()
            return None

    async def _reconnect(self) -> None:
        """redis-py gave up on its own retries: keep trying, bounded, then let the error through."""
        connection = self._pubsub.connection
        for attempt in range(RECONNECT_ATTEMPTS):
            try:
                await connection.disconnect()
                await connection.connect()  # runs on_connect: resubscribe, then our _on_reconnect
                return
            except (RedisConnectionError, RedisTimeoutError, OSError):
                if attempt == RECONNECT_ATTEMPTS - 1:
                    raise
                await _backend.sleep(RECONNECT_DELAY_S)

    async def _backfill(self) -> None:
        if not self.state.backfill:
            return
        for series, low, high in self.state.backfill_ranges():
            members = cast(list[bytes], await self._client.zrangebyscore(series.key, low, high))
            self._pending.extend(self.state.on_backfill(series, members))

    def __aiter__(self) -> AsyncCloseSubscription:
        return self

    async def __anext__(self) -> CandleClose:
        event = await self.get(None)
        if event is None:
            raise StopAsyncIteration
        return event

    async def aclose(self) -> None:
        """Unsubscribe and give the connection back."""
        if self._closed:
            return
        self._closed = True
        if self._pubsub is None:
            return
        try:
            await (self._pubsub.punsubscribe if self.state.is_pattern else self._pubsub.unsubscribe)()
        except (RedisConnectionError, RedisTimeoutError):
            pass
        finally:
            await self._pubsub.aclose()

    async def __aenter__(self) -> AsyncCloseSubscription:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

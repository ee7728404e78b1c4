"""Typed subscribers for candle-close events, sync and asyncio.

Redis pub/sub delivers at most once: a message published while a subscriber is
disconnected is lost. redis-py reconnects and resubscribes by itself; these
subscribers notice the reconnect and, with ``backfill=True``, read back from the
cache every candle of each series they have seen that is newer than the newest
timestamp they saw, before going on with live events. See the README section
"Candle-close events" for what is and is not guaranteed.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from typing import Any, cast

import redis
import redis.asyncio
import redis.asyncio.cluster
import redis.cluster
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from .events import CandleClose, SubscriptionState, subscription_target

__all__ = ["AsyncCloseSubscription", "CloseSubscription"]

RECONNECT_ATTEMPTS = 40
RECONNECT_DELAY_S = 0.25
SUBSCRIBE_TIMEOUT_S = 10.0


class _SubscriptionBase:
    """What both subscribers keep: the target, what was seen, events waiting, whether a reconnect happened."""

    def __init__(
        self,
        client: Any,
        user_id: int,
        exchange_id: int,
        symbol: str | None,
        timeframe: str | None,
        *,
        backfill: bool,
        poll_timeout: float,
    ) -> None:
        target, is_pattern = subscription_target(user_id, exchange_id, symbol, timeframe)
        self.state = SubscriptionState(target, is_pattern, backfill)
        self._client = client
        self._poll_timeout = poll_timeout
        self._pending: deque[CandleClose] = deque()
        self._reconnected = False
        self._closed = False

    @property
    def malformed(self) -> int:
        """Messages skipped because they were not a candle of the channel's series."""
        return self.state.malformed

    @property
    def reconnects(self) -> int:
        return self.state.reconnects

    def _on_reconnect(self, connection: Any) -> None:
        self.state.reconnects += 1
        self._reconnected = True


class CloseSubscription(_SubscriptionBase):
    """An iterator of ``CandleClose`` events for one series, or many through a pattern.

    Subscribed when made; ``close()`` (or leaving a ``with`` block) unsubscribes and
    releases the connection. ``malformed`` counts messages that were skipped.
    """

    def __init__(
        self,
        client: redis.Redis | redis.cluster.RedisCluster,
        user_id: int,
        exchange_id: int,
        symbol: str | None = None,
        timeframe: str | None = None,
        *,
        backfill: bool = True,
        poll_timeout: float = 1.0,
    ) -> None:
        super().__init__(client, user_id, exchange_id, symbol, timeframe, backfill=backfill, poll_timeout=poll_timeout)
        self._pubsub: Any = client.pubsub()  # type: ignore[no-untyped-call]
        (self._pubsub.psubscribe if self.state.is_pattern else self._pubsub.subscribe)(self.state.pattern)
        self._await_confirmation()
        self._pubsub.connection.register_connect_callback(self._on_reconnect)

    def _await_confirmation(self) -> None:
        deadline = time.monotonic() + SUBSCRIBE_TIMEOUT_S
        while time.monotonic() < deadline:
            message = self._pubsub.get_message(timeout=0.5)
            if message is not None and message["type"] in ("subscribe", "psubscribe"):
                return
        raise RedisTimeoutError(f"no confirmation of the subscription to {self.state.pattern}")

    def get(self, timeout: float | None = None) -> CandleClose | None:
        """The next event, or None if none arrives within ``timeout`` seconds (None: wait for ever)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while not self._closed:
            if self._pending:
                return self._pending.popleft()
            remaining = self._poll_timeout if deadline is None else min(self._poll_timeout, deadline - time.monotonic())
            if remaining <= 0:
                return None
            message = self._read(remaining)
            if self._reconnected:
                self._reconnected = False
                self._backfill()
            event = self.state.on_message(message)
            if event is not None:
                self._pending.append(event)
        return None

    def _read(self, timeout: float) -> dict[str, Any] | None:
        try:
            return cast(dict[str, Any] | None, self._pubsub.get_message(timeout=timeout))
        except (RedisConnectionError, RedisTimeoutError):
            self._reconnect()
            return None

    def _reconnect(self) -> None:
        """redis-py gave up on its own retries: keep trying, bounded, then let the error through."""
        connection = self._pubsub.connection
        for attempt in range(RECONNECT_ATTEMPTS):
            try:
                connection.disconnect()
                connection.connect()  # runs on_connect: resubscribe, then our _on_reconnect
                return
            except (RedisConnectionError, RedisTimeoutError, OSError):
                if attempt == RECONNECT_ATTEMPTS - 1:
                    raise
                time.sleep(RECONNECT_DELAY_S)

    def _backfill(self) -> None:
        if not self.state.backfill:
            return
        for series, low, high in self.state.backfill_ranges():
            members = cast(list[bytes], self._client.zrangebyscore(series.key, low, high))
            self._pending.extend(self.state.on_backfill(series, members))

    def __iter__(self) -> CloseSubscription:
        return self

    def __next__(self) -> CandleClose:
        event = self.get(None)
        if event is None:
            raise StopIteration
        return event

    def close(self) -> None:
        """Unsubscribe and give the connection back."""
        if self._closed:
            return
        self._closed = True
        try:
            (self._pubsub.punsubscribe if self.state.is_pattern else self._pubsub.unsubscribe)()
        except (RedisConnectionError, RedisTimeoutError):
            pass
        finally:
            self._pubsub.close()

    def __enter__(self) -> CloseSubscription:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class AsyncCloseSubscription(_SubscriptionBase):
    """An async iterator of ``CandleClose`` events; ``async with`` subscribes before the block runs.

    Iterating subscribes too, if that has not happened yet. ``aclose()`` unsubscribes
    and releases the connection.
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
        super().__init__(client, user_id, exchange_id, symbol, timeframe, backfill=backfill, poll_timeout=poll_timeout)
        self._pubsub: Any = None

    async def start(self) -> AsyncCloseSubscription:
        """Subscribe (once) and wait for the server's confirmation."""
        if self._pubsub is None:
            await self._client.initialize()  # a cluster client loads its slot map lazily; a plain one returns at once
            self._pubsub = self._client.pubsub()
            subscribe = self._pubsub.psubscribe if self.state.is_pattern else self._pubsub.subscribe
            await subscribe(self.state.pattern)
            deadline = time.monotonic() + SUBSCRIBE_TIMEOUT_S
            while True:
                message = await self._pubsub.get_message(timeout=0.5)
                if message is not None and message["type"] in ("subscribe", "psubscribe"):
                    break
                if time.monotonic() > deadline:
                    raise RedisTimeoutError(f"no confirmation of the subscription to {self.state.pattern}")
            self._pubsub.connection.register_connect_callback(self._on_reconnect)
        return self

    async def get(self, timeout: float | None = None) -> CandleClose | None:
        """The next event, or None if none arrives within ``timeout`` seconds (None: wait for ever)."""
        await self.start()
        loop = asyncio.get_running_loop()
        deadline = None if timeout is None else loop.time() + timeout
        while not self._closed:
            if self._pending:
                return self._pending.popleft()
            remaining = self._poll_timeout if deadline is None else min(self._poll_timeout, deadline - loop.time())
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
        connection = self._pubsub.connection
        for attempt in range(RECONNECT_ATTEMPTS):
            try:
                await connection.disconnect()
                await connection.connect()
                return
            except (RedisConnectionError, RedisTimeoutError, OSError):
                if attempt == RECONNECT_ATTEMPTS - 1:
                    raise
                await asyncio.sleep(RECONNECT_DELAY_S)

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

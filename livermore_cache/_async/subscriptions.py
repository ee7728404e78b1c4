"""Typed subscribers: candle closes, ticker and indicator updates (sync and asyncio from one source).

Redis pub/sub delivers at most once: a message published while a subscriber is
disconnected is lost. redis-py reconnects and resubscribes by itself; these
subscribers notice the reconnect and, with ``backfill=True``, read back from
the cache what they may have missed before going on with live events: every
candle of each series seen that is newer than the newest timestamp seen, or the
current value of each ticker or indicator key seen. See the README section
"Candle-close events" for what is and is not guaranteed.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from typing import Any, Generic, Protocol, Self, TypeVar, cast

import redis.asyncio
import redis.asyncio.cluster
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from livermore_cache._backends import aio as backend
from livermore_cache.errors import CacheClosedError
from livermore_cache.events import (
    CandleClose,
    IndicatorUpdate,
    SubscriptionState,
    TickerUpdate,
    ValueSubscriptionState,
    close_subscription_state,
)
from livermore_cache.keys import indicator_channel_pattern, ticker_channel_pattern
from livermore_cache.plans.values import INDICATORS, TICKERS

__all__ = ["AsyncCloseSubscription", "AsyncIndicatorSubscription", "AsyncSubscription", "AsyncTickerSubscription"]

_log = logging.getLogger(__name__)

MALFORMED_LOG_INTERVAL_S = 10.0
"""At most one WARNING per subscription per this many seconds about skipped (malformed) messages."""
RECONNECT_ATTEMPTS = 40
RECONNECT_DELAY_S = 0.25
SUBSCRIBE_TIMEOUT_S = 10.0
_CONFIRMATIONS = ("subscribe", "psubscribe")

EventT = TypeVar("EventT")


class State(Protocol):
    """What a subscriber keeps and decides without I/O (``events.SubscriptionState``, ``ValueSubscriptionState``)."""

    pattern: str
    is_pattern: bool
    backfill: bool
    malformed: int
    reconnects: int

    def on_message(self, message: dict[str, Any] | None) -> Any: ...

    def backfill_reads(self) -> list[tuple[Any, tuple[str, ...]]]: ...

    def on_backfill(self, target: Any, reply: Any) -> list[Any]: ...


class AsyncSubscription(Generic[EventT]):
    """Typed events from one channel or a pattern, with reconnect and backfill.

    Subscribes (once) on ``start()``, on entering its ``with`` block, or on the
    first read; ``aclose()`` (or leaving the block) unsubscribes and releases the
    connection. ``malformed`` counts messages that were skipped.
    """

    def __init__(
        self,
        client: redis.asyncio.Redis | redis.asyncio.cluster.RedisCluster,
        state: State,
        *,
        poll_timeout: float = 1.0,
    ) -> None:
        self.state = state
        self._client: Any = client
        self._poll_timeout = poll_timeout
        self._pending: deque[EventT] = deque()
        self._pubsub: Any = None
        self._reconnected = False
        self._closed = False
        self._malformed_logged = 0
        self._malformed_logged_at = -MALFORMED_LOG_INTERVAL_S

    @property
    def malformed(self) -> int:
        """Messages skipped because they were not a candle of the channel's series."""
        return self.state.malformed

    @property
    def reconnects(self) -> int:
        return self.state.reconnects

    async def start(self) -> Self:
        """Subscribe (once) and wait for the server's confirmation."""
        self._check_open()
        if self._pubsub is not None:
            return self
        await backend.ready(self._client)
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

    def _check_open(self) -> None:
        if self._closed:
            raise CacheClosedError(f"this {type(self).__name__} of {self.state.pattern} is closed")

    def _on_reconnect(self, connection: Any) -> None:
        self.state.reconnects += 1
        self._reconnected = True
        _log.warning(
            "subscriber of %s reconnected and resubscribed (reconnect %d)", self.state.pattern, self.reconnects
        )

    async def get(self, timeout: float | None = None) -> EventT | None:
        """The next event, or None if none arrives within ``timeout`` seconds (None: wait for ever)."""
        self._check_open()
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
            elif self.state.malformed > self._malformed_logged:
                self._log_malformed()
        return None

    def _log_malformed(self) -> None:
        """A WARNING about skipped messages, at most once per ``MALFORMED_LOG_INTERVAL_S`` (their payloads are not logged)."""
        now = time.monotonic()
        if now - self._malformed_logged_at < MALFORMED_LOG_INTERVAL_S:
            return
        _log.warning(
            "subscriber of %s skipped %d malformed messages (%d in all)",
            self.state.pattern,
            self.state.malformed - self._malformed_logged,
            self.state.malformed,
        )
        self._malformed_logged = self.state.malformed
        self._malformed_logged_at = now

    async def _read(self, timeout: float) -> dict[str, Any] | None:
        try:
            return cast(dict[str, Any] | None, await self._pubsub.get_message(timeout=timeout))
        except (RedisConnectionError, RedisTimeoutError) as error:
            _log.warning(
                "subscriber of %s lost its connection (%s: %s)", self.state.pattern, type(error).__name__, error
            )
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
            except (RedisConnectionError, RedisTimeoutError, OSError) as error:
                if attempt == RECONNECT_ATTEMPTS - 1:
                    _log.warning(
                        "subscriber of %s gave up reconnecting after %d attempts", self.state.pattern, attempt + 1
                    )
                    raise
                _log.warning(
                    "subscriber of %s: reconnect attempt %d of %d failed (%s: %s)",
                    self.state.pattern,
                    attempt + 1,
                    RECONNECT_ATTEMPTS,
                    type(error).__name__,
                    error,
                )
                await backend.sleep(RECONNECT_DELAY_S)

    async def _backfill(self) -> None:
        if not self.state.backfill:
            return
        reads = self.state.backfill_reads()
        before = len(self._pending)
        for target, command in reads:
            reply = await self._client.execute_command(*command)
            self._pending.extend(self.state.on_backfill(target, reply))
        _log.info(
            "subscriber of %s backfilled %d events from %d reads after a reconnect",
            self.state.pattern,
            len(self._pending) - before,
            len(reads),
        )

    def __aiter__(self) -> Self:
        return self

    async def __anext__(self) -> EventT:
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

    async def __aenter__(self) -> Self:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()


class AsyncCloseSubscription(AsyncSubscription[CandleClose]):
    """``CandleClose`` events for one series, or many through a pattern (symbol or timeframe left out)."""

    state: SubscriptionState

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
        state = close_subscription_state(user_id, exchange_id, symbol, timeframe, backfill)
        super().__init__(client, state, poll_timeout=poll_timeout)


class AsyncTickerSubscription(AsyncSubscription[TickerUpdate]):
    """``TickerUpdate`` events for one symbol, or every symbol (``symbol=None``)."""

    def __init__(
        self,
        client: redis.asyncio.Redis | redis.asyncio.cluster.RedisCluster,
        user_id: int,
        exchange_id: int,
        symbol: str | None = None,
        *,
        backfill: bool = True,
        poll_timeout: float = 1.0,
    ) -> None:
        target, is_pattern = ticker_channel_pattern(user_id, exchange_id, symbol)
        state = ValueSubscriptionState(TICKERS, TickerUpdate, target, is_pattern, backfill)
        super().__init__(client, state, poll_timeout=poll_timeout)


class AsyncIndicatorSubscription(AsyncSubscription[IndicatorUpdate]):
    """``IndicatorUpdate`` events; a symbol, timeframe or type left out subscribes by pattern."""

    def __init__(
        self,
        client: redis.asyncio.Redis | redis.asyncio.cluster.RedisCluster,
        user_id: int,
        exchange_id: int,
        symbol: str | None = None,
        timeframe: str | None = None,
        type: str | None = None,  # noqa: A002 - the Node service's name for it
        *,
        backfill: bool = True,
        poll_timeout: float = 1.0,
    ) -> None:
        target, is_pattern = indicator_channel_pattern(user_id, exchange_id, symbol, timeframe, type)
        state = ValueSubscriptionState(INDICATORS, IndicatorUpdate, target, is_pattern, backfill)
        super().__init__(client, state, poll_timeout=poll_timeout)

"""Typed subscribers: candle closes, ticker, orderbook and indicator updates (sync and asyncio from one source).

Redis pub/sub delivers at most once: a message published while a subscriber is
disconnected is lost. These subscribers notice a lost connection, reconnect
(bounded: see ``AsyncSubscription``) and, with ``backfill=True``, read back from
the cache what they may have missed before going on with live events: every
candle of each series tracked that is newer than the newest timestamp seen, or
the current value of each ticker, orderbook or indicator key tracked. See
docs/subscriptions-reliability.md for what is and is not guaranteed.
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

from livermore_cache import _compat
from livermore_cache._backends import aio as backend
from livermore_cache.errors import CacheClosedError
from livermore_cache.events import (
    MAX_TRACKED_SERIES,
    RECONNECT_TIMEOUT_S,
    CandleClose,
    IndicatorUpdate,
    OrderbookUpdate,
    Recovery,
    SubscriptionState,
    TickerUpdate,
    check_subscriber_settings,
    close_subscription_state,
    value_subscription_state,
)
from livermore_cache.plans.values import INDICATORS, ORDERBOOKS, TICKERS

__all__ = [
    "AsyncCloseSubscription",
    "AsyncIndicatorSubscription",
    "AsyncOrderbookSubscription",
    "AsyncSubscription",
    "AsyncTickerSubscription",
]

_log = logging.getLogger(__name__)

MALFORMED_LOG_INTERVAL_S = 10.0
"""At most one WARNING per subscription per this many seconds about skipped (malformed) messages."""
SUBSCRIBE_TIMEOUT_S = 10.0
_CONFIRMATIONS = ("subscribe", "psubscribe")
_LOST = (RedisConnectionError, RedisTimeoutError, OSError)

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
    connection. After that, ``start()``, ``get()`` and iteration raise
    ``CacheClosedError`` and open nothing. ``malformed`` counts messages (and
    backfilled members) that were skipped: a channel the key builders would not
    make, or a payload that does not belong on its channel. Nothing a publisher
    sends, and nothing stored, makes ``get()`` or iteration raise.

    Bounds (docs/subscriptions-reliability.md):

    * ``get(timeout)`` returns within ``timeout`` seconds, also while a reconnect
      goes on: every reconnect attempt is bounded by what remains of it (and by
      ``RECONNECT_ATTEMPT_TIMEOUT_S``, 2 s). Only a backfill read, made once the
      connection is back, runs under the cache client's own timeouts.
    * A subscriber whose server stays unreachable raises
      ``redis.exceptions.ConnectionError`` from ``get()`` (and iteration) once
      ``reconnect_timeout_s`` (default 30 s) have passed since the connection was
      lost: attempts every ``RECONNECT_DELAY_S`` (0.25 s) until then, none past it.
      A later ``get()`` starts a new reconnect period.
    * At most ``max_tracked_series`` series (or value keys) are tracked for
      backfill (default 10,000; least recently seen forgotten first): a forgotten
      series is not read back after a reconnect until it is seen again. Backfill
      reads every tracked series in one pipelined round trip.
    """

    def __init__(
        self,
        client: redis.asyncio.Redis | redis.asyncio.cluster.RedisCluster,
        state: State,
        *,
        poll_timeout: float = 1.0,
        reconnect_timeout_s: float = RECONNECT_TIMEOUT_S,
    ) -> None:
        self.state = state
        self._client: Any = client
        self._poll_timeout = poll_timeout
        self._pending: deque[EventT] = deque()
        self._held: deque[dict[str, Any]] = deque()
        self._pubsub: Any = None
        self._source: Any = None
        self._owns_source = False
        self._saved: dict[str, Any] = {}
        self._recovery = Recovery(timeout_s=reconnect_timeout_s)
        self._backfill_due = False
        self._unconfirmed = False
        self._lost = False
        self._last_error: BaseException | None = None
        self._closed = False
        self._malformed_logged = 0
        self._malformed_logged_at = -MALFORMED_LOG_INTERVAL_S

    @property
    def malformed(self) -> int:
        """Messages and backfilled members skipped because they did not belong on their channel (or key)."""
        return self.state.malformed

    @property
    def reconnects(self) -> int:
        return self.state.reconnects

    @property
    def reconnect_timeout_s(self) -> float:
        return self._recovery.timeout_s

    async def start(self) -> Self:
        """Subscribe (once) and wait for the server's confirmation."""
        self._check_open()
        if self._pubsub is not None:
            return self
        try:
            await backend.ready(self._client)
            self._source, self._owns_source = await backend.pubsub_client(self._client)
            self._pubsub = self._source.pubsub()
            subscribe = self._pubsub.psubscribe if self.state.is_pattern else self._pubsub.subscribe
            await subscribe(self.state.pattern)
            deadline = time.monotonic() + SUBSCRIBE_TIMEOUT_S
            while True:
                message = await self._pubsub.get_message(timeout=0.5)
                if message is not None and message["type"] in _CONFIRMATIONS:
                    break
                if time.monotonic() > deadline:
                    raise RedisTimeoutError(f"no confirmation of the subscription to {self.state.pattern}")
            connection = self._pubsub.connection
            self._saved = _compat.bound_subscriber_connection(connection, self._recovery.attempt_timeout_s)
            connection.register_connect_callback(self._on_reconnect)
        except BaseException:
            await self._release()
            raise
        return self

    def _check_open(self) -> None:
        if self._closed:
            raise CacheClosedError(f"this {type(self).__name__} of {self.state.pattern} is closed")

    def _on_reconnect(self, connection: Any) -> None:
        """redis-py's connect callback: the connection is back and the subscription was sent again."""
        self.state.reconnects += 1
        self._lost = False
        self._unconfirmed = True
        self._backfill_due = self.state.backfill
        self._recovery.begin(time.monotonic())
        _log.warning(
            "subscriber of %s reconnected and resubscribed (reconnect %d)", self.state.pattern, self.reconnects
        )

    async def get(self, timeout: float | None = None) -> EventT | None:
        """The next event, or None if none arrives within ``timeout`` seconds (None: wait for ever).

        Returns by its timeout while a reconnect goes on; raises
        ``redis.exceptions.ConnectionError`` once a reconnect has gone on for
        ``reconnect_timeout_s`` (see the class docstring).
        """
        self._check_open()
        await self.start()
        deadline = None if timeout is None else time.monotonic() + timeout
        while not self._closed:
            if self._pending:
                return self._pending.popleft()
            now = time.monotonic()
            if deadline is not None and now >= deadline:
                return None
            step = self._poll_timeout if deadline is None else min(self._poll_timeout, deadline - now)
            if self._recovery.active:
                await self._recover(now, now + step)
                continue
            message = self._held.popleft() if self._held else await self._read(step)
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
        """One message, or None; a lost connection begins a recovery (redis-py's reconnect in it is bounded too)."""
        connection = self._pubsub.connection
        _compat.bound_subscriber_connection(connection, min(self._recovery.attempt_timeout_s, timeout))
        reconnects = self.state.reconnects
        try:
            return cast(dict[str, Any] | None, await self._pubsub.get_message(timeout=timeout))
        except _LOST as error:
            _log.warning(
                "subscriber of %s lost its connection (%s: %s)", self.state.pattern, type(error).__name__, error
            )
            self._last_error = error
            self._lost = self.state.reconnects == reconnects  # else redis-py reconnected it within the read
            self._recovery.begin(time.monotonic())
            return None

    async def _recover(self, now: float, deadline: float) -> None:
        """One step of a recovery: wait, or try to reconnect, confirm the subscription and backfill; or give up."""
        recovery = self._recovery
        if recovery.expired(now):
            attempts, error = recovery.attempts, self._last_error
            recovery.done()
            _log.warning(
                "subscriber of %s gave up after %.1f s and %d reconnect attempts",
                self.state.pattern,
                recovery.timeout_s,
                attempts,
            )
            raise RedisConnectionError(
                f"subscriber of {self.state.pattern}: no connection for reconnect_timeout_s={recovery.timeout_s} s "
                f"({attempts} attempts; last error: {error!r})"
            ) from error
        wait = recovery.wait(now)
        if wait > 0:
            await backend.sleep(min(wait, deadline - now))
            return
        budget = recovery.budget(now, deadline)
        connection = self._pubsub.connection
        try:
            if self._lost or not _compat.is_connected(connection):
                _compat.bound_subscriber_connection(connection, budget)
                await connection.disconnect()
                if self._closed:
                    return
                await connection.connect()  # runs on_connect: resubscribe, then our _on_reconnect
                self._lost = False
            if self._unconfirmed:
                await self._confirm(time.monotonic() + budget)
            if self._backfill_due:
                await self._backfill()
                self._backfill_due = False
            recovery.done()
        except _LOST as error:
            self._last_error = error
            recovery.failed(time.monotonic())
            if recovery.attempts == 1 or recovery.attempts % 20 == 0:
                _log.warning(
                    "subscriber of %s: reconnect attempt %d failed (%s: %s); giving up %.1f s after the loss",
                    self.state.pattern,
                    recovery.attempts,
                    type(error).__name__,
                    error,
                    recovery.timeout_s,
                )

    async def _confirm(self, deadline: float) -> None:
        """Read until the server confirms the resubscription (so that backfill reads after it); hold other messages."""
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise RedisTimeoutError(f"no confirmation of the resubscription to {self.state.pattern}")
            message = await self._pubsub.get_message(timeout=remaining)
            if message is None:
                continue
            if message.get("type") in _CONFIRMATIONS:
                self._unconfirmed = False
                return
            self._held.append(message)

    async def _backfill(self) -> None:
        """Read back every tracked series (or key) in one pipelined round trip; bad replies are counted, not raised."""
        reads = self.state.backfill_reads()
        if not reads:
            return
        pipeline = self._client.pipeline(transaction=False)
        for _, command in reads:
            pipeline.execute_command(*command)
        replies = await pipeline.execute(raise_on_error=False)
        for reply in replies:
            if isinstance(reply, _LOST):
                raise reply
        before = len(self._pending)
        for (target, _), reply in zip(reads, replies, strict=False):
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
        """Unsubscribe and give the connection back. Idempotent."""
        if self._closed:
            return
        self._closed = True
        await self._release()

    async def _release(self) -> None:
        pubsub, self._pubsub = self._pubsub, None
        source, owned, self._source, self._owns_source = self._source, self._owns_source, None, False
        try:
            if pubsub is not None:
                connection = pubsub.connection
                if connection is not None:
                    _compat.deregister_connect_callback(connection, self._on_reconnect)
                    try:
                        if _compat.is_connected(connection):
                            await (pubsub.punsubscribe if self.state.is_pattern else pubsub.unsubscribe)()
                    except _LOST:
                        pass
                    _compat.restore_subscriber_connection(connection, self._saved)
                await pubsub.aclose()
        finally:
            if owned:
                await backend.close_client(source)

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
        reconnect_timeout_s: float = RECONNECT_TIMEOUT_S,
        max_tracked_series: int = MAX_TRACKED_SERIES,
    ) -> None:
        reconnect_timeout_s, max_tracked_series = check_subscriber_settings(reconnect_timeout_s, max_tracked_series)
        state = close_subscription_state(user_id, exchange_id, symbol, timeframe, backfill, max_tracked_series)
        super().__init__(client, state, poll_timeout=poll_timeout, reconnect_timeout_s=reconnect_timeout_s)


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
        reconnect_timeout_s: float = RECONNECT_TIMEOUT_S,
        max_tracked_series: int = MAX_TRACKED_SERIES,
    ) -> None:
        reconnect_timeout_s, max_tracked_series = check_subscriber_settings(reconnect_timeout_s, max_tracked_series)
        state = value_subscription_state(
            TICKERS, TickerUpdate, user_id, exchange_id, (symbol,), backfill, max_tracked_series
        )
        super().__init__(client, state, poll_timeout=poll_timeout, reconnect_timeout_s=reconnect_timeout_s)


class AsyncOrderbookSubscription(AsyncSubscription[OrderbookUpdate]):
    """``OrderbookUpdate`` events for one symbol, or every symbol (``symbol=None``)."""

    def __init__(
        self,
        client: redis.asyncio.Redis | redis.asyncio.cluster.RedisCluster,
        user_id: int,
        exchange_id: int,
        symbol: str | None = None,
        *,
        backfill: bool = True,
        poll_timeout: float = 1.0,
        reconnect_timeout_s: float = RECONNECT_TIMEOUT_S,
        max_tracked_series: int = MAX_TRACKED_SERIES,
    ) -> None:
        reconnect_timeout_s, max_tracked_series = check_subscriber_settings(reconnect_timeout_s, max_tracked_series)
        state = value_subscription_state(
            ORDERBOOKS, OrderbookUpdate, user_id, exchange_id, (symbol,), backfill, max_tracked_series
        )
        super().__init__(client, state, poll_timeout=poll_timeout, reconnect_timeout_s=reconnect_timeout_s)


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
        reconnect_timeout_s: float = RECONNECT_TIMEOUT_S,
        max_tracked_series: int = MAX_TRACKED_SERIES,
    ) -> None:
        reconnect_timeout_s, max_tracked_series = check_subscriber_settings(reconnect_timeout_s, max_tracked_series)
        state = value_subscription_state(
            INDICATORS, IndicatorUpdate, user_id, exchange_id, (symbol, timeframe, type), backfill, max_tracked_series
        )
        super().__init__(client, state, poll_timeout=poll_timeout, reconnect_timeout_s=reconnect_timeout_s)

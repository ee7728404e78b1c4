"""The ticker, orderbook and indicator caches: the rest of ``@livermore/cache`` (sync or asyncio facade).

The Node strategies write with plain ``SETEX`` / ``SET ... EX``, so an update
that arrives late overwrites a newer one. The ``*_if_newer`` methods write
through ``newer_wins.lua`` instead: one script call per key, writing only over
nothing, a foreign value or an older ``timestamp``, in the same round trips,
retries and partial-failure contract as candle batches. The plain setters stay,
as the Node service's, for callers that want its behaviour.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Generic, TypeVar

import redis.asyncio
import redis.asyncio.cluster

from livermore_cache import telemetry
from livermore_cache._backends import aio as backend
from livermore_cache.events import MAX_TRACKED_SERIES, RECONNECT_TIMEOUT_S
from livermore_cache.keys import check_ids, indicator_key, orderbook_key, ticker_key
from livermore_cache.plans.values import (
    DEFAULT_TTL,
    INDICATORS,
    ORDERBOOKS,
    TICKERS,
    DefaultTTL,
    Kind,
    bulk_indicator_keys,
    decode_many,
    decode_stored,
    plan_values,
)
from livermore_cache.timeframes import TimeframeLike
from livermore_cache.values import IndicatorParam, IndicatorValue, Orderbook, Ticker

from .lifecycle import AsyncLifecycle
from .subscriptions import AsyncIndicatorSubscription, AsyncOrderbookSubscription, AsyncTickerSubscription
from .transport import rounds_for, write

__all__ = ["AsyncIndicatorCache", "AsyncOrderbookCache", "AsyncTickerCache"]

ValueT = TypeVar("ValueT")


class AsyncValueCache(AsyncLifecycle, Generic[ValueT]):
    """What the three value caches share: settings, scripts, the newer-wins write, reads and pub/sub."""

    kind: Kind[ValueT]

    def __init__(
        self,
        client: redis.asyncio.Redis | redis.asyncio.cluster.RedisCluster,
        *,
        ttl_seconds: int | DefaultTTL | None = DEFAULT_TTL,
        retries: int = 20,
        retry_timeout_s: float = 10.0,
        min_replicas: int = 0,
        replica_timeout_ms: int = 1000,
        wait_aof: bool = False,
    ) -> None:
        """``min_replicas`` >= 1: the ``*_if_newer`` writes report True only once that many replicas hold them.

        (``WAIT``, or ``WAITAOF`` with ``wait_aof``, within ``replica_timeout_ms``;
        else ``NotReplicatedError``: see docs/durability.md.)
        """
        rounds = rounds_for(type(self).__name__, client)
        ttl = self.kind.default_ttl if ttl_seconds is DEFAULT_TTL else ttl_seconds
        super().__init__(
            client,
            rounds,
            ttl_seconds=ttl,
            retries=retries,
            retry_timeout_s=retry_timeout_s,
            min_replicas=min_replicas,
            replica_timeout_ms=replica_timeout_ms,
            wait_aof=wait_aof,
        )
        self.invalid_values = 0
        """Stored values that a bulk read skipped because they were not valid (as the Node service skips them)."""
        self._cluster = self._rounds.cluster

    async def _set(self, user_id: int, exchange_id: int, values: Sequence[ValueT]) -> None:
        """Unconditional ``SET key json EX ttl``, as the Node setters (``SETEX`` is the same write)."""
        plan = plan_values(self.kind, user_id, exchange_id, values, ttl_seconds=self.ttl_seconds, publish=False)
        telemetry.note("SET", plan.size)
        if len(plan.calls) == 1:
            await self.client.execute_command(*plan.calls[0].set_command())
            return
        pipeline = self.client.pipeline(transaction=False)
        for call in plan.calls:
            pipeline.execute_command(*call.set_command())
        await pipeline.execute()

    async def _set_if_newer(
        self, user_id: int, exchange_id: int, values: Iterable[ValueT], publish: bool
    ) -> list[bool]:
        plan = plan_values(self.kind, user_id, exchange_id, values, ttl_seconds=self.ttl_seconds, publish=publish)
        if not plan.calls:
            return []
        return await write(
            plan,
            self._scripts.newer_wins,
            self._rounds,
            retries=self.retries,
            retry_timeout_s=self.retry_timeout_s,
            stats=self.stats,
            durability=self.durability,
        )

    async def _get(self, key: str) -> ValueT | None:
        telemetry.note("GET")
        return decode_stored(self.kind, await self.client.execute_command("GET", key), key)

    async def _get_many(self, names: Sequence[str], keys: Sequence[str]) -> dict[str, ValueT]:
        if not keys:
            return {}
        telemetry.note("MGET")
        stored = await (self.client.mget_nonatomic(list(keys)) if self._cluster else self.client.mget(list(keys)))
        found, invalid = decode_many(self.kind, names, stored)
        self.invalid_values += invalid
        return found

    async def _publish(self, user_id: int, exchange_id: int, value: ValueT) -> int:
        check_ids(user_id, exchange_id)
        value = self.kind.check(value)
        channel = self.kind.channel(user_id, exchange_id, value)
        telemetry.note("PUBLISH")
        return int(await self.client.execute_command("PUBLISH", channel, self.kind.encode(value)))

    async def _delete(self, key: str) -> None:
        telemetry.note("DEL")
        await self.client.execute_command("DEL", key)

    async def _has(self, key: str) -> bool:
        telemetry.note("EXISTS")
        return int(await self.client.execute_command("EXISTS", key)) > 0


class AsyncTickerCache(AsyncValueCache[Ticker]):
    """Tickers under ``ticker:{user}:{exchange}:{symbol}``, 60 s TTL by default (the Node service's)."""

    kind = TICKERS

    @backend.operation
    async def set_ticker(self, user_id: int, exchange_id: int, ticker: Ticker) -> None:
        """Store the ticker unconditionally (the Node service's ``setTicker``: ``SETEX``)."""
        await self._set(user_id, exchange_id, [ticker])

    @backend.operation
    async def set_ticker_if_newer(
        self, user_id: int, exchange_id: int, ticker: Ticker, *, publish: bool = False
    ) -> bool:
        """Store the ticker unless its key holds one at least as new; with ``publish``, announce it if stored."""
        return (await self._set_if_newer(user_id, exchange_id, [ticker], publish))[0]

    @backend.operation
    async def set_tickers_if_newer(
        self, user_id: int, exchange_id: int, tickers: Iterable[Ticker], *, publish: bool = False
    ) -> list[bool]:
        """``set_ticker_if_newer`` for many symbols in one round trip; per ticker, in input order, whether stored."""
        return await self._set_if_newer(user_id, exchange_id, tickers, publish)

    @backend.operation
    async def get_ticker(self, user_id: int, exchange_id: int, symbol: str) -> Ticker | None:
        """The stored ticker, or None; an invalid stored value raises ``ValidationError`` (as Node's throws)."""
        return await self._get(ticker_key(user_id, exchange_id, symbol))

    @backend.operation
    async def get_tickers(self, user_id: int, exchange_id: int, symbols: Iterable[str]) -> dict[str, Ticker]:
        """symbol -> ticker for the symbols that hold a valid one; invalid ones are skipped and counted."""
        names = list(symbols)
        return await self._get_many(names, [ticker_key(user_id, exchange_id, s) for s in names])

    @backend.operation
    async def publish_update(self, user_id: int, exchange_id: int, ticker: Ticker) -> int:
        """PUBLISH the ticker on its ``ticker_channel``; returns the number of receivers."""
        return await self._publish(user_id, exchange_id, ticker)

    @backend.operation
    async def delete_ticker(self, user_id: int, exchange_id: int, symbol: str) -> None:
        await self._delete(ticker_key(user_id, exchange_id, symbol))

    @backend.operation
    async def has_ticker(self, user_id: int, exchange_id: int, symbol: str) -> bool:
        return await self._has(ticker_key(user_id, exchange_id, symbol))

    @backend.operation
    def subscribe_tickers(
        self,
        user_id: int,
        exchange_id: int,
        symbol: str | None = None,
        *,
        backfill: bool = True,
        reconnect_timeout_s: float = RECONNECT_TIMEOUT_S,
        max_tracked_series: int = MAX_TRACKED_SERIES,
    ) -> AsyncTickerSubscription:
        """``TickerUpdate`` events of one symbol, or of all (``symbol=None``: PSUBSCRIBE).

        Bounds: see ``AsyncSubscription`` and docs/subscriptions-reliability.md.
        """
        backend.check_pubsub(self.client)
        subscription = AsyncTickerSubscription(
            self.client,
            user_id,
            exchange_id,
            symbol,
            backfill=backfill,
            reconnect_timeout_s=reconnect_timeout_s,
            max_tracked_series=max_tracked_series,
        )
        return backend.subscribed(self._adopt(subscription))


class AsyncOrderbookCache(AsyncValueCache[Orderbook]):
    """Orderbooks under ``orderbook:{user}:{exchange}:{symbol}``, 30 s TTL by default (the Node service's)."""

    kind = ORDERBOOKS

    @backend.operation
    async def set_orderbook(self, user_id: int, exchange_id: int, orderbook: Orderbook) -> None:
        """Store the orderbook unconditionally (the Node service's ``setOrderbook``: ``SETEX``)."""
        await self._set(user_id, exchange_id, [orderbook])

    @backend.operation
    async def set_orderbook_if_newer(
        self, user_id: int, exchange_id: int, orderbook: Orderbook, *, publish: bool = False
    ) -> bool:
        """Store the orderbook unless its key holds one at least as new; with ``publish``, announce it if stored."""
        return (await self._set_if_newer(user_id, exchange_id, [orderbook], publish))[0]

    @backend.operation
    async def set_orderbooks_if_newer(
        self, user_id: int, exchange_id: int, orderbooks: Iterable[Orderbook], *, publish: bool = False
    ) -> list[bool]:
        """``set_orderbook_if_newer`` for many symbols in one round trip; per orderbook, whether stored."""
        return await self._set_if_newer(user_id, exchange_id, orderbooks, publish)

    @backend.operation
    async def get_orderbook(self, user_id: int, exchange_id: int, symbol: str) -> Orderbook | None:
        """The stored orderbook, or None; an invalid stored value raises ``ValidationError``."""
        return await self._get(orderbook_key(user_id, exchange_id, symbol))

    @backend.operation
    async def get_orderbooks(self, user_id: int, exchange_id: int, symbols: Iterable[str]) -> dict[str, Orderbook]:
        """symbol -> orderbook for the symbols that hold a valid one; invalid ones are skipped and counted."""
        names = list(symbols)
        return await self._get_many(names, [orderbook_key(user_id, exchange_id, s) for s in names])

    @backend.operation
    async def publish_update(self, user_id: int, exchange_id: int, orderbook: Orderbook) -> int:
        """PUBLISH the orderbook on its ``orderbook_channel``; returns the number of receivers."""
        return await self._publish(user_id, exchange_id, orderbook)

    @backend.operation
    async def delete_orderbook(self, user_id: int, exchange_id: int, symbol: str) -> None:
        await self._delete(orderbook_key(user_id, exchange_id, symbol))

    @backend.operation
    async def has_orderbook(self, user_id: int, exchange_id: int, symbol: str) -> bool:
        return await self._has(orderbook_key(user_id, exchange_id, symbol))

    @backend.operation
    def subscribe_orderbooks(
        self,
        user_id: int,
        exchange_id: int,
        symbol: str | None = None,
        *,
        backfill: bool = True,
        reconnect_timeout_s: float = RECONNECT_TIMEOUT_S,
        max_tracked_series: int = MAX_TRACKED_SERIES,
    ) -> AsyncOrderbookSubscription:
        """``OrderbookUpdate`` events of one symbol, or of all (``symbol=None``: PSUBSCRIBE).

        Channel ``channel:orderbook:{user}:{exchange}:{symbol}``; backfill reads
        the orderbook key. Bounds: see ``AsyncSubscription`` and
        docs/subscriptions-reliability.md.
        """
        backend.check_pubsub(self.client)
        subscription = AsyncOrderbookSubscription(
            self.client,
            user_id,
            exchange_id,
            symbol,
            backfill=backfill,
            reconnect_timeout_s=reconnect_timeout_s,
            max_tracked_series=max_tracked_series,
        )
        return backend.subscribed(self._adopt(subscription))


class AsyncIndicatorCache(AsyncValueCache[IndicatorValue]):
    """Indicator values, 90,000 s TTL by default (the Node service's).

    The keys are the Node service's, quirk included: its setters write
    ``indicator:{user}:{exchange}:{symbol}:{timeframe}:{type}`` (params never in
    the key), while ``get_indicator``/``has_indicator``/``delete_indicator`` put
    ``:name=value,...`` after it when ``params`` are given. So a value set with
    params is found by ``get_indicator(..., type)`` and not by
    ``get_indicator(..., type, params)``, exactly as in the Node service.
    """

    kind = INDICATORS

    @backend.operation
    async def set_indicator(self, user_id: int, exchange_id: int, indicator: IndicatorValue) -> None:
        """Store the value unconditionally (the Node service's ``setIndicator``: ``SET ... EX``)."""
        await self._set(user_id, exchange_id, [indicator])

    @backend.operation
    async def set_indicators(self, user_id: int, exchange_id: int, indicators: Iterable[IndicatorValue]) -> None:
        """Store every value unconditionally, pipelined (the Node service's ``setIndicators``)."""
        values = list(indicators)
        if values:
            await self._set(user_id, exchange_id, values)

    @backend.operation
    async def set_indicator_if_newer(
        self, user_id: int, exchange_id: int, indicator: IndicatorValue, *, publish: bool = False
    ) -> bool:
        """Store the value unless its key holds one at least as new; with ``publish``, announce it if stored."""
        return (await self._set_if_newer(user_id, exchange_id, [indicator], publish))[0]

    @backend.operation
    async def set_indicators_if_newer(
        self, user_id: int, exchange_id: int, indicators: Iterable[IndicatorValue], *, publish: bool = False
    ) -> list[bool]:
        """``set_indicator_if_newer`` for many values in one round trip; per value, whether stored."""
        return await self._set_if_newer(user_id, exchange_id, indicators, publish)

    @backend.operation
    async def get_indicator(
        self,
        user_id: int,
        exchange_id: int,
        symbol: str,
        timeframe: TimeframeLike,
        type: str,  # noqa: A002 - the Node service's name for it
        params: Mapping[str, IndicatorParam] | None = None,
    ) -> IndicatorValue | None:
        """The stored value, or None (the key holds params when given; see the class docstring)."""
        return await self._get(indicator_key(user_id, exchange_id, symbol, timeframe, type, params))

    @backend.operation
    async def get_indicators_bulk(
        self, user_id: int, exchange_id: int, requests: Iterable[tuple[str, str] | tuple[str, str, str]]
    ) -> dict[str, IndicatorValue]:
        """``"symbol:timeframe"`` -> value, for ``(symbol, timeframe)`` or ``(symbol, timeframe, type)`` requests.

        The type defaults to ``macd-v`` (an empty type too, as JavaScript's ``||``);
        missing and invalid values are left out (invalid ones counted); a later
        request for the same ``symbol:timeframe`` wins, as in the Node Map.
        """
        names, keys = bulk_indicator_keys(user_id, exchange_id, requests)
        return await self._get_many(names, keys)

    @backend.operation
    async def publish_update(self, user_id: int, exchange_id: int, indicator: IndicatorValue) -> int:
        """PUBLISH the value on its ``indicator_channel``; returns the number of receivers."""
        return await self._publish(user_id, exchange_id, indicator)

    @backend.operation
    async def delete_indicator(
        self,
        user_id: int,
        exchange_id: int,
        symbol: str,
        timeframe: TimeframeLike,
        type: str,  # noqa: A002
        params: Mapping[str, IndicatorParam] | None = None,
    ) -> None:
        await self._delete(indicator_key(user_id, exchange_id, symbol, timeframe, type, params))

    @backend.operation
    async def has_indicator(
        self,
        user_id: int,
        exchange_id: int,
        symbol: str,
        timeframe: TimeframeLike,
        type: str,  # noqa: A002
        params: Mapping[str, IndicatorParam] | None = None,
    ) -> bool:
        return await self._has(indicator_key(user_id, exchange_id, symbol, timeframe, type, params))

    @backend.operation
    def subscribe_indicators(
        self,
        user_id: int,
        exchange_id: int,
        symbol: str | None = None,
        timeframe: TimeframeLike | None = None,
        type: str | None = None,  # noqa: A002
        *,
        backfill: bool = True,
        reconnect_timeout_s: float = RECONNECT_TIMEOUT_S,
        max_tracked_series: int = MAX_TRACKED_SERIES,
    ) -> AsyncIndicatorSubscription:
        """``IndicatorUpdate`` events; each of symbol, timeframe and type left out becomes ``*`` (PSUBSCRIBE).

        Bounds: see ``AsyncSubscription`` and docs/subscriptions-reliability.md.
        """
        backend.check_pubsub(self.client)
        subscription = AsyncIndicatorSubscription(
            self.client,
            user_id,
            exchange_id,
            symbol,
            timeframe,
            type,
            backfill=backfill,
            reconnect_timeout_s=reconnect_timeout_s,
            max_tracked_series=max_tracked_series,
        )
        return backend.subscribed(self._adopt(subscription))

"""The candle cache: candle series over a Redis or Redis Cluster client (sync or asyncio facade).

A thin shell: arguments, validation and reply decoding come from ``plans.candles``,
the retry decisions from ``engine``, the sending from ``transport``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, TypeVar, overload

import redis.asyncio
import redis.asyncio.cluster
from redis.commands.core import AsyncScript
from redis.exceptions import NoScriptError, RedisError

from livermore_cache import telemetry
from livermore_cache._backends import aio as backend
from livermore_cache.candles import Candle
from livermore_cache.engine import AMBIGUOUS_ERRORS, Plan, WriteResults
from livermore_cache.errors import PartialWriteError
from livermore_cache.events import MAX_TRACKED_SERIES, RECONNECT_TIMEOUT_S
from livermore_cache.health import Gap, find_gaps, is_ready
from livermore_cache.keys import candle_channel, candle_close_channel
from livermore_cache.plans import candles as candle_plans
from livermore_cache.rollups import ReadPlan, RollupRun, validate_rollups
from livermore_cache.timeframes import TimeframeLike

from .lifecycle import AsyncLifecycle
from .subscriptions import AsyncCloseSubscription
from .transport import rounds_for, write

__all__ = ["AsyncCandleCache"]

CandleT = TypeVar("CandleT", bound=Candle)
ResultT = TypeVar("ResultT")


class AsyncCandleCache(AsyncLifecycle):
    """Candle series in Redis sorted sets, written atomically by one Lua script per key.

    ``ttl_seconds`` is set on a series after every write (None: never expire);
    ``max_candles`` is how many members a series keeps (the newest, by timestamp);
    a write that meets a timeout, a dropped connection or a busy server is sent
    again up to ``retries`` times (backoff from 50 ms to 500 ms), and no new
    attempt starts once ``retry_timeout_s`` have passed since the call began.

    ``rollups`` maps a source timeframe to the timeframes built from it, such as
    ``{"1m": ["5m"], "5m": ["15m", "1h", "4h", "1d"]}``: after every write of source
    candles, each complete target period they belong to is recomputed from the stored
    sources and written, newer wins, into its own series (see docs/rollups.md).
    With ``min_replicas`` >= 1, a write reports True only once that many replicas
    acknowledged it (``WAIT``, or ``WAITAOF`` with ``wait_aof``) within
    ``replica_timeout_ms``; else it raises ``NotReplicatedError`` (docs/durability.md).
    """

    def __init__(
        self,
        client: redis.asyncio.Redis | redis.asyncio.cluster.RedisCluster,
        *,
        ttl_seconds: int | None = 86400,
        max_candles: int = 1000,
        retries: int = 20,
        retry_timeout_s: float = 10.0,
        rollups: Mapping[str, Iterable[str]] | None = None,
        min_replicas: int = 0,
        replica_timeout_ms: int = 1000,
        wait_aof: bool = False,
    ) -> None:
        rounds = rounds_for(type(self).__name__, client)
        super().__init__(
            client,
            rounds,
            ttl_seconds=ttl_seconds,
            retries=retries,
            retry_timeout_s=retry_timeout_s,
            min_replicas=min_replicas,
            replica_timeout_ms=replica_timeout_ms,
            wait_aof=wait_aof,
        )
        self.max_candles = candle_plans.check_max_candles(max_candles)
        self.rollups = validate_rollups(rollups) if rollups is not None else ()
        """The roll-up edges (``rollups.Rollup``), in computing order; () for none."""

    def _settings_repr(self) -> str:
        rollups: dict[str, list[str]] = {}
        for edge in self.rollups:
            rollups.setdefault(edge.source, []).append(edge.target)
        return f"{super()._settings_repr()}, max_candles={self.max_candles}" + (
            f", rollups={rollups}" if rollups else ""
        )

    def _plan(
        self, user_id: int, exchange_id: int, candles: Iterable[Candle], *, versioned: bool, publish_close: bool = False
    ) -> candle_plans.WritePlan:
        return candle_plans.plan_write(
            user_id,
            exchange_id,
            candles,
            versioned=versioned,
            ttl_seconds=self.ttl_seconds,
            max_candles=self.max_candles,
            publish_close=publish_close,
        )

    # writes

    @backend.operation
    async def add_candle(self, user_id: int, exchange_id: int, candle: Candle) -> None:
        """Store the candle, replacing whatever its series holds at its timestamp (the Node service's ``addCandle``)."""
        await self.add_candles(user_id, exchange_id, [candle])

    @backend.operation
    async def add_candles(self, user_id: int, exchange_id: int, candles: Iterable[Candle]) -> None:
        """Store every candle unconditionally, atomically per series, in one round trip."""
        await self._write(self._plan(user_id, exchange_id, candles, versioned=False))

    @backend.operation
    async def add_candle_if_newer(
        self, user_id: int, exchange_id: int, candle: Candle, *, publish_close: bool = False
    ) -> bool:
        """Store the candle unless its series holds a newer or equal sequence at that timestamp.

        With ``publish_close``, the same script call PUBLISHes the stored JSON on the
        series' ``candle_close_channel`` if, and only if, the candle was written.
        """
        return (await self.add_candles_if_newer(user_id, exchange_id, [candle], publish_close=publish_close))[0]

    @backend.operation
    async def add_candles_if_newer(
        self, user_id: int, exchange_id: int, candles: Iterable[Candle], *, publish_close: bool = False
    ) -> list[bool]:
        """Versioned write of a batch that may span many series; per candle, in input order, whether it was stored.

        With ``publish_close``, each candle that reports True is PUBLISHed on its series'
        ``candle_close_channel`` inside the same script call, in the order the writes were applied.
        Raises ``PartialWriteError`` when some series were applied and others failed.
        """
        return await self._write(self._plan(user_id, exchange_id, candles, versioned=True, publish_close=publish_close))

    async def _write(self, plan: candle_plans.WritePlan) -> list[bool]:
        if not plan.calls:
            return plan.results([])
        if self.rollups:
            return await self._write_and_roll_up(plan)
        return await self._send(plan, self._scripts.versioned_write)

    # roll-ups

    async def _write_and_roll_up(self, plan: candle_plans.WritePlan) -> list[bool]:
        """Write the source candles, then their roll-ups (``rollups.RollupRun``), round by round.

        The source results stay those of the source write. A roll-up that failed, like a
        source series that failed, raises ``PartialWriteError``: its ``errors`` then also
        name the target keys (roll-up series) that could not be computed or written.
        """
        failure: PartialWriteError | None = None
        uncertain: frozenset[int] = frozenset()
        try:
            sent = await self._send(plan, self._scripts.versioned_write)
            uncertain = getattr(sent, "uncertain", frozenset())
            results: list[bool | None] = list(sent)
        except PartialWriteError as error:
            failure, results = error, error.results
        run = RollupRun(self.rollups, plan, results, ttl_seconds=self.ttl_seconds, max_candles=self.max_candles)
        while (counts := run.source_reads()) is not None:
            run.take_counts(counts, await self._rollup_read(counts))
            reads = run.source_members()
            if reads is not None:
                run.take_sources(reads, await self._rollup_read(reads))
            checks = run.target_reads()
            if checks is not None:
                run.take_targets(checks, await self._rollup_read(checks))
            writes = run.target_writes()
            if writes is not None:
                try:
                    written: list[bool | None] = list(await self._send(writes, self._scripts.versioned_write))
                    run.take_writes(writes, written, {})
                except PartialWriteError as error:
                    run.take_writes(writes, error.results, error.errors)
                except (RedisError, *AMBIGUOUS_ERRORS) as error:
                    run.take_writes(writes, [None] * writes.size, {call.key: error for call in writes.calls})
        if not run.errors:
            if failure is not None:
                raise failure
            return WriteResults([bool(result) for result in results], uncertain)
        errors = dict(failure.errors) if failure is not None else {}
        errors.update(run.errors)
        raise PartialWriteError(results, errors) from next(iter(run.errors.values()))

    async def _rollup_read(self, plan: ReadPlan) -> dict[str, BaseException]:
        """Send a round of roll-up reads; the keys whose read failed, with the error (the replies are in ``plan``)."""
        try:
            await self._send(plan, self._scripts.rollup_sources, durable=False)
        except PartialWriteError as error:
            return dict(error.errors)
        except (RedisError, *AMBIGUOUS_ERRORS) as error:
            plan.replies = [None] * len(plan.calls)
            return {call.key: error for call in plan.calls}
        return {}

    async def _send(self, plan: Plan, script: AsyncScript, *, durable: bool = True) -> list[bool]:
        """A write (``durable``: proven on ``min_replicas`` replicas, as any write) or a roll-up read round."""
        return await write(
            plan,
            script,
            self._rounds,
            retries=self.retries,
            retry_timeout_s=self.retry_timeout_s,
            stats=self.stats,
            durability=self.durability if durable else None,
        )

    # reads

    @overload
    async def get_recent_candles(
        self, user_id: int, exchange_id: int, symbol: str, timeframe: TimeframeLike, count: int = ...
    ) -> list[Candle]: ...
    @overload
    async def get_recent_candles(
        self,
        user_id: int,
        exchange_id: int,
        symbol: str,
        timeframe: TimeframeLike,
        count: int = ...,
        *,
        model: type[CandleT],
    ) -> list[CandleT | Candle]: ...
    @backend.operation
    async def get_recent_candles(
        self,
        user_id: int,
        exchange_id: int,
        symbol: str,
        timeframe: TimeframeLike,
        count: int = 100,
        *,
        model: type[CandleT] = Candle,  # type: ignore[assignment]
    ) -> list[CandleT | Candle]:
        """The newest ``count`` candles of the series, ascending by timestamp.

        Asked for ``model=UnifiedCandle``, a member in the plain Candle schema (written by
        ``add_candle`` or the Node service's ``addCandle``) comes back as a ``Candle``: the
        return type says so.
        """
        return await self._run(candle_plans.recent_candles_query(user_id, exchange_id, symbol, timeframe, count, model))

    @overload
    async def get_candles_in_range(
        self, user_id: int, exchange_id: int, symbol: str, timeframe: TimeframeLike, start: int, end: int
    ) -> list[Candle]: ...
    @overload
    async def get_candles_in_range(
        self,
        user_id: int,
        exchange_id: int,
        symbol: str,
        timeframe: TimeframeLike,
        start: int,
        end: int,
        *,
        model: type[CandleT],
    ) -> list[CandleT | Candle]: ...
    @backend.operation
    async def get_candles_in_range(
        self,
        user_id: int,
        exchange_id: int,
        symbol: str,
        timeframe: TimeframeLike,
        start: int,
        end: int,
        *,
        model: type[CandleT] = Candle,  # type: ignore[assignment]
    ) -> list[CandleT | Candle]:
        """Candles with ``start <= timestamp <= end`` (ms), ascending."""
        return await self._run(
            candle_plans.candles_in_range_query(user_id, exchange_id, symbol, timeframe, start, end, model)
        )

    @overload
    async def get_latest_candle(
        self, user_id: int, exchange_id: int, symbol: str, timeframe: TimeframeLike
    ) -> Candle | None: ...
    @overload
    async def get_latest_candle(
        self, user_id: int, exchange_id: int, symbol: str, timeframe: TimeframeLike, *, model: type[CandleT]
    ) -> CandleT | Candle | None: ...
    @backend.operation
    async def get_latest_candle(
        self,
        user_id: int,
        exchange_id: int,
        symbol: str,
        timeframe: TimeframeLike,
        *,
        model: type[CandleT] = Candle,  # type: ignore[assignment]
    ) -> CandleT | Candle | None:
        """The newest candle of the series, or None (a ``Candle`` for a plain member, as ``get_recent_candles``)."""
        return await self._run(candle_plans.latest_candle_query(user_id, exchange_id, symbol, timeframe, model))

    @backend.operation
    async def get_candle_count(self, user_id: int, exchange_id: int, symbol: str, timeframe: TimeframeLike) -> int:
        """How many members the series holds."""
        return await self._run(candle_plans.candle_count_query(user_id, exchange_id, symbol, timeframe))

    @backend.operation
    async def clear_candles(self, user_id: int, exchange_id: int, symbol: str, timeframe: TimeframeLike) -> None:
        """Delete the series."""
        await self._run(candle_plans.clear_candles_query(user_id, exchange_id, symbol, timeframe))

    # series health

    @backend.operation
    async def get_candle_timestamps(
        self, user_id: int, exchange_id: int, symbol: str, timeframe: TimeframeLike, start: int, end: int
    ) -> list[int]:
        """The distinct open times in [start, end] (both included), ascending; members are not sent to the client."""
        key, args, decode = candle_plans.timestamps_in_range_query(user_id, exchange_id, symbol, timeframe, start, end)
        return decode(await self._read_script(self._scripts.series_timestamps, key, args))

    @backend.operation
    async def find_gaps(
        self, user_id: int, exchange_id: int, symbol: str, timeframe: TimeframeLike, start: int, end: int
    ) -> list[Gap]:
        """The runs of missing candles over the timeframe's boundaries in [start, end] (see ``health.find_gaps``)."""
        return find_gaps(
            await self.get_candle_timestamps(user_id, exchange_id, symbol, timeframe, start, end), timeframe, start, end
        )

    @backend.operation
    async def is_ready(
        self, user_id: int, exchange_id: int, symbol: str, timeframe: TimeframeLike, count: int = 60
    ) -> bool:
        """Whether the newest ``count`` distinct timestamps are consecutive boundaries (see ``health.is_ready``)."""
        key, args, decode = candle_plans.newest_timestamps_query(user_id, exchange_id, symbol, timeframe, count)
        return is_ready(decode(await self._read_script(self._scripts.series_timestamps, key, args)), timeframe, count)

    async def _read_script(self, script: AsyncScript, key: str, args: tuple[object, ...]) -> Any:
        """A read-only script call: EVALSHA, and EVAL when the server lost its script cache.

        Never SCRIPT LOAD (what redis-py's ``Script`` sends): a least-privilege user
        needs only EVALSHA and EVAL (see docs/deployment.md, "Access").
        """
        telemetry.note("EVALSHA")
        try:
            return await self.client.evalsha(script.sha, 1, key, *args)
        except NoScriptError:
            telemetry.note("EVAL")
            return await self.client.eval(script.script, 1, key, *args)

    # pub/sub

    @backend.operation
    async def publish_update(self, user_id: int, exchange_id: int, candle: Candle) -> int:
        """PUBLISH the candle on its ``candle_channel``; returns the number of receivers."""
        return await self._run(candle_plans.publish_query(candle_channel, user_id, exchange_id, candle))

    @backend.operation
    async def publish_close(self, user_id: int, exchange_id: int, candle: Candle) -> int:
        """PUBLISH the candle on its ``candle_close_channel``; returns the number of receivers."""
        return await self._run(candle_plans.publish_query(candle_close_channel, user_id, exchange_id, candle))

    @backend.operation
    def subscribe_closes(
        self,
        user_id: int,
        exchange_id: int,
        symbol: str | None = None,
        timeframe: TimeframeLike | None = None,
        *,
        backfill: bool = True,
        reconnect_timeout_s: float = RECONNECT_TIMEOUT_S,
        max_tracked_series: int = MAX_TRACKED_SERIES,
    ) -> AsyncCloseSubscription:
        """``CandleClose`` events; a symbol or timeframe left out subscribes by pattern.

        The sync facade returns it subscribed; the asyncio one subscribes it on
        ``start()``, on entering its context block, or on the first read. A
        subscriber that stays disconnected raises after ``reconnect_timeout_s``;
        at most ``max_tracked_series`` series are tracked for backfill (see
        ``AsyncSubscription`` and docs/subscriptions-reliability.md).
        """
        backend.check_pubsub(self.client)
        subscription = AsyncCloseSubscription(
            self.client,
            user_id,
            exchange_id,
            symbol,
            timeframe,
            backfill=backfill,
            reconnect_timeout_s=reconnect_timeout_s,
            max_tracked_series=max_tracked_series,
        )
        return backend.subscribed(self._adopt(subscription))

    async def _run(self, query: candle_plans.Query[ResultT]) -> ResultT:
        telemetry.note(query.command[0])
        return query.decode(await self.client.execute_command(*query.command))

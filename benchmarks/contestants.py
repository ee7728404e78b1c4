"""The contestants: how each one writes its share of the feed.

``seed`` and ``watch`` are references to beat; they live here, never in the library.
So is ``seed-ticker``, the Node service's ticker write (a plain ``SETEX``), beside the
library's ``ticker-if-newer`` (``set_ticker_if_newer``) and ``ticker-if-newer-batch``
(``set_tickers_if_newer``). Each writer returns the latency of every call it made and
how often it retried.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import msgspec
import redis
import redis.asyncio
from redis.exceptions import WatchError

from livermore_cache import AsyncCandleCache, CandleCache, Ticker, TickerCache, UnifiedCandle, candle_key, ticker_key
from livermore_cache.plans import candles as candle_plans

from .workload import EXCHANGE_ID, T0, TICKER_CONTESTANTS, USER_ID

ENCODE = msgspec.json.Encoder().encode
DECODE = msgspec.json.Decoder().decode


@dataclass(frozen=True)
class Settings:
    ttl_seconds: int
    max_candles: int
    batch_size: int


@dataclass
class RunResult:
    """What one writer's run measured (not the library's ``core.Outcome``)."""

    latencies_ns: list[int] = field(default_factory=list)
    retries: int = 0
    written: int = 0


def _key(candle: UnifiedCandle) -> str:
    return candle_key(USER_ID, EXCHANGE_ID, candle.symbol, candle.timeframe)


def _newer(existing: list[bytes], sequence: int | None) -> bool:
    """The Node service's comparison, in the client."""
    held = [DECODE(member).get("sequenceNum") for member in existing]
    sequences = [s for s in held if s is not None]
    if not sequences:
        return True
    return sequence is not None and sequence > max(sequences)


def write_seed(client: redis.Redis, candles: list[UnifiedCandle], settings: Settings) -> RunResult:
    """Today's Node algorithm: read, compare in the client, then four more round trips."""
    result = RunResult()
    clock = time.perf_counter_ns
    for candle in candles:
        started = clock()
        key, ts = _key(candle), candle.timestamp
        existing = client.zrangebyscore(key, ts, ts)
        if _newer(existing, candle.sequence_num):  # type: ignore[arg-type]
            client.zremrangebyscore(key, ts, ts)
            client.zadd(key, {ENCODE(candle): ts})
            client.expire(key, settings.ttl_seconds)
            client.zremrangebyrank(key, 0, -(settings.max_candles + 1))
        result.latencies_ns.append(clock() - started)
    return result


def write_watch(client: redis.Redis, candles: list[UnifiedCandle], settings: Settings) -> RunResult:
    """The textbook alternative: WATCH, read, MULTI/EXEC, retry on conflict."""
    result = RunResult()
    clock = time.perf_counter_ns
    with client.pipeline() as pipe:
        for candle in candles:
            started = clock()
            key, ts = _key(candle), candle.timestamp
            while True:
                try:
                    pipe.watch(key)  # type: ignore[no-untyped-call]
                    existing = pipe.zrangebyscore(key, ts, ts)
                    if not _newer(existing, candle.sequence_num):  # type: ignore[arg-type]
                        pipe.unwatch()
                        break
                    pipe.multi()
                    pipe.zremrangebyscore(key, ts, ts)
                    pipe.zadd(key, {ENCODE(candle): ts})
                    pipe.expire(key, settings.ttl_seconds)
                    pipe.zremrangebyrank(key, 0, -(settings.max_candles + 1))
                    pipe.execute()
                    break
                except WatchError:
                    result.retries += 1
                finally:
                    pipe.reset()
            result.latencies_ns.append(clock() - started)
    return result


def candle_cache(client: redis.Redis, settings: Settings, rollups: dict[str, list[str]] | None = None) -> CandleCache:
    """The library's cache, as each library contestant's writer builds it before its clock starts (``CACHES``)."""
    return CandleCache(client, ttl_seconds=settings.ttl_seconds, max_candles=settings.max_candles, rollups=rollups)


def write_lua(client: redis.Redis, candles: list[UnifiedCandle], settings: Settings, cache: CandleCache) -> RunResult:
    """The library, one ``add_candle_if_newer`` per update."""
    result = RunResult()
    clock = time.perf_counter_ns
    write = cache.add_candle_if_newer
    for candle in candles:
        started = clock()
        write(USER_ID, EXCHANGE_ID, candle)
        result.latencies_ns.append(clock() - started)
    return result


def write_lua_batch(
    client: redis.Redis,
    candles: list[UnifiedCandle],
    settings: Settings,
    cache: CandleCache,
    publish_close: bool = False,
) -> RunResult:
    """The library, ``add_candles_if_newer`` over batches of ``batch_size`` updates.

    ``lua-batch-rollup`` is this writer too, over a cache with roll-ups 5m -> 15m, 1h, 4h, 1d
    (``CACHES``; the runner hands it the feed as 5m candles).
    """
    return write_batches(cache, candles, settings.batch_size, publish_close)


def write_batches(
    cache: CandleCache, candles: list[UnifiedCandle], size: int, publish_close: bool = False
) -> RunResult:
    """``cache.add_candles_if_newer`` over batches of ``size`` updates, each call timed."""
    result = RunResult()
    clock = time.perf_counter_ns
    for start in range(0, len(candles), size):
        started = clock()
        written = cache.add_candles_if_newer(
            USER_ID, EXCHANGE_ID, candles[start : start + size], publish_close=publish_close
        )
        result.latencies_ns.append(clock() - started)
        result.written += sum(written)
    return result


def write_lua_publish(
    client: redis.Redis, candles: list[UnifiedCandle], settings: Settings, cache: CandleCache
) -> RunResult:
    """``lua-batch`` with ``publish_close=True``: every write that wins is announced inside the script."""
    return write_lua_batch(client, candles, settings, cache, publish_close=True)


ROLLUPS = {"5m": ["15m", "1h", "4h", "1d"]}
"""What ``lua-batch-rollup`` keeps: the Node indicator service's higher timeframes, built from 5m candles."""
ROLLUP_SOURCE = "5m"


def as_rollup_source(candle: UnifiedCandle) -> UnifiedCandle:
    """A feed candle as a 5m one: slot ``i`` of the 1m feed becomes the 5m candle ``T0 + i * 5 min``."""
    return msgspec.structs.replace(candle, timestamp=rollup_time(candle.timestamp), timeframe=ROLLUP_SOURCE)


def rollup_time(timestamp: int) -> int:
    return T0 + (timestamp - T0) * 5


def write_ceiling(client: redis.Redis, candles: list[UnifiedCandle], settings: Settings) -> RunResult:
    """No version check at all: one multi-member ZADD per key per batch, pipelined across keys."""
    return _write_zadds(client, candles, settings, checked=False)


def write_ceiling_checked(client: redis.Redis, candles: list[UnifiedCandle], settings: Settings) -> RunResult:
    """The ceiling, checking each candle first as every library write must: the client's floor.

    Each candle of a batch goes through the rule functions ``plan_write`` runs (``plans.candles``:
    every field's rule and the timestamp's boundary; ``checked_candle`` names the field of one that
    fails), before the ceiling's encoding and ZADDs. A bad candle must be refused before anything is
    sent, so any client of the rules does at least this much: its client CPU over the ceiling's is
    the floor of ``client_cpu_vs_ceiling``. It sends exactly the ceiling's commands.
    """
    return _write_zadds(client, candles, settings, checked=True)


def _write_zadds(client: redis.Redis, candles: list[UnifiedCandle], settings: Settings, *, checked: bool) -> RunResult:
    result = RunResult()
    clock = time.perf_counter_ns
    size = settings.batch_size
    keys: dict[str, str] = {}
    passes = candle_plans._passes
    for start in range(0, len(candles), size):
        started = clock()
        batch = candles[start : start + size]
        if checked:
            for position, candle in enumerate(batch):
                if not passes(candle):
                    candle_plans.checked_candle(candle, f"candles[{position}]")
        by_key: dict[str, dict[bytes, int]] = {}
        for candle in batch:
            key = keys.get(candle.symbol)
            if key is None:
                key = keys[candle.symbol] = _key(candle)
            by_key.setdefault(key, {})[ENCODE(candle)] = candle.timestamp
        pipe = client.pipeline(transaction=False)
        for key, mapping in by_key.items():
            pipe.zadd(key, mapping)
        pipe.execute()
        result.latencies_ns.append(clock() - started)
    return result


FLOOR_SCRIPT = (Path(__file__).parent / "floors" / "required.lua").read_text()
"""The commands a versioned write needs at the least, with no decisions (``benchmarks/floors/required.lua``)."""


def floor_cache(
    client: redis.Redis, settings: Settings | None = None, rollups: dict[str, list[str]] | None = None
) -> CandleCache:
    """A ``CandleCache`` that sends ``floors/required.lua`` where it would send versioned_write.lua.

    Everything on the client is the library's own (the checks, the dedupe, the ARGV, the
    transport, the reply read into ``WriteResults``); only the script differs. The benchmark
    reaches into the cache's script registry for this, which no user code should do. Without
    ``settings``, the library's defaults (the round trips' floor); ``rollups`` as ``candle_cache``'s.
    """
    cache = candle_cache(client, settings, rollups) if settings is not None else CandleCache(client)
    cache._scripts.versioned_write = client.register_script(FLOOR_SCRIPT)
    return cache


def write_floor(client: redis.Redis, candles: list[UnifiedCandle], settings: Settings, cache: CandleCache) -> RunResult:
    """The floor of a versioned write, measured beside it: ``lua-batch`` with ``floors/required.lua`` as its script.

    The script makes the commands versioned_write.lua makes when every candle wins (the read, ZREM
    of what it read, ZADD, EXPIRE, the trim and the post-trim read) and replies one 1 per candle,
    with no decisions. It compares no sequence, so it is no contestant for correctness, only the
    floor lua-batch's ratios are held against.

    ``floor-rollup`` is this writer too, over a floor cache with ``lua-batch-rollup``'s roll-ups: the
    source writes and the roll-up target writes both go to ``floors/required.lua``, and the roll-up
    reads are the library's own. Which periods a batch makes due depends on the candles sent, never
    on the script's replies, so it makes the same roll-up reads and target writes as
    ``lua-batch-rollup`` (the smoke test checks the counts at W=1). Its server time minus the
    floor's, added to lua-batch's, is the floor of ``rollup_server_vs_lua_batch`` (``rollup_floor``).
    """
    return write_batches(cache, candles, settings.batch_size)


SYNC_WRITERS: dict[str, Callable[..., RunResult]] = {
    "seed": write_seed,
    "watch": write_watch,
    "lua": write_lua,
    "lua-batch": write_lua_batch,
    "ceiling": write_ceiling,
    "ceiling-checked": write_ceiling_checked,
    "lua-publish": write_lua_publish,
    "lua-publish-10": write_lua_publish,
    "lua-batch-rollup": write_lua_batch,
    "floor": write_floor,
    "floor-rollup": write_floor,
}
SUBSCRIBERS = {"lua-publish": 1, "lua-publish-10": 10}


def write_seed_ticker(client: redis.Redis, tickers: list[Ticker], settings: Settings) -> RunResult:
    """The Node service's ``setTicker``: ``SETEX`` every update, whatever the key holds (last writer wins)."""
    result = RunResult()
    clock = time.perf_counter_ns
    keys: dict[str, str] = {}
    for ticker in tickers:
        started = clock()
        key = keys.get(ticker.symbol)
        if key is None:
            key = keys[ticker.symbol] = ticker_key(USER_ID, EXCHANGE_ID, ticker.symbol)
        # The SETEX command itself, as Node sends it (redis-py's .setex() warns that it is deprecated).
        client.execute_command("SETEX", key, settings.ttl_seconds, ENCODE(ticker))  # type: ignore[no-untyped-call]
        result.latencies_ns.append(clock() - started)
    return result


def ticker_cache(client: redis.Redis, settings: Settings) -> TickerCache:
    return TickerCache(client, ttl_seconds=settings.ttl_seconds)


def write_ticker_if_newer(
    client: redis.Redis, tickers: list[Ticker], settings: Settings, cache: TickerCache
) -> RunResult:
    """The library, one ``set_ticker_if_newer`` per update."""
    result = RunResult()
    clock = time.perf_counter_ns
    write = cache.set_ticker_if_newer
    for ticker in tickers:
        started = clock()
        result.written += write(USER_ID, EXCHANGE_ID, ticker)
        result.latencies_ns.append(clock() - started)
    return result


def write_ticker_if_newer_batch(
    client: redis.Redis, tickers: list[Ticker], settings: Settings, cache: TickerCache
) -> RunResult:
    """The library, ``set_tickers_if_newer`` over batches of ``batch_size`` updates (a symbol may recur in one)."""
    result = RunResult()
    clock = time.perf_counter_ns
    size = settings.batch_size
    for start in range(0, len(tickers), size):
        started = clock()
        written = cache.set_tickers_if_newer(USER_ID, EXCHANGE_ID, tickers[start : start + size])
        result.latencies_ns.append(clock() - started)
        result.written += sum(written)
    return result


TICKER_WRITERS: dict[str, Callable[..., RunResult]] = {
    "seed-ticker": write_seed_ticker,
    "ticker-if-newer": write_ticker_if_newer,
    "ticker-if-newer-batch": write_ticker_if_newer_batch,
}
assert tuple(TICKER_WRITERS) == TICKER_CONTESTANTS

CACHES: dict[str, Callable[[redis.Redis, Settings], Any]] = {
    "lua": candle_cache,
    "lua-batch": candle_cache,
    "lua-publish": candle_cache,
    "lua-publish-10": candle_cache,
    "lua-batch-rollup": lambda client, settings: candle_cache(client, settings, ROLLUPS),
    "floor": floor_cache,
    "floor-rollup": lambda client, settings: floor_cache(client, settings, ROLLUPS),
    "ticker-if-newer": ticker_cache,
    "ticker-if-newer-batch": ticker_cache,
}
"""The library object each library contestant's writer builds before the barrier, as it builds its client: the
clock covers the writes, not the setup (the asyncio writers build theirs before ``start`` too). Its writer
takes it as ``cache``, which it needs."""


async def write_async(
    url: str, shares: list[list[UnifiedCandle]], settings: Settings, batched: bool, start: Callable[[], None]
) -> RunResult:
    """The asyncio facade: one task per share, all on one client in one process."""
    client = redis.asyncio.Redis.from_url(url, max_connections=max(len(shares), 1) * 2)
    cache = AsyncCandleCache(client, ttl_seconds=settings.ttl_seconds, max_candles=settings.max_candles)
    result = RunResult()
    clock = time.perf_counter_ns

    async def timed(call: Awaitable[object]) -> None:
        started = clock()
        await call
        result.latencies_ns.append(clock() - started)

    async def task(share: list[UnifiedCandle]) -> None:
        if batched:
            for i in range(0, len(share), settings.batch_size):
                await timed(cache.add_candles_if_newer(USER_ID, EXCHANGE_ID, share[i : i + settings.batch_size]))
        else:
            for candle in share:
                await timed(cache.add_candle_if_newer(USER_ID, EXCHANGE_ID, candle))

    await asyncio.gather(*(client.ping() for _ in range(len(shares))))
    start()
    await asyncio.gather(*(task(share) for share in shares))
    await client.aclose()
    return result


ASYNC_CONTESTANTS = {"lua-async": False, "lua-batch-async": True}
CONTESTANTS = (*SYNC_WRITERS, *ASYNC_CONTESTANTS, *TICKER_WRITERS)
BATCHED = frozenset(
    {
        "lua-batch",
        "ceiling",
        "lua-publish",
        "lua-publish-10",
        "lua-batch-async",
        "ticker-if-newer-batch",
        "lua-batch-rollup",
        "floor",
        "floor-rollup",
        "ceiling-checked",
    }
)
"""Contestants that send ``batch_size`` updates per call; the others send one."""
ROLLUP_CONTESTANTS = frozenset({"lua-batch-rollup", "floor-rollup"})
"""Contestants that write the feed as 5m candles (``as_rollup_source``), with roll-ups."""
UNVERSIONED = frozenset({"ceiling", "floor", "floor-rollup", "ceiling-checked"})
"""Contestants that keep every update by design: their stale count measures nothing."""
SCRIPT_COMMANDS = frozenset({"evalsha", "eval", "evalsha_ro", "eval_ro", "fcall", "fcall_ro"})
"""What the library's contestants' server time sums: the script calls, which hold the commands they ran."""
SERVER_COMMANDS = {
    # What each contestant's server time sums, from INFO commandstats. A script's or an EXEC's usec
    # already holds the commands it ran, which commandstats also counts under their own names.
    "seed": frozenset({"zrangebyscore", "zremrangebyscore", "zadd", "expire", "zremrangebyrank"}),
    "watch": frozenset({"watch", "unwatch", "zrangebyscore", "multi", "exec"}),
    "ceiling": frozenset({"zadd"}),
    "ceiling-checked": frozenset({"zadd"}),
    "seed-ticker": frozenset({"setex"}),
    "floor": frozenset({"evalsha", "eval"}),
    # The roll-ups' source reads are plain commands, ZCOUNTs and ZREVRANGEBYSCOREs (rollups.RangeCall), which
    # no script of the library calls; its feed is sequenced, so rollup_sources.lua (a ZCOUNT inside a script)
    # never runs in it, and nothing is counted twice.
    "lua-batch-rollup": SCRIPT_COMMANDS | {"zcount", "zrevrangebyscore"},
    "floor-rollup": SCRIPT_COMMANDS | {"zcount", "zrevrangebyscore"},
}
SCRIPTED = frozenset(name for name in CONTESTANTS if name.startswith("lua") or name.startswith("ticker-if-newer"))
"""The library's contestants: every write is a script call."""

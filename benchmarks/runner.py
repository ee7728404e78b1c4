"""Runs one contestant with W writers against a server, and measures it from both sides."""

from __future__ import annotations

import asyncio
import multiprocessing
import statistics
import time
import traceback
from array import array
from collections import defaultdict
from dataclasses import asdict, dataclass, field
from multiprocessing.synchronize import Barrier
from typing import Any, cast

import msgspec
import redis

from livermore_cache import CandleCache, Ticker, UnifiedCandle, candle_close_pattern, candle_key, ticker_key
from livermore_cache.plans.candles import plan_write

from .contestants import (
    ASYNC_CONTESTANTS,
    BATCHED,
    CACHES,
    ENCODE,
    ROLLUP_CONTESTANTS,
    ROLLUP_SOURCE,
    SCRIPT_COMMANDS,
    SCRIPTED,
    SERVER_COMMANDS,
    SUBSCRIBERS,
    SYNC_WRITERS,
    TICKER_WRITERS,
    Settings,
    as_rollup_source,
    floor_cache,
    rollup_time,
    write_async,
)
from .workload import EXCHANGE_ID, T0, TIMEFRAME, USER_ID, Workload, deal, own_copy, prefill_candles


@dataclass
class Row:
    contestant: str
    writers: int
    workload: str
    batch_size: int
    prefilled: bool
    writes_per_s: float
    p50_us: float
    p99_us: float
    stale: int  # candles: timestamps not holding the highest sequence; tickers: symbols not holding the newest
    duplicates: int
    retries: int
    server_us_per_candle: float
    client_us_per_candle: float
    server_cpu_us_per_candle: float
    memory_bytes_per_1000_candles: float
    members: int  # what the series hold after the run (pre-filled candles included); tickers: keys held
    candles: int  # updates written (candle or ticker)
    calls: int
    wall_s: float
    subscribers: int = 0
    events_lost: int = 0
    sent_candles: int = 0
    """Updates that reached the server: the library's client drops, per batch, candles that cannot win
    (and the ceiling's ZADD, repeated members); ``candles`` counts every update in."""
    server_us_per_sent_candle: float = 0.0
    server_calls: dict[str, int] = field(default_factory=dict)
    """Calls of each command the server time sums (``server_usec``), from INFO commandstats: what the
    contestant made the server do (a script call that met NOSCRIPT counts twice, with its EVAL)."""

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class WriterReport:
    started: float
    finished: float
    cpu_s: float
    latencies_ns: bytes
    retries: int
    candles: int
    written: int = 0


@dataclass
class WriterFailure:
    """A writer's exception, sent instead of its report: the run raises it rather than wait forever."""

    contestant: str
    text: str


def _sync_worker(
    url: str,
    contestant: str,
    share: list[UnifiedCandle] | list[Ticker],
    settings: Settings,
    barrier: Barrier,
    queue: Any,
) -> None:
    try:
        _sync_writer(url, contestant, share, settings, barrier, queue)
    except BaseException:
        queue.put(WriterFailure(contestant, traceback.format_exc()))
        raise


def _subscriber(url: str, pattern: str, ready: Barrier, stop: Any, queue: Any) -> None:
    """Counts close events until told to stop and nothing more arrives."""
    client = redis.Redis.from_url(url)
    pubsub = client.pubsub()  # type: ignore[no-untyped-call, unused-ignore]
    pubsub.psubscribe(pattern)
    while (message := pubsub.get_message(timeout=1.0)) is None or message["type"] != "psubscribe":
        pass
    ready.wait(timeout=60)
    received = 0
    quiet_since = time.monotonic()
    while not stop.is_set() or time.monotonic() - quiet_since < 1.0:
        message = pubsub.get_message(timeout=0.2)
        if message is not None and message["type"] == "pmessage":
            received += 1
            quiet_since = time.monotonic()
    pubsub.close()
    client.close()
    queue.put(received)


def _sync_writer(
    url: str,
    contestant: str,
    share: list[UnifiedCandle] | list[Ticker],
    settings: Settings,
    barrier: Barrier,
    queue: Any,
) -> None:
    client = redis.Redis.from_url(url)
    client.ping()
    write = SYNC_WRITERS.get(contestant) or TICKER_WRITERS[contestant]
    setup = CACHES.get(contestant)
    # a library contestant's cache is built before the clock starts, as every writer's client is
    cache = None if setup is None else setup(client, settings)
    share = own_copy(cast(list[Any], share))
    barrier.wait(timeout=120)
    cpu, started = time.process_time(), time.monotonic()
    result = write(client, share, settings) if cache is None else write(client, share, settings, cache)
    finished, cpu = time.monotonic(), time.process_time() - cpu
    queue.put(
        WriterReport(
            started,
            finished,
            cpu,
            array("q", result.latencies_ns).tobytes(),
            result.retries,
            len(share),
            result.written,
        )
    )
    client.close()


def _async_worker(
    url: str, contestant: str, shares: list[list[UnifiedCandle]], settings: Settings, barrier: Barrier, queue: Any
) -> None:
    try:
        _async_writer(url, contestant, shares, settings, barrier, queue)
    except BaseException:
        queue.put(WriterFailure(contestant, traceback.format_exc()))
        raise


def _async_writer(
    url: str, contestant: str, shares: list[list[UnifiedCandle]], settings: Settings, barrier: Barrier, queue: Any
) -> None:
    marks: dict[str, float] = {}
    shares = [own_copy(share) for share in shares]

    def start() -> None:
        barrier.wait(timeout=120)
        marks["cpu"], marks["started"] = time.process_time(), time.monotonic()

    result = asyncio.run(write_async(url, shares, settings, ASYNC_CONTESTANTS[contestant], start))
    finished, cpu = time.monotonic(), time.process_time() - marks["cpu"]
    candles = sum(len(s) for s in shares)
    queue.put(
        WriterReport(
            marks["started"], finished, cpu, array("q", result.latencies_ns).tobytes(), result.retries, candles, 0
        )
    )


def commandstats(client: redis.Redis) -> dict[str, tuple[int, int]]:
    """INFO commandstats as {command: (calls, usec)}, the names without their "cmdstat_" prefix."""
    stats = client.info("commandstats")
    return {name.removeprefix("cmdstat_"): (int(v["calls"]), int(v["usec"])) for name, v in stats.items()}


def counted_commands(contestant: str) -> frozenset[str]:
    """The commands whose INFO commandstats time is the contestant's server time."""
    counted = SERVER_COMMANDS.get(contestant) or (SCRIPT_COMMANDS if contestant in SCRIPTED else frozenset())
    if not counted:
        raise KeyError(f"no server commands known for contestant {contestant!r}")
    return counted


def server_usec(contestant: str, stats: dict[str, tuple[int, int]]) -> int:
    """The contestant's own commands' time on the server: its scripts (and a roll-up's plain reads), or the
    commands it sent itself.

    A script's (or an EXEC's) usec includes the commands it ran inside, which commandstats
    also counts under their own names: summing both would count them twice.
    """
    counted = counted_commands(contestant)
    return sum(usec for name, (_, usec) in stats.items() if name in counted)


def server_calls(contestant: str, stats: dict[str, tuple[int, int]]) -> dict[str, int]:
    """Calls of each command ``server_usec`` sums for the contestant (a NOSCRIPT and its EVAL count as two)."""
    counted = counted_commands(contestant)
    return {name: calls for name, (calls, _) in sorted(stats.items()) if name in counted}


def prefill(client: redis.Redis, symbols: list[str], count: int) -> None:
    """Every series full: ``count`` candles older than the feed, written before the clocks start."""
    pipe = client.pipeline(transaction=False)
    for symbol in symbols:
        members = {ENCODE(candle): candle.timestamp for candle in prefill_candles(symbol, count)}
        pipe.zadd(candle_key(USER_ID, EXCHANGE_ID, symbol, TIMEFRAME), members)
    pipe.execute()


def _server_cpu_s(client: redis.Redis) -> float:
    cpu = client.info("cpu")
    return float(cpu["used_cpu_user"]) + float(cpu["used_cpu_sys"])


def _percentile(sorted_values: list[int], fraction: float) -> float:
    if not sorted_values:
        return 0.0
    index = min(len(sorted_values) - 1, round(fraction * (len(sorted_values) - 1)))
    return sorted_values[index] / 1000.0


def check_cache(
    client: redis.Redis, symbols: list[str], highest: dict[tuple[str, int], int], timeframe: str = TIMEFRAME
) -> tuple[int, int, float, int]:
    """Stale timestamps, timestamps with several members, bytes per 1,000 members, members."""
    decode = msgspec.json.Decoder().decode
    stale = duplicates = members = 0
    memory = 0
    for symbol in symbols:
        key = candle_key(USER_ID, EXCHANGE_ID, symbol, timeframe)
        held: dict[int, list[int | None]] = defaultdict(list)
        scored = cast(list[tuple[bytes, float]], client.zrange(key, 0, -1, withscores=True))
        for member, score in scored:
            held[int(score)].append(decode(member).get("sequenceNum"))
            members += 1
        memory += int(client.memory_usage(key, samples=0) or 0)
        for (s, stamp), top in highest.items():
            if s != symbol:
                continue
            found = held.get(stamp, [])
            if len(found) > 1:
                duplicates += 1
            if not found or any(seq != top for seq in found):
                stale += 1
    return stale, duplicates, (memory / members * 1000 if members else 0.0), members


def check_tickers(client: redis.Redis, newest: dict[str, int]) -> tuple[int, int, float, int]:
    """Symbols whose key holds no ticker or an older one than the newest delivered; 0; bytes per 1,000 keys; keys."""
    decode = msgspec.json.Decoder().decode
    stale = held = memory = 0
    for symbol, timestamp in newest.items():
        key = ticker_key(USER_ID, EXCHANGE_ID, symbol)
        stored = cast(bytes | None, client.get(key))
        if stored is None:
            stale += 1
            continue
        held += 1
        memory += int(client.memory_usage(key, samples=0) or 0)
        if decode(stored).get("timestamp", -1) < timestamp:
            stale += 1
    return stale, 0, (memory / held * 1000 if held else 0.0), held


def sent_candles(contestant: str, shares: list[list[Any]], settings: Settings, tickers: bool) -> int:
    """How many of the writers' updates reached the server, computed after the run, off the clock.

    The library's dedupe depends only on each batch (never on what the server holds), so
    planning each writer's batches again gives exactly what its first attempts sent.
    """
    if tickers or contestant not in BATCHED:
        return sum(len(share) for share in shares)
    size = settings.batch_size
    sent = 0
    for share in shares:
        for start in range(0, len(share), size):
            batch = share[start : start + size]
            if contestant in ("ceiling", "ceiling-checked"):
                by_key: dict[tuple[str, str], set[bytes]] = defaultdict(set)
                for candle in batch:
                    by_key[candle.symbol, candle.timeframe].add(ENCODE(candle))
                sent += sum(len(members) for members in by_key.values())
                continue
            plan = plan_write(USER_ID, EXCHANGE_ID, batch, versioned=True, ttl_seconds=1, max_candles=1)
            for call in plan.calls:
                call.args()
                sent += len(call.sent)
    return sent


def run(
    url: str,
    contestant: str,
    writers: int,
    feed: list[UnifiedCandle] | list[Ticker],
    highest: dict[tuple[str, int], int] | dict[str, int],
    symbols: list[str],
    settings: Settings,
    workload: Workload,
) -> Row:
    """``settings.batch_size`` is the workload's; ``workload.prefilled`` fills every series to ``settings.max_candles``.

    For a ``workload.tickers`` run ``feed`` is the ticker feed and ``highest`` its newest timestamp per symbol.
    """
    client = redis.Redis.from_url(url)
    client.flushall()
    if workload.prefilled:
        prefill(client, symbols, settings.max_candles)
    client.config_resetstat()
    cpu_before = _server_cpu_s(client)
    context = multiprocessing.get_context("fork")
    sync = contestant in SYNC_WRITERS or contestant in TICKER_WRITERS
    if (contestant in TICKER_WRITERS) != workload.tickers:
        raise ValueError(f"{contestant} does not run the {workload.name} workload")
    barrier = context.Barrier(writers if sync else 1)
    queue = context.SimpleQueue()
    timeframe = TIMEFRAME
    if contestant in ROLLUP_CONTESTANTS:  # the same feed as 5m candles, converted before any clock starts
        feed = [as_rollup_source(candle) for candle in cast(list[UnifiedCandle], feed)]
        highest = {(s, rollup_time(t)): q for (s, t), q in cast(dict[tuple[str, int], int], highest).items()}
        timeframe = ROLLUP_SOURCE
    shares: list[list[Any]] = deal(cast(list[Any], feed), writers)
    if sync:
        processes = [
            context.Process(target=_sync_worker, args=(url, contestant, share, settings, barrier, queue))
            for share in shares
        ]
    else:
        processes = [context.Process(target=_async_worker, args=(url, contestant, shares, settings, barrier, queue))]
    listeners = []
    subscribers = SUBSCRIBERS.get(contestant, 0)
    if subscribers:
        ready, stop, counts = context.Barrier(subscribers + 1), context.Event(), context.SimpleQueue()
        pattern = candle_close_pattern(USER_ID, EXCHANGE_ID)
        listeners = [
            context.Process(target=_subscriber, args=(url, pattern, ready, stop, counts)) for _ in range(subscribers)
        ]
        for listener in listeners:
            listener.start()
        ready.wait(timeout=60)
    for process in processes:
        process.start()
    answers: list[WriterReport | WriterFailure] = [queue.get() for _ in processes]
    failures = [a for a in answers if isinstance(a, WriterFailure)]
    if failures:
        if listeners:
            stop.set()
        for process in [*processes, *listeners]:
            process.join(10)
        raise RuntimeError(f"a {contestant} writer failed:\n{failures[0].text}")
    reports = cast(list[WriterReport], answers)
    events_lost = 0
    if listeners:
        stop.set()
        received = [counts.get() for _ in listeners]
        for listener in listeners:
            listener.join(60)
        events_lost = sum(r.written for r in reports) * subscribers - sum(received)
    for process in processes:
        process.join(60)
        if process.exitcode != 0:
            raise RuntimeError(f"{contestant} writer exited with {process.exitcode}")
    server_cpu = _server_cpu_s(client) - cpu_before
    stats = commandstats(client)
    usec = server_usec(contestant, stats)
    if usec == 0 and contestant in SCRIPTED:
        raise RuntimeError(f"{contestant}: no script call in INFO commandstats (the library calls its script how?)")

    if workload.tickers:
        stale, duplicates, memory_per_1000, members = check_tickers(client, cast(dict[str, int], highest))
    else:
        stale, duplicates, memory_per_1000, members = check_cache(
            client, symbols, cast(dict[tuple[str, int], int], highest), timeframe
        )
    client.close()

    latencies: list[int] = []
    for report in reports:
        latencies.extend(array("q", report.latencies_ns))
    latencies.sort()
    wall = max(r.finished for r in reports) - min(r.started for r in reports)
    candles = sum(r.candles for r in reports)
    sent = sent_candles(contestant, shares, settings, workload.tickers)
    return Row(
        contestant=contestant,
        writers=writers,
        workload=workload.name,
        batch_size=settings.batch_size if contestant in BATCHED else 1,
        prefilled=workload.prefilled,
        writes_per_s=candles / wall if wall > 0 else 0.0,
        p50_us=_percentile(latencies, 0.50),
        p99_us=_percentile(latencies, 0.99),
        stale=stale,
        duplicates=duplicates,
        retries=sum(r.retries for r in reports),
        server_us_per_candle=usec / candles,
        client_us_per_candle=sum(r.cpu_s for r in reports) * 1e6 / candles,
        server_cpu_us_per_candle=server_cpu * 1e6 / candles,
        memory_bytes_per_1000_candles=memory_per_1000,
        members=members,
        candles=candles,
        calls=len(latencies),
        wall_s=wall,
        subscribers=subscribers,
        events_lost=events_lost,
        sent_candles=sent,
        server_us_per_sent_candle=usec / sent if sent else 0.0,
        server_calls=server_calls(contestant, stats),
    )


def round_trips(url: str, samples: int) -> tuple[float, float, float]:
    """Median round trips (us) of one plain ZADD, one add_candle_if_newer and the floor, interleaved, one client.

    The floor is ``add_candle_if_newer`` of a cache that sends ``floors/required.lua`` in place of
    versioned_write.lua (``floor_cache``: the same client, a script that makes versioned_write.lua's
    commands with no decisions), on a series of its own.
    """
    client = redis.Redis.from_url(url)
    client.flushall()
    cache = CandleCache(client)
    floor = floor_cache(client)
    zadd_ns: list[int] = []
    lua_ns: list[int] = []
    floor_ns: list[int] = []
    clock = time.perf_counter_ns
    for i in range(samples + samples // 10):
        member = b'{"timestamp":%d,"n":%d}' % (T0, i)
        candle = UnifiedCandle(
            timestamp=T0 + (i % 500) * 60_000, open=1.0, high=2.0, low=0.5, close=1.5, volume=1.0,
            symbol="RTT-USD", timeframe=TIMEFRAME, exchange="bench", sequence_num=i,
        )  # fmt: skip
        floor_candle = msgspec.structs.replace(candle, symbol="RTT-FLOOR")
        started = clock()
        client.zadd("bench:rtt", {member: T0})
        middle = clock()
        cache.add_candle_if_newer(USER_ID, EXCHANGE_ID, candle)
        ended = clock()
        floor.add_candle_if_newer(USER_ID, EXCHANGE_ID, floor_candle)
        floored = clock()
        if i >= samples // 10:  # the first tenth warms up connection and script cache
            zadd_ns.append(middle - started)
            lua_ns.append(ended - middle)
            floor_ns.append(floored - ended)
    client.flushall()
    client.close()
    return statistics.median(zadd_ns) / 1000.0, statistics.median(lua_ns) / 1000.0, statistics.median(floor_ns) / 1000.0

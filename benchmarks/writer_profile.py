"""``python -m benchmarks.writer_profile``: one ``make bench`` writer's client CPU, phase by phase, lua-batch beside the ceilings.

``make bench`` counts a writer process's CPU from its barrier to its last reply: at
W=16 that is 553 candles in 6 calls, so what a process pays once weighs on every
candle. This forks writers from this process, as ``make bench`` does (the feed
built in the parent, each writer decoding its own copy of its share before the
clock starts; ``--inherited``: using the parent's objects as fork left them), and
runs each alone against an idle, flushed server with one writer's share of the
quick feed, lua-batch, the ceiling and ceiling-checked (the ceiling checking each
candle by the library's rules first: the client's floor) in turn.
Per phase it reports CPU (user + system, ``getrusage``) and minor page faults
(the pages a forked child first writes into are copied then), as medians over
the writers: building the cache (lua-batch only; ``make bench`` builds it before
its clock starts, as it builds the client), the first call, and each later call.
Then per candle: the whole writer, as ``make bench`` counts it (every call), and
the later calls alone (their CPU over their candles: what a long-lived writer pays).

Needs a server: ``--redis-url`` (FLUSHED), else a private one as ``make bench`` starts.
"""

from __future__ import annotations

import argparse
import multiprocessing
import resource
import statistics
import sys
from collections.abc import Callable
from typing import Any

import redis

from livermore_cache import CandleCache, UnifiedCandle

from .__main__ import server
from .contestants import Settings, write_ceiling, write_ceiling_checked
from .workload import EXCHANGE_ID, USER_ID, FeedShape, deal, make_feed, own_copy

Phase = tuple[str, float, int]
"""(name, CPU seconds, minor page faults)."""


def _usage() -> tuple[float, int]:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime, usage.ru_minflt


def _phases(url: str, contestant: str, share: list[UnifiedCandle], batch: int, own: bool) -> list[Phase]:
    """One writer's phases, measured in this (forked) process."""
    if own:  # as make bench's writers do before their barrier (see workload.own_copy)
        share = own_copy(share)
    client = redis.Redis.from_url(url)
    client.ping()  # connected before the clock starts, as make bench's writers are
    phases: list[Phase] = []
    cpu, faults = _usage()

    def mark(name: str) -> None:
        nonlocal cpu, faults
        now, now_faults = _usage()
        phases.append((name, now - cpu, now_faults - faults))
        cpu, faults = now, now_faults

    write: Callable[[list[UnifiedCandle]], Any]
    if contestant == "lua-batch":
        cache = CandleCache(client, ttl_seconds=3600, max_candles=2000)
        mark("build the cache")

        def write(part: list[UnifiedCandle]) -> Any:
            return cache.add_candles_if_newer(USER_ID, EXCHANGE_ID, part)

    else:
        settings = Settings(ttl_seconds=3600, max_candles=2000, batch_size=batch)
        zadds = write_ceiling_checked if contestant == "ceiling-checked" else write_ceiling

        def write(part: list[UnifiedCandle]) -> Any:
            return zadds(client, part, settings)

    for call, start in enumerate(range(0, len(share), batch)):
        write(share[start : start + batch])
        mark("first call" if call == 0 else "a later call")
    client.close()
    return phases


def _child(url: str, contestant: str, share: list[UnifiedCandle], batch: int, own: bool, queue: Any) -> None:
    queue.put(_phases(url, contestant, share, batch, own))


def profile(
    url: str, share: list[UnifiedCandle], batch: int, writers: int, own: bool = True
) -> dict[str, list[list[Phase]]]:
    """Per contestant, each writer's phases: ``writers`` forked writers each, alternating, one at a time."""
    context = multiprocessing.get_context("fork")
    runs: dict[str, list[list[Phase]]] = {"lua-batch": [], "ceiling": [], "ceiling-checked": []}
    admin = redis.Redis.from_url(url)
    for _ in range(writers):
        for contestant in runs:
            admin.flushall()
            queue = context.SimpleQueue()
            process = context.Process(target=_child, args=(url, contestant, share, batch, own, queue))
            process.start()
            phases = queue.get()
            process.join()
            if process.exitcode != 0:
                raise RuntimeError(f"the {contestant} writer exited with {process.exitcode}")
            runs[contestant].append(phases)
    admin.flushall()
    admin.close()
    return runs


def summary(
    runs: list[list[Phase]], candles: int, first_call_candles: int
) -> tuple[list[tuple[str, float, float]], float, float]:
    """(per phase: name, median CPU us, median faults), whole us/candle, later calls' us/candle (medians over writers).

    A later call's row is the median over every later call of every writer; the
    later calls' rate is their CPU over their candles (all but the first call's).
    """
    names = list(dict.fromkeys(name for phases in runs for name, _, _ in phases))
    rows = []
    for name in names:
        cpu = [c for phases in runs for n, c, _ in phases if n == name]
        faults = [f for phases in runs for n, _, f in phases if n == name]
        rows.append((name, statistics.median(cpu) * 1e6, statistics.median(faults)))
    calls = ("first call", "a later call")  # make bench's clock: the calls, not the cache's construction
    whole = statistics.median(sum(c for n, c, _ in phases if n in calls) for phases in runs) * 1e6 / candles
    later = statistics.median(sum(c for n, c, _ in phases if n == "a later call") for phases in runs) * 1e6
    return rows, whole, later / max(candles - first_call_candles, 1)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.writer_profile", description=__doc__)
    parser.add_argument("--redis-url", default=None, help="an existing server (it is FLUSHED)")
    parser.add_argument("--seed", type=int, default=1, help="feed seed")
    parser.add_argument("--writers", type=int, default=16, help="the W whose share one writer writes")
    parser.add_argument("--batch-size", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=7, help="writers forked per contestant")
    parser.add_argument(
        "--inherited",
        action="store_true",
        help="each writer uses the parent's candles as fork left them, instead of decoding its own copy first",
    )
    args = parser.parse_args(argv)
    feed = make_feed(FeedShape(symbols=8, timestamps=250, updates_per_timestamp=4), args.seed)
    share = deal(feed, args.writers)[0]
    calls = -(-len(share) // args.batch_size)
    with server(args.redis_url) as (url, description):
        print(f"server: {description}")
        print(
            f"W={args.writers}: one writer's {len(share):,} candles in {calls} calls, {args.repeats} writers each"
            + (", the parent's candles as fork left them" if args.inherited else ", each decoding its own copy first")
        )
        runs = profile(url, share, args.batch_size, args.repeats, own=not args.inherited)
    figures = {}
    for contestant, contestant_runs in runs.items():
        rows, whole, later = summary(contestant_runs, len(share), min(args.batch_size, len(share)))
        figures[contestant] = (whole, later)
        for name, cpu_us, faults in rows:
            print(f"  {contestant:<15} {name:<16} {cpu_us:8.0f} us  {faults:5.0f} page faults")
        print(
            f"  {contestant:<15} per candle: {whole:.2f} us the whole writer, {later:.2f} us at the later calls' rate"
        )
    lua = figures["lua-batch"]
    for other in ("ceiling", "ceiling-checked"):
        whole, later = figures[other]
        print(
            f"ratio lua-batch / {other}: {lua[0] / whole:.2f}x the whole writer, {lua[1] / later:.2f}x the later calls"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())

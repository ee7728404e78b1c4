"""``python -m benchmarks.rollup_profile``: the roll-up ratio and its floor, in server instructions (callgrind).

``make bench``'s roll-up target (``rollup_server_vs_lua_batch``) is ``lua-batch-rollup``'s
server time per source candle over ``lua-batch``'s. Its floor (``rollup_floor``) is
``lua-batch``'s time plus what ``floor-rollup`` adds to the ``floor``'s, over ``lua-batch``'s:
``floor-rollup`` makes the same roll-up reads (the library's own) and target writes, each write
cut to ``floors/required.lua``'s commands. Those runs last half a second each, and commandstats
counts the time a command was descheduled too, so the ratio moved by up to 1.8x between
repeats on a noisy day.

This writes the same four contestants' feeds at W=1 (the quick feed, batches of 100, one
library client, as ``make bench``'s W=1 writer does), each into its own private server
(``callgrind.callgrind_server``: ``redis-server`` on PATH, else the pip-shipped one) run under
``valgrind --tool=callgrind``, collecting only inside the commands ``make bench`` counts
(EVALSHA, EVAL, ZCOUNT, ZREVRANGEBYSCORE): the commands' own work and replies, not the dispatch
and I/O every call shares. The counts do not move with the machine's load; they move by up to
1% between runs, as each server hashes with a seed of its own.

It prints, per contestant, the instructions per source candle and the calls of each counted
command, then the ratio, its floor, and floor-rollup over the floor (no bound on the ratio:
a cheaper source write raises it). The floor is a floor only while ``floor-rollup`` does
``lua-batch-rollup``'s roll-up work: the same ZCOUNTs and range reads, and as many script calls
(a run where they differ fails).

``--time``: the same writes on one private server without valgrind, each contestant's
commandstats ``usec`` (what ``make bench`` measures, with its noise); ``--redis-url`` names a
server for it (FLUSHED).
"""

from __future__ import annotations

import argparse
import sys

import redis

from livermore_cache import UnifiedCandle

from .__main__ import rollup_floor, server
from .callgrind import callgrind_server
from .contestants import CACHES, ROLLUP_CONTESTANTS, Settings, as_rollup_source, write_batches
from .runner import commandstats, server_calls, server_usec
from .workload import MAX_CANDLES, FeedShape, make_feed

CONTESTANTS = ("lua-batch", "lua-batch-rollup", "floor", "floor-rollup")
COLLECTED = ("evalShaCommand", "evalCommand", "zcountCommand", "zrevrangebyscoreCommand")
"""The server functions callgrind collects inside: the commands ``make bench`` counts for these contestants."""


def _write(client: redis.Redis, contestant: str, feed: list[UnifiedCandle], settings: Settings) -> int:
    """The contestant's W=1 writer over ``feed``; the source candles written (its denominator)."""
    cache = CACHES[contestant](client, settings)
    if contestant in ROLLUP_CONTESTANTS:
        feed = [as_rollup_source(candle) for candle in feed]
    write_batches(cache, feed, settings.batch_size)
    return len(feed)


def profile(
    feed: list[UnifiedCandle], settings: Settings, url: str | None = None
) -> dict[str, dict[str, float | dict[str, int]]]:
    """Per contestant: ``cost`` per source candle (instructions, or with ``url`` commandstats usec) and ``calls``."""
    found: dict[str, dict[str, float | dict[str, int]]] = {}
    for contestant in CONTESTANTS:
        if url is not None:
            client = redis.Redis.from_url(url)
            client.flushall()
            client.script_flush()  # every contestant meets NOSCRIPT once, as on its own server
            client.config_resetstat()
            candles = _write(client, contestant, feed, settings)
            stats = commandstats(client)
            calls, cost = server_calls(contestant, stats), server_usec(contestant, stats)
            client.flushall()
            client.close()
        else:
            with callgrind_server(COLLECTED) as (client, counted):
                candles = _write(client, contestant, feed, settings)
                calls = server_calls(contestant, commandstats(client))
            cost = counted["instructions"]
        found[contestant] = {"cost": cost / candles, "calls": calls}
    rolled, floored = found["lua-batch-rollup"]["calls"], found["floor-rollup"]["calls"]
    assert isinstance(rolled, dict)
    assert isinstance(floored, dict)
    if any(rolled.get(name, 0) != floored.get(name, 0) for name in ("zcount", "zrevrangebyscore", "evalsha", "eval")):
        raise RuntimeError(f"floor-rollup did other roll-up work than lua-batch-rollup: {floored} against {rolled}")
    return found


def ratios(found: dict[str, dict[str, float | dict[str, int]]]) -> dict[str, float]:
    """The roll-up ratio, its floor (as ``rollup_floor`` takes it) and floor-rollup over the floor."""
    cost = {name: float(measured["cost"]) for name, measured in found.items()}  # type: ignore[arg-type]
    rows = [
        {"contestant": name, "writers": 1, "workload": "stream", "server_us_per_candle": value,
         "client_us_per_candle": 1.0}
        for name, value in cost.items()
    ]  # fmt: skip
    floor = rollup_floor(rows)
    assert floor is not None
    return {
        "lua-batch-rollup / lua-batch": cost["lua-batch-rollup"] / cost["lua-batch"],
        "floor (lua-batch + floor-rollup - floor) / lua-batch": floor,
        "floor-rollup / floor": cost["floor-rollup"] / cost["floor"],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.rollup_profile", description=__doc__)
    parser.add_argument("--seed", type=int, default=1, help="feed seed (default 1)")
    parser.add_argument("--symbols", type=int, default=8)
    parser.add_argument("--timestamps", type=int, default=250)
    parser.add_argument("--updates", type=int, default=4)
    parser.add_argument("--batch-size", type=int, default=100)
    parser.add_argument("--time", action="store_true", help="commandstats usec on one server, no valgrind")
    parser.add_argument("--redis-url", help="with --time: an existing server (it is FLUSHED)")
    args = parser.parse_args(argv)
    shape = FeedShape(symbols=args.symbols, timestamps=args.timestamps, updates_per_timestamp=args.updates)
    feed = make_feed(shape, args.seed)
    settings = Settings(ttl_seconds=86400, max_candles=max(shape.timestamps, MAX_CANDLES), batch_size=args.batch_size)
    unit = "us (commandstats)" if args.time else "instructions (callgrind)"
    print(f"roll-ups at W=1: {len(feed)} updates, seed {args.seed}, batch {args.batch_size}; server {unit}")
    if args.time:
        with server(args.redis_url) as (url, where):
            print(f"  server: {where}")
            found = profile(feed, settings, url)
    else:
        found = profile(feed, settings)
    for contestant, measured in found.items():
        calls = ", ".join(f"{name} {count}" for name, count in measured["calls"].items())  # type: ignore[union-attr]
        print(f"  {contestant:17s} {measured['cost']:12,.2f} per source candle; calls: {calls}")
    for name, ratio in ratios(found).items():
        print(f"  {name}: {ratio:.3f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())

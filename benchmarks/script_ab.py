"""``python -m benchmarks.script_ab OLD.lua [NEW.lua]``: two versions of versioned_write.lua, same calls, one run.

Both scripts get exactly the calls ``make bench``'s lua-batch contestant sends
(the quick feed, planned by the library: the same dedupe and ARGV), each into
its own database, interleaved batch by batch, so machine noise hits both alike.
Per shape it prints each script's server time per call and per candle sent
(INFO commandstats, ``usec`` of EVALSHA, which includes the commands the script
ran) and the ``redis.call``s per call (the inner commands' own ``calls``). The
replies and final sets of the two databases are compared: a difference fails.
NEW defaults to the checkout's ``lua/versioned_write.lua``.
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

import redis

from livermore_cache import UnifiedCandle
from livermore_cache.candles import encode_candle
from livermore_cache.plans.candles import plan_write
from livermore_cache.scripts import script_source
from tools.servers.discovery import find_server

from .callgrind import callgrind_server
from .runner import commandstats, prefill
from .workload import EXCHANGE_ID, MAX_CANDLES, USER_ID, FeedShape, deal, make_feed

INNER = (
    "zrangebyscore",
    "zrange",
    "zadd",
    "zrem",
    "expire",
    "zremrangebyrank",
    "zcard",
    "exists",
    "publish",
    "pexpire",
)


def batches(feed: list[UnifiedCandle], writers: int, size: int) -> list[list[UnifiedCandle]]:
    """The batches W writers send, in the order a fair interleaving of the writers would send them."""
    shares = deal(feed, writers)
    per_writer = [[share[i : i + size] for i in range(0, len(share), size)] for share in shares]
    out: list[list[UnifiedCandle]] = []
    for step in range(max(len(p) for p in per_writer)):
        out.extend(p[step] for p in per_writer if step < len(p))
    return out


CEILING = "ZADD"
"""In place of a script: the ceiling's plain ZADD pipeline (one multi-member ZADD per key per batch)."""
FLOORS = Path(__file__).parent / "floors"


def run_shape(
    url: str, scripts: list[str], feed: list[UnifiedCandle], writers: int, size: int, full: bool, compared: int
) -> list[dict[str, float]]:
    """Per script: usec, calls, candles sent, inner calls; interleaved per batch. The first ``compared`` must agree."""
    base = url.rsplit("/", 1)[0] if url.count("/") > 2 else url
    clients = [redis.Redis.from_url(f"{base}/{10 + i}") for i in range(len(scripts))]
    admin = clients[0]
    registered = [c.register_script(s if s != CEILING else "return 0") for c, s in zip(clients, scripts, strict=True)]
    symbols = sorted({c.symbol for c in feed})
    for c in clients:
        c.flushdb()
        if full:
            prefill(c, symbols, MAX_CANDLES)
    totals = [{"usec": 0.0, "calls": 0.0, "sent": 0.0, "inner": 0.0, "candles": 0.0} for _ in scripts]
    for batch in batches(feed, writers, size):
        replies = []
        for index, (client, script) in enumerate(zip(clients, registered, strict=True)):
            plan = plan_write(USER_ID, EXCHANGE_ID, batch, versioned=True, ttl_seconds=86400, max_candles=MAX_CANDLES)
            admin.config_resetstat()
            pipe = client.pipeline(transaction=False)
            sent = 0
            if scripts[index] == CEILING:
                by_key: dict[str, dict[bytes, int]] = {}
                for call in plan.calls:
                    by_key[call.key] = {encode_candle(c): c.timestamp for c in call.candles}
                for key, mapping in by_key.items():
                    pipe.zadd(key, mapping)
                    sent += len(mapping)
                pipe.execute()
                found = commandstats(admin)
                t = totals[index]
                t["usec"] += found.get("zadd", (0, 0))[1]
                t["calls"] += len(by_key)
                t["sent"] += sent
                t["candles"] += len(batch)
                t["inner"] += len(by_key)
                continue
            for call in plan.calls:
                args = call.args()
                sent += len(call.sent)
                script(keys=[call.key], args=list(args), client=pipe)
            replies.append(pipe.execute())
            found = commandstats(admin)
            t = totals[index]
            t["usec"] += found.get("evalsha", (0, 0))[1] + found.get("eval", (0, 0))[1]
            t["calls"] += len(plan.calls)
            t["sent"] += sent
            t["candles"] += len(batch)
            t["inner"] += sum(found.get(name, (0, 0))[0] for name in INNER)
        if any(r != replies[0] for r in replies[:compared]):
            raise AssertionError(f"replies differ: {replies}")
    sets = [[c.zrange(k, 0, -1, withscores=True) for k in sorted(c.keys("candles:*"))] for c in clients[:compared]]
    if any(s != sets[0] for s in sets):
        raise AssertionError("the final sets differ")
    for c in clients:
        c.flushdb()
        c.close()
    return totals


def instructions(
    script: str, feed: list[UnifiedCandle], writers: int, size: int, full: bool, template: redis.Redis
) -> dict[str, float]:
    """Instructions the server executes inside EVALSHA (or, for the ceiling, inside ZADD), counted by callgrind.

    A private server runs under ``valgrind --tool=callgrind`` (``callgrind.callgrind_server``),
    collecting only inside ``evalShaCommand`` (``zaddCommand`` for the ceiling): the command's own
    work and its reply, not the dispatch and I/O both kinds of call share. Counts repeat to within
    1% whatever else the machine runs. Full keys are copied in by DUMP/RESTORE from ``template`` (no ZADD counted).
    """
    toggle = "zaddCommand" if script == CEILING else "evalShaCommand"
    with callgrind_server([toggle], keep_env="SCRIPT_AB_KEEP") as (client, counted):
        if full:
            for key in template.keys("candles:*"):
                client.restore(key, 0, template.dump(key))  # type: ignore[arg-type]
        sha = "" if script == CEILING else str(client.script_load(script))
        totals = {"calls": 0.0, "sent": 0.0, "candles": 0.0}
        for batch in batches(feed, writers, size):
            plan = plan_write(USER_ID, EXCHANGE_ID, batch, versioned=True, ttl_seconds=86400, max_candles=MAX_CANDLES)
            pipe = client.pipeline(transaction=False)
            for call in plan.calls:
                if script == CEILING:
                    mapping = {encode_candle(c): c.timestamp for c in call.candles}
                    pipe.zadd(call.key, mapping)
                    totals["sent"] += len(mapping)
                else:
                    args = call.args()
                    pipe.evalsha(sha, 1, call.key, *args)
                    totals["sent"] += len(call.sent)
                totals["calls"] += 1
            pipe.execute()
            totals["candles"] += len(batch)
    totals["instructions"] = float(counted["instructions"])
    return totals


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.script_ab", description=__doc__)
    parser.add_argument("scripts", nargs="+", type=Path, help="versioned_write.lua versions (the checkout's is added)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--redis-url")
    parser.add_argument(
        "--callgrind", action="store_true", help="count the server's instructions (valgrind) instead of timing"
    )
    parser.add_argument(
        "--floors",
        action="store_true",
        help="also the ceiling's ZADD pipeline and the floor scripts in benchmarks/floors",
    )
    args = parser.parse_args(argv)
    sources = [p.read_text() for p in args.scripts]
    names = [str(p) for p in args.scripts]
    if len(sources) == 1:
        sources.append(script_source("versioned_write"))
        names.append("lua/versioned_write.lua")
    compared = len(sources)
    if args.floors:
        for path in sorted(FLOORS.glob("*.lua")):
            sources.append(path.read_text())
            names.append(f"floor: {path.name}")
        sources.append(CEILING)
        names.append("ceiling: plain ZADD pipeline")
    feed = make_feed(FeedShape(symbols=8, timestamps=250, updates_per_timestamp=4), args.seed)
    shapes = [("stream W=1", 1, 100, False), ("stream W=16", 16, 100, False), ("full keys W=1", 1, 100, True),
              ("batch 1000 W=1", 1, 1000, False)]  # fmt: skip

    def go(url: str) -> None:
        ceiling = redis.Redis.from_url(url)
        if args.callgrind:
            ceiling.flushdb()
            prefill(ceiling, sorted({c.symbol for c in feed}), MAX_CANDLES)
            for title, writers, size, full in shapes:
                print(f"== {title}, batch {size}: server instructions (callgrind)")
                first = None
                for name, source in zip(names, sources, strict=True):
                    t = instructions(source, feed, writers, size, full, ceiling)
                    per_call, per_candle = t["instructions"] / t["calls"], t["instructions"] / t["candles"]
                    ratio = "" if first is None else f"  ({per_candle / first:.2f}x of the first)"
                    first = first or per_candle
                    print(f"  {per_call:9,.0f} instr/call  {t['instructions'] / t['sent']:7,.0f} /sent candle  "
                          f"{per_candle:7,.0f} /input candle  {t['sent'] / t['calls']:5.1f} sent/call  {name}{ratio}")  # fmt: skip
            ceiling.flushdb()
            ceiling.close()
            return
        for title, writers, size, full in shapes:
            runs = [run_shape(url, sources, feed, writers, size, full, compared) for _ in range(args.repeats)]
            print(f"== {title}, batch {size} ({args.repeats} repeats, median; both scripts interleaved per batch)")
            first = None
            for i, name in enumerate(names):
                per_call = statistics.median(r[i]["usec"] / r[i]["calls"] for r in runs)
                per_sent = statistics.median(r[i]["usec"] / r[i]["sent"] for r in runs)
                per_input = statistics.median(r[i]["usec"] / r[i]["candles"] for r in runs)
                inner = runs[0][i]["inner"] / runs[0][i]["calls"]
                sent = runs[0][i]["sent"] / runs[0][i]["calls"]
                ratio = "" if first is None else f"  ({per_call / first:.2f}x of the first)"
                first = first or per_call
                print(f"  {per_call:7.2f} us/call  {per_sent:5.2f} us/sent candle  {per_input:5.2f} us/input candle  "
                      f"{inner:4.2f} redis.calls/call  {sent:5.1f} candles sent/call  {name}{ratio}")  # fmt: skip
        ceiling.close()

    if args.redis_url:
        go(args.redis_url)
    else:
        with find_server() as found:
            print(f"server: {found.description}")
            go(found.url)
    return 0


if __name__ == "__main__":
    sys.exit(main())

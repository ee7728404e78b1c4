"""``python -m benchmarks``: the concurrent-writer benchmark (see ``--help``)."""

from __future__ import annotations

import argparse
import contextlib
import os
import platform
import random
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import redis

from tests.servers import find_server

from .contestants import CONTESTANTS, Settings
from .report import table, write_chart, write_json
from .runner import round_trips, run
from .workload import FeedShape, highest_sequences, make_feed

MODES = {
    "quick": {
        "writers": [1, 4, 16],
        "shape": FeedShape(symbols=8, timestamps=250, updates_per_timestamp=4),
        "rtt": 2000,
    },
    "full": {
        "writers": [1, 2, 4, 8, 16],
        "shape": FeedShape(symbols=8, timestamps=1000, updates_per_timestamp=5),
        "rtt": 5000,
    },
}
TARGETS_US = {
    "round_trip_ratio": 1.3,
    "batch_vs_ceiling": 0.5,
    "server_us_per_candle": 2.5,
    "client_us_per_candle": 2.5,
}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description=(
            "Concurrent writers racing on the same candles: today's read-then-write (seed), WATCH/MULTI (watch), "
            "the library's atomic script per update (lua) and in batches (lua-batch), the asyncio facade, and an "
            "unversioned ZADD ceiling. Starts a private Redis unless REDIS_URL (or --redis-url) names one."
        ),
    )
    parser.add_argument("--mode", choices=sorted(MODES), default="quick", help="quick: about a minute; full: every W")
    parser.add_argument("--writers", help="comma-separated writer counts (default: by mode)")
    parser.add_argument(
        "--contestants", default=",".join(CONTESTANTS), help="comma-separated, from: " + ", ".join(CONTESTANTS)
    )
    parser.add_argument("--batch-size", type=int, default=100, help="updates per batch for lua-batch and ceiling")
    parser.add_argument("--seed", type=int, help="feed seed (default: random, printed so a run can be repeated)")
    parser.add_argument("--symbols", type=int, help="series in the feed (default: by mode)")
    parser.add_argument("--timestamps", type=int, help="candle timestamps per series (default: by mode)")
    parser.add_argument("--updates", type=int, help="updates per candle (default: by mode)")
    parser.add_argument("--redis-url", default=os.environ.get("REDIS_URL"), help="an existing server (it is FLUSHED)")
    parser.add_argument("--out", type=Path, default=Path("bench-results"), help="where JSON and PNG go")
    parser.add_argument("--no-chart", action="store_true", help="skip the PNG")
    return parser.parse_args(argv)


@contextlib.contextmanager
def server(url: str | None) -> Iterator[tuple[str, str]]:
    if url:
        yield url, f"REDIS_URL={url}"
        return
    os.environ.pop("REDIS_URL", None)
    with find_server() as found:
        yield found.url, f"[{found.backend}] {found.description}"


def redis_benchmark_zadd(url: str) -> float | None:
    """ZADD requests per second from redis-benchmark against the same server, where it is on PATH."""
    binary = shutil.which("redis-benchmark")
    parsed = urlparse(url)
    if not binary or parsed.password or parsed.scheme != "redis":
        return None
    out = subprocess.run(
        [binary, "-h", parsed.hostname or "127.0.0.1", "-p", str(parsed.port or 6379), "-t", "zadd", "-n", "100000", "-q"],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    found = re.findall(r"ZADD: ([\d.]+) requests per second", out.stdout.replace("\r", "\n"))
    return float(found[-1]) if found else None


def evaluate(result: dict[str, Any]) -> list[dict[str, Any]]:
    """Each target of the issue with the measured figure."""
    rows = result["rows"]

    def by(name: str) -> list[dict[str, Any]]:
        return [r for r in rows if r["contestant"] == name]

    targets = []
    atomic = by("lua") + by("lua-batch") + by("lua-async") + by("lua-batch-async")
    if atomic:
        bad = sum(r["stale"] + r["duplicates"] for r in atomic)
        seed = ", ".join(f"W={r['writers']}: {r['stale']}" for r in by("seed")) or "not run"
        targets.append({"target": "lua/lua-batch: zero stale and zero duplicate timestamps at every W",
                        "measured": f"{bad} stale+duplicate over {len(atomic)} runs (seed stale: {seed})", "met": bad == 0})  # fmt: skip
    ratio = result["if_newer_rtt_us"] / result["zadd_rtt_us"]
    targets.append({"target": "add_candle_if_newer round trip <= 1.3 x plain ZADD",
                    "measured": f"{result['if_newer_rtt_us']:.1f} us / {result['zadd_rtt_us']:.1f} us = {ratio:.2f}x",
                    "met": ratio <= TARGETS_US["round_trip_ratio"]})  # fmt: skip
    pairs = [(b, c) for b in by("lua-batch") for c in by("ceiling") if b["writers"] == c["writers"]]
    if pairs:
        ratios = [b["writes_per_s"] / c["writes_per_s"] for b, c in pairs]
        targets.append({"target": "lua-batch >= 50% of ceiling throughput",
                        "measured": ", ".join(f"W={b['writers']}: {q:.0%}" for (b, _), q in zip(pairs, ratios, strict=True)),
                        "met": min(ratios) >= TARGETS_US["batch_vs_ceiling"]})  # fmt: skip
    if by("lua-batch"):
        server_cost = max(r["server_us_per_candle"] for r in by("lua-batch"))
        client_cost = max(r["client_us_per_candle"] for r in by("lua-batch"))
        targets.append({"target": "server cost of the batched versioned write <= 2.5 us/candle",
                        "measured": f"{server_cost:.2f} us/candle (worst W)", "met": server_cost <= TARGETS_US["server_us_per_candle"]})  # fmt: skip
        targets.append({"target": "client CPU in lua-batch <= 2.5 us/candle",
                        "measured": f"{client_cost:.2f} us/candle (worst W)", "met": client_cost <= TARGETS_US["client_us_per_candle"]})  # fmt: skip
    publishing = by("lua-publish") + by("lua-publish-10")
    if publishing:
        lost = sum(r["events_lost"] for r in publishing)
        base = {r["writers"]: r["server_us_per_candle"] for r in by("lua-batch")}
        costs = ", ".join(
            f"{r['contestant']} W={r['writers']}: {r['server_us_per_candle']:.2f} us/candle"
            + (f" (lua-batch {base[r['writers']]:.2f})" if r["writers"] in base else "")
            for r in publishing
        )
        targets.append({"target": "lua-publish: every write that wins reaches every subscriber (cost of publishing shown)",
                        "measured": f"{lost} events lost; {costs}", "met": lost == 0})  # fmt: skip
    return targets


def _exit_on_sigterm(signum: int, frame: object) -> None:
    """SIGTERM unwinds like Ctrl-C, so the private server and the writers are stopped on the way out."""
    raise SystemExit(128 + signum)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _exit_on_sigterm)
    mode = MODES[args.mode]
    base: FeedShape = mode["shape"]  # type: ignore[assignment]
    shape = FeedShape(
        symbols=args.symbols or base.symbols,
        timestamps=args.timestamps or base.timestamps,
        updates_per_timestamp=args.updates or base.updates_per_timestamp,
    )
    writer_counts = [int(w) for w in args.writers.split(",")] if args.writers else list(mode["writers"])  # type: ignore[call-overload]
    contestants = [c.strip() for c in args.contestants.split(",") if c.strip()]
    unknown = set(contestants) - set(CONTESTANTS)
    if unknown:
        print(f"unknown contestants: {', '.join(sorted(unknown))}", file=sys.stderr)
        return 2
    seed = args.seed if args.seed is not None else random.randrange(2**31)
    settings = Settings(ttl_seconds=86400, max_candles=max(shape.timestamps, 1), batch_size=args.batch_size)
    started_at = datetime.now(UTC)
    stamp = started_at.strftime("%Y%m%dT%H%M%SZ")

    print(f"seed {seed} (repeat with --seed {seed}); mode {args.mode}")
    feed = make_feed(shape, seed)
    highest = highest_sequences(feed)
    symbols = [shape.symbol(i) for i in range(shape.symbols)]
    print(f"feed: {len(feed):,} updates for {len(highest):,} candles ({shape.symbols} series x {shape.timestamps} timestamps "
          f"x {shape.updates_per_timestamp} updates, window {shape.window}, {shape.redelivery:.0%} re-delivered)")  # fmt: skip

    with server(args.redis_url) as (url, description):
        with redis.Redis.from_url(url) as client:
            version = str(client.info("server").get("redis_version") or client.info("server").get("valkey_version"))
        print(f"server: {description}, version {version}")
        print("measuring round trips (plain ZADD vs add_candle_if_newer, interleaved) ...", flush=True)
        zadd_rtt, lua_rtt = round_trips(url, int(mode["rtt"]))  # type: ignore[call-overload]
        print(f"  ZADD {zadd_rtt:.1f} us, add_candle_if_newer {lua_rtt:.1f} us")
        rows = []
        total = len(contestants) * len(writer_counts)
        for index, (contestant, writers) in enumerate(((c, w) for c in contestants for w in writer_counts), 1):
            print(f"[{index}/{total}] {contestant:<16} W={writers:<3} ", end="", flush=True)
            began = time.monotonic()
            row = run(url, contestant, writers, feed, highest, symbols, settings)
            rows.append(row.as_dict())
            print(f"{row.writes_per_s:>10,.0f} writes/s  stale {row.stale:<5} dupes {row.duplicates:<5} "
                  f"({time.monotonic() - began:.1f}s)", flush=True)  # fmt: skip
        print("redis-benchmark ZADD ...", flush=True)
        benchmark_zadd = redis_benchmark_zadd(url)

    result: dict[str, Any] = {
        "seed": seed,
        "redis_version": version,
        "started_at": started_at.isoformat(),
        "mode": args.mode,
        "zadd_rtt_us": zadd_rtt,
        "if_newer_rtt_us": lua_rtt,
        "redis_benchmark_zadd_per_s": benchmark_zadd,
        "batch_size": args.batch_size,
        "server": description,
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version()},
        "stream": {
            "updates": len(feed),
            "timestamps_total": len(highest),
            "symbols": shape.symbols,
            "timestamps": shape.timestamps,
            "updates_per_timestamp": shape.updates_per_timestamp,
            "window": shape.window,
            "redelivery": shape.redelivery,
        },
        "command": "python -m benchmarks " + " ".join(sys.argv[1:] if argv is None else argv),
        "rows": rows,
    }
    result["targets"] = evaluate(result)

    print()
    print(table(rows))
    print()
    print(f"plain ZADD round trip {zadd_rtt:.1f} us; add_candle_if_newer {lua_rtt:.1f} us", end="")
    print(f"; redis-benchmark ZADD {benchmark_zadd:,.0f}/s" if benchmark_zadd else "")
    for target in result["targets"]:
        print(f"  [{'met' if target['met'] else 'MISSED'}] {target['target']}: {target['measured']}")
    paths = write_json(result, args.out, stamp)
    chart = "chart skipped" if args.no_chart else write_chart(result, args.out, stamp)
    print("wrote " + ", ".join(str(p) for p in paths))
    print(chart if isinstance(chart, str) else "wrote " + ", ".join(str(p) for p in chart))
    return 0


if __name__ == "__main__":
    sys.exit(main())

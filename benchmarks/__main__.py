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
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import redis

from tools.servers.discovery import find_server

from . import tracing
from .contestants import CONTESTANTS, Settings
from .report import table, write_chart, write_json
from .runner import round_trips, run
from .workload import (
    MAX_CANDLES,
    TICK_MS,
    WORKLOADS,
    FeedShape,
    highest_sequences,
    make_feed,
    make_ticker_feed,
    newest_tickers,
)


@dataclass(frozen=True)
class Mode:
    writers: tuple[int, ...]
    shape: FeedShape
    rtt_samples: int
    repeats: int = 3


MODES = {
    "quick": Mode(
        writers=(1, 4, 16), shape=FeedShape(symbols=8, timestamps=250, updates_per_timestamp=4), rtt_samples=2000
    ),
    "full": Mode(
        writers=(1, 2, 4, 8, 16), shape=FeedShape(symbols=8, timestamps=1000, updates_per_timestamp=5), rtt_samples=5000
    ),
}
TARGETS = {
    # Ratios, lua-batch (or add_candle_if_newer) over the ceiling (or plain ZADD), measured in one run
    # (issue 19). Each is a ceiling on the ratio except the throughput ones, floors. Every ratio is taken
    # within one repeat (the two contestants' runs interleaved), and reported as the median over repeats.
    "server_vs_ceiling": 1.5,
    "server_vs_ceiling_full_keys": 1.5,
    "server_vs_ceiling_batch_1000": 1.0,
    "server_vs_ceiling_w16": 3.0,
    "round_trip_vs_zadd": 1.25,
    "throughput_vs_ceiling": 0.75,
    "throughput_vs_ceiling_w16": 0.60,
    "client_cpu_vs_ceiling": 1.0,
    "rollup_server_vs_lua_batch": 2.0,
}
FLOORS = {"throughput_vs_ceiling", "throughput_vs_ceiling_w16"}
REPEATED = frozenset({"lua-batch", "ceiling", "lua-batch-rollup", "floor", "floor-rollup", "ceiling-checked"})
"""The contestants whose rows enter a ratio target: run ``--repeats`` times, interleaved with the rest."""
MANY_WRITERS = 16
"""The W of server_vs_ceiling_w16 and throughput_vs_ceiling_w16 in quick and full mode: they take the most
writers run (``--writers``), and throughput_vs_ceiling every fewer W."""


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description=(
            "Concurrent writers racing on the same candles: today's read-then-write (seed), WATCH/MULTI (watch), "
            "the library's atomic script per update (lua) and in batches (lua-batch), the asyncio facade, and an "
            "unversioned ZADD ceiling; in three workloads: the stream into empty keys, into full keys (every new "
            "timestamp trims), and in batches of 1,000. Then the ticker race: the Node service's plain SETEX "
            "(seed-ticker) beside set_ticker_if_newer (ticker-if-newer, and in batches: ticker-if-newer-batch) on "
            "an out-of-order ticker feed. Starts a private Redis unless REDIS_URL (or --redis-url) names one."
        ),
    )
    parser.add_argument(
        "--mode", choices=sorted(MODES), default="quick", help="quick: two to three minutes; full: every W"
    )
    parser.add_argument("--writers", help="comma-separated writer counts (default: by mode)")
    parser.add_argument(
        "--workloads",
        default=",".join(WORKLOADS),
        help="comma-separated, from: "
        + "; ".join(
            f"{w.name} ({w.title}, {', '.join(w.contestants) if w.contestants else 'every candle contestant'})"
            for w in WORKLOADS.values()
        ),
    )
    parser.add_argument(
        "--contestants", default=",".join(CONTESTANTS), help="comma-separated, from: " + ", ".join(CONTESTANTS)
    )
    parser.add_argument(
        "--batch-size", type=int, default=100, help="updates per batch for lua-batch, ceiling and ticker-if-newer-batch"
    )
    parser.add_argument(
        "--repeats",
        type=int,
        help="runs of each contestant that enters a ratio target (lua-batch, ceiling, ceiling-checked, "
        "lua-batch-rollup, floor, floor-rollup) and of the round trips, interleaved; each ratio is taken within "
        "a repeat and reported as the median (default: 3)",
    )
    parser.add_argument("--seed", type=int, help="feed seed (default: random, printed so a run can be repeated)")
    parser.add_argument("--symbols", type=int, help="series in the feed (default: by mode)")
    parser.add_argument("--timestamps", type=int, help="candle timestamps per series (default: by mode)")
    parser.add_argument(
        "--updates", type=int, help="updates per candle (default: by mode); tickers: timestamps x updates per symbol"
    )
    parser.add_argument("--redis-url", default=os.environ.get("REDIS_URL"), help="an existing server (it is FLUSHED)")
    parser.add_argument("--out", type=Path, default=Path("bench-results"), help="where JSON and PNG go")
    parser.add_argument("--no-chart", action="store_true", help="skip the PNG")
    parser.add_argument("--no-tracing", action="store_true", help="skip the tracing rows (benchmarks.tracing)")
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


def _target(name: str, text: str, ratio: float | None, measured: str) -> dict[str, Any]:
    limit = TARGETS[name]
    floor = name in FLOORS
    bound = f">= {limit:.2f}x" if floor else f"<= {limit:.2f}x"
    met = None if ratio is None else (ratio >= limit if floor else ratio <= limit)
    shown = f"{measured} = {ratio:.2f}x (target {bound})" if ratio is not None else f"not measured: {measured}"
    return {"name": name, "target": text, "measured": shown, "ratio": ratio, "limit": limit, "floor": floor, "met": met}


def rollup_ratios(
    rows: list[dict[str, Any]], contestant: str = "lua-batch-rollup", base_contestant: str = "lua-batch"
) -> dict[str, Any]:
    """lua-batch-rollup's server and client time per source candle over lua-batch's, in the stream, from one run.

    ``rollup_server_ratio`` and ``rollup_client_ratio`` at the fewest writers both ran (W=1
    by default), ``rollup_ratios`` at each W; {} when either contestant did not run. With
    ``floor-rollup`` over ``floor``: the roll-up target's floor (``rollup_floor``).
    """
    mine = {r["writers"]: r for r in rows if r["contestant"] == contestant and r["workload"] == "stream"}
    base = {r["writers"]: r for r in rows if r["contestant"] == base_contestant and r["workload"] == "stream"}
    common = [w for w in sorted(set(mine) & set(base)) if base[w]["server_us_per_candle"] > 0]
    if not common:
        return {}
    per_w = {
        w: {
            "server": mine[w]["server_us_per_candle"] / base[w]["server_us_per_candle"],
            "client": mine[w]["client_us_per_candle"] / base[w]["client_us_per_candle"]
            if base[w]["client_us_per_candle"] > 0
            else 0.0,
        }
        for w in common
    }
    ratios: dict[str, Any] = {
        "rollup_server_ratio": per_w[common[0]]["server"],
        "rollup_client_ratio": per_w[common[0]]["client"],
        "rollup_writers": common[0],
        "rollup_ratios": per_w,
    }
    return ratios


NO_FLOOR = frozenset({"client_cpu_vs_ceiling"})
"""Ratio targets the ``floor`` contestant does not bound: its client is lua-batch's own (``client_floor`` is
the client target's)."""


def floor_ratios(result: dict[str, Any]) -> dict[str, float]:
    """Each target's ratio for the ``floor`` contestant in lua-batch's place: what the rules' commands alone reach.

    The floor is lua-batch's own client with ``benchmarks/floors/required.lua`` in versioned_write.lua's
    place: the commands versioned_write.lua makes when every candle wins (the read, ZREM of what it
    read, ZADD, EXPIRE, the trim, the post-trim read), with no decisions. A target beyond its floor (a
    ceiling below it, a throughput above it) cannot be met by any script that keeps the rules on this
    server; the round trip's floor is ``floor_rtt_us``. The ratios are ``ratio_targets``', the same
    formulas as lua-batch's, so the two are comparable by construction.
    """
    return {
        t["name"]: t["ratio"]
        for t in ratio_targets(result, "floor", "floor_rtt_us")
        if t["ratio"] is not None and t["name"] not in NO_FLOOR
    }


def client_floor(rows: list[dict[str, Any]]) -> float | None:
    """``client_cpu_vs_ceiling``'s floor: ceiling-checked's client CPU per candle over the ceiling's, at lua-batch's
    worst W (the stream), or None without those rows.

    ceiling-checked is the ceiling with each candle checked by the library's rule functions first,
    as every write must be (a bad candle is refused before anything is sent): no client of the
    rules can do less on this feed, so a client target below this ratio is beyond reach.
    """

    def by(name: str) -> dict[int, dict[str, Any]]:
        return {r["writers"]: r for r in rows if r["contestant"] == name and r["workload"] == "stream"}

    mine, ceiling, checked = by("lua-batch"), by("ceiling"), by("ceiling-checked")
    common = [w for w in sorted(set(mine) & set(ceiling) & set(checked)) if ceiling[w]["client_us_per_candle"] > 0]
    if not common:
        return None
    worst = max(common, key=lambda w: mine[w]["client_us_per_candle"] / ceiling[w]["client_us_per_candle"])
    return float(checked[worst]["client_us_per_candle"] / ceiling[worst]["client_us_per_candle"])


def rollup_floor(rows: list[dict[str, Any]]) -> float | None:
    """``rollup_server_vs_lua_batch``'s floor, at the W of lua-batch-rollup's ratio, or None without its rows:
    lua-batch's server time per source candle plus what the roll-ups add at their floor, over lua-batch's.

    What the roll-ups add at their floor is floor-rollup's time minus the floor's: the floor
    (``benchmarks/floors/required.lua`` in versioned_write.lua's place) with lua-batch-rollup's
    roll-ups, so the same roll-up reads (the library's own) and the same target writes, one script
    call per target key as a Cluster needs, each reduced to the commands the rules cannot do
    without. The source writes stay lua-batch's: the target is the roll-ups' cost against the
    library's own writes, and a cheaper source write only raises that ratio (floor-rollup over the
    floor is higher than this floor, and no bound on the library's ratio).
    """

    def by(name: str) -> dict[int, float]:
        return {
            r["writers"]: float(r["server_us_per_candle"])
            for r in rows
            if r["contestant"] == name and r["workload"] == "stream"
        }

    mine = rollup_ratios(rows)
    base, floor, rolled = by("lua-batch"), by("floor"), by("floor-rollup")
    if not mine:
        return None
    w = mine["rollup_writers"]
    if w not in floor or w not in rolled:
        return None
    return (base[w] + rolled[w] - floor[w]) / base[w]


FLOOR_TEXT = {
    "client_cpu_vs_ceiling": "floor (the ceiling with the library's checks of each candle, ceiling-checked)",
    "rollup_server_vs_lua_batch": (
        "floor (lua-batch plus floor-rollup's roll-up cost over the floor's: required.lua for the target writes)"
    ),
}
"""How a target's floor is described, where it is not the ``floor`` contestant's."""


def beyond(limit: float, floor: float, at_least: bool) -> bool:
    """Whether a target lies beyond its floor: a ceiling below the floor's ratio, or a throughput above it."""
    return floor < limit if at_least else floor > limit


def ratio_targets(result: dict[str, Any], contestant: str, rtt_key: str) -> list[dict[str, Any]]:
    """The ratio targets for ``contestant`` against the ceiling (``rtt_key``: its round trip in ``result``).

    ``evaluate`` takes them for lua-batch, ``floor_ratios`` for the floor.
    """
    rows = result["rows"]
    batch = result["batch_size"]

    def by(name: str, workload: str = "stream") -> dict[int, dict[str, Any]]:
        return {r["writers"]: r for r in rows if r["contestant"] == name and r["workload"] == workload}

    def one_writer(workload: str) -> tuple[dict[str, Any], dict[str, Any]] | None:
        """The contestant's and the ceiling's rows at W=1 (else the fewest writers both ran)."""
        mine, theirs = by(contestant, workload), by("ceiling", workload)
        common = sorted(set(mine) & set(theirs))
        return (mine[common[0]], theirs[common[0]]) if common else None

    targets = []
    for name, workload, shape in (
        ("server_vs_ceiling", "stream", f"the stream, batch {batch}"),
        ("server_vs_ceiling_full_keys", "full-keys", f"full keys, batch {batch}"),
        ("server_vs_ceiling_batch_1000", "batch-1000", "the stream, batch 1,000"),
    ):
        text = f"{contestant} server time per candle vs the ceiling's, {shape}"
        pair = one_writer(workload)
        if pair is None or pair[1]["server_us_per_candle"] <= 0:
            targets.append(_target(name, text, None, f"needs {contestant} and ceiling in the {workload} workload"))
            continue
        mine, theirs = pair
        ratio = mine["server_us_per_candle"] / theirs["server_us_per_candle"]
        measured = f"W={mine['writers']}: {mine['server_us_per_candle']:.2f} / {theirs['server_us_per_candle']:.2f} us"
        targets.append(_target(name, text, ratio, measured))

    batch_rows, ceiling_rows = by(contestant), by("ceiling")
    common = sorted(set(batch_rows) & set(ceiling_rows))
    many = common[-1] if common else MANY_WRITERS
    text = f"{contestant} server time per candle vs the ceiling's, the stream, batch {batch}, W={many}"
    if common and ceiling_rows[many]["server_us_per_candle"] > 0 and many > 1:
        mine, theirs = batch_rows[many], ceiling_rows[many]
        ratio = mine["server_us_per_candle"] / theirs["server_us_per_candle"]
        measured = f"W={many}: {mine['server_us_per_candle']:.2f} / {theirs['server_us_per_candle']:.2f} us"
        targets.append(_target("server_vs_ceiling_w16", text, ratio, measured))
    else:
        targets.append(_target("server_vs_ceiling_w16", text, None, f"needs {contestant} and ceiling at W > 1"))

    zadd, if_newer = result["zadd_rtt_us"], result.get(rtt_key)
    text = f"{'add_candle_if_newer' if contestant == 'lua-batch' else contestant} round trip vs a plain ZADD's"
    targets.append(
        _target(
            "round_trip_vs_zadd",
            f"{text} (p50, one client, back to back)",
            if_newer / zadd if if_newer and zadd > 0 else None,
            f"{if_newer:.1f} / {zadd:.1f} us" if if_newer else f"needs {rtt_key}",
        )
    )

    few = [w for w in common if w < many] or common
    text = f"{contestant} throughput vs the ceiling's at every W < {many} (the stream, batch {batch})"
    if few and all(ceiling_rows[w]["writes_per_s"] > 0 for w in common):
        ratios = {w: batch_rows[w]["writes_per_s"] / ceiling_rows[w]["writes_per_s"] for w in few}
        worst = min(ratios, key=ratios.__getitem__)
        measured = ", ".join(f"W={w}: {q:.0%}" for w, q in ratios.items()) + f"; worst W={worst}"
        targets.append(_target("throughput_vs_ceiling", text, ratios[worst], measured))
        text = f"{contestant} throughput vs the ceiling's at W={many} (the stream, batch {batch})"
        if many == 1:
            targets.append(_target("throughput_vs_ceiling_w16", text, None, "needs W > 1"))
        else:
            ratio = batch_rows[many]["writes_per_s"] / ceiling_rows[many]["writes_per_s"]
            targets.append(_target("throughput_vs_ceiling_w16", text, ratio, f"W={many}: {ratio:.0%}"))
    else:
        for name in ("throughput_vs_ceiling", "throughput_vs_ceiling_w16"):
            targets.append(_target(name, text, None, f"needs {contestant} and ceiling in the stream workload"))

    text = f"{contestant} client CPU per candle vs the ceiling's at every W (the stream, batch {batch})"
    if not common or any(ceiling_rows[w]["client_us_per_candle"] <= 0 for w in common):
        targets.append(
            _target("client_cpu_vs_ceiling", text, None, f"needs {contestant} and ceiling in the stream workload")
        )
    else:
        ratios = {w: batch_rows[w]["client_us_per_candle"] / ceiling_rows[w]["client_us_per_candle"] for w in common}
        worst = max(ratios, key=ratios.__getitem__)
        measured = ", ".join(
            f"W={w}: {batch_rows[w]['client_us_per_candle']:.2f} / {ceiling_rows[w]['client_us_per_candle']:.2f} us"
            for w in common
        )
        targets.append(_target("client_cpu_vs_ceiling", text, ratios[worst], f"{measured}; worst W={worst}"))

    return targets


def evaluate(result: dict[str, Any]) -> list[dict[str, Any]]:
    """Each target of the issue with the ratio measured in this run; ``met`` is None when its rows were not run."""
    rows = result["rows"]
    batch = result["batch_size"]
    targets = ratio_targets(result, "lua-batch", "if_newer_rtt_us")
    rollup = rollup_ratios(rows)
    text = (
        f"lua-batch-rollup (5m -> 15m, 1h, 4h, 1d) server time per source candle vs lua-batch's "
        f"(the stream, batch {batch})"
    )
    if rollup:
        measured = "; ".join(
            f"W={w}: server {q['server']:.2f}x, client {q['client']:.2f}x" for w, q in rollup["rollup_ratios"].items()
        )
        measured += f"; at W={rollup['rollup_writers']}"
        targets.append(_target("rollup_server_vs_lua_batch", text, rollup["rollup_server_ratio"], measured))
    else:
        targets.append(
            _target("rollup_server_vs_lua_batch", text, None, "needs lua-batch and lua-batch-rollup in the stream")
        )

    floors = floor_ratios(result)
    checked = client_floor(rows)
    if checked is not None:
        floors["client_cpu_vs_ceiling"] = checked
    rolled = rollup_floor(rows)
    if rolled is not None:
        floors["rollup_server_vs_lua_batch"] = rolled
    for target in targets:
        if target["name"] in floors:
            target["floor_ratio"] = floors[target["name"]]
            target["beyond_floor"] = beyond(target["limit"], floors[target["name"]], target["floor"])

    library = [r for r in rows if r["contestant"].startswith("lua")]
    seed = [r for r in rows if r["contestant"] == "seed"]
    stale = sum(r["stale"] for r in library)
    duplicates = sum(r["duplicates"] for r in library)
    losses = "; ".join(
        f"{workload}: " + ", ".join(f"W={r['writers']}: {r['stale']}" for r in seed if r["workload"] == workload)
        for workload in dict.fromkeys(r["workload"] for r in seed)
    )
    targets.append(
        {
            "name": "library_correct",
            "target": "the library's contestants (lua*): zero stale and zero duplicate timestamps in every run",
            "measured": f"{stale} stale, {duplicates} duplicates over {len(library)} runs"
            + (f" (seed's stale, for comparison: {losses})" if seed else ""),
            "ratio": None,
            "limit": 0,
            "floor": False,
            "met": stale == duplicates == 0 if library else None,
        }
    )

    ticker_rows = [r for r in rows if r["workload"] == "ticker"]
    newer = [r for r in ticker_rows if r["contestant"].startswith("ticker-if-newer")]
    by_contestant = {
        c: ", ".join(f"W={r['writers']}: {r['stale']}" for r in ticker_rows if r["contestant"] == c)
        for c in dict.fromkeys(r["contestant"] for r in ticker_rows)
    }
    stale = sum(r["stale"] for r in newer)
    targets.append(
        {
            "name": "ticker_newer_wins",
            "target": "ticker-if-newer: zero stale tickers at every W",
            "measured": (
                f"{stale} stale over {len(newer)} runs (stale of {result['tickers']['symbols']} symbols: "
                + "; ".join(f"{c} {counts}" for c, counts in by_contestant.items())
                + ")"
            )
            if newer
            else "not measured: needs ticker-if-newer in the ticker workload",
            "ratio": None,
            "limit": 0,
            "floor": False,
            "met": stale == 0 if newer else None,
        }
    )

    publishing = [r for r in rows if r["contestant"].startswith("lua-publish")]
    if publishing:
        lost = sum(r["events_lost"] for r in publishing)
        base = {
            (r["workload"], r["writers"]): r["server_us_per_candle"] for r in rows if r["contestant"] == "lua-batch"
        }
        costs = ", ".join(
            f"{r['contestant']} W={r['writers']}: {r['server_us_per_candle']:.2f} us/candle"
            + (f" (lua-batch {base[r['workload'], r['writers']]:.2f})" if (r["workload"], r["writers"]) in base else "")
            for r in publishing
        )
        targets.append(
            {
                "name": "publish_complete",
                "target": "lua-publish: every write that wins reaches every subscriber (cost of publishing shown)",
                "measured": f"{lost} events lost; {costs}",
                "ratio": None,
                "limit": 0,
                "floor": False,
                "met": lost == 0,
            }
        )
    return targets


def _median_row(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """One row for the runs of one (workload, contestant, W): the median of each measure, the worst of each check."""
    if len(runs) == 1:
        return {**runs[0], "repeats": 1}
    row = dict(runs[-1])
    for key, value in runs[0].items():
        if isinstance(value, bool) or not isinstance(value, int | float):
            continue
        values = [run[key] for run in runs]
        if key in WORST:
            row[key] = max(values)
        elif key not in SAME:
            row[key] = statistics.median(values)
    row["repeats"] = len(runs)
    row["spread"] = {key: [min(r[key] for r in runs), max(r[key] for r in runs)] for key in SPREAD}
    return row


WORST = frozenset({"stale", "duplicates", "retries", "events_lost"})
SAME = frozenset({"writers", "batch_size", "candles", "members", "subscribers", "sent_candles"})
SPREAD = ("server_us_per_candle", "server_us_per_sent_candle", "client_us_per_candle", "writes_per_s")


def evaluate_repeats(
    result: dict[str, Any], repeats: list[list[dict[str, Any]]], rtts: list[tuple[float, float, float]]
) -> list[dict[str, Any]]:
    """The targets, each ratio taken within one repeat, then the median over repeats (with the spread).

    Repeat 0 holds every row; a later one only the ``REPEATED`` contestants' rows, completed with
    repeat 0's for the others (which enter no ratio target).
    """
    per_repeat = []
    for index, rows in enumerate(repeats):
        mine = {(r["workload"], r["contestant"], r["writers"]) for r in rows}
        full = rows + [r for r in repeats[0] if (r["workload"], r["contestant"], r["writers"]) not in mine]
        zadd, if_newer, floor = rtts[min(index, len(rtts) - 1)]
        measured = {"zadd_rtt_us": zadd, "if_newer_rtt_us": if_newer, "floor_rtt_us": floor}
        per_repeat.append(evaluate({**result, "rows": full, **measured}))
    merged = evaluate(result)  # the median rows: correctness checks over every run, texts
    for target in merged:
        ratios = [
            t["ratio"] for runs in per_repeat for t in runs if t["name"] == target["name"] and t["ratio"] is not None
        ]
        if not ratios or target["ratio"] is None:
            continue
        ratio = statistics.median(ratios)
        target["ratios"] = ratios
        target["ratio"] = ratio
        target["spread"] = [min(ratios), max(ratios)]
        target["met"] = ratio >= target["limit"] if target["floor"] else ratio <= target["limit"]
        bound = f">= {target['limit']:.2f}x" if target["floor"] else f"<= {target['limit']:.2f}x"
        head = target["measured"].split(" = ")[0]
        target["measured"] = (
            f"median of {len(ratios)} = {ratio:.2f}x (runs {', '.join(f'{q:.2f}' for q in ratios)}; "
            f"spread {min(ratios):.2f}-{max(ratios):.2f}; median rows: {head}) (target {bound})"
        )
        floors = [
            t["floor_ratio"] for runs in per_repeat for t in runs if t["name"] == target["name"] and "floor_ratio" in t
        ]
        if floors:
            floor = statistics.median(floors)
            target["floor_ratio"] = floor
            target["floor_ratios"] = floors
            target["beyond_floor"] = beyond(target["limit"], floor, target["floor"])
            described = FLOOR_TEXT.get(
                target["name"], "floor (the rules' commands alone, benchmarks/floors/required.lua)"
            )
            target["measured"] += (
                f"; {described} median {floor:.2f}x "
                f"(runs {', '.join(f'{q:.2f}' for q in floors)})"
                + (": the target is beyond the floor" if target["beyond_floor"] else "")
            )
    return merged


def _exit_on_sigterm(signum: int, frame: object) -> None:
    """SIGTERM unwinds like Ctrl-C, so the private server and the writers are stopped on the way out."""
    raise SystemExit(128 + signum)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _exit_on_sigterm)
    mode = MODES[args.mode]
    base = mode.shape
    shape = FeedShape(
        symbols=args.symbols or base.symbols,
        timestamps=args.timestamps or base.timestamps,
        updates_per_timestamp=args.updates or base.updates_per_timestamp,
    )
    writer_counts = [int(w) for w in args.writers.split(",")] if args.writers else list(mode.writers)
    contestants = [c.strip() for c in args.contestants.split(",") if c.strip()]
    workload_names = [w.strip() for w in args.workloads.split(",") if w.strip()]
    for kind, names, known in (("contestants", contestants, CONTESTANTS), ("workloads", workload_names, WORKLOADS)):
        unknown = set(names) - set(known)
        if unknown:
            print(f"unknown {kind}: {', '.join(sorted(unknown))}", file=sys.stderr)
            return 2
    seed = args.seed if args.seed is not None else random.randrange(2**31)
    # The library's default max_candles: the stream never trims (its series hold fewer); full keys trim on every
    # new timestamp, and the stream's timestamps, all newer than the pre-filled ones, are never trimmed away.
    settings = Settings(ttl_seconds=86400, max_candles=max(shape.timestamps, MAX_CANDLES), batch_size=args.batch_size)
    plan = [
        (workload, contestant, writers)
        for workload in (WORKLOADS[name] for name in workload_names)
        for contestant in contestants
        if workload.runs(contestant)
        for writers in writer_counts
    ]
    started_at = datetime.now(UTC)
    stamp = started_at.strftime("%Y%m%dT%H%M%SZ")

    print(f"seed {seed} (repeat with --seed {seed}); mode {args.mode}")
    feed = make_feed(shape, seed)
    highest = highest_sequences(feed)
    symbols = [shape.symbol(i) for i in range(shape.symbols)]
    print(f"feed: {len(feed):,} updates for {len(highest):,} candles ({shape.symbols} series x {shape.timestamps} timestamps "
          f"x {shape.updates_per_timestamp} updates, window {shape.window}, {shape.redelivery:.0%} re-delivered)")  # fmt: skip

    tickers = make_ticker_feed(shape, seed)
    newest = newest_tickers(tickers)
    if any(w.tickers for w, _, _ in plan):
        print(f"ticker feed: {len(tickers):,} updates of {len(newest)} symbols ({shape.ticker_updates_per_symbol:,} "
              f"timestamps each, {TICK_MS} ms apart, every one delivered {shape.ticker_copies}x, "
              f"{shape.redelivery:.0%} once more, window {shape.window})")  # fmt: skip
    print("workloads: " + "; ".join(f"{w.name}: {w.title}" for w in dict.fromkeys(w for w, _, _ in plan)))
    with server(args.redis_url) as (url, description):
        with redis.Redis.from_url(url) as client:
            version = str(client.info("server").get("redis_version") or client.info("server").get("valkey_version"))
        print(f"server: {description}, version {version}")
        repeats = max(1, args.repeats or mode.repeats)
        print(
            f"measuring round trips (plain ZADD vs add_candle_if_newer, interleaved, {repeats} repeats) ...", flush=True
        )
        rtts = [round_trips(url, max(mode.rtt_samples // repeats, 100)) for _ in range(repeats)]
        zadd_rtt = statistics.median(z for z, _, _ in rtts)
        lua_rtt = statistics.median(q for _, q, _ in rtts)
        floor_rtt = statistics.median(f for _, _, f in rtts)
        print(
            "  " + "; ".join(f"ZADD {z:.1f} us, add_candle_if_newer {q:.1f} us, floor {f:.1f} us" for z, q, f in rtts)
        )
        # Repeat 0 runs the whole plan; each later repeat, only the contestants that enter a ratio target,
        # in the plan's order, so each repeat's pair of contestants runs close together in time.
        runs = [(0, item) for item in plan]
        for repeat in range(1, repeats):
            runs += [(repeat, item) for item in plan if item[1] in REPEATED]
        by_repeat: list[list[dict[str, Any]]] = [[] for _ in range(repeats)]
        for index, (repeat, (workload, contestant, writers)) in enumerate(runs, 1):
            print(f"[{index}/{len(runs)}] {workload.name:<10} {contestant:<21} W={writers:<3} ", end="", flush=True)
            began = time.monotonic()
            run_settings = replace(settings, batch_size=workload.batch_size or settings.batch_size)
            if workload.tickers:
                row = run(url, contestant, writers, tickers, newest, symbols, run_settings, workload)
            else:
                row = run(url, contestant, writers, feed, highest, symbols, run_settings, workload)
            by_repeat[repeat].append(row.as_dict())
            print(f"{row.writes_per_s:>10,.0f} writes/s  stale {row.stale:<5} dupes {row.duplicates:<5} "
                  f"({time.monotonic() - began:.1f}s)", flush=True)  # fmt: skip
        rows = []
        for workload, contestant, writers in plan:
            same = [
                r
                for runs_of in by_repeat
                for r in runs_of
                if (r["workload"], r["contestant"], r["writers"]) == (workload.name, contestant, writers)
            ]
            rows.append(_median_row(same))
        print("redis-benchmark ZADD ...", flush=True)
        benchmark_zadd = redis_benchmark_zadd(url)
        traced = None
        if not args.no_tracing:
            print("tracing: client CPU with no OpenTelemetry API, the no-op tracer and the SDK ...", flush=True)
            traced = tracing.measure(url, repeats=3, calls=1000 if args.mode == "quick" else 4000)

    result: dict[str, Any] = {
        "seed": seed,
        "redis_version": version,
        "started_at": started_at.isoformat(),
        "mode": args.mode,
        "zadd_rtt_us": zadd_rtt,
        "if_newer_rtt_us": lua_rtt,
        "floor_rtt_us": floor_rtt,
        "redis_benchmark_zadd_per_s": benchmark_zadd,
        "batch_size": args.batch_size,
        "max_candles": settings.max_candles,
        "workloads": {
            w.name: {"title": w.title, "prefilled": w.prefilled, "batch_size": w.batch_size or args.batch_size}
            for w in (WORKLOADS[name] for name in workload_names)
        },
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
        "tickers": {
            "updates": len(tickers),
            "symbols": len(newest),
            "timestamps_per_symbol": shape.ticker_updates_per_symbol,
            "tick_ms": TICK_MS,
            "copies": shape.ticker_copies,
            "redelivery": shape.redelivery,
            "window": shape.window,
        },
        "command": "python -m benchmarks " + " ".join(sys.argv[1:] if argv is None else argv),
        "rows": rows,
    }
    if traced is not None:
        result["tracing"] = {k: traced[k] for k in ("setups", "ratios", "repeats", "calls")}
    result["repeats"] = repeats
    result["round_trips"] = [{"zadd_rtt_us": z, "if_newer_rtt_us": q, "floor_rtt_us": f} for z, q, f in rtts]
    result["targets"] = evaluate_repeats(result, by_repeat, rtts)
    result.update(rollup_ratios(rows))
    medians = {t["name"]: t for t in result["targets"]}
    rollup_target = medians.get("rollup_server_vs_lua_batch", {})
    if rollup_target.get("ratios"):  # the median of the per-repeat ratios, as the target reports it
        result["rollup_server_ratio"] = rollup_target["ratio"]
        result["rollup_server_ratio_spread"] = rollup_target["spread"]
        clients = []
        for rows_of in by_repeat:
            mine = {(r["workload"], r["contestant"], r["writers"]) for r in rows_of}
            full = rows_of + [r for r in by_repeat[0] if (r["workload"], r["contestant"], r["writers"]) not in mine]
            found = rollup_ratios(full)
            if found:
                clients.append(found["rollup_client_ratio"])
        if clients:
            result["rollup_client_ratio"] = statistics.median(clients)
            result["rollup_client_ratio_spread"] = [min(clients), max(clients)]
    result["ratios"] = {
        t["name"]: {
            "median": t["ratio"],
            "spread": t.get("spread"),
            "runs": t.get("ratios"),
            "limit": t["limit"],
            "floor_ratio": t.get("floor_ratio"),
            "floor_runs": t.get("floor_ratios"),
            "beyond_floor": t.get("beyond_floor"),
        }
        for t in result["targets"]
        if t["name"] in TARGETS
    }

    print()
    print(table(rows))
    print()
    print(f"(rows of {', '.join(sorted(REPEATED))}: medians of {repeats} runs; srv us/sent: per candle that reached "
          "the server, after the client dropped those that cannot win)")  # fmt: skip
    print(f"plain ZADD round trip {zadd_rtt:.1f} us; add_candle_if_newer {lua_rtt:.1f} us; floor {floor_rtt:.1f} us "
          "(medians)", end="")  # fmt: skip
    print(f"; redis-benchmark ZADD {benchmark_zadd:,.0f}/s" if benchmark_zadd else "")
    if traced is not None:
        print("\n".join(tracing.rows(traced)))
    print("targets:")
    for target in result["targets"]:
        status = {True: "met", False: "MISSED", None: "n/a"}[target["met"]]
        print(f"  [{status}] {target['target']}: {target['measured']}")
    paths = write_json(result, args.out, stamp)
    chart = "chart skipped" if args.no_chart else write_chart(result, args.out, stamp)
    print("wrote " + ", ".join(str(p) for p in paths))
    print(chart if isinstance(chart, str) else "wrote " + ", ".join(str(p) for p in chart))
    return 0


if __name__ == "__main__":
    sys.exit(main())

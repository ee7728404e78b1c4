"""The results: a table for the terminal, JSON files and a chart."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

COLUMNS = [
    ("workload", "workload", "{}"),
    ("contestant", "contestant", "{}"),
    ("writers", "W", "{}"),
    ("batch_size", "batch", "{}"),
    ("prefilled", "full", "{}"),
    ("writes_per_s", "writes/s", "{:,.0f}"),
    ("p50_us", "p50 us", "{:,.0f}"),
    ("p99_us", "p99 us", "{:,.0f}"),
    ("stale", "stale", "{}"),
    ("duplicates", "dupes", "{}"),
    ("retries", "retries", "{}"),
    ("server_us_per_candle", "srv us/c", "{:.2f}"),
    ("server_us_per_sent_candle", "srv us/sent", "{:.2f}"),
    ("server_cpu_us_per_candle", "srv cpu us/c", "{:.2f}"),
    ("client_us_per_candle", "cli us/c", "{:.2f}"),
    ("memory_bytes_per_1000_candles", "B/1k candles", "{:,.0f}"),
    ("members", "members", "{:,}"),
    ("subscribers", "subs", "{}"),
    ("events_lost", "lost events", "{}"),
]
TEXT_COLUMNS = 2  # the first columns are names, left-aligned
WORKLOAD_LABELS = {"stream": "", "full-keys": "full keys", "batch-1000": "batch 1,000", "ticker": ""}
WORKLOAD_STYLES = {"stream": "-", "full-keys": "--", "batch-1000": ":", "ticker": "-."}
TICKER_WORKLOAD = "ticker"
PALETTE = [*(f"C{i}" for i in range(10)), "black", "darkgoldenrod", "teal", "navy"]
"""A colour per contestant: matplotlib's ten, then four more, so the ticker contestants do not repeat seed's."""
MET_COLORS = {True: "tab:green", False: "tab:red", None: "tab:gray"}
SHORT_TARGETS = {
    "server_vs_ceiling": "server time vs ceiling,\nthe stream",
    "server_vs_ceiling_full_keys": "server time vs ceiling,\nfull keys",
    "server_vs_ceiling_batch_1000": "server time vs ceiling,\nbatch 1,000",
    "server_vs_ceiling_w16": "server time vs ceiling,\nthe stream, W=16",
    "throughput_vs_ceiling_w16": "throughput vs ceiling,\nW=16",
    "round_trip_vs_zadd": "add_candle_if_newer\nround trip vs ZADD",
    "throughput_vs_ceiling": "throughput vs ceiling,\nworst W < 16",
    "client_cpu_vs_ceiling": "client CPU vs ceiling,\nworst W",
    "rollup_server_vs_lua_batch": "lua-batch-rollup server\ntime vs lua-batch",
}

SHORT_CHECKS = {
    "library_correct": "zero stale, zero duplicates in every lua* run",
    "publish_complete": "lua-publish: no close event lost",
    "ticker_newer_wins": "ticker-if-newer: zero stale tickers at every W",
}
VERDICTS = {True: "met", False: "MISSED", None: "not run"}


def table(rows: list[dict[str, Any]]) -> str:
    """Rows as a Markdown table (readable in a terminal, pasteable into the README)."""
    cells = [
        [fmt.format(("yes" if row[key] else "-") if key == "prefilled" else row[key]) for key, _, fmt in COLUMNS]
        for row in rows
    ]
    heads = [head for _, head, _ in COLUMNS]
    widths = [max(len(h), *(len(c[i]) for c in cells)) for i, h in enumerate(heads)]
    lines = [
        "| " + " | ".join(h.ljust(w) for h, w in zip(heads, widths, strict=True)) + " |",
        "|" + "|".join("-" * (w + 2) for w in widths) + "|",
    ]
    for c in cells:
        lines.append(
            "| "
            + " | ".join(
                v.ljust(w) if i < TEXT_COLUMNS else v.rjust(w) for i, (v, w) in enumerate(zip(c, widths, strict=True))
            )
            + " |"
        )
    return "\n".join(lines)


def write_json(result: dict[str, Any], directory: Path, stamp: str) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    text = json.dumps(result, indent=2)
    paths = [directory / f"{stamp}.json", directory / "latest.json"]
    for path in paths:
        path.write_text(text + "\n")
    return paths


def _label(contestant: str, workload: str) -> str:
    extra = WORKLOAD_LABELS.get(workload, workload)
    return f"{contestant}, {extra}" if extra else contestant


def write_chart(result: dict[str, Any], directory: Path, stamp: str) -> list[Path] | str:
    """Throughput, server time per workload, the targets' ratios, stale candles, the ticker race. A reason if no chart."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return "matplotlib is not installed (pip install matplotlib, or the dev extra): no chart"
    rows = result["rows"]
    figure = plt.figure(figsize=(20, 12))
    grid = figure.add_gridspec(2, 3, width_ratios=[1.15, 1, 1], height_ratios=[1.25, 1])
    _throughput(figure.add_subplot(grid[0, 0]), rows)
    _server_time(figure.add_subplot(grid[0, 1]), result)
    _targets(figure.add_subplot(grid[0, 2]), result)
    _stale(figure.add_subplot(grid[1, :2]), result)
    _ticker_race(figure.add_subplot(grid[1, 2]), result)
    stream = result["stream"]
    figure.suptitle(
        f"livermore_cache benchmark, {result['mode']} mode, seed {result['seed']}, Redis {result['redis_version']}: "
        f"{stream['updates']:,} updates of {stream['timestamps_total']:,} candles "
        f"({stream['symbols']} series x {stream['timestamps']} timestamps), max_candles {result.get('max_candles', '?')}"
        + (
            f"; tickers: {result['tickers']['updates']:,} updates of {result['tickers']['symbols']} symbols"
            if any(r["workload"] == TICKER_WORKLOAD for r in rows)
            else ""
        )
    )
    figure.tight_layout()
    paths = [directory / f"{stamp}.png", directory / "latest.png"]
    for path in paths:
        figure.savefig(path, dpi=100)
    plt.close(figure)
    return paths


def _throughput(axes: Any, rows: list[dict[str, Any]]) -> None:
    """Writes per second against writers: a colour per contestant, a line style per workload."""
    contestants = list(dict.fromkeys(r["contestant"] for r in rows))
    colors = {name: PALETTE[i % len(PALETTE)] for i, name in enumerate(contestants)}
    for workload, contestant in dict.fromkeys((r["workload"], r["contestant"]) for r in rows):
        mine = sorted(
            (r for r in rows if r["contestant"] == contestant and r["workload"] == workload), key=lambda r: r["writers"]
        )
        axes.plot(
            [r["writers"] for r in mine],
            [r["writes_per_s"] for r in mine],
            marker="o" if workload == "stream" else "s",
            markersize=4,
            linestyle=WORKLOAD_STYLES.get(workload, "-."),
            color=colors[contestant],
            label=_label(contestant, workload),
        )
    writer_counts = sorted({r["writers"] for r in rows})
    axes.set_xscale("log", base=2)
    axes.set_yscale("log")
    axes.set_xticks(writer_counts, [str(w) for w in writer_counts])
    axes.set_xlabel("writers (processes; tasks for *-async)")
    axes.set_ylabel("writes per second (candle or ticker updates)")
    axes.set_title(
        "Throughput (solid: the stream; dashed: full keys; dotted: batch 1,000; dash-dot: tickers)", fontsize=10
    )
    axes.grid(True, which="both", alpha=0.3)
    axes.legend(fontsize=7, ncol=3, loc="upper center", bbox_to_anchor=(0.5, -0.13))


def _server_time(axes: Any, result: dict[str, Any]) -> None:
    """Server time per candle of lua-batch beside the ceiling in each workload, one writer, with their ratio."""
    rows = result["rows"]
    targets = {t["name"]: t for t in result["targets"]}
    names = {
        "stream": "server_vs_ceiling",
        "full-keys": "server_vs_ceiling_full_keys",
        "batch-1000": "server_vs_ceiling_batch_1000",
    }
    workloads = [w for w in dict.fromkeys(r["workload"] for r in rows) if w in names]
    fewest = min((r["writers"] for r in rows), default=1)
    width = 0.38
    top = 0.0
    for offset, (contestant, color) in enumerate((("lua-batch", "C3"), ("ceiling", "C4"))):
        values = [
            next(
                (
                    r["server_us_per_candle"]
                    for r in rows
                    if (r["contestant"], r["workload"], r["writers"]) == (contestant, w, fewest)
                ),
                0.0,
            )
            for w in workloads
        ]
        bars = axes.bar(
            [x + (offset - 0.5) * width for x in range(len(workloads))], values, width, color=color, label=contestant
        )
        axes.bar_label(bars, [f"{v:.2f} us" for v in values], fontsize=8, padding=2)
        top = max(top, *values, 0.0)
    for x, workload in enumerate(workloads):
        target = targets.get(names[workload])
        if target and target["ratio"] is not None:
            verdict = "met" if target["met"] else "missed"
            axes.text(
                x, top * 1.12, f"{target['ratio']:.2f}x\n<= {target['limit']:.1f}x: {verdict}", ha="center",
                fontsize=8, color=MET_COLORS[target["met"]], fontweight="bold",
            )  # fmt: skip
    labels = {"stream": "the stream", "full-keys": "full keys", "batch-1000": "batch 1,000"}
    batch = result["batch_size"]
    axes.set_xticks(
        range(len(workloads)), [labels[w] + (f"\n(batch {batch})" if w != "batch-1000" else "") for w in workloads]
    )
    axes.set_ylim(0, top * 1.6 if top > 0 else 1)
    axes.set_ylabel("server us per candle (INFO commandstats)")
    axes.set_title(f"Server time per candle, W={fewest}: lua-batch over the ceiling", fontsize=10)
    axes.legend(fontsize=8, loc="upper center", ncol=2)
    axes.grid(True, axis="y", alpha=0.3)


def _targets(axes: Any, result: dict[str, Any]) -> None:
    """Every ratio target: the measured ratio as a bar, the limit as a black tick; green met, red missed."""
    ratios = [t for t in result["targets"] if t["name"] in SHORT_TARGETS]
    y = list(range(len(ratios)))[::-1]
    values = [t["ratio"] or 0.0 for t in ratios]
    axes.barh(y, values, 0.6, color=[MET_COLORS[t["met"]] for t in ratios], alpha=0.8)
    top = max([*values, *(t["limit"] for t in ratios), 1.0])
    for row, t, value in zip(y, ratios, values, strict=True):
        axes.plot([t["limit"], t["limit"]], [row - 0.4, row + 0.4], color="black", linewidth=2)
        bound = ">=" if t["floor"] else "<="
        verdict = VERDICTS[t["met"]]
        shown = f"{t['ratio']:.2f}x" if t["ratio"] is not None else "-"
        axes.text(
            max(value, t["limit"]) + top * 0.02,
            row,
            f"{shown}  ({bound} {t['limit']:.2f}x: {verdict})",
            va="center",
            fontsize=8,
        )
    axes.set_yticks(y, [SHORT_TARGETS[t["name"]] for t in ratios], fontsize=8)
    axes.set_xlim(0, top * 1.6)
    axes.set_xlabel("measured ratio (black tick: the target)")
    correct = [t for t in result["targets"] if t["name"] in SHORT_CHECKS]
    note = "\n".join(f"{SHORT_CHECKS[t['name']]}: {VERDICTS[t['met']]}" for t in correct)
    axes.set_title("Targets (ratios in this run)\n" + note, fontsize=9)
    axes.grid(True, axis="x", alpha=0.3)


def _stale(axes: Any, result: dict[str, Any]) -> None:
    """Stale timestamps of every versioned contestant, a bar per W, each labelled; the unversioned ceiling apart."""
    from .contestants import UNVERSIONED

    rows = result["rows"]
    total = result["stream"]["timestamps_total"]
    rows = [r for r in rows if r["workload"] != TICKER_WORKLOAD]
    groups = [g for g in dict.fromkeys((r["workload"], r["contestant"]) for r in rows) if g[1] not in UNVERSIONED]
    writer_counts = sorted({r["writers"] for r in rows})
    width = 0.8 / max(len(writer_counts), 1)
    highest = 0
    for i, w in enumerate(writer_counts):
        values = [
            next((r["stale"] for r in rows if (r["workload"], r["contestant"], r["writers"]) == (*g, w)), None)
            for g in groups
        ]
        shown = [v or 0 for v in values]
        highest = max(highest, *shown, 0)
        bars = axes.bar([x + i * width for x in range(len(groups))], shown, width, label=f"W={w}", color=f"C{i}")
        axes.bar_label(bars, ["" if v is None else f"{v:,}" for v in values], fontsize=7, padding=1)
    axes.set_xticks(
        [x + width * (len(writer_counts) - 1) / 2 for x in range(len(groups))],
        [_label(c, wl).replace(", ", "\n") for wl, c in groups],
        fontsize=8,
    )
    axes.set_ylim(0, max(highest * 1.15, 10))
    axes.set_ylabel("timestamps not holding the highest sequence")
    apart = [r for r in rows if r["contestant"] in UNVERSIONED]
    note = ""
    if apart:
        counts = sorted({r["stale"] for r in apart})
        shown_counts = f"{counts[0]:,}" if len(counts) == 1 else f"{counts[0]:,} to {counts[-1]:,}"
        note = (
            f"; not shown: {', '.join(sorted({r['contestant'] for r in apart}))}, which does no versioning by design "
            f"(it keeps every update): {shown_counts} stale in each of its {len(apart)} runs"
        )
    axes.set_title(f"Stale candles per run, of {total:,} timestamps (versioned contestants{note})", fontsize=10)
    if writer_counts:
        axes.legend(fontsize=8, loc="upper right")
    axes.grid(True, axis="y", alpha=0.3)


def _ticker_race(axes: Any, result: dict[str, Any]) -> None:
    """Symbols left stale per ticker contestant and W, each bar labelled with its stale count and writes/s."""
    rows = [r for r in result["rows"] if r["workload"] == TICKER_WORKLOAD]
    feed = result.get("tickers", {})
    symbols = int(feed.get("symbols", 0))
    target = next((t for t in result["targets"] if t["name"] == "ticker_newer_wins"), None)
    verdict = VERDICTS[target["met"]] if target else VERDICTS[None]
    axes.set_title(
        f"The ticker race: symbols left stale (of {symbols}) per run\n"
        f"ticker-if-newer: zero stale tickers at every W: {verdict}",
        fontsize=10,
        color=MET_COLORS[target["met"] if target else None],
    )
    if not rows:
        axes.text(0.5, 0.5, "ticker workload not run", ha="center", va="center", transform=axes.transAxes)
        axes.set_xticks([])
        axes.set_yticks([])
        return
    contestants = list(dict.fromkeys(r["contestant"] for r in rows))
    writer_counts = sorted({r["writers"] for r in rows})
    width = 0.8 / max(len(writer_counts), 1)
    for i, w in enumerate(writer_counts):
        found = [next((r for r in rows if (r["contestant"], r["writers"]) == (c, w)), None) for c in contestants]
        bars = axes.bar(
            [x + i * width for x in range(len(contestants))],
            [r["stale"] if r else 0 for r in found],
            width,
            label=f"W={w}",
            color=f"C{i}",
        )
        labels = ["" if r is None else f"{r['stale']}\n{r['writes_per_s'] / 1000:.1f}k/s" for r in found]
        axes.bar_label(bars, labels, fontsize=7, padding=1)
    axes.set_xticks(
        [x + width * (len(writer_counts) - 1) / 2 for x in range(len(contestants))],
        [c + (f"\n(batch {result['batch_size']})" if c.endswith("-batch") else "") for c in contestants],
        fontsize=8,
    )
    axes.axhline(symbols, color="black", linestyle=":", linewidth=1)
    axes.text(len(contestants) - 0.5, symbols, f"all {symbols} symbols", ha="right", va="bottom", fontsize=7)
    axes.set_ylim(0, max(symbols, 1) * 1.45)
    axes.set_ylabel("symbols whose stored ticker is older than the newest")
    axes.set_xlabel(
        f"{feed.get('updates', 0):,} updates, each delivered {feed.get('copies', '?')}x or more, out of order",
        fontsize=8,
    )
    axes.legend(fontsize=8, loc="upper right", title="bar label: stale / writes per s", title_fontsize=7)
    axes.grid(True, axis="y", alpha=0.3)

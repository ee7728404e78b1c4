"""The results: a table for the terminal, JSON files and a chart."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

COLUMNS = [
    ("contestant", "contestant", "{}"),
    ("writers", "W", "{}"),
    ("writes_per_s", "writes/s", "{:,.0f}"),
    ("p50_us", "p50 us", "{:,.0f}"),
    ("p99_us", "p99 us", "{:,.0f}"),
    ("stale", "stale", "{}"),
    ("duplicates", "dupes", "{}"),
    ("retries", "retries", "{}"),
    ("server_us_per_candle", "srv us/c", "{:.2f}"),
    ("server_cpu_us_per_candle", "srv cpu us/c", "{:.2f}"),
    ("client_us_per_candle", "cli us/c", "{:.2f}"),
    ("memory_bytes_per_1000_candles", "B/1k candles", "{:,.0f}"),
    ("subscribers", "subs", "{}"),
    ("events_lost", "lost events", "{}"),
]


def table(rows: list[dict[str, Any]]) -> str:
    """Rows as a Markdown table (readable in a terminal, pasteable into the README)."""
    cells = [[fmt.format(row[key]) for key, _, fmt in COLUMNS] for row in rows]
    heads = [head for _, head, _ in COLUMNS]
    widths = [max(len(h), *(len(c[i]) for c in cells)) for i, h in enumerate(heads)]
    lines = [
        "| " + " | ".join(h.ljust(w) for h, w in zip(heads, widths, strict=True)) + " |",
        "|" + "|".join("-" * (w + 2) for w in widths) + "|",
    ]
    for c in cells:
        lines.append(
            "| "
            + " | ".join(v.ljust(w) if i == 0 else v.rjust(w) for i, (v, w) in enumerate(zip(c, widths, strict=True)))
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


def write_chart(result: dict[str, Any], directory: Path, stamp: str) -> list[Path] | str:
    """Throughput against writers per contestant, and stale writes per contestant. A reason string if no chart."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return "matplotlib is not installed (pip install matplotlib, or the dev extra): no chart"
    rows = result["rows"]
    contestants = list(dict.fromkeys(r["contestant"] for r in rows))
    writer_counts = sorted({r["writers"] for r in rows})
    figure, (left, right) = plt.subplots(1, 2, figsize=(13, 5))
    for name in contestants:
        mine = sorted((r for r in rows if r["contestant"] == name), key=lambda r: r["writers"])
        left.plot([r["writers"] for r in mine], [r["writes_per_s"] for r in mine], marker="o", label=name)
    left.set_xscale("log", base=2)
    left.set_yscale("log")
    left.set_xticks(writer_counts, [str(w) for w in writer_counts])
    left.set_xlabel("writers (processes; tasks for *-async)")
    left.set_ylabel("candle writes per second")
    left.set_title("Throughput")
    left.grid(True, which="both", alpha=0.3)
    left.legend(fontsize=8)
    width = 0.8 / max(len(writer_counts), 1)
    for i, w in enumerate(writer_counts):
        values = [
            next((r["stale"] for r in rows if r["contestant"] == c and r["writers"] == w), 0) for c in contestants
        ]
        right.bar([x + i * width for x in range(len(contestants))], values, width, label=f"W={w}")
    right.set_xticks(
        [x + width * (len(writer_counts) - 1) / 2 for x in range(len(contestants))], contestants, rotation=20
    )
    right.set_ylabel("timestamps not holding the highest sequence")
    right.set_title(f"Stale candles (of {result['stream']['timestamps_total']:,} timestamps)")
    right.legend(fontsize=8)
    right.grid(True, axis="y", alpha=0.3)
    figure.suptitle(
        f"livermore_cache benchmark, {result['mode']} mode, seed {result['seed']}, Redis {result['redis_version']}"
    )
    figure.tight_layout()
    paths = [directory / f"{stamp}.png", directory / "latest.png"]
    for path in paths:
        figure.savefig(path, dpi=110)
    plt.close(figure)
    return paths

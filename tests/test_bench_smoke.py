"""The benchmark runs end to end for a few seconds; only its correctness columns are checked, never timings."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from benchmarks.__main__ import TARGETS, main

CONTESTANTS = [
    "seed",
    "watch",
    "lua",
    "lua-batch",
    "ceiling",
    "lua-publish",
    "lua-publish-10",
    "lua-async",
    "lua-batch-async",
]
WORKLOADS = {
    "stream": CONTESTANTS,
    "full-keys": ["seed", "watch", "lua", "lua-batch", "ceiling"],
    "batch-1000": ["lua-batch", "ceiling"],
}
BATCHED = {"lua-batch", "ceiling", "lua-publish", "lua-publish-10", "lua-batch-async"}
ROW_FIELDS = {
    "contestant", "writers", "workload", "batch_size", "prefilled", "writes_per_s", "p50_us", "p99_us", "stale",
    "duplicates", "retries", "server_us_per_candle", "client_us_per_candle", "members",
}  # fmt: skip
TOP_FIELDS = {
    "seed", "redis_version", "started_at", "mode", "zadd_rtt_us", "if_newer_rtt_us", "batch_size", "max_candles",
    "workloads", "rows", "targets",
}  # fmt: skip
SYMBOLS, TIMESTAMPS, BATCH = 3, 40, 25


@pytest.mark.slow
def test_benchmark_smoke(tmp_path: Path, redis_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["--redis-url", redis_url, "--out", str(tmp_path), "--writers", "1,4", "--symbols", str(SYMBOLS),
            "--timestamps", str(TIMESTAMPS), "--updates", "4", "--seed", "11", "--batch-size", str(BATCH)]  # fmt: skip
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "seed 11" in out
    result = json.loads((tmp_path / "latest.json").read_text())
    assert result.keys() >= TOP_FIELDS
    assert result["seed"] == 11
    assert result["zadd_rtt_us"] > 0
    assert result["if_newer_rtt_us"] > 0
    assert result["max_candles"] == 1000
    rows = result["rows"]
    expected = {(wl, c, w) for wl, names in WORKLOADS.items() for c in names for w in (1, 4)}
    assert {(r["workload"], r["contestant"], r["writers"]) for r in rows} == expected
    for row in rows:
        assert row.keys() >= ROW_FIELDS
        assert row["candles"] == result["stream"]["updates"]
        assert row["prefilled"] is (row["workload"] == "full-keys")
        batch = (1000 if row["workload"] == "batch-1000" else BATCH) if row["contestant"] in BATCHED else 1
        assert row["batch_size"] == batch, row
        if row["contestant"].startswith("lua"):
            assert row["stale"] == 0, row
            assert row["duplicates"] == 0, row
            # Full keys stay full: each new timestamp trimmed the oldest pre-filled one, none of the stream's.
            held = SYMBOLS * 1000 if row["prefilled"] else result["stream"]["timestamps_total"]
            assert row["members"] == held, row
        if row["contestant"].startswith("lua-publish"):
            assert row["subscribers"] == (10 if row["contestant"] == "lua-publish-10" else 1)
            assert row["events_lost"] == 0, row
        if row["contestant"] == "ceiling":
            assert row["duplicates"] > 0, (
                "the unversioned ceiling keeps every update: its duplicates prove the check works"
            )

    targets = {t["name"]: t for t in result["targets"]}
    assert targets.keys() >= {*TARGETS, "library_correct", "publish_complete"}
    for name, limit in TARGETS.items():
        assert targets[name]["limit"] == limit
        assert targets[name]["ratio"] > 0, targets[name]
        assert isinstance(targets[name]["met"], bool)
        assert f"[{'met' if targets[name]['met'] else 'MISSED'}] {targets[name]['target']}: " in out
    assert targets["library_correct"]["met"] is True
    assert targets["publish_complete"]["met"] is True
    assert (tmp_path / "latest.png").stat().st_size > 10_000

"""The benchmark runs end to end for a few seconds; only its correctness columns are checked, never timings."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from benchmarks.__main__ import main

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
ROW_FIELDS = {
    "contestant", "writers", "writes_per_s", "p50_us", "p99_us", "stale", "duplicates", "retries",
    "server_us_per_candle", "client_us_per_candle",
}  # fmt: skip
TOP_FIELDS = {"seed", "redis_version", "started_at", "mode", "zadd_rtt_us", "rows"}


@pytest.mark.slow
def test_benchmark_smoke(tmp_path: Path, redis_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["--redis-url", redis_url, "--out", str(tmp_path), "--writers", "1,4", "--symbols", "3",
            "--timestamps", "40", "--updates", "4", "--seed", "11", "--batch-size", "25"]  # fmt: skip
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "seed 11" in out
    result = json.loads((tmp_path / "latest.json").read_text())
    assert result.keys() >= TOP_FIELDS
    assert result["seed"] == 11
    assert result["zadd_rtt_us"] > 0
    rows = result["rows"]
    assert {(r["contestant"], r["writers"]) for r in rows} == {(c, w) for c in CONTESTANTS for w in (1, 4)}
    for row in rows:
        assert row.keys() >= ROW_FIELDS
        assert row["candles"] == result["stream"]["updates"]
        if row["contestant"].startswith("lua"):
            assert row["stale"] == 0, row
            assert row["duplicates"] == 0, row
        if row["contestant"].startswith("lua-publish"):
            assert row["subscribers"] == (10 if row["contestant"] == "lua-publish-10" else 1)
            assert row["events_lost"] == 0, row
        if row["contestant"] == "ceiling":
            assert row["duplicates"] > 0, (
                "the unversioned ceiling keeps every update: its duplicates prove the check works"
            )
    assert (tmp_path / "latest.png").stat().st_size > 10_000

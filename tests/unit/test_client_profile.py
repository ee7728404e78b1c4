"""``python -m benchmarks.client_profile`` runs (no socket: it only plans, encodes and packs) and prints each step."""

from __future__ import annotations

import re

import pytest

from benchmarks.client_profile import main


def test_client_profile_prints_every_step_for_both_shapes(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--number", "1"]) == 0
    out = capsys.readouterr().out
    for writers in (1, 16):
        assert re.search(rf"^W={writers}: one writer's [\d,]+ candles in \d+ batches, \d+% sent$", out, re.M), out
    lines = re.findall(r"^  (lua-batch|ceiling) +(\d+\.\d\d) us/candle  (.+)$", out, re.M)
    assert [side for side, _, _ in lines] == (["lua-batch"] * 5 + ["ceiling"] * 2) * 2
    by_shape = [lines[:7], lines[7:]]
    for shape in by_shape:
        library = [float(us) for side, us, _ in shape if side == "lua-batch"]
        assert all(us > 0 for us in library)
        assert library[0] < library[-1]  # each line adds a step: the whole is more than the check alone

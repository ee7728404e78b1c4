"""The scripts travel inside the wheel: build it, install it into a fresh venv, write through it."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.support.constants import ROOT

PROBE = textwrap.dedent(
    """
    import sys, redis, livermore_cache
    from livermore_cache import CandleCache, UnifiedCandle
    assert "site-packages" in livermore_cache.__file__, livermore_cache.__file__
    client = redis.Redis.from_url(sys.argv[1])
    cache = CandleCache(client)
    candle = UnifiedCandle(timestamp=1704067200000, open=1, high=2, low=0.5, close=1.5, volume=3,
                           symbol="WHEEL-USD", timeframe="1m", exchange="x", sequence_num=2)
    print(cache.add_candle_if_newer(9, 9, candle), cache.add_candle_if_newer(9, 9, candle))
    print(livermore_cache.__file__)
    """
)


def _is_library_file(name: str) -> bool:
    """Library code, its Lua scripts, py.typed, or the wheel's own metadata: nothing else belongs in the wheel."""
    if name.startswith("livermore_cache-") and ".dist-info/" in name:
        return True
    if not name.startswith("livermore_cache/") or "/bench" in name or "servers" in name:
        return False
    return name.endswith((".py", ".lua")) or name == "livermore_cache/py.typed"


@pytest.mark.slow
def test_installed_wheel_runs_a_versioned_write(tmp_path: Path, redis_url: str) -> None:
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(tmp_path),
            str(ROOT),
        ],
        check=True,
    )
    (wheel,) = tmp_path.glob("livermore_cache-*.whl")
    import zipfile

    names = zipfile.ZipFile(wheel).namelist()
    assert "livermore_cache/lua/versioned_write.lua" in names
    assert "livermore_cache/py.typed" in names
    assert [name for name in names if not _is_library_file(name)] == []
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    python = venv / "bin" / "python"
    subprocess.run([str(python), "-m", "pip", "install", "-q", str(wheel)], check=True)
    result = subprocess.run(
        [str(python), "-c", PROBE, redis_url], cwd=tmp_path, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "True False"
    assert str(venv) in lines[1]

"""The public types say what can come back and refuse what cannot go in: mypy --strict on small programs."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
from mypy import api

HEADER = """
from livermore_cache import AsyncCandleCache, Candle, CandleCache, IndicatorCache, Timeframe, UnifiedCandle

def check(cache: CandleCache, indicators: IndicatorCache) -> None:
"""


def _mypy(tmp_path: Path, body: str) -> tuple[int, str]:
    program = tmp_path / "program.py"
    program.write_text(HEADER + textwrap.indent(textwrap.dedent(body), "    "), encoding="utf-8")
    out, err, status = api.run(["--strict", "--no-incremental", "--cache-dir", str(tmp_path / ".mypy"), str(program)])
    return status, out + err


def test_timeframes_spelled_right_pass(tmp_path: Path) -> None:
    status, out = _mypy(
        tmp_path,
        """
        cache.get_recent_candles(1, 1, "BTC-USD", "1m")
        cache.get_candle_count(1, 1, "BTC-USD", Timeframe.H4)
        cache.subscribe_closes(1, 1, timeframe="1d").close()
        indicators.get_indicator(1, 1, "BTC-USD", "5m", "macd-v")
        """,
    )
    assert status == 0, out


@pytest.mark.parametrize(
    "call",
    [
        'cache.get_recent_candles(1, 1, "BTC-USD", "60m")',
        'cache.find_gaps(1, 1, "BTC-USD", "1M", 0, 1)',
        'cache.subscribe_closes(1, 1, "BTC-USD", "1w").close()',
        'indicators.get_indicator(1, 1, "BTC-USD", "5min", "macd-v")',
    ],
)
def test_a_misspelled_timeframe_is_a_type_error(tmp_path: Path, call: str) -> None:
    status, out = _mypy(tmp_path, call)
    assert status == 1
    assert "incompatible type" in out or "No overload variant" in out, out


def test_reads_asked_for_unified_candles_say_a_plain_candle_can_come_back(tmp_path: Path) -> None:
    status, out = _mypy(
        tmp_path,
        """
        latest = cache.get_latest_candle(1, 1, "BTC-USD", "1m", model=UnifiedCandle)
        reveal_type(latest)
        recent = cache.get_recent_candles(1, 1, "BTC-USD", "1m", model=UnifiedCandle)
        reveal_type(recent)
        plain = cache.get_recent_candles(1, 1, "BTC-USD", "1m")
        reveal_type(plain)
        """,
    )
    assert status == 0, out
    revealed = [
        line.split("Revealed type is ", 1)[1].replace("builtins.", "").replace("livermore_cache.candles.", "")
        for line in out.splitlines()
        if "Revealed type is" in line
    ]
    # a UnifiedCandle is a Candle: mypy folds "UnifiedCandle | Candle | None" into "Candle | None"
    assert revealed[0] in ('"Candle | None"', '"UnifiedCandle | Candle | None"'), out
    assert revealed[1:] == ['"list[UnifiedCandle | Candle]"', '"list[Candle]"'], out

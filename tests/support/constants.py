"""The default series and instants the tests write, and where the repository and its test data are."""

from __future__ import annotations

from pathlib import Path
from typing import Final

from livermore_cache import Series, candle_key

USER = 7
EXCHANGE = 1
SYMBOL = "BTC-USD"
TIMEFRAME: Final = "1m"
T0 = 1_704_067_200_000  # 2024-01-01T00:00:00Z: a boundary of every timeframe
MINUTE = 60_000

KEY = candle_key(USER, EXCHANGE, SYMBOL, TIMEFRAME)
"""The candle key of the default series."""
SERIES = Series(USER, EXCHANGE, SYMBOL, TIMEFRAME)
"""The default series, as ``subscribe_closes`` reports it."""

TIMEFRAME_MINUTES = {"1m": 1, "5m": 5, "15m": 15, "30m": 30, "1h": 60, "2h": 120, "4h": 240, "6h": 360, "1d": 1440}
"""Every timeframe's length in minutes, written out (the oracle for ``timeframe_ms``)."""

INDICATOR_TYPE = "macd-v"
INDICATOR_TIMEFRAME = "1h"

ROOT = Path(__file__).resolve().parents[2]
"""The repository's top folder."""
DATA = ROOT / "tests" / "data"
"""Captured Node data and the reference script."""

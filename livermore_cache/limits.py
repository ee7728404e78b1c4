"""The bounds every value the library writes stays within, each under one name."""

from __future__ import annotations

from typing import Final

__all__ = ["MAX_CANDLES", "MAX_RETRIES", "MAX_RETRY_TIMEOUT_S", "MAX_SAFE_INTEGER", "MAX_TTL_SECONDS"]

MAX_SAFE_INTEGER: Final = 2**53 - 1
"""JavaScript's ``Number.MAX_SAFE_INTEGER``: every int up to it is exact as a double (JavaScript, Lua, JSON).

Ids, timestamps, sequence numbers and integer prices are refused beyond it.
"""

MAX_TTL_SECONDS: Final = 10**12
"""The longest TTL a cache accepts: EXPIRE takes it, and it stays exact wherever it is a number (Lua, JavaScript)."""

MAX_CANDLES: Final = 2**32 - 1
"""The most candles a series may keep: what a sorted set can hold."""

MAX_RETRY_TIMEOUT_S: Final = 86_400.0
"""The longest retry deadline a cache accepts (a day): a longer wait is a stuck caller, not a retry."""

MAX_RETRIES: Final = 10_000
"""The most rounds a write may send again."""

"""``CandleCache``, the sync facade (generated from the asyncio one: see ``livermore_cache/_sync/cache.py``)."""

from ._sync.cache import CandleCache

__all__ = ["CandleCache"]

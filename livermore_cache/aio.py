"""``AsyncCandleCache``, the asyncio facade (``livermore_cache/_async/cache.py``)."""

from ._async.cache import AsyncCandleCache

__all__ = ["AsyncCandleCache"]

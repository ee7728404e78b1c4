"""The asyncio facade, transport and subscriber: the source that ``tools/unasync.py`` turns into ``_sync``."""

"""The caches, transport and subscribers: ``_async`` is the source, ``_sync`` is generated from it (``tools/unasync.py``)."""

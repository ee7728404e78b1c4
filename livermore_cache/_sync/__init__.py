"""The sync facade, transport and subscriber, generated from ``_async`` by ``tools/unasync.py`` (but ``_backend``)."""

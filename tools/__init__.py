"""The project's own tools: the sync-code generator (``unasync.py``) and the servers that tests, docs and benchmarks start (``servers/``)."""

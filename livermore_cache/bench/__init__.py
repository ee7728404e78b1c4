"""The concurrent-writer benchmark: the atomic engine beside the read-then-write it replaces.

Run ``python -m livermore_cache.bench --help`` (or ``make bench``).
"""

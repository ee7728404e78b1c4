"""The concurrent-writer benchmark: the atomic engine beside the read-then-write it replaces.

Run ``python -m benchmarks --help`` (or ``make bench``).
"""

"""Plain-Python models of the series health reads, the oracles the property tests compare with."""

from __future__ import annotations

from collections.abc import Iterable
from itertools import pairwise

from livermore_cache import Gap


def model_gaps(timestamps: Iterable[int], step: int, start: int, end: int) -> list[Gap]:
    """The plain-Python model of ``find_gaps``: every boundary in [start, end], one by one; missing runs grouped."""
    present = set(timestamps)
    gaps: list[Gap] = []
    run: list[int] = []
    boundary = start + (-start) % step  # the first boundary at or after start
    while boundary <= end:
        if boundary in present:
            if run:
                gaps.append(Gap(run[0], run[-1], len(run)))
            run = []
        else:
            run.append(boundary)
        boundary += step
    if run:
        gaps.append(Gap(run[0], run[-1], len(run)))
    return gaps


def model_ready(timestamps: Iterable[int], step: int, count: int) -> bool:
    """The plain-Python model of ``is_ready``: the newest ``count`` distinct timestamps, consecutive boundaries."""
    newest = sorted(set(timestamps), reverse=True)[:count]
    return (
        len(newest) == count and all(t % step == 0 for t in newest) and all(a - b == step for a, b in pairwise(newest))
    )

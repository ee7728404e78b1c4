"""What ``make bench`` sums as each contestant's server time, from INFO commandstats (no server needed)."""

from __future__ import annotations

import pytest

from benchmarks.runner import server_usec

# calls and usec per command name, as ``runner._commandstats`` reads them
STATS = {
    "evalsha": (10, 1000),
    "eval": (1, 50),
    "zrangebyscore": (12, 300),  # inside the scripts: already in evalsha's usec
    "zadd": (10, 200),
    "zcount": (30, 120),
    "zrevrangebyscore": (5, 80),
    "info": (3, 9),
}


def test_a_script_contestant_counts_its_script_calls_only() -> None:
    assert server_usec("lua-batch", STATS) == 1050


def test_the_rollup_contestant_adds_its_plain_source_reads() -> None:
    assert server_usec("lua-batch-rollup", STATS) == 1050 + 120 + 80


def test_the_ceiling_counts_its_zadds() -> None:
    assert server_usec("ceiling", STATS) == 200


def test_an_unknown_contestant_is_refused() -> None:
    with pytest.raises(KeyError, match="nobody"):
        server_usec("nobody", STATS)

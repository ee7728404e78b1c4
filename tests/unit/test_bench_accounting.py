"""What ``make bench`` sums as each contestant's server time, from INFO commandstats (no server needed)."""

from __future__ import annotations

import pytest

from benchmarks.__main__ import client_floor, rollup_floor
from benchmarks.contestants import ASYNC_CONTESTANTS, CACHES, SCRIPTED
from benchmarks.runner import server_usec

# calls and usec per command name, as ``runner.commandstats`` reads them
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


def test_the_rollup_floor_counts_what_the_rollup_contestant_counts() -> None:
    """floor-rollup is held against lua-batch-rollup: the same commands make its server time."""
    assert server_usec("floor-rollup", STATS) == server_usec("lua-batch-rollup", STATS) == 1050 + 120 + 80
    assert server_usec("floor", STATS) == server_usec("lua-batch", STATS)


def test_the_ceiling_counts_its_zadds() -> None:
    assert server_usec("ceiling", STATS) == 200


def test_an_unknown_contestant_is_refused() -> None:
    with pytest.raises(KeyError, match="nobody"):
        server_usec("nobody", STATS)


def _row(contestant: str, writers: int, client_us: float) -> dict[str, object]:
    return {"contestant": contestant, "writers": writers, "workload": "stream", "client_us_per_candle": client_us}


def test_the_client_floor_is_taken_at_lua_batchs_worst_w() -> None:
    rows = [
        _row("lua-batch", 1, 3.0),
        _row("ceiling", 1, 4.0),
        _row("ceiling-checked", 1, 4.4),
        _row("lua-batch", 16, 7.0),  # the worst W: 7 / 5 = 1.4
        _row("ceiling", 16, 5.0),
        _row("ceiling-checked", 16, 6.0),
    ]
    assert client_floor(rows) == pytest.approx(6.0 / 5.0)
    assert client_floor([r for r in rows if r["contestant"] != "ceiling-checked"]) is None


def test_every_sync_library_writer_builds_its_cache_before_the_clock() -> None:
    """Its writer builds the cache before the barrier, as every writer builds its client (runner._sync_writer)."""
    assert set(CACHES) == {name for name in SCRIPTED if name not in ASYNC_CONTESTANTS} | {"floor", "floor-rollup"}


def _server_row(contestant: str, writers: int, server_us: float) -> dict[str, object]:
    return {
        "contestant": contestant, "writers": writers, "workload": "stream", "server_us_per_candle": server_us,
        "client_us_per_candle": 1.0,
    }  # fmt: skip


def test_the_rollup_floor_adds_the_floors_rollup_cost_to_lua_batch_at_the_rollup_ratios_w() -> None:
    rows = [
        _server_row("lua-batch", 1, 4.0),
        _server_row("lua-batch-rollup", 1, 9.0),
        _server_row("floor", 1, 3.0),
        _server_row("floor-rollup", 1, 6.6),  # the roll-ups add 3.6 at their floor: (4.0 + 3.6) / 4.0
        _server_row("lua-batch", 4, 5.0),
        _server_row("lua-batch-rollup", 4, 11.0),
        _server_row("floor", 4, 4.0),
        _server_row("floor-rollup", 4, 10.0),  # another W, not the ratio's
    ]
    assert rollup_floor(rows) == pytest.approx(1.9)
    assert rollup_floor([r for r in rows if r["contestant"] != "floor-rollup"]) is None
    assert rollup_floor([r for r in rows if r["contestant"] != "lua-batch-rollup"]) is None
    # the roll-up ratio is taken at the fewest W both ran: W=4 here, and so is its floor, (5 + 6) / 5
    assert rollup_floor([r for r in rows if r["writers"] == 4]) == pytest.approx(2.2)

"""``python -m benchmarks.client_profile``: where the client's time goes per candle, lua-batch beside the ceiling.

No I/O: each step runs over the batches one writer of ``make bench``'s quick feed
sends, at W=1 and at W=16 (a writer's share of the feed, in batches of 100),
with ``timeit`` (best of 5), cumulatively: each line adds one step to the line
above it, so the differences are the steps' own costs. Per input candle.

The library (``add_candles_if_newer``'s client work, as ``transport.write`` does it):
check (the rule functions on every candle), plan (group by key, drop the candles
that cannot win), ARGV (encode the candles sent, their timestamps and sequences),
pack (``resp.pack_commands``, with hiredis when installed), results (the per-call replies read into ``list[bool]``).
The ceiling (``benchmarks.contestants.write_ceiling``): encode every candle and
group by key, then queue the ZADDs on a redis-py pipeline and pack them. Neither
counts the socket (the same ``sendall`` and read for both) nor the reply parsing.
"""

from __future__ import annotations

import argparse
import sys
import timeit
from collections.abc import Callable
from typing import Any

import msgspec
import redis

from livermore_cache import UnifiedCandle, candle_key
from livermore_cache.engine import WriteRounds, WriteStats
from livermore_cache.plans.candles import _passes, plan_write
from livermore_cache.resp import pack_commands

from .contestants import Settings
from .runner import sent_candles
from .workload import EXCHANGE_ID, USER_ID, FeedShape, deal, make_feed

SHA = "f" * 40
ENCODE = msgspec.json.Encoder().encode


def library_steps(batches: list[list[UnifiedCandle]]) -> list[tuple[str, Callable[[], Any]]]:
    def check() -> None:
        for batch in batches:
            for candle in batch:
                _passes(candle)

    def plan() -> list[Any]:
        return [
            plan_write(USER_ID, EXCHANGE_ID, b, versioned=True, ttl_seconds=86400, max_candles=1000) for b in batches
        ]

    def argv() -> None:
        for planned in plan():
            for call in planned.calls:
                call.args()

    def pack() -> None:
        for planned in plan():
            pack_commands([call.command(SHA, "", by_sha=True) for call in planned.calls])

    def results() -> None:
        for planned in plan():
            state = WriteRounds(planned, SHA, "", retries=20, deadline=float("inf"), stats=WriteStats())
            commands = state.next_round()
            assert commands is not None
            pack_commands(commands)
            state.feed([[1] * len(call.sent) for call in planned.calls], 0.0)
            state.results()

    return [
        ("check: the rule functions on every candle", check),
        ("+ plan: group by key, drop the candles that cannot win", plan),
        ("+ ARGV: encode the candles sent, timestamps, sequences", argv),
        ("+ pack the EVALSHAs (resp.pack_commands: hiredis when installed)", pack),
        ("+ rounds: retry state, replies read into results", results),
    ]


def ceiling_steps(batches: list[list[UnifiedCandle]]) -> list[tuple[str, Callable[[], Any]]]:
    client = redis.Redis()  # never connected: a pipeline only queues, and packing needs no socket
    connection = client.connection_pool.make_connection()

    def group() -> list[dict[str, dict[bytes, int]]]:
        out = []
        for batch in batches:
            by_key: dict[str, dict[bytes, int]] = {}
            for candle in batch:
                key = candle_key(USER_ID, EXCHANGE_ID, candle.symbol, candle.timeframe)
                by_key.setdefault(key, {})[ENCODE(candle)] = candle.timestamp
            out.append(by_key)
        return out

    def pack() -> None:
        for by_key in group():
            pipe = client.pipeline(transaction=False)
            for key, mapping in by_key.items():
                pipe.zadd(key, mapping)
            connection.pack_commands([c[0] for c in pipe.command_stack])  # type: ignore[no-untyped-call]

    return [("encode every candle, group by key", group), ("+ queue the ZADDs on a pipeline and pack them", pack)]


def measure(steps: list[tuple[str, Callable[[], Any]]], candles: int, number: int) -> list[tuple[str, float]]:
    return [(name, min(timeit.repeat(step, number=number, repeat=5)) / number / candles * 1e6) for name, step in steps]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.client_profile", description=__doc__)
    parser.add_argument("--seed", type=int, default=1, help="feed seed")
    parser.add_argument("--batch-size", type=int, default=100)
    parser.add_argument("--number", type=int, default=3, help="passes over the batches per timing")
    args = parser.parse_args(argv)
    feed = make_feed(FeedShape(symbols=8, timestamps=250, updates_per_timestamp=4), args.seed)
    for writers in (1, 16):
        share = deal(feed, writers)[0]
        batches = [share[i : i + args.batch_size] for i in range(0, len(share), args.batch_size)]
        sent = sent_candles("lua-batch", [share], Settings(1, 1, args.batch_size), tickers=False)
        print(
            f"W={writers}: one writer's {len(share):,} candles in {len(batches)} batches, {sent / len(share):.0%} sent"
        )
        for side, steps in (("lua-batch", library_steps(batches)), ("ceiling", ceiling_steps(batches))):
            for name, us in measure(steps, len(share), args.number):
                print(f"  {side:<9} {us:6.2f} us/candle  {name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

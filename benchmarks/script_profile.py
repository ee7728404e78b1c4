"""``python -m benchmarks.script_profile``: where a versioned write's server time goes, from INFO commandstats.

Each line is one kind of call, sent N times from one client to a private
server (or ``REDIS_URL``, which it flushes), with the server's own measure of
the time inside the command (``usec_per_call``), so that the parts of the
script can be compared in one run: the fixed cost of a script call, one
``redis.call`` from Lua, and the versioned write against a plain multi-member
ZADD per candle, into empty keys and into full ones.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable
from typing import Any

import redis

from livermore_cache import UnifiedCandle, candle_key
from livermore_cache.candles import encode_candle
from livermore_cache.plans.candles import plan_write
from livermore_cache.scripts import script_source
from tools.servers.discovery import find_server

T0 = 1_704_067_200_000
MINUTE = 60_000


def candles(first: int, count: int, sequence: int = 1) -> list[UnifiedCandle]:
    return [
        UnifiedCandle(
            timestamp=T0 + (first + i) * MINUTE, open=42000.0, high=42001.25, low=41999.0, close=42000.5,
            volume=12.345678, symbol="PROFILE-USD", timeframe="1m", exchange="coinbase", sequence_num=sequence,
        )
        for i in range(count)
    ]  # fmt: skip


def server_us(client: redis.Redis, command: str, send: Callable[[], Any], calls: int) -> float:
    """The server's time inside ``command`` per call, over ``calls`` calls of ``send``."""
    client.config_resetstat()
    for _ in range(calls):
        send()
    stats = client.info("commandstats").get(f"cmdstat_{command}", {})
    return float(stats.get("usec", 0)) / max(int(stats.get("calls", 0)), 1)


def profile(client: redis.Redis, calls: int, batch: int) -> list[tuple[str, float, str]]:
    key = candle_key(7, 1, "PROFILE-USD", "1m")
    empty = client.register_script("return 1")
    one_call = client.register_script("redis.call('EXISTS', KEYS[1]) return 1")
    write = client.register_script(script_source("versioned_write"))
    rows: list[tuple[str, float, str]] = []
    empty(keys=[key])
    one_call(keys=[key])
    rows.append(("EVALSHA of 'return 1'", server_us(client, "evalsha", lambda: empty(keys=[key]), calls), "per call"))
    with_call = server_us(client, "evalsha", lambda: one_call(keys=[key]), calls)
    rows.append(("EVALSHA with one redis.call('EXISTS')", with_call, "per call"))

    def versioned(first: int, full: bool) -> Callable[[], Any]:
        state = {"first": first}

        def send() -> Any:
            if not full:
                client.delete(key)
            plan = plan_write(7, 1, candles(state["first"], batch), versioned=True, ttl_seconds=86400, max_candles=1000)
            state["first"] += batch
            return write(keys=[key], args=list(plan.calls[0].args()))

        return send

    def zadd(full: bool) -> Callable[[], Any]:
        state = {"first": 0}

        def send() -> Any:
            if not full:
                client.delete(key)
            members = candles(state["first"], batch)
            state["first"] += batch
            return client.zadd(key, {encode_candle(c): c.timestamp for c in members})

        return send

    warm_up = plan_write(7, 1, candles(0, 1), versioned=True, ttl_seconds=1, max_candles=1)
    write(keys=[key], args=list(warm_up.calls[0].args()))
    for full in (False, True):
        client.delete(key)
        if full:
            client.zadd(key, {f"old-{i}": T0 - (i + 1) * MINUTE for i in range(1000)})
        shape = "full keys (1,000 members)" if full else "empty keys"
        lua = server_us(client, "evalsha", versioned(10_000, full), calls) / batch
        client.delete(key)
        if full:
            client.zadd(key, {f"old-{i}": T0 - (i + 1) * MINUTE for i in range(1000)})
        plain = server_us(client, "zadd", zadd(full), calls) / batch
        rows.append((f"versioned_write.lua, batch {batch} of distinct timestamps, {shape}", lua, "per candle"))
        rows.append(
            (f"one ZADD of {batch} members, {shape}", plain, f"per candle (script / ZADD = {lua / plain:.2f}x)")
        )
    client.delete(key)
    return rows


def client_steps(samples: int) -> list[tuple[str, float, str]]:
    """The client's own work for one add_candle_if_newer, step by step, without I/O (timeit, best of 5)."""
    import timeit

    from redis.connection import Connection

    from livermore_cache.engine import WriteRounds, WriteStats
    from livermore_cache.resp import pack_commands

    (candle,) = candles(0, 1)

    def plan() -> Any:
        return plan_write(7, 1, [candle], versioned=True, ttl_seconds=86400, max_candles=1000)

    planned = plan()

    def rounds() -> Any:
        state = WriteRounds(planned, "f" * 40, "", retries=20, deadline=float("inf"), stats=WriteStats())
        commands = state.next_round()
        state.feed([[1]], 0.0)
        return commands, state.results()

    commands = planned.calls[0].command("f" * 40, "", by_sha=True)
    connection = Connection()  # type: ignore[no-untyped-call]
    member = encode_candle(candle)
    steps: list[tuple[str, Callable[[], Any]]] = [
        ("plan: check the candle, its key, the script call", plan),
        ("rounds: ARGV, retry state, reply to results", rounds),
        ("pack the EVALSHA (hiredis)", lambda: pack_commands([commands])),
        (
            "redis-py: pack a plain ZADD of the same member",
            lambda: connection.pack_commands([("ZADD", "k", 1, member)]),  # type: ignore[no-untyped-call]
        ),
    ]
    return [
        (name, min(timeit.repeat(step, number=samples, repeat=5)) / samples * 1e6, "client CPU per call")
        for name, step in steps
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.script_profile", description=__doc__)
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--batch", type=int, default=100)
    args = parser.parse_args(argv)
    url = os.environ.get("REDIS_URL")
    if url:
        rows = profile(redis.Redis.from_url(url), args.calls, args.batch)
    else:
        with find_server() as found, redis.Redis.from_url(found.url) as client:
            print(f"server: {found.description}")
            rows = profile(client, args.calls, args.batch)
    rows += client_steps(args.calls * 5)
    for name, micros, unit in rows:
        print(f"{micros:8.2f} us  {name} ({unit})")
    return 0


if __name__ == "__main__":
    sys.exit(main())

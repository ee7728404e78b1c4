"""The ``livermore-cache`` command line, run as a subprocess against real servers.

Series are prepared with raw ``ZADD`` of members as the Node service writes them
(``tests/data/node-members.json``), duplicates included, as its read-then-write
``addCandleIfNewer`` leaves them.
"""

from __future__ import annotations

import json
import os
import pty
import queue
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
import redis.cluster

from livermore_cache import (
    CandleCache,
    IndicatorCache,
    IndicatorValue,
    Order,
    Orderbook,
    OrderbookCache,
    Ticker,
    TickerCache,
    candle_key,
)
from tests.support.builders import unified
from tests.support.constants import EXCHANGE, MINUTE, T0, USER
from tests.support.stored import flush_cluster, zmembers, zscored
from tools.servers.cluster import ClusterProcess
from tools.servers.process import free_port

DAY_S = 86_400
KEY_A = candle_key(USER, EXCHANGE, "BTC-USD", "1m")
KEY_B = candle_key(USER, EXCHANGE, "ETH-USD", "5m")
KEY_C = candle_key(USER + 1, EXCHANGE + 1, "BTC-USD", "1m")
SCRIPT = shutil.which("livermore-cache", path=str(Path(sys.executable).parent)) or "livermore-cache"


# ---- builders ---------------------------------------------------------------------------------------------------


def node_member(
    timestamp: int, sequence: int | float | str | None = None, *, close: float = 42000.5, symbol: str = "BTC-USD"
) -> str:
    """A member as the Node service stores it: zod field order, whole numbers without '.0', sequenceNum last.

    ``sequence`` as a str is written as is (a JavaScript number's own spelling, such as ``1.5e3``).
    """
    fields: dict[str, Any] = {
        "timestamp": timestamp,
        "open": 42000,
        "high": 42001.25,
        "low": 41999,
        "close": int(close) if float(close).is_integer() else close,
        "volume": 12.345678,
        "symbol": symbol,
        "timeframe": "1m",
        "exchange": "coinbase",
    }
    text = json.dumps(fields, separators=(",", ":"))
    if sequence is None:
        return text
    return text[:-1] + f',"sequenceNum":{sequence}}}'


def ticker(symbol: str = "BTC-USD") -> Ticker:
    return Ticker(
        symbol=symbol,
        price=42000.5,
        change24h=-1.5,
        change_percent24h=-0.1,
        high24h=42100.25,
        low24h=41000.75,
        volume24h=10.5,
        timestamp=T0,
    )


def indicator(symbol: str = "BTC-USD") -> IndicatorValue:
    return IndicatorValue(timestamp=T0, type="rsi", symbol=symbol, timeframe="1m", value={"rsi": 55.5})


def run(url: str, *args: str, cluster: bool = False, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """``python -m livermore_cache --url URL [--cluster] ARGS``."""
    command = [sys.executable, "-m", "livermore_cache", "--url", url, *(["--cluster"] if cluster else []), *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=timeout, check=False)


def run_json(url: str, *args: str, cluster: bool = False) -> Any:
    done = run(url, *args, "--json", cluster=cluster)
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""  # no progress when stderr is not a terminal
    lines = done.stdout.splitlines()
    assert len(lines) == 1, "one document, on one line"
    return json.loads(lines[0])


def assert_one_line_error(
    done: subprocess.CompletedProcess[str], status: int, starts: str = "livermore-cache: "
) -> None:
    assert done.returncode == status, (done.stdout, done.stderr)
    assert "Traceback" not in done.stderr
    lines = done.stderr.splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith(starts), lines[0]
    assert done.stdout == ""


def prepare(r: redis.Redis) -> dict[str, list[str]]:
    """Three series with duplicates and a gap, values valid and not; returns each series' members."""
    a = {
        # T0: the Node race's three writers: sequences 3 and 5, and one without a sequence
        node_member(T0, 3, close=1.0): T0,
        node_member(T0, 5, close=2.0): T0,
        node_member(T0, None, close=3.0): T0,
        node_member(T0 + MINUTE, 1): T0 + MINUTE,
        # T0 + 2m missing: a gap of one candle
        node_member(T0 + 3 * MINUTE, "1.5e3", close=4.0): T0 + 3 * MINUTE,  # 1500, as JavaScript reads it
        node_member(T0 + 3 * MINUTE, 1400, close=5.0): T0 + 3 * MINUTE,
    }
    r.zadd(KEY_A, a)
    r.expire(KEY_A, DAY_S)
    b = {node_member(T0, 9, symbol="ETH-USD"): T0}
    r.zadd(KEY_B, b)  # no TTL
    c = {
        node_member(T0 + 2 * MINUTE, None, close=7.0): T0 + 2 * MINUTE,  # two without a sequence: a tie
        node_member(T0 + 2 * MINUTE, None, close=6.0): T0 + 2 * MINUTE,
        node_member(T0 + 5 * MINUTE, 2): T0 + 5 * MINUTE,  # gaps of 2 candles
    }
    r.zadd(KEY_C, c)
    r.expire(KEY_C, 600)

    TickerCache(r).set_ticker(USER, EXCHANGE, ticker())
    TickerCache(r).set_ticker(USER, EXCHANGE + 1, ticker("ETH-USD"))
    r.set(f"ticker:{USER}:{EXCHANGE}:SOL-USD", '{"symbol":"SOL-USD","price":')  # not JSON
    r.set(f"ticker:{USER}:{EXCHANGE}:XRP-USD", '{"symbol":"XRP-USD"}')  # JSON, not a ticker
    r.hset(f"ticker:{USER}:{EXCHANGE}:ADA-USD", "price", "1")  # not a string at all
    OrderbookCache(r).set_orderbook(USER, EXCHANGE, Orderbook("BTC-USD", [Order(1.0, 2.0)], [Order(1.5, 1.0)], T0))
    IndicatorCache(r).set_indicator(USER, EXCHANGE, indicator())
    # the Node getters' key form, with params after the type: counted, and this value does not decode
    r.set(f"indicator:{USER}:{EXCHANGE}:BTC-USD:1m:macd:fast=12,slow=26", '{"timestamp":1}')
    # keys that are not the cache's: ignored
    r.set("candles:not-a-series", "x")
    r.zadd("candles:7:1:BTC-USD:7m", {"x": 1})
    r.set("ticker:7:1", "x")
    r.set("tickers", "x")
    return {KEY_A: list(a), KEY_B: list(b), KEY_C: list(c)}


SERIES_A = {
    "key": KEY_A,
    "members": 6,
    "timestamps": 3,
    "duplicates": 2,
    "ttl_s": DAY_S,
    "gaps": 1,
    "oldest": T0,
    "newest": T0 + 3 * MINUTE,
}
SERIES_B = {
    "key": KEY_B,
    "members": 1,
    "timestamps": 1,
    "duplicates": 0,
    "ttl_s": -1,
    "gaps": 0,
    "oldest": T0,
    "newest": T0,
}
SERIES_C = {
    "key": KEY_C,
    "members": 3,
    "timestamps": 2,
    "duplicates": 1,
    "ttl_s": 600,
    "gaps": 2,
    "oldest": T0 + 2 * MINUTE,
    "newest": T0 + 5 * MINUTE,
}


def settle_ttls(document: dict[str, Any]) -> dict[str, Any]:
    """The document with each TTL that ran down by a few seconds since ``prepare`` put back to its EXPIRE."""
    for series in document["series"]:
        for full in (DAY_S, 600):
            if full - 5 <= series["ttl_s"] <= full:
                series["ttl_s"] = full
    return document


# ---- inspect ----------------------------------------------------------------------------------------------------


def test_inspect_json_is_one_exact_document(redis_url: str, r: redis.Redis) -> None:
    prepare(r)
    assert settle_ttls(run_json(redis_url, "inspect")) == {
        "series": [SERIES_A, SERIES_B, SERIES_C],
        "tickers": {"keys": 5, "invalid": 3},
        "orderbooks": {"keys": 1, "invalid": 0},
        "indicators": {"keys": 2, "invalid": 1},
    }


@pytest.mark.parametrize(
    ("filters", "expected"),
    [
        (
            ["--user", str(USER), "--exchange", str(EXCHANGE), "--symbol", "BTC-USD"],
            {
                "series": [SERIES_A],
                "tickers": {"keys": 1, "invalid": 0},
                "orderbooks": {"keys": 1, "invalid": 0},
                "indicators": {"keys": 2, "invalid": 1},
            },
        ),
        (
            ["--timeframe", "5m"],  # tickers and orderbooks have no timeframe: not filtered by it
            {
                "series": [SERIES_B],
                "tickers": {"keys": 5, "invalid": 3},
                "orderbooks": {"keys": 1, "invalid": 0},
                "indicators": {"keys": 0, "invalid": 0},
            },
        ),
        (
            ["--user", str(USER + 1)],
            {
                "series": [SERIES_C],
                "tickers": {"keys": 0, "invalid": 0},
                "orderbooks": {"keys": 0, "invalid": 0},
                "indicators": {"keys": 0, "invalid": 0},
            },
        ),
        (
            ["--exchange", str(EXCHANGE + 1), "--symbol", "ETH-USD"],
            {
                "series": [],
                "tickers": {"keys": 1, "invalid": 0},
                "orderbooks": {"keys": 0, "invalid": 0},
                "indicators": {"keys": 0, "invalid": 0},
            },
        ),
    ],
)
def test_inspect_filters(redis_url: str, r: redis.Redis, filters: list[str], expected: dict[str, Any]) -> None:
    prepare(r)
    assert settle_ttls(run_json(redis_url, "inspect", *filters)) == expected


def test_inspect_on_an_empty_server(redis_url: str) -> None:
    empty = {"keys": 0, "invalid": 0}
    assert run_json(redis_url, "inspect") == {"series": [], "tickers": empty, "orderbooks": empty, "indicators": empty}


def test_inspect_reads_long_series_in_pages(redis_url: str, r: redis.Redis) -> None:
    """More members than one ZRANGE page (10,000): every one counted."""
    members = {node_member(T0 + i * MINUTE, 1): T0 + i * MINUTE for i in range(12_000) if i != 500}
    members[node_member(T0 + 11_000 * MINUTE, 2)] = T0 + 11_000 * MINUTE
    r.zadd(KEY_A, members)
    (series,) = run_json(redis_url, "inspect")["series"]
    assert series == {
        "key": KEY_A,
        "members": 12_000,
        "timestamps": 11_999,
        "duplicates": 1,
        "ttl_s": -1,
        "gaps": 1,
        "oldest": T0,
        "newest": T0 + 11_999 * MINUTE,
    }


def test_inspect_human_output_and_the_console_script(redis_url: str, r: redis.Redis) -> None:
    prepare(r)
    done = subprocess.run([SCRIPT, "--url", redis_url, "inspect"], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    lines = done.stdout.splitlines()
    assert lines[0].split() == ["KEY", "MEMBERS", "TIMESTAMPS", "DUPLICATES", "GAPS", "TTL_S", "OLDEST", "NEWEST"]
    assert lines[2].split()[:5] == [KEY_B, "1", "1", "0", "0"]
    assert f"gap in {KEY_A}: 1 missing from {T0 + 2 * MINUTE} to {T0 + 2 * MINUTE}" in lines
    assert lines[-3:] == [
        "tickers: 5 keys, 3 invalid",
        "orderbooks: 1 keys, 0 invalid",
        "indicators: 2 keys, 1 invalid",
    ]


def test_progress_is_shown_on_a_terminal_only(redis_url: str, r: redis.Redis) -> None:
    prepare(r)
    code = (
        "import sys; from livermore_cache import cli; cli.PROGRESS_DELAY_S = 0.0; "
        f"cli.main(['--url', {redis_url!r}, 'inspect', '--json'])"
    )
    primary, secondary = pty.openpty()
    try:
        done = subprocess.run(
            [sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=secondary, timeout=60, check=False
        )
        os.close(secondary)
        secondary = -1
        shown = b""
        while True:
            try:
                chunk = os.read(primary, 65536)
            except OSError:  # EIO: the terminal's other side is closed and drained
                break
            if not chunk:
                break
            shown += chunk
    finally:
        if secondary != -1:
            os.close(secondary)
        os.close(primary)
    assert done.returncode == 0
    assert b"livermore-cache: scanned keys: " in shown
    assert shown.endswith(b"\r\x1b[K"), "the progress line is cleared at the end"
    assert json.loads(done.stdout)["tickers"] == {"keys": 5, "invalid": 3}, "stdout holds the document alone"


def test_scan_only_never_keys(redis_url: str, r: redis.Redis) -> None:
    """A user denied KEYS (every other command allowed) runs inspect and heal."""
    prepare(r)
    r.acl_setuser("cli-ops", enabled=True, passwords=["+secret"], keys=["*"], categories=["+@all"], commands=["-keys"])
    try:
        url = redis_url.replace("redis://", "redis://cli-ops:secret@")
        with redis.Redis.from_url(url) as ops, pytest.raises(redis.exceptions.NoPermissionError):
            ops.keys("*")
        assert settle_ttls(run_json(url, "inspect"))["series"] == [SERIES_A, SERIES_B, SERIES_C]
        assert run_json(url, "heal") == {"dry_run": True, "series_healed": 2, "members_removed": 4}
        assert run_json(url, "heal", "--apply") == {"dry_run": False, "series_healed": 2, "members_removed": 4}
    finally:
        r.acl_deluser("cli-ops")


# ---- heal -------------------------------------------------------------------------------------------------------


def snapshot(r: redis.Redis) -> dict[str, list[tuple[bytes, float]]]:
    return {key: zscored(r, key) for key in (KEY_A, KEY_B, KEY_C)}


def test_heal_dry_run_reports_what_apply_does(redis_url: str, r: redis.Redis) -> None:
    members = prepare(r)
    before = snapshot(r)
    assert run_json(redis_url, "heal") == {"dry_run": True, "series_healed": 2, "members_removed": 4}
    assert snapshot(r) == before, "a dry run changes nothing"

    assert run_json(redis_url, "heal", "--apply") == {"dry_run": False, "series_healed": 2, "members_removed": 4}
    a, b, c = members[KEY_A], members[KEY_B], members[KEY_C]
    # A: sequence 5 beats 3 and the member without one; 1.5e3 (1500) beats 1400
    assert zmembers(r, KEY_A) == [m.encode() for m in (a[1], a[3], a[4])]
    assert zmembers(r, KEY_B) == [b[0].encode()]
    # C: neither has a sequence: the first in the sorted set's order (by bytes) stays
    assert zmembers(r, KEY_C) == [min(c[0], c[1]).encode(), c[2].encode()]
    assert DAY_S - 5 <= r.ttl(KEY_A) <= DAY_S
    assert 595 <= r.ttl(KEY_C) <= 600

    assert run_json(redis_url, "heal") == {"dry_run": True, "series_healed": 0, "members_removed": 0}
    assert [s["duplicates"] for s in run_json(redis_url, "inspect")["series"]] == [0, 0, 0]


def test_heal_keeps_what_the_versioned_write_counts_as_held(redis_url: str, r: redis.Redis) -> None:
    """After healing, the kept sequence is the one versioned_write.lua compared against before: same verdicts."""
    prepare(r)
    cache = CandleCache(r, ttl_seconds=DAY_S)
    assert cache.add_candle_if_newer(USER, EXCHANGE, unified(T0 + 3 * MINUTE, 1500)) is False, "1.5e3 held there"
    run_json(redis_url, "heal", "--apply")
    assert cache.add_candle_if_newer(USER, EXCHANGE, unified(T0, 5)) is False
    assert cache.add_candle_if_newer(USER, EXCHANGE, unified(T0, 6)) is True


def test_heal_filters_select_series(redis_url: str, r: redis.Redis) -> None:
    prepare(r)
    assert run_json(redis_url, "heal", "--apply", "--user", str(USER + 1)) == {
        "dry_run": False,
        "series_healed": 1,
        "members_removed": 1,
    }
    assert r.zcard(KEY_A) == 6, "another user's series is left alone"
    assert r.zcard(KEY_C) == 2


def test_heal_human_output(redis_url: str, r: redis.Redis) -> None:
    prepare(r)
    done = run(redis_url, "heal")
    assert done.returncode == 0
    assert done.stdout.splitlines() == [
        f"{KEY_A}: 2 timestamps with duplicates, would remove 3 members",
        f"{KEY_C}: 1 timestamps with duplicates, would remove 1 members",
        "dry run: 2 series to heal, would remove 4 members (run with --apply to heal)",
    ]
    done = run(redis_url, "heal", "--apply")
    assert done.stdout.splitlines()[-1] == "2 series healed, removed 4 members"


def test_heal_is_atomic_per_series(redis_url: str, r: redis.Redis) -> None:
    """A reader polling the series during the heal sees it whole before, then healed: nothing in between."""
    stamps = 20_000
    members: dict[str, int] = {}
    for i in range(stamps):
        members[node_member(T0 + i * MINUTE, 1)] = T0 + i * MINUTE
        members[node_member(T0 + i * MINUTE, 2)] = T0 + i * MINUTE
    r.zadd(KEY_A, members)
    seen: set[int] = set()
    stop = threading.Event()

    def poll() -> None:
        with redis.Redis.from_url(redis_url) as reader:
            while not stop.is_set():
                seen.add(int(reader.zcard(KEY_A)))

    thread = threading.Thread(target=poll)
    thread.start()
    try:
        assert run_json(redis_url, "heal", "--apply") == {
            "dry_run": False,
            "series_healed": 1,
            "members_removed": stamps,
        }
        time.sleep(0.05)
    finally:
        stop.set()
        thread.join(10)
    assert seen <= {2 * stamps, stamps}
    assert stamps in seen
    assert zmembers(r, KEY_A) == [node_member(T0 + i * MINUTE, 2).encode() for i in range(stamps)]


# ---- tail -------------------------------------------------------------------------------------------------------


class Tail:
    """A running ``tail``: its stdout read line by line on a thread."""

    def __init__(self, command: list[str]) -> None:
        self.process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.lines: queue.Queue[str] = queue.Queue()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.put(line)

    def line(self, timeout: float = 15) -> str:
        return self.lines.get(timeout=timeout)

    def interrupt(self) -> tuple[int, str]:
        self.process.send_signal(signal.SIGINT)
        self.process.wait(15)
        self._reader.join(5)
        assert self.process.stderr is not None
        return self.process.returncode, self.process.stderr.read()

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)
        for stream in (self.process.stdout, self.process.stderr):
            if stream is not None:
                stream.close()


@pytest.fixture
def tail(redis_url: str) -> Iterator[Callable[..., Tail]]:
    started: list[Tail] = []

    def start(*args: str, script: bool = False) -> Tail:
        head = [SCRIPT] if script else [sys.executable, "-m", "livermore_cache"]
        running = Tail([*head, "--url", redis_url, "tail", *args])
        started.append(running)
        return running

    yield start
    for running in started:
        running.kill()


def publish_until_heard(publish: Callable[[], int], timeout: float = 15) -> None:
    """Publish until one receiver got it: the tail has subscribed."""
    deadline = time.monotonic() + timeout
    while publish() < 1:
        assert time.monotonic() < deadline, "the tail never subscribed"
        time.sleep(0.05)


@pytest.mark.parametrize("script", [False, True], ids=["python-m", "console-script"])
def test_tail_closes_json_until_sigint(tail: Callable[..., Tail], r: redis.Redis, script: bool) -> None:
    running = tail("closes", "--user", str(USER), "--exchange", str(EXCHANGE), "--json", script=script)
    candle = unified(T0, 7, close=42001.5)
    publish_until_heard(lambda: CandleCache(r).publish_close(USER, EXCHANGE, candle))
    event = json.loads(running.line())
    assert event == {
        "event": "close",
        "key": KEY_A,
        "user": USER,
        "exchange": EXCHANGE,
        "symbol": "BTC-USD",
        "timeframe": "1m",
        "backfilled": False,
        "candle": {
            "timestamp": T0,
            "open": 42000.0,
            "high": 42001.5,
            "low": 41999.0,
            "close": 42001.5,
            "volume": 12.345678,
            "symbol": "BTC-USD",
            "timeframe": "1m",
            "exchange": "coinbase",
            "sequenceNum": 7,
        },
    }
    CandleCache(r).publish_close(USER, EXCHANGE, unified(T0 + MINUTE, 8))
    assert json.loads(running.line())["candle"]["sequenceNum"] == 8, "each line is flushed as it comes"
    assert running.interrupt() == (0, "")


def test_tail_closes_by_pattern_in_human_lines(tail: Callable[..., Tail], r: redis.Redis) -> None:
    """No --user or --exchange: every series' closes; --symbol still filters."""
    running = tail("closes", "--symbol", "ETH-USD")
    cache = CandleCache(r)
    publish_until_heard(lambda: cache.publish_close(USER + 1, 3, unified(T0, 4, symbol="ETH-USD", timeframe="5m")))
    assert cache.publish_close(USER, EXCHANGE, unified(T0, 5)) == 0, "BTC-USD is not heard"
    assert running.line() == (
        f"close candles:{USER + 1}:3:ETH-USD:5m t={T0} o=42000.0 h=42001.25 l=41999.0 c=42000.5 v=12.345678 seq=4\n"
    )
    assert running.interrupt() == (0, "")


def test_tail_tickers(tail: Callable[..., Tail], r: redis.Redis) -> None:
    running = tail("tickers", "--user", str(USER), "--exchange", str(EXCHANGE), "--json")
    publish_until_heard(lambda: TickerCache(r).publish_update(USER, EXCHANGE, ticker()))
    assert json.loads(running.line()) == {
        "event": "ticker",
        "key": f"ticker:{USER}:{EXCHANGE}:BTC-USD",
        "backfilled": False,
        "ticker": {
            "symbol": "BTC-USD",
            "price": 42000.5,
            "change24h": -1.5,
            "changePercent24h": -0.1,
            "high24h": 42100.25,
            "low24h": 41000.75,
            "volume24h": 10.5,
            "timestamp": T0,
        },
    }
    assert running.interrupt() == (0, "")


def test_tail_indicators(tail: Callable[..., Tail], r: redis.Redis) -> None:
    running = tail("indicators", "--user", str(USER), "--exchange", str(EXCHANGE), "--timeframe", "1m")
    publish_until_heard(lambda: IndicatorCache(r).publish_update(USER, EXCHANGE, indicator()))
    assert running.line() == f"indicator indicator:{USER}:{EXCHANGE}:BTC-USD:1m:rsi t={T0} rsi=55.5\n"
    assert running.interrupt() == (0, "")


def test_tail_exits_0_on_sigint_with_no_event(tail: Callable[..., Tail], r: redis.Redis) -> None:
    running = tail("indicators", "--json")
    publish_until_heard(lambda: int(r.publish(f"channel:indicator:{USER}:{EXCHANGE}:X:1m:rsi", "not json")))
    assert running.interrupt() == (0, "")
    assert running.lines.empty(), "a malformed message prints nothing"


# ---- failures ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("command", [["inspect"], ["heal", "--apply"], ["tail", "closes"]])
def test_unreachable_server(command: list[str]) -> None:
    url = f"redis://127.0.0.1:{free_port()}"  # nothing listens there
    done = run(url, *command)
    assert_one_line_error(done, 1, f"livermore-cache: cannot reach {url}: ")


def test_unreachable_server_hides_the_password() -> None:
    port = free_port()
    done = run(f"redis://ops:hunter2@127.0.0.1:{port}/0", "inspect", "--json")
    assert_one_line_error(done, 1, f"livermore-cache: cannot reach redis://ops:***@127.0.0.1:{port}/0: ")
    assert "hunter2" not in done.stderr


@pytest.mark.parametrize("url", ["http://127.0.0.1:6379", "redis://127.0.0.1:notaport", "localhost:6379"])
def test_bad_url(url: str) -> None:
    assert_one_line_error(run(url, "inspect"), 2, "livermore-cache: bad URL ")


@pytest.mark.parametrize(
    "args",
    [
        [],
        ["nope"],
        ["inspect", "--bogus"],
        ["inspect", "--user", "-1"],
        ["inspect", "--user", "x"],
        ["inspect", "--timeframe", "7m"],
        ["inspect", "--symbol", "BTC*"],
        ["inspect", "--symbol", "a:b"],
        ["inspect", "--url", "redis://elsewhere:6379"],  # a common option after the command
        ["heal", "--apply=yes"],
        ["tail"],
        ["tail", "candles"],
        ["tail", "tickers", "--timeframe", "1m"],
    ],
)
def test_bad_arguments(redis_url: str, args: list[str]) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "livermore_cache", "--url", redis_url, *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert_one_line_error(done, 2)


def test_help_and_version() -> None:
    done = subprocess.run([SCRIPT, "--help"], capture_output=True, text=True, check=False)
    assert done.returncode == 0
    for word in ("--url", "--cluster", "inspect", "heal", "tail", "redis://localhost:6379"):
        assert word in done.stdout
    inspect_help = subprocess.run([SCRIPT, "inspect", "--help"], capture_output=True, text=True, check=False).stdout
    assert "gaps (how many candles" in inspect_help
    for option in ("--user", "--exchange", "--symbol", "--timeframe", "--json"):
        assert option in inspect_help
    version = subprocess.run([sys.executable, "-m", "livermore_cache", "--version"], capture_output=True, text=True)
    assert version.returncode == 0
    assert version.stdout.startswith("livermore-cache, version ")


# ---- cluster ----------------------------------------------------------------------------------------------------

SYMBOLS = [f"C{i:02d}-USD" for i in range(24)]


@pytest.mark.cluster
@pytest.mark.slow
def test_cluster_inspect_and_heal_scan_every_primary(cluster: ClusterProcess) -> None:
    flush_cluster(cluster)
    client: Any = redis.cluster.RedisCluster.from_url(cluster.url)
    try:
        keys = [candle_key(USER, EXCHANGE, s, "1m") for s in SYMBOLS]
        assert len({client.get_node_from_key(k).name for k in keys}) == 3, "the series land on all three primaries"
        for key, symbol in zip(keys, SYMBOLS, strict=True):
            client.zadd(
                key,
                {
                    node_member(T0, 1, symbol=symbol): T0,
                    node_member(T0, 2, symbol=symbol): T0,
                    node_member(T0 + 2 * MINUTE, 1, symbol=symbol): T0 + 2 * MINUTE,
                },
            )
            client.set(f"ticker:{USER}:{EXCHANGE}:{symbol}", "{}")
        document = run_json(cluster.url, "inspect", cluster=True)
        assert [s["key"] for s in document["series"]] == sorted(keys)
        assert {
            (s["members"], s["timestamps"], s["duplicates"], s["gaps"], s["ttl_s"]) for s in document["series"]
        } == {(3, 2, 1, 1, -1)}
        assert document["tickers"] == {"keys": len(SYMBOLS), "invalid": len(SYMBOLS)}

        assert run_json(cluster.url, "heal", cluster=True) == {
            "dry_run": True,
            "series_healed": len(SYMBOLS),
            "members_removed": len(SYMBOLS),
        }
        assert run_json(cluster.url, "heal", "--apply", "--symbol", SYMBOLS[0], cluster=True)["members_removed"] == 1
        assert run_json(cluster.url, "heal", "--apply", cluster=True) == {
            "dry_run": False,
            "series_healed": len(SYMBOLS) - 1,
            "members_removed": len(SYMBOLS) - 1,
        }
        for key, symbol in zip(keys, SYMBOLS, strict=True):
            assert client.zrange(key, 0, -1) == [
                node_member(T0, 2, symbol=symbol).encode(),
                node_member(T0 + 2 * MINUTE, 1, symbol=symbol).encode(),
            ]
    finally:
        client.close()


def numpat(url: str) -> int:
    with redis.Redis.from_url(url) as node:
        return int(node.pubsub_numpat())


@pytest.mark.cluster
@pytest.mark.slow
def test_cluster_tail(cluster: ClusterProcess) -> None:
    client: Any = redis.cluster.RedisCluster.from_url(cluster.url)
    running = Tail(
        [sys.executable, "-m", "livermore_cache", "--url", cluster.url, "--cluster", "tail", "closes", "--json"]
    )
    try:
        # PUBLISH's reply counts the receivers of one node only: wait for the pattern on any node instead
        deadline = time.monotonic() + 15
        while sum(numpat(node.url) for node in cluster.live_nodes()) < 1:
            assert time.monotonic() < deadline, "the tail never subscribed"
            time.sleep(0.05)
        CandleCache(client).publish_close(USER, EXCHANGE, unified(T0, 3))  # a Cluster delivers it from any node
        assert json.loads(running.line())["key"] == KEY_A
        assert running.interrupt() == (0, "")
    finally:
        running.kill()
        client.close()


def test_cluster_unreachable() -> None:
    url = f"redis://127.0.0.1:{free_port()}"
    assert_one_line_error(run(url, "inspect", cluster=True), 1, f"livermore-cache: cannot reach {url}: ")

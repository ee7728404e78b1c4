"""The documented ACL lines cover every public method: as that user, sync and asyncio, one server and a Cluster.

The lines are read from docs/deployment.md, so the test checks what users copy. Every
call runs after a ``SCRIPT FLUSH`` on every server (an empty script cache: EVALSHA
must fall back to EVAL, never to SCRIPT LOAD). A table names a call for each public
method; a method missing from it fails the test, so a new method needs its line.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import redis

from livermore_cache import (
    CandleCache,
    IndicatorCache,
    OrderbookCache,
    TickerCache,
    candle_close_pattern,
    indicator_channel_pattern,
    ticker_channel_pattern,
)
from tests.support.builders import indicator, orderbook, ticker, unified
from tests.support.constants import EXCHANGE, MINUTE, ROOT, SYMBOL, T0, USER
from tests.support.facade import Facade
from tools.servers.cluster import ClusterProcess
from tools.servers.process import ServerProcess

DEPLOYMENT = (ROOT / "docs" / "deployment.md").read_text(encoding="utf-8")
CLUSTER_EXTRA = "+cluster|slots +cluster|shards +command +asking +readonly"
LIFECYCLE = {"close", "aclose", "from_url"}


def documented_rules(user: str) -> list[str]:
    """The page's ``ACL SETUSER <user> ...`` line, as rules (the password placeholder left for the caller)."""
    match = re.search(rf"^ACL SETUSER {re.escape(user)} (.+)$", DEPLOYMENT, re.M)
    assert match is not None, f"docs/deployment.md has no ACL line for {user}"
    return match.group(1).split()


def _calls(kind: str) -> dict[str, Callable[[Any], object]]:
    """One call per public method of the cache ``kind``, each as the restricted user would make it."""
    later = unified(T0 + MINUTE, 2)
    if kind == "candle":
        return {
            "add_candle": lambda c: c.add_candle(USER, EXCHANGE, unified(T0, 1)),
            "add_candles": lambda c: c.add_candles(USER, EXCHANGE, [unified(T0, 1)]),
            "add_candle_if_newer": lambda c: c.add_candle_if_newer(USER, EXCHANGE, later, publish_close=True),
            # five 1m candles: a complete 5m period, so the roll-ups count, read and write (SETTINGS)
            "add_candles_if_newer": lambda c: c.add_candles_if_newer(
                USER, EXCHANGE, [unified(T0 + i * MINUTE, 3) for i in range(5)], publish_close=True
            ),
            "get_recent_candles": lambda c: c.get_recent_candles(USER, EXCHANGE, SYMBOL, "1m"),
            "get_candles_in_range": lambda c: c.get_candles_in_range(USER, EXCHANGE, SYMBOL, "1m", T0, T0 + MINUTE),
            "get_latest_candle": lambda c: c.get_latest_candle(USER, EXCHANGE, SYMBOL, "1m"),
            "get_candle_count": lambda c: c.get_candle_count(USER, EXCHANGE, SYMBOL, "1m"),
            "get_candle_timestamps": lambda c: c.get_candle_timestamps(USER, EXCHANGE, SYMBOL, "1m", T0, T0 + MINUTE),
            "find_gaps": lambda c: c.find_gaps(USER, EXCHANGE, SYMBOL, "1m", T0, T0 + 2 * MINUTE),
            "is_ready": lambda c: c.is_ready(USER, EXCHANGE, SYMBOL, "1m", 2),
            "publish_update": lambda c: c.publish_update(USER, EXCHANGE, unified(T0, 1)),
            "publish_close": lambda c: c.publish_close(USER, EXCHANGE, unified(T0, 1)),
            "subscribe_closes": lambda c: c.subscribe_closes(USER, EXCHANGE),
            "clear_candles": lambda c: c.clear_candles(USER, EXCHANGE, SYMBOL, "1m"),
        }
    if kind == "ticker":
        return {
            "set_ticker": lambda c: c.set_ticker(USER, EXCHANGE, ticker()),
            "set_ticker_if_newer": lambda c: c.set_ticker_if_newer(
                USER, EXCHANGE, ticker(timestamp=T0 + 1), publish=True
            ),
            "set_tickers_if_newer": lambda c: c.set_tickers_if_newer(USER, EXCHANGE, [ticker(timestamp=T0 + 2)]),
            "get_ticker": lambda c: c.get_ticker(USER, EXCHANGE, SYMBOL),
            "get_tickers": lambda c: c.get_tickers(USER, EXCHANGE, [SYMBOL, "ETH-USD"]),
            "publish_update": lambda c: c.publish_update(USER, EXCHANGE, ticker()),
            "has_ticker": lambda c: c.has_ticker(USER, EXCHANGE, SYMBOL),
            "subscribe_tickers": lambda c: c.subscribe_tickers(USER, EXCHANGE),
            "delete_ticker": lambda c: c.delete_ticker(USER, EXCHANGE, SYMBOL),
        }
    if kind == "orderbook":
        return {
            "set_orderbook": lambda c: c.set_orderbook(USER, EXCHANGE, orderbook()),
            "set_orderbook_if_newer": lambda c: c.set_orderbook_if_newer(
                USER, EXCHANGE, orderbook(timestamp=T0 + 1), publish=True
            ),
            "set_orderbooks_if_newer": lambda c: c.set_orderbooks_if_newer(
                USER, EXCHANGE, [orderbook(timestamp=T0 + 2)]
            ),
            "get_orderbook": lambda c: c.get_orderbook(USER, EXCHANGE, SYMBOL),
            "get_orderbooks": lambda c: c.get_orderbooks(USER, EXCHANGE, [SYMBOL]),
            "publish_update": lambda c: c.publish_update(USER, EXCHANGE, orderbook()),
            "has_orderbook": lambda c: c.has_orderbook(USER, EXCHANGE, SYMBOL),
            "subscribe_orderbooks": lambda c: c.subscribe_orderbooks(USER, EXCHANGE),
            "delete_orderbook": lambda c: c.delete_orderbook(USER, EXCHANGE, SYMBOL),
        }
    value = indicator()
    return {
        "set_indicator": lambda c: c.set_indicator(USER, EXCHANGE, value),
        "set_indicators": lambda c: c.set_indicators(USER, EXCHANGE, [value]),
        "set_indicator_if_newer": lambda c: c.set_indicator_if_newer(
            USER, EXCHANGE, indicator(timestamp=T0 + 1), publish=True
        ),
        "set_indicators_if_newer": lambda c: c.set_indicators_if_newer(USER, EXCHANGE, [indicator(timestamp=T0 + 2)]),
        "get_indicator": lambda c: c.get_indicator(USER, EXCHANGE, value.symbol, value.timeframe, value.type),
        "get_indicators_bulk": lambda c: c.get_indicators_bulk(USER, EXCHANGE, [(value.symbol, value.timeframe)]),
        "publish_update": lambda c: c.publish_update(USER, EXCHANGE, value),
        "has_indicator": lambda c: c.has_indicator(USER, EXCHANGE, value.symbol, value.timeframe, value.type),
        "subscribe_indicators": lambda c: c.subscribe_indicators(USER, EXCHANGE),
        "delete_indicator": lambda c: c.delete_indicator(USER, EXCHANGE, value.symbol, value.timeframe, value.type),
    }


SETTINGS: dict[str, dict[str, Any]] = {"candle": {"rollups": {"1m": ["5m", "15m"]}}}
"""The candle cache keeps roll-ups, so that their reads (ZCOUNT, ZREVRANGEBYSCORE) run as the user too."""

CLASSES: dict[str, type[Any]] = {
    "candle": CandleCache,
    "ticker": TickerCache,
    "orderbook": OrderbookCache,
    "indicator": IndicatorCache,
}
PATTERNS = {
    "candle": candle_close_pattern(USER, EXCHANGE),
    "ticker": ticker_channel_pattern(USER, EXCHANGE)[0],
    "orderbook": f"channel:orderbook:{USER}:{EXCHANGE}:*",
    "indicator": indicator_channel_pattern(USER, EXCHANGE)[0],
}


@pytest.mark.parametrize("kind", list(CLASSES))
def test_every_public_method_has_a_call_in_the_table(kind: str) -> None:
    public = {
        name for name in dir(CLASSES[kind]) if not name.startswith("_") and callable(getattr(CLASSES[kind], name))
    }
    assert public - LIFECYCLE == set(_calls(kind))


def _user_rules(kind: str, password: str, *, cluster: bool) -> list[str]:
    rules = documented_rules("livermore" if kind == "candle" else "livermore-values")
    rules = [f">{password}" if rule == ">PASSWORD" else rule for rule in rules]
    if kind in PATTERNS:
        rules.append(f"&{PATTERNS[kind]}")  # the exact pattern of the pattern subscription, as the page says
    return rules + (CLUSTER_EXTRA.split() if cluster else [])


def _run_every_method(facade: Facade, kind: str, cache: Any, flush: Callable[[], None]) -> None:
    for name, call in _calls(kind).items():
        flush()  # an empty script cache before every call
        result = call(cache)
        if name.startswith("subscribe_"):
            subscription: Any = result
            if facade.is_async:
                facade.loop.run_until_complete(subscription.start())
                facade.loop.run_until_complete(subscription.aclose())
            else:
                subscription.close()


def _refusals(client: Any, facade: Facade, kind: str) -> None:
    """What the user cannot do: other keys, other commands."""
    other = "other:key" if kind != "candle" else "ticker:1:1:X"
    for command in (("GET", other), ("SET", other, "x"), ("KEYS", "*"), ("SCRIPT", "LOAD", "return 1"), ("FLUSHALL",)):
        with pytest.raises(redis.exceptions.ResponseError, match=r"(?i)noperm|permission"):
            facade.command(client, *command)


@pytest.mark.parametrize("kind", list(CLASSES))
def test_the_documented_line_covers_every_method_on_one_server(
    kind: str, private_server: Callable[..., ServerProcess], facade: Facade
) -> None:
    server = private_server()
    password = secrets.token_hex(8)
    with redis.Redis.from_url(server.url) as admin:
        assert admin.execute_command("ACL", "SETUSER", "restricted", *_user_rules(kind, password, cluster=False))
        client = facade.client(server.url, username="restricted", password=password)
        cache = facade.cache(CLASSES[kind], client, **SETTINGS.get(kind, {}))
        _run_every_method(facade, kind, cache, admin.script_flush)
        _refusals(client, facade, kind)


@pytest.fixture(scope="module")
def acl_cluster(cluster: ClusterProcess) -> Iterator[ClusterProcess]:
    yield cluster
    for node in cluster.live_nodes():
        with redis.Redis.from_url(node.url) as admin:
            admin.execute_command("ACL", "DELUSER", "restricted")


@pytest.mark.slow
@pytest.mark.cluster
@pytest.mark.parametrize("kind", list(CLASSES))
def test_the_documented_line_covers_every_method_on_a_cluster(
    kind: str, acl_cluster: ClusterProcess, facade: Facade
) -> None:
    password = secrets.token_hex(8)
    nodes = acl_cluster.live_nodes()
    for node in nodes:  # ACLs are per node
        with redis.Redis.from_url(node.url) as admin:
            admin.execute_command("ACL", "SETUSER", "restricted", "reset")
            assert admin.execute_command("ACL", "SETUSER", "restricted", *_user_rules(kind, password, cluster=True))

    def flush() -> None:
        for node in nodes:
            with redis.Redis.from_url(node.url) as admin:
                admin.script_flush()

    client = facade.client(acl_cluster.url, cluster=True, username="restricted", password=password)
    cache = facade.cache(CLASSES[kind], client, **SETTINGS.get(kind, {}))
    _run_every_method(facade, kind, cache, flush)

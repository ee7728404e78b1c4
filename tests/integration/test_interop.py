"""Wire compatibility with the Node service (@livermore/cache).

``data/node-members.json`` holds members captured from the Node service's own
code against Redis 7.0: JSON.stringify field order, whole numbers without
``.0``, unset optional fields absent.
"""

from __future__ import annotations

import json
from typing import Any

import msgspec
import pytest
import redis

from livermore_cache import Candle, UnifiedCandle
from tests.support.constants import MINUTE
from tests.support.node import node_members
from tests.support.stored import zmembers, zscored

CAPTURE = node_members()
CASES = CAPTURE["cases"]
CANDLE_FIELDS = ["timestamp", "open", "high", "low", "close", "volume", "symbol", "timeframe", "isSynthetic"]
UNIFIED_FIELDS = [*CANDLE_FIELDS, "exchange", "exchangeTimestamp", "sequenceNum"]


def series_of(key: str) -> tuple[int, int, str, str]:
    _, user, exchange, symbol, timeframe = key.split(":")
    return int(user), int(exchange), symbol, timeframe


def model_of(member: str) -> type[Candle]:
    return UnifiedCandle if '"exchange"' in member else Candle


@pytest.mark.parametrize("case", CASES, ids=[c["call"] for c in CASES])
def test_node_member_is_read(cache: Any, r: redis.Redis, case: dict[str, Any]) -> None:
    r.zadd(case["key"], {case["member"]: case["score"]})
    model = model_of(case["member"])
    read = cache.get_latest_candle(*series_of(case["key"]), model=model)
    expected = json.loads(case["member"])
    assert read is not None
    as_json = msgspec.to_builtins(read)
    assert as_json == expected
    assert list(as_json) == list(expected), "same field order as JSON.stringify"


@pytest.mark.parametrize("case", CASES, ids=[c["call"] for c in CASES])
def test_our_encoding_has_the_node_schema(case: dict[str, Any]) -> None:
    """Decode the Node member and encode it again: same names, same order, same values, no nulls."""
    model = model_of(case["member"])
    ours = msgspec.json.encode(msgspec.json.decode(case["member"], type=model)).decode()
    node = json.loads(case["member"])
    mine = json.loads(ours)
    assert mine == node
    assert list(mine) == list(node)
    assert set(mine) <= set(UNIFIED_FIELDS if model is UnifiedCandle else CANDLE_FIELDS)
    assert "null" not in ours
    ordered = [name for name in UNIFIED_FIELDS if name in mine]
    assert list(mine) == ordered


def test_versioned_against_node_member_with_sequence(cache: Any, r: redis.Redis) -> None:
    case = CASES[0]
    assert '"sequenceNum":7' in case["member"]
    r.zadd(case["key"], {case["member"]: case["score"]})
    series = series_of(case["key"])
    node_candle = msgspec.json.decode(case["member"], type=UnifiedCandle)
    for sequence, expected in ((6, False), (7, False), (8, True)):
        attempt = msgspec.structs.replace(node_candle, sequence_num=sequence, close=1000.0 + sequence)
        assert cache.add_candle_if_newer(series[0], series[1], attempt) is expected
    members = zmembers(r, case["key"])
    assert len(members) == 1, "the Node member (42000) was replaced by score, not left beside ours (42000.0)"
    assert json.loads(members[0])["sequenceNum"] == 8


def test_versioned_against_node_member_without_sequence(cache: Any, r: redis.Redis) -> None:
    case = CASES[1]
    r.zadd(case["key"], {case["member"]: case["score"]})
    series = series_of(case["key"])
    node_candle = msgspec.json.decode(case["member"], type=UnifiedCandle)
    assert cache.add_candle_if_newer(series[0], series[1], msgspec.structs.replace(node_candle, sequence_num=0))
    assert r.zcard(case["key"]) == 1
    # and a Node plain candle (addCandle) is replaced by any versioned write too
    plain = CASES[2]
    r.zadd(plain["key"], {plain["member"]: plain["score"] + MINUTE})
    again = msgspec.structs.replace(node_candle, timestamp=plain["score"] + MINUTE, sequence_num=1)
    assert cache.add_candle_if_newer(series[0], series[1], again)
    assert r.zcard(case["key"]) == 2


def test_add_candle_stores_what_node_add_candle_stores(cache: Any, r: redis.Redis) -> None:
    """addCandle parses with CandleSchema: exchange, exchangeTimestamp and sequenceNum are dropped."""
    source, dropped = CASES[0], CASES[3]
    series = series_of(source["key"])
    cache.add_candle(series[0], series[1], msgspec.json.decode(source["member"], type=UnifiedCandle))
    ((member, score),) = zscored(r, source["key"])
    assert score == dropped["score"]
    assert json.loads(member) == json.loads(dropped["member"])
    assert list(json.loads(member)) == list(json.loads(dropped["member"]))
    assert 0 < r.ttl(source["key"]) <= 86400


def test_synthetic_flag_round_trips(cache: Any, r: redis.Redis) -> None:
    case = CASES[4]
    series = series_of(case["key"])
    cache.add_candle(series[0], series[1], msgspec.json.decode(case["member"], type=Candle))
    assert json.loads(zmembers(r, case["key"])[0]) == json.loads(case["member"])

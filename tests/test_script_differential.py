"""The script against its reference: the same randomized calls, the same replies, sets, TTLs and messages.

``data/versioned_write_reference.lua`` is the script as it was before its
rewrite for speed (one NDJSON argument, parsed in Lua). The rewrite takes each
candle's timestamp and sequence from the client and answers some candles
without sending them; on every call here both must leave exactly the same
state and say exactly the same.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import msgspec
import pytest
import redis

from livermore_cache import Candle, UnifiedCandle
from livermore_cache.core import RETRY_MODE, VERSIONED_MODE, plan_write
from livermore_cache.scripts import script_source

from .helpers import EXCHANGE, MINUTE, SYMBOL, T0, TIMEFRAME, USER

REFERENCE = (Path(__file__).parent / "data" / "versioned_write_reference.lua").read_text()
CHANNEL = "channel:candle:close:differential"
ENCODER = msgspec.json.Encoder()


def random_candle(rng: random.Random) -> Candle:
    stamp = T0 + rng.randrange(6) * MINUTE
    close = rng.choice([1.0, 1.5, 2.0, 2.5])
    fields: dict[str, Any] = {
        "timestamp": stamp, "open": 1.0, "high": 3.0, "low": 0.5, "close": close, "volume": 1.0,
        "symbol": SYMBOL, "timeframe": TIMEFRAME,
    }  # fmt: skip
    if rng.random() < 0.15:
        return Candle(**fields)
    sequence = None if rng.random() < 0.15 else rng.randrange(6)
    return UnifiedCandle(**fields, exchange="coinbase", sequence_num=sequence)


def random_member(rng: random.Random) -> tuple[bytes, int]:
    """What another writer may have left: our encoding, Node's, unsequenced, or a wide sequence."""
    candle = random_candle(rng)
    member = ENCODER.encode(candle)
    if rng.random() < 0.3:
        member = member.replace(b".0,", b",").replace(b".0}", b"}")  # JavaScript's whole numbers
    if rng.random() < 0.05:
        member = member.replace(b'"sequenceNum":', b'"sequenceNum":1e+1')
    return member, candle.timestamp


END = b"--end of call--"


def drain(pubsub: Any, publisher: redis.Redis) -> list[bytes]:
    """The messages published since the last drain: read up to a marker published after them."""
    publisher.publish(CHANNEL, END)
    messages: list[bytes] = []
    while (message := pubsub.get_message(timeout=5)) is not None:
        if message["type"] == "message":
            if message["data"] == END:
                return messages
            messages.append(message["data"])
    raise AssertionError("the end marker did not arrive")


def state(client: redis.Redis, key: str) -> tuple[Any, int]:
    ttl = client.ttl(key)
    return client.zrange(key, 0, -1, withscores=True), -1 if ttl == -1 else (0 if ttl < 0 else 1)


@pytest.mark.parametrize("seed", range(4))
def test_the_rewritten_script_answers_and_writes_as_its_reference(redis_url: str, seed: int) -> None:
    rng = random.Random(seed)
    server = redis_url.rsplit("/", 1)[0]  # the URL's database number wins over a db= argument
    reference_db = redis.Redis.from_url(f"{server}/1")
    current_db = redis.Redis.from_url(f"{server}/2")
    assert reference_db.connection_pool.connection_kwargs["db"] == 1
    reference = reference_db.register_script(REFERENCE)
    current = current_db.register_script(script_source("versioned_write"))
    listener = redis.Redis.from_url(redis_url).pubsub()  # type: ignore[no-untyped-call, unused-ignore]
    listener.subscribe(CHANNEL)
    drain(listener, reference_db)
    key = "candles:differential"
    try:
        for _ in range(250):
            seeded = [random_member(rng) for _ in range(rng.randrange(4))]
            candles = [random_candle(rng) for _ in range(rng.randrange(1, 9))]
            versioned = rng.random() < 0.8
            retry = versioned and rng.random() < 0.3
            ttl = rng.choice([0, 100])
            max_candles = rng.choice([2, 3, 5, 1000])
            publish = rng.random() < 0.5
            if rng.random() < 0.2:
                reference_db.delete(key)
                current_db.delete(key)
            if seeded:
                for client in (reference_db, current_db):
                    client.zadd(key, dict(seeded))

            plan = plan_write(USER, EXCHANGE, candles, versioned=versioned, ttl_seconds=ttl, max_candles=max_candles)
            (call,) = plan.calls
            call.key, call.channel = key, CHANNEL if publish else ""
            mode = RETRY_MODE if retry else call.mode
            assert mode in (RETRY_MODE, VERSIONED_MODE) or not versioned

            blob = ENCODER.encode_lines(call.candles)
            expected_reply = reference(keys=[key], args=[mode, ttl, max_candles, call.channel, blob])
            expected_messages = drain(listener, reference_db)
            reply = current(keys=[key], args=list(call.args(retry=retry)))
            messages = drain(listener, reference_db)

            assert plan.results([reply]) == [r == 1 for r in expected_reply]
            assert state(current_db, key) == state(reference_db, key)
            assert messages == expected_messages
    finally:
        listener.close()
        reference_db.close()
        current_db.close()

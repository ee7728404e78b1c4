"""Roll-ups: higher timeframes kept by the cache itself, newer wins, with their own close events.

Every test runs on both facades (sync, and asyncio behind ``AsyncAsSync``); the
``cluster``-marked ones on a Redis Cluster of this module's own, where a source
series and its targets live in different hash slots.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import msgspec
import pytest
import redis
import redis.cluster

from livermore_cache import (
    MAX_SAFE_INTEGER,
    AsyncCandleCache,
    Candle,
    CandleCache,
    PartialWriteError,
    UnifiedCandle,
    ValidationError,
    aggregate_candles,
    candle_key,
    timeframe_ms,
)
from livermore_cache.candles import decode_candle, encode_candle
from livermore_cache.rollups import choose_sources
from tests.support.builders import unified
from tests.support.constants import EXCHANGE, MINUTE, SYMBOL, T0, USER
from tests.support.facade import Facade
from tests.support.stored import flush_cluster, zmembers
from tools.servers.cluster import ClusterProcess

FIVE = 5 * MINUTE
HOUR = 60 * MINUTE
ONE_TO_FIVE = {"1m": ["5m"]}
CHAIN = {"1m": ["5m"], "5m": ["15m", "1h", "4h", "1d"]}


def bar(
    slot: int, sequence: int | None = 1, *, timeframe: str = "1m", step: int = MINUTE, **extra: Any
) -> UnifiedCandle:
    """A source candle at ``T0 + slot * step`` whose prices and volume depend on slot and sequence (exact doubles)."""
    base = 100.0 + slot * 0.1 + (sequence or 0) * 0.01
    fields: dict[str, Any] = {
        "open": base,
        "high": base + 0.3,
        "low": base - 0.7,
        "close": base + 0.1,
        "volume": 0.1 * (slot + 1) + (sequence or 0) * 0.2,
    }
    fields.update(extra)
    return unified(T0 + slot * step, sequence, timeframe=timeframe, **fields)


def stored(client: Any, timeframe: str, symbol: str = SYMBOL) -> list[Candle]:
    """The series as stored, decoded as UnifiedCandle (plain members come back as Candle)."""
    members = client.zrange(candle_key(USER, EXCHANGE, symbol, timeframe), 0, -1)
    return [decode_candle(m, UnifiedCandle) for m in members]


def expected_rollups(client: Any, source: str, target: str, symbol: str = SYMBOL) -> list[Candle]:
    """``aggregate_candles`` over the stored sources, one member per timestamp (the one the versioned rules keep)."""
    members = client.zrange(candle_key(USER, EXCHANGE, symbol, source), 0, -1)
    chosen = choose_sources((bytes(m), decode_candle(m, UnifiedCandle)) for m in members)
    return aggregate_candles([c for _, c in chosen], source, target)


def same_prices(candles: list[Candle], aggregated: list[Candle]) -> None:
    """The stored roll-ups carry exactly the aggregate's nine fields (bit for bit: floats compared by repr)."""
    fields = Candle.__struct_fields__
    got = [tuple(repr(getattr(c, f)) for f in fields) for c in candles]
    want = [tuple(repr(getattr(c, f)) for f in fields) for c in aggregated]
    assert got == want


def drain(pubsub: Any, idle: float = 0.3) -> list[tuple[str, bytes]]:
    """(channel, data) of every message until none arrives for ``idle`` seconds."""
    got = []
    while (message := pubsub.get_message(timeout=idle)) is not None:
        if message["type"] in ("message", "pmessage"):
            got.append((message["channel"].decode(), message["data"]))
    return got


def close_channel(timeframe: str) -> str:
    return f"channel:candle:close:{USER}:{EXCHANGE}:{SYMBOL}:{timeframe}"


# == completion =========================================================================


def test_a_period_is_stored_the_moment_its_last_source_lands(make_cache: Callable[..., Any], r: redis.Redis) -> None:
    cache = make_cache(rollups=ONE_TO_FIVE)
    for slot in range(4):
        assert cache.add_candle_if_newer(USER, EXCHANGE, bar(slot, 10 + slot)) is True
        assert r.exists(candle_key(USER, EXCHANGE, SYMBOL, "5m")) == 0, "an incomplete period stores nothing"
    assert cache.add_candle_if_newer(USER, EXCHANGE, bar(4, 14)) is True
    [five] = stored(r, "5m")
    assert isinstance(five, UnifiedCandle)
    assert five.exchange == "coinbase"
    assert five.sequence_num == 10 + 11 + 12 + 13 + 14, "the derived sequence is the sum of the sources'"
    assert five.timeframe == "5m"
    assert five.symbol == SYMBOL
    same_prices([five], expected_rollups(r, "1m", "5m"))
    # exactly the aggregate's JSON plus the exchange and sequence: what a Node reader decodes
    [member] = zmembers(r, candle_key(USER, EXCHANGE, SYMBOL, "5m"))
    as_json = msgspec.json.decode(member)
    assert list(as_json) == [
        "timestamp", "open", "high", "low", "close", "volume", "symbol", "timeframe", "isSynthetic", "exchange",
        "sequenceNum",
    ]  # fmt: skip
    assert as_json["isSynthetic"] is False
    assert 0 < r.ttl(candle_key(USER, EXCHANGE, SYMBOL, "5m")) <= 86400
    assert cache.get_latest_candle(USER, EXCHANGE, SYMBOL, "5m", model=UnifiedCandle) == five


def test_floats_are_the_aggregate_bit_for_bit(make_cache: Callable[..., Any], r: redis.Redis) -> None:
    cache = make_cache(rollups=ONE_TO_FIVE)
    volumes = [0.1, 0.2, 0.3, 1e-17, 5e15 + 0.5]
    batch = [bar(i, 1, volume=v, high=123.456789012345 + i, low=1 / 3 + i * 1e-12) for i, v in enumerate(volumes)]
    assert cache.add_candles_if_newer(USER, EXCHANGE, batch) == [True] * 5
    [five] = stored(r, "5m")
    total = 0.0
    for v in volumes:
        total += v
    assert five.volume.hex() == total.hex()  # the double additions in timestamp order, as Node does them
    same_prices([five], aggregate_candles(batch, "1m", "5m"))
    assert encode_candle(five).startswith(encode_candle(aggregate_candles(batch, "1m", "5m")[0])[:-1])


def test_cascade_through_every_level(make_cache: Callable[..., Any], r: redis.Redis) -> None:
    """A 1m write that completes a 5m candle also builds the 15m and 1h candles from 5m."""
    cache = make_cache(rollups=CHAIN)
    batch = [bar(slot, 1) for slot in range(60)]  # one hour of 1m candles
    assert cache.add_candles_if_newer(USER, EXCHANGE, batch) == [True] * 60
    assert len(stored(r, "5m")) == 12
    same_prices(stored(r, "5m"), aggregate_candles(batch, "1m", "5m"))
    same_prices(stored(r, "15m"), expected_rollups(r, "5m", "15m"))
    same_prices(stored(r, "1h"), expected_rollups(r, "5m", "1h"))
    assert len(stored(r, "15m")) == 4
    [hour] = stored(r, "1h")
    assert hour.sequence_num == 60, "a roll-up of roll-ups: the sum over the leaf sources"  # type: ignore[attr-defined]
    same_prices([hour], aggregate_candles(batch, "1m", "1h"))  # the same numbers as straight from 1m here
    assert stored(r, "4h") == [], "incomplete periods store nothing"
    assert stored(r, "1d") == []


def plain_reads(r: redis.Redis) -> dict[str, int]:
    """Calls of the roll-ups' plain source reads in INFO commandstats (no script of the library makes them)."""
    stats: dict[str, Any] = r.info("commandstats")
    return {name: int(stats.get(f"cmdstat_{name}", {"calls": 0})["calls"]) for name in ("zcount", "zrevrangebyscore")}


def test_a_period_is_counted_only_when_every_period_inside_it_is_complete(
    make_cache: Callable[..., Any], r: redis.Redis
) -> None:
    """5m -> 15m, 1h, 4h, 1d: a 5m candle that leaves its 15m incomplete costs one ZCOUNT and no read;
    the third one costs a ZCOUNT per level up to the first incomplete one, and one read."""
    cache = make_cache(rollups={"5m": ["15m", "1h", "4h", "1d"]})
    five = [bar(slot, 1, timeframe="5m", step=5 * MINUTE) for slot in range(3)]
    r.config_resetstat()
    assert cache.add_candles_if_newer(USER, EXCHANGE, five[:2]) == [True, True]
    assert plain_reads(r) == {"zcount": 1, "zrevrangebyscore": 0}  # the 15m period: 2 of 3
    r.config_resetstat()
    assert cache.add_candle_if_newer(USER, EXCHANGE, five[2]) is True
    assert plain_reads(r) == {"zcount": 2, "zrevrangebyscore": 1}  # 15m complete, 1h not: 4h and 1d never counted
    same_prices(stored(r, "15m"), aggregate_candles(five, "5m", "15m"))
    assert stored(r, "1h") == []


def test_one_candle_at_a_time_also_cascades(make_cache: Callable[..., Any], r: redis.Redis) -> None:
    cache = make_cache(rollups={"1m": ["5m", "15m"]})
    for slot in range(15):
        cache.add_candle_if_newer(USER, EXCHANGE, bar(slot, slot))
        assert len(stored(r, "5m")) == (slot + 1) // 5
        assert len(stored(r, "15m")) == (slot + 1) // 15
    same_prices(stored(r, "15m"), expected_rollups(r, "1m", "15m"))
    assert stored(r, "15m")[0].sequence_num == sum(range(15))  # type: ignore[attr-defined]


def test_unconditional_writes_roll_up_too(make_cache: Callable[..., Any], r: redis.Redis) -> None:
    """add_candles stores plain candles (Node's schema): the roll-up is a plain Candle, kept up to date."""
    cache = make_cache(rollups=ONE_TO_FIVE)
    cache.add_candles(USER, EXCHANGE, [bar(slot, None) for slot in range(5)])
    [five] = stored(r, "5m")
    assert type(five) is Candle
    same_prices([five], expected_rollups(r, "1m", "5m"))
    cache.add_candle(USER, EXCHANGE, bar(2, None, close=150.0, high=151.0))
    [five] = stored(r, "5m")
    assert five.high == 151.0
    same_prices([five], expected_rollups(r, "1m", "5m"))


def test_no_rollups_no_targets(make_cache: Callable[..., Any], r: redis.Redis) -> None:
    cache = make_cache()
    assert cache.rollups == ()
    cache.add_candles_if_newer(USER, EXCHANGE, [bar(slot) for slot in range(5)])
    assert r.keys("*5m*") == []
    assert "rollups" not in repr(cache)
    rolling = make_cache(rollups=ONE_TO_FIVE)
    assert "rollups={'1m': ['5m']}" in repr(getattr(rolling, "_target", rolling))


# == revision: newer wins =================================================================


def test_revision_rewrites_and_reannounces_lower_and_equal_do_nothing(
    make_cache: Callable[..., Any], r: redis.Redis, sub: Any
) -> None:
    cache = make_cache(rollups=ONE_TO_FIVE)
    assert cache.add_candles_if_newer(USER, EXCHANGE, [bar(s, 5) for s in range(5)], publish_close=True) == [True] * 5
    events = [(c, msgspec.json.decode(d)) for c, d in drain(sub) if c.endswith(":5m")]
    assert [(c, e["sequenceNum"]) for c, e in events] == [(close_channel("5m"), 25)]
    first = stored(r, "5m")

    # a higher sequence: the target is rewritten and announced again
    assert cache.add_candle_if_newer(USER, EXCHANGE, bar(2, 9, close=200.0, high=201.0), publish_close=True) is True
    [revised] = stored(r, "5m")
    assert revised.sequence_num == 29  # type: ignore[attr-defined]
    assert revised.high == 201.0
    same_prices([revised], expected_rollups(r, "1m", "5m"))
    got = drain(sub)
    assert [c for c, _ in got] == [close_channel("1m"), close_channel("5m")]
    assert decode_candle(got[1][1], UnifiedCandle) == revised

    # a lower (or equal) sequence: the source is not written, the target not touched, nothing announced
    assert cache.add_candle_if_newer(USER, EXCHANGE, bar(2, 7, close=1.0), publish_close=True) is False
    assert cache.add_candles_if_newer(USER, EXCHANGE, [bar(s, 5) for s in range(5)], publish_close=True) == [False] * 5
    assert stored(r, "5m") == [revised]
    assert drain(sub) == []
    assert first != [revised]


def test_an_older_computation_loses_to_a_newer_one(make_cache: Callable[..., Any], r: redis.Redis) -> None:
    """A target candle computed from older sources, written last, still loses: its derived sequence is lower."""
    cache = make_cache(rollups=ONE_TO_FIVE)
    cache.add_candles_if_newer(USER, EXCHANGE, [bar(s, 3) for s in range(5)])
    newest = stored(r, "5m")
    stale = aggregate_candles([bar(s, 2) for s in range(5)], "1m", "5m")[0]
    stale_unified = UnifiedCandle(**msgspec.structs.asdict(stale), exchange="coinbase", sequence_num=10)
    plain_cache = make_cache()
    assert plain_cache.add_candle_if_newer(USER, EXCHANGE, stale_unified) is False
    assert stored(r, "5m") == newest


def test_sending_a_batch_again_repairs_its_rollups(make_cache: Callable[..., Any], r: redis.Redis) -> None:
    """Candles reported False still recompute their periods: a lost roll-up is rebuilt by sending the batch again."""
    cache = make_cache(rollups=ONE_TO_FIVE)
    batch = [bar(s, 1) for s in range(5)]
    cache.add_candles_if_newer(USER, EXCHANGE, batch)
    r.delete(candle_key(USER, EXCHANGE, SYMBOL, "5m"))
    assert cache.add_candles_if_newer(USER, EXCHANGE, batch) == [False] * 5
    same_prices(stored(r, "5m"), aggregate_candles(batch, "1m", "5m"))


# == incomplete periods, duplicates, trimmed sources ======================================


def test_a_hole_stores_nothing_and_duplicates_do_not_fill_it(make_cache: Callable[..., Any], r: redis.Redis) -> None:
    cache = make_cache(rollups=ONE_TO_FIVE)
    key = candle_key(USER, EXCHANGE, SYMBOL, "1m")
    # Node's non-atomic writer left two members at slot 1; slot 3 is missing: 5 members, 4 timestamps
    cache.add_candles_if_newer(USER, EXCHANGE, [bar(0, 1), bar(2, 1), bar(4, 1)])
    r.zadd(key, {encode_candle(bar(1, 1, close=99.0)): T0 + MINUTE, encode_candle(bar(1, 4, close=98.0)): T0 + MINUTE})
    assert cache.add_candle_if_newer(USER, EXCHANGE, bar(0, 2)) is True
    assert stored(r, "5m") == [], "Node's aggregateCandles would count the duplicate; the stored series counts once"
    # the hole filled: complete, and the duplicate counts once, as the member with the highest sequence
    assert cache.add_candle_if_newer(USER, EXCHANGE, bar(3, 1)) is True
    [five] = stored(r, "5m")
    chosen = [bar(0, 2), bar(1, 4, close=98.0), bar(2, 1), bar(3, 1), bar(4, 1)]
    same_prices([five], aggregate_candles(chosen, "1m", "5m"))
    assert five.sequence_num == 2 + 4 + 1 + 1 + 1  # type: ignore[attr-defined]


def test_trimmed_sources_leave_the_stored_rollup_alone(make_cache: Callable[..., Any], r: redis.Redis) -> None:
    cache = make_cache(rollups=ONE_TO_FIVE, max_candles=5)
    cache.add_candles_if_newer(USER, EXCHANGE, [bar(s, 1) for s in range(5)])
    [complete] = stored(r, "5m")
    cache.add_candle_if_newer(USER, EXCHANGE, bar(5, 1))  # trims slot 0 away
    assert len(stored(r, "1m")) == 5
    # a revision inside the trimmed period: the period is now incomplete, its roll-up stays as it was
    assert cache.add_candle_if_newer(USER, EXCHANGE, bar(3, 2, close=300.0, high=301.0)) is True
    assert stored(r, "5m") == [complete]
    # a period that can never be complete under max_candles=4 stores nothing
    r.flushall()
    small = make_cache(rollups=ONE_TO_FIVE, max_candles=4)
    small.add_candles_if_newer(USER, EXCHANGE, [bar(s, 1) for s in range(5)])
    assert stored(r, "5m") == []


def test_rollup_series_keep_max_candles(make_cache: Callable[..., Any], r: redis.Redis) -> None:
    cache = make_cache(rollups=ONE_TO_FIVE, max_candles=12, ttl_seconds=600)
    for start in range(0, 30, 6):
        cache.add_candles_if_newer(USER, EXCHANGE, [bar(s, 1) for s in range(start, start + 6)])
    assert [c.timestamp for c in stored(r, "5m")] == [T0 + i * FIVE for i in range(4, 6)] or len(stored(r, "5m")) == 6
    assert 0 < r.ttl(candle_key(USER, EXCHANGE, SYMBOL, "5m")) <= 600


# == events ================================================================================


def test_a_1h_subscriber_gets_the_hour_as_the_twelfth_5m_candle_lands(
    make_cache: Callable[..., Any], r: redis.Redis
) -> None:
    cache = make_cache(rollups={"5m": ["15m", "1h", "4h", "1d"]})
    with CandleCache(r).subscribe_closes(USER, EXCHANGE, timeframe="1h") as hours:
        for slot in range(11):
            cache.add_candle_if_newer(USER, EXCHANGE, bar(slot, 1, timeframe="5m", step=FIVE), publish_close=True)
        assert hours.get(timeout=0.3) is None
        cache.add_candle_if_newer(USER, EXCHANGE, bar(11, 1, timeframe="5m", step=FIVE), publish_close=True)
        event = hours.get(timeout=5)
        assert event is not None
        assert hours.get(timeout=0.3) is None
    assert event.series.timeframe == "1h"
    assert event.candle == stored(r, "1h")[0]
    assert isinstance(event.candle, UnifiedCandle)
    assert event.candle.sequence_num == 12
    same_prices([event.candle], expected_rollups(r, "5m", "1h"))


def test_add_candles_and_no_publish_close_announce_nothing(
    make_cache: Callable[..., Any], r: redis.Redis, sub: Any
) -> None:
    cache = make_cache(rollups=ONE_TO_FIVE)
    cache.add_candles_if_newer(USER, EXCHANGE, [bar(s, 1) for s in range(5)])
    cache.add_candles(USER, EXCHANGE, [bar(s, None) for s in range(5, 10)])
    assert len(stored(r, "5m")) == 2
    assert drain(sub) == []


def test_unsequenced_rollup_is_rewritten_only_when_it_changes(
    make_cache: Callable[..., Any], r: redis.Redis, sub: Any
) -> None:
    cache = make_cache(rollups=ONE_TO_FIVE)
    batch = [bar(s, None) for s in range(5)]
    assert cache.add_candles_if_newer(USER, EXCHANGE, batch, publish_close=True) == [True] * 5
    [five] = stored(r, "5m")
    assert isinstance(five, UnifiedCandle)
    assert five.sequence_num is None
    assert five.exchange == "coinbase"
    assert [c for c, _ in drain(sub)].count(close_channel("5m")) == 1
    # the same candles again: written (no sequence), but the roll-up is unchanged: not written, not announced
    assert cache.add_candles_if_newer(USER, EXCHANGE, batch, publish_close=True) == [True] * 5
    assert [c for c, _ in drain(sub)].count(close_channel("5m")) == 0
    cache.add_candle_if_newer(USER, EXCHANGE, bar(4, None, close=500.0, high=501.0), publish_close=True)
    assert stored(r, "5m")[0].close == 500.0
    assert [c for c, _ in drain(sub)].count(close_channel("5m")) == 1


# == bounds, validation, failures ==========================================================


def test_derived_sequence_is_capped(make_cache: Callable[..., Any], r: redis.Redis) -> None:
    cache = make_cache(rollups=ONE_TO_FIVE)
    cache.add_candles_if_newer(USER, EXCHANGE, [bar(s, MAX_SAFE_INTEGER - s) for s in range(5)])
    [five] = stored(r, "5m")
    assert five.sequence_num == MAX_SAFE_INTEGER  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("rollups", "field", "words"),
    [
        ({"1m": ["7m"]}, "rollups['1m'][0]", "must be one of"),
        ({"2m": ["5m"]}, "rollups key '2m'", "must be one of"),
        ({"5m": ["1m"]}, "rollups['5m']", "must be larger than source"),
        ({"4h": ["6h"]}, "rollups['4h']", "whole multiple"),
        ({"1m": ["15m"], "5m": ["15m"]}, "rollups['5m'][0]", "already has source 1m"),
        ({"1m": ["5m"], "5m": ["1m"]}, "rollups", "closes a cycle"),
        ({"1m": "5m"}, "rollups['1m']", "not a string"),
        (["1m"], "rollups", "must be a mapping"),
    ],
)
@pytest.mark.parametrize("cache_class", [CandleCache, AsyncCandleCache])
def test_bad_mappings_are_refused_at_construction(
    cache_class: type[Any], rollups: Any, field: str, words: str, r: redis.Redis
) -> None:
    client: Any = r if cache_class is CandleCache else redis.asyncio.Redis()
    with pytest.raises(ValidationError, match=words) as caught:
        cache_class(client, rollups=rollups)
    assert caught.value.field.startswith(field)
    assert isinstance(caught.value, ValueError)


def test_a_wrong_type_target_is_a_partial_write(make_cache: Callable[..., Any], r: redis.Redis) -> None:
    cache = make_cache(rollups={"1m": ["5m", "15m"]})
    five_key = candle_key(USER, EXCHANGE, SYMBOL, "5m")
    r.set(five_key, "not a sorted set")
    with pytest.raises(PartialWriteError) as caught:
        cache.add_candles_if_newer(USER, EXCHANGE, [bar(s, 1) for s in range(15)])
    error = caught.value
    assert error.results == [True] * 15, "the source writes are reported truthfully"
    assert list(error.errors) == [five_key]
    assert "WRONGTYPE" in str(error.errors[five_key])
    assert len(stored(r, "1m")) == 15
    assert len(stored(r, "15m")) == 1, "the other roll-ups are written"
    # repaired key: sending the batch again reports the sources as stored and builds the roll-ups
    r.delete(five_key)
    assert cache.add_candles_if_newer(USER, EXCHANGE, [bar(s, 1) for s in range(15)]) == [False] * 15
    same_prices(stored(r, "5m"), expected_rollups(r, "1m", "5m"))


def test_a_source_series_failure_and_a_rollup_failure_together(make_cache: Callable[..., Any], r: redis.Redis) -> None:
    cache = make_cache(rollups=ONE_TO_FIVE)
    r.set(candle_key(USER, EXCHANGE, "ETH-USD", "1m"), "x")
    r.set(candle_key(USER, EXCHANGE, SYMBOL, "5m"), "x")
    batch = [bar(s, 1) for s in range(5)] + [bar(0, 1, symbol="ETH-USD")]
    with pytest.raises(PartialWriteError) as caught:
        cache.add_candles_if_newer(USER, EXCHANGE, batch)
    assert caught.value.results == [True] * 5 + [None]
    assert set(caught.value.errors) == {
        candle_key(USER, EXCHANGE, "ETH-USD", "1m"),
        candle_key(USER, EXCHANGE, SYMBOL, "5m"),
    }


# == Cluster: source and target keys in different hash slots ===============================


@pytest.fixture
def on_cluster(facade: Facade, cluster: ClusterProcess) -> Callable[..., Any]:
    flush_cluster(cluster)
    return lambda **settings: facade.cache(CandleCache, facade.client(cluster.url, cluster=True), **settings)


@pytest.mark.cluster
def test_cluster_rollups_match_a_single_server(
    on_cluster: Callable[..., Any], cluster: ClusterProcess, r: redis.Redis
) -> None:
    symbols = [f"R{i:02d}-USD" for i in range(6)]
    checker: Any = redis.cluster.RedisCluster.from_url(cluster.url)
    keys = [candle_key(USER, EXCHANGE, s, tf) for s in symbols for tf in ("1m", "5m", "15m")]
    assert len({checker.get_node_from_key(k).name for k in keys}) == 3, "sources and targets on all three primaries"
    cache = on_cluster(rollups={"1m": ["5m"], "5m": ["15m"]})
    single = CandleCache(r, rollups={"1m": ["5m"], "5m": ["15m"]})
    batches = [
        [bar(slot, seq, symbol=s) for s in symbols for slot in range(b * 5, b * 5 + 5)]
        for b in range(3)
        for seq in (1, 2)
    ]
    for batch in batches:
        assert cache.add_candles_if_newer(USER, EXCHANGE, batch) == single.add_candles_if_newer(USER, EXCHANGE, batch)
    for key in keys:
        assert checker.zrange(key, 0, -1) == r.zrange(key, 0, -1), key
    assert len(stored(checker, "15m", symbols[0])) == 1
    same_prices(stored(checker, "15m", symbols[0]), expected_rollups(checker, "1m", "15m", symbols[0]))
    checker.close()


@pytest.mark.cluster
def test_cluster_wrong_type_target_and_events(on_cluster: Callable[..., Any], cluster: ClusterProcess) -> None:
    cache = on_cluster(rollups=ONE_TO_FIVE)
    checker: Any = redis.cluster.RedisCluster.from_url(cluster.url)
    plain = redis.Redis.from_url(cluster.primary_nodes()[-1].url)
    five_key = candle_key(USER, EXCHANGE, SYMBOL, "5m")
    checker.set(five_key, "x")
    with pytest.raises(PartialWriteError) as caught:
        cache.add_candles_if_newer(USER, EXCHANGE, [bar(s, 1) for s in range(5)])
    assert caught.value.results == [True] * 5
    assert list(caught.value.errors) == [five_key]
    checker.delete(five_key)
    with CandleCache(plain).subscribe_closes(USER, EXCHANGE, timeframe="5m") as fives:
        assert cache.add_candles_if_newer(USER, EXCHANGE, [bar(s, 2) for s in range(5)], publish_close=True)
        event = fives.get(timeout=5)
        assert fives.get(timeout=0.3) is None
    assert event is not None
    assert event.candle.sequence_num == 10  # type: ignore[attr-defined]
    assert timeframe_ms(event.series.timeframe) == FIVE
    plain.close()
    checker.close()

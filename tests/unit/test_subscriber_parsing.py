"""The sans-I/O part of the subscribers: channel parsers, payload matching, tracking caps, reconnect schedule."""

from __future__ import annotations

from typing import Any

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from livermore_cache import (
    CandleClose,
    IndicatorUpdate,
    IndicatorValue,
    Order,
    Orderbook,
    OrderbookUpdate,
    Series,
    TickerUpdate,
    ValidationError,
    candle_close_channel,
    indicator_channel,
    orderbook_channel,
    ticker_channel,
)
from livermore_cache.events import (
    BACKFILL_MEMORY,
    Recovery,
    check_subscriber_settings,
    close_subscription_state,
    parse_close_channel,
    value_matches,
    value_subscription_state,
)
from livermore_cache.keys import (
    parse_candle_close_channel,
    parse_indicator_channel,
    parse_orderbook_channel,
    parse_ticker_channel,
)
from livermore_cache.limits import MAX_SAFE_INTEGER
from livermore_cache.plans.values import INDICATORS, ORDERBOOKS, TICKERS
from livermore_cache.timeframes import TIMEFRAME_VALUES
from tests.support.builders import ticker, unified
from tests.support.constants import T0

U, E = 7, 1
GOOD_SYMBOL = st.text(
    alphabet=st.characters(
        blacklist_categories=("Cs", "Cc", "Zs", "Zl", "Zp"), blacklist_characters=":*?[]\\ \t\n\r\x0b\x0c\x85\xa0"
    ),
    min_size=1,
    max_size=12,
).filter(lambda s: not any(c.isspace() for c in s))


def message(channel: str | bytes, data: bytes, pattern: bool = True) -> dict[str, Any]:
    return {"type": "pmessage" if pattern else "message", "pattern": b"*", "channel": channel, "data": data}


# ---- parsers ------------------------------------------------------------------------------------


def test_parsers_give_back_the_parts_of_built_channels() -> None:
    assert parse_candle_close_channel(candle_close_channel(U, E, "BTC-USD", "1m")) == (U, E, "BTC-USD", "1m")
    assert parse_candle_close_channel(candle_close_channel(0, MAX_SAFE_INTEGER, "x", "1d").encode()) == (
        0,
        MAX_SAFE_INTEGER,
        "x",
        "1d",
    )
    assert parse_ticker_channel(ticker_channel(U, E, "ETH")) == (U, E, "ETH")
    assert parse_orderbook_channel(orderbook_channel(U, E, "ETH")) == (U, E, "ETH")
    assert parse_indicator_channel(indicator_channel(U, E, "ETH", "1h", "macd-v")) == (U, E, "ETH", "1h", "macd-v")


@pytest.mark.parametrize(
    "channel",
    [
        "channel:candle:close:1:1:B D:1m",  # whitespace in the symbol: the example
        "channel:candle:close:1:1:B*:1m",
        "channel:candle:close:1:1:B?:1m",
        "channel:candle:close:1:1:[B]:1m",
        "channel:candle:close:1:1:a\\:1m",  # a glob escape
        "channel:candle:close:1:1:a\x00:1m",
        "channel:candle:close:1:1:a\x7f:1m",
        "channel:candle:close:1:1::1m",  # empty symbol
        "channel:candle:close:1:1:BTC:2m",  # not a Timeframe
        "channel:candle:close:1:1:BTC:1M",
        "channel:candle:close:01:1:BTC:1m",  # a leading zero: not what a builder writes
        "channel:candle:close:+1:1:BTC:1m",
        "channel:candle:close:-1:1:BTC:1m",
        "channel:candle:close:\u0661:1:BTC:1m",  # an Arabic-Indic digit
        f"channel:candle:close:{MAX_SAFE_INTEGER + 1}:1:BTC:1m",
        f"channel:candle:close:{'9' * 5000}:1:BTC:1m",
        "channel:candle:close:1:1:BTC:1m:extra",
        "channel:candle:close:1:1:BTC",
        "channel:candle:1:1:BTC:1m",
        "channel:candle:close:1:1:BTC:1m ",
        b"channel:candle:close:1:1:\xff:1m",  # not UTF-8
        "",
    ],
)
def test_close_channels_the_builders_would_not_make_do_not_parse(channel: str | bytes) -> None:
    assert parse_candle_close_channel(channel) is None
    assert parse_close_channel(channel) is None


@pytest.mark.parametrize(
    ("parse", "channel"),
    [
        (parse_ticker_channel, "channel:ticker:1:1:B D"),
        (parse_ticker_channel, "channel:ticker:1:1:a\\"),
        (parse_ticker_channel, "channel:ticker:1:1:a:b"),
        (parse_ticker_channel, "channel:orderbook:1:1:BTC"),
        (parse_orderbook_channel, "channel:orderbook:1:1:*"),
        (parse_orderbook_channel, "channel:ticker:1:1:BTC"),
        (parse_indicator_channel, "channel:indicator:1:1:BTC:1m"),
        (parse_indicator_channel, "channel:indicator:1:1:BTC:7m:macd"),
        (parse_indicator_channel, "channel:indicator:1:1:BTC:1m:ma cd"),
        (parse_indicator_channel, "channel:indicator:1:1:BTC:1m:macd:x=1"),
    ],
)
def test_value_channels_the_builders_would_not_make_do_not_parse(parse: Any, channel: str) -> None:
    assert parse(channel) is None


@given(
    st.integers(0, MAX_SAFE_INTEGER),
    st.integers(0, MAX_SAFE_INTEGER),
    GOOD_SYMBOL,
    st.sampled_from(sorted(TIMEFRAME_VALUES)),
)
def test_parse_is_the_inverse_of_the_builder(user: int, exchange: int, symbol: str, timeframe: str) -> None:
    assert parse_candle_close_channel(candle_close_channel(user, exchange, symbol, timeframe)) == (
        user,
        exchange,
        symbol,
        timeframe,
    )
    assert parse_ticker_channel(ticker_channel(user, exchange, symbol)) == (user, exchange, symbol)


@given(st.text(max_size=60) | st.binary(max_size=60))
def test_parsers_never_raise(channel: str | bytes) -> None:
    for parse in (parse_candle_close_channel, parse_ticker_channel, parse_orderbook_channel, parse_indicator_channel):
        parse(channel)


# ---- payload matching ---------------------------------------------------------------------------


def indicator(symbol: str = "BTC", timeframe: str = "1h", type: str = "macd-v", timestamp: int = T0) -> IndicatorValue:  # noqa: A002
    return IndicatorValue(timestamp=timestamp, type=type, symbol=symbol, timeframe=timeframe, value={"v": 1.0})


def book(symbol: str, timestamp: int = T0) -> Orderbook:
    return Orderbook(symbol=symbol, bids=[Order(1.0, 2.0)], asks=[Order(1.5, 1.0)], timestamp=timestamp)


def test_value_matches_its_channel() -> None:
    assert value_matches(TICKERS, (U, E, "BTC"), ticker("BTC"))
    assert not value_matches(TICKERS, (U, E, "BTC"), ticker("ETH"))
    assert value_matches(ORDERBOOKS, (U, E, "BTC"), book("BTC"))
    assert not value_matches(ORDERBOOKS, (U, E, "BTC"), book("ETH"))
    assert value_matches(INDICATORS, (U, E, "BTC", "1h", "macd-v"), indicator())
    assert not value_matches(INDICATORS, (U, E, "BTC", "1h", "rsi"), indicator())
    assert not value_matches(INDICATORS, (U, E, "BTC", "4h", "macd-v"), indicator())
    assert not value_matches(INDICATORS, (U, E, "ETH", "1h", "macd-v"), indicator())
    # a payload the key builders refuse never matches, even on a channel spelled the same
    assert not value_matches(INDICATORS, (U, E, "BTC", "1hh", "macd-v"), indicator(timeframe="1hh"))


def test_close_state_delivers_only_candles_of_a_parsed_wanted_series() -> None:
    state = close_subscription_state(U, E, None, None, True)
    good = msgspec.json.encode(unified(T0))
    assert (
        state.on_message(message("channel:candle:close:7:1:B D:1m", msgspec.json.encode(unified(T0, symbol="B D"))))
        is None
    )
    assert state.on_message(message(candle_close_channel(U, E, "ETH-USD", "1m"), good)) is None  # BTC on ETH's channel
    assert state.on_message(message(candle_close_channel(U, E, "BTC-USD", "5m"), good)) is None  # 1m on 5m's channel
    assert state.on_message(message(candle_close_channel(U + 1, E, "BTC-USD", "1m"), good)) is None  # not this user
    assert state.on_message(message(candle_close_channel(U, E, "BTC-USD", "1m"), b"{")) is None
    assert state.on_message(message(candle_close_channel(U, E, "BTC-USD", "1m"), None)) is None  # type: ignore[arg-type]
    assert state.malformed == 6
    event = state.on_message(message(candle_close_channel(U, E, "BTC-USD", "1m"), good))
    assert isinstance(event, CandleClose)
    assert event.series == Series(U, E, "BTC-USD", "1m")
    assert state.on_message({"type": "psubscribe", "channel": b"x", "data": 1}) is None
    assert state.on_message("junk") is None  # type: ignore[arg-type]
    assert state.malformed == 6


def test_close_state_refuses_ids_that_are_not_ints() -> None:
    """``subscribe_closes(None, None)`` would subscribe to every user's closes."""
    for user, exchange in [(None, None), (1, None), (1, True), ("1", 1), (-1, 1)]:
        with pytest.raises(ValidationError):
            close_subscription_state(user, exchange, None, None, True)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("kind", "event_type", "parts", "right", "wrong"),
    [
        (TICKERS, TickerUpdate, (None,), ticker("BTC"), ticker("ETH")),
        (ORDERBOOKS, OrderbookUpdate, (None,), book("BTC"), book("ETH")),
        (INDICATORS, IndicatorUpdate, (None, None, None), indicator(), indicator(type="rsi")),
    ],
)
def test_value_state_delivers_only_values_of_their_channel(
    kind: Any, event_type: Any, parts: tuple[None, ...], right: Any, wrong: Any
) -> None:
    state = value_subscription_state(kind, event_type, U, E, parts, True)
    channel = "channel:" + kind.key(U, E, right)
    assert state.on_message(message(channel, kind.encode(wrong))) is None  # ETH on BTC's channel
    assert state.on_message(message(channel.replace(":7:", ":8:"), kind.encode(right))) is None  # not this user
    assert state.on_message(message(channel + "x", kind.encode(right))) is None
    assert state.on_message(message(channel, b"[]")) is None
    assert state.malformed == 4
    event = state.on_message(message(channel, kind.encode(right)))
    assert isinstance(event, event_type)
    assert event.key == kind.key(U, E, right)
    # backfill: a stored value of another key, garbage, an error reply: counted, never raised
    key = event.key
    assert state.on_backfill(key, kind.encode(wrong)) == []
    assert state.on_backfill(key, b"\xff") == []
    assert state.on_backfill(key, RuntimeError("WRONGTYPE")) == []
    assert state.malformed == 7
    assert state.on_backfill(key, None) == []
    newer = msgspec.structs.replace(right, timestamp=right.timestamp + 1)
    (backfilled,) = state.on_backfill(key, kind.encode(newer))
    assert backfilled.backfilled


# ---- bounded tracking ---------------------------------------------------------------------------


def test_close_state_tracks_at_most_max_tracked_series_least_recently_seen_evicted() -> None:
    state = close_subscription_state(U, E, None, None, True, max_tracked_series=3)
    for symbol in ["A", "B", "C"]:
        assert state.on_message(
            message(candle_close_channel(U, E, symbol, "1m"), msgspec.json.encode(unified(T0, symbol=symbol)))
        )
    # A is seen again: B is now the least recently seen
    assert state.on_message(
        message(candle_close_channel(U, E, "A", "1m"), msgspec.json.encode(unified(T0 + 60_000, symbol="A")))
    )
    assert state.on_message(
        message(candle_close_channel(U, E, "D", "1m"), msgspec.json.encode(unified(T0, symbol="D")))
    )
    assert [s.symbol for s in state.last_seen] == ["C", "A", "D"]
    assert state.evicted == 1
    assert [series.symbol for series, _ in state.backfill_reads()] == ["C", "A", "D"]


def test_value_state_tracks_at_most_max_tracked_series() -> None:
    state = value_subscription_state(TICKERS, TickerUpdate, U, E, (None,), True, max_tracked_series=2)
    for symbol in ["A", "B", "C"]:
        assert state.on_message(message(ticker_channel(U, E, symbol), TICKERS.encode(ticker(symbol))))
    assert list(state.last_seen) == ["ticker:7:1:B", "ticker:7:1:C"]
    assert state.evicted == 1


def test_backfill_of_a_series_counts_bad_members_and_remembers_a_bounded_number() -> None:
    state = close_subscription_state(U, E, "BTC-USD", "1m", True)
    series = Series(U, E, "BTC-USD", "1m")
    members = [msgspec.json.encode(unified(T0 + i * 60_000)) for i in range(BACKFILL_MEMORY + 10)]
    bad = [b"{", msgspec.json.encode(unified(T0, symbol="ETH-USD")), 5]
    events = state.on_backfill(series, [*bad, *members])
    assert len(events) == len(members)
    assert state.malformed == 3
    assert state.remembered == BACKFILL_MEMORY
    assert state.on_backfill(series, ValueError("WRONGTYPE")) == []
    assert state.malformed == 4


def test_subscriber_settings_are_checked() -> None:
    assert check_subscriber_settings(30, 10) == (30.0, 10)
    for bad in (0, -1, float("nan"), float("inf"), True, "5", None):
        with pytest.raises(ValidationError):
            check_subscriber_settings(bad, 10)
    for bad_count in (0, -1, 1.5, True, None, 10**10):
        with pytest.raises(ValidationError):
            check_subscriber_settings(1.0, bad_count)


# ---- reconnect schedule -------------------------------------------------------------------------


def test_recovery_schedule() -> None:
    recovery = Recovery(timeout_s=10.0, delay_s=0.25, attempt_timeout_s=2.0)
    assert not recovery.active
    recovery.begin(100.0)
    recovery.begin(101.0)  # a second loss within one recovery changes nothing
    assert recovery.active
    assert recovery.since == 100.0
    assert recovery.wait(100.0) == 0.0
    assert recovery.budget(100.0, None) == 2.0
    assert recovery.budget(100.0, 100.5) == 0.5  # bounded by what remains of get()'s timeout
    assert recovery.budget(109.0, None) == 1.0  # bounded by what remains of reconnect_timeout_s
    recovery.failed(100.1)
    assert recovery.attempts == 1
    assert recovery.wait(100.2) == pytest.approx(0.15)
    assert not recovery.expired(109.99)
    assert recovery.expired(110.0)
    assert recovery.budget(111.0, None) == 0.0
    recovery.done()
    assert not recovery.active
    assert not recovery.expired(1000.0)

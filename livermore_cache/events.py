"""Candle-close events: the sans-I/O part of the subscribers.

Parsing a channel into its series, decoding a message into an event (or
counting it as malformed), and deciding what a reconnected subscriber must
read back from the cache are plain functions that both subscribers use.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Final, Generic, NamedTuple, TypeVar

import msgspec

from .candles import Candle, UnifiedCandle, decode_candle
from .errors import ValidationError
from .keys import candle_close_channel, candle_close_pattern, candle_key
from .plans.values import Kind
from .timeframes import TIMEFRAME_VALUES
from .values import IndicatorValue, Ticker

__all__ = [
    "CandleClose",
    "IndicatorUpdate",
    "Series",
    "SubscriptionState",
    "TickerUpdate",
    "ValueSubscriptionState",
    "close_subscription_state",
]

_CLOSE_PREFIX: Final = "channel:candle:close:"
BACKFILL_MEMORY: Final = 10_000
"""The most backfilled members a subscriber remembers to drop their live copies (oldest forgotten first)."""


class Series(NamedTuple):
    """One candle series: whose, which exchange, which symbol, which timeframe."""

    user_id: int
    exchange_id: int
    symbol: str
    timeframe: str

    @property
    def key(self) -> str:
        return candle_key(*self)

    @property
    def close_channel(self) -> str:
        return candle_close_channel(*self)


@dataclass(frozen=True, slots=True)
class CandleClose:
    """A closed candle announced on its series' close channel (or read back from the cache after a drop)."""

    series: Series
    candle: Candle
    """A ``UnifiedCandle``, or a plain ``Candle`` when the publisher sent the Candle schema."""
    backfilled: bool = False
    """True when read back from the cache after a reconnect rather than received live."""


def parse_close_channel(channel: bytes | str) -> Series | None:
    """The series of a ``candle_close_channel``, or None if the channel is not one."""
    text = channel.decode() if isinstance(channel, bytes) else channel
    if not text.startswith(_CLOSE_PREFIX):
        return None
    parts = text[len(_CLOSE_PREFIX) :].split(":")
    if len(parts) != 4 or not parts[0].isdigit() or not parts[1].isdigit() or parts[3] not in TIMEFRAME_VALUES:
        return None
    return Series(int(parts[0]), int(parts[1]), parts[2], parts[3])


def event_candle(payload: bytes | str) -> Candle | None:
    """The candle a message or backfilled member carries (``codec.decode_candle``'s rule), or None if malformed."""
    try:
        return decode_candle(payload, UnifiedCandle)
    except msgspec.DecodeError:  # msgspec.ValidationError is a DecodeError
        return None


def subscription_target(user_id: int, exchange_id: int, symbol: str | None, timeframe: str | None) -> tuple[str, bool]:
    """The channel (or pattern, True) to subscribe to."""
    if symbol is not None and timeframe is not None:
        return candle_close_channel(user_id, exchange_id, symbol, timeframe), False
    return candle_close_pattern(user_id, exchange_id, symbol, timeframe), True


def close_subscription_state(
    user_id: int, exchange_id: int, symbol: str | None, timeframe: str | None, backfill: bool
) -> SubscriptionState:
    target, is_pattern = subscription_target(user_id, exchange_id, symbol, timeframe)
    return SubscriptionState(target, is_pattern, backfill)


@dataclass
class SubscriptionState:
    """What a subscriber has seen: the newest timestamp per series, malformed messages, pending backfill.

    A member read back after a reconnect may also arrive live (published just
    before the read); its live copy is dropped once. That memory is bounded
    (``BACKFILL_MEMORY``, oldest first) and a series' part of it is cleared as
    soon as a live event of that series is newer than everything backfilled for
    it: after that, a re-announcement of a backfilled candle is delivered.
    """

    pattern: str
    is_pattern: bool
    backfill: bool = True
    malformed: int = 0
    reconnects: int = 0
    last_seen: dict[Series, int] = field(default_factory=dict)
    _backfilled: OrderedDict[tuple[Series, bytes], None] = field(default_factory=OrderedDict)
    _backfilled_until: dict[Series, int] = field(default_factory=dict)

    @property
    def remembered(self) -> int:
        """How many backfilled members are remembered, to drop their live copies."""
        return len(self._backfilled)

    def on_message(self, message: dict[str, Any] | None) -> CandleClose | None:
        """The event a pub/sub message carries; None for control messages, duplicates and malformed ones (counted)."""
        if message is None or message.get("type") not in ("message", "pmessage"):
            return None
        series = parse_close_channel(message["channel"])
        data = message["data"]
        candle = event_candle(data) if series is not None else None
        if series is None or candle is None or candle.symbol != series.symbol or candle.timeframe != series.timeframe:
            self.malformed += 1
            return None
        until = self._backfilled_until.get(series)
        if until is not None:
            if candle.timestamp > until:
                self._forget(series)
            else:
                marker = (series, data if isinstance(data, bytes) else data.encode())
                if marker in self._backfilled:
                    del self._backfilled[marker]
                    return None
        return self._seen(CandleClose(series, candle))

    def backfill_reads(self) -> list[tuple[Series, tuple[str, ...]]]:
        """Per series seen so far: the read of every candle after the newest timestamp seen."""
        return [
            (series, ("ZRANGEBYSCORE", series.key, f"({stamp}", "+inf")) for series, stamp in self.last_seen.items()
        ]

    def on_backfill(self, series: Series, members: list[bytes]) -> list[CandleClose]:
        """Events for members read back from the cache; live copies of them that arrive later are dropped."""
        events = []
        for member in members:
            candle = event_candle(member)
            if candle is None:
                self.malformed += 1
                continue
            self._backfilled[(series, member)] = None
            if len(self._backfilled) > BACKFILL_MEMORY:
                self._backfilled.popitem(last=False)
            if candle.timestamp > self._backfilled_until.get(series, -1):
                self._backfilled_until[series] = candle.timestamp
            events.append(self._seen(CandleClose(series, candle, backfilled=True)))
        return events

    def _forget(self, series: Series) -> None:
        del self._backfilled_until[series]
        for marker in [m for m in self._backfilled if m[0] == series]:
            del self._backfilled[marker]

    def _seen(self, event: CandleClose) -> CandleClose:
        stamp = event.candle.timestamp
        if stamp > self.last_seen.get(event.series, -1):
            self.last_seen[event.series] = stamp
        return event


# ---- ticker and indicator updates ---------------------------------------------------------------

ValueT = TypeVar("ValueT")


@dataclass(frozen=True, slots=True)
class TickerUpdate:
    """A ticker announced on its channel (or read back from the cache after a reconnect)."""

    key: str
    """The ticker's key, ``ticker:{user}:{exchange}:{symbol}``."""
    ticker: Ticker
    backfilled: bool = False


@dataclass(frozen=True, slots=True)
class IndicatorUpdate:
    """An indicator value announced on its channel (or read back from the cache after a reconnect)."""

    key: str
    """The value's key as the Node setter writes it, ``indicator:{user}:{exchange}:{symbol}:{timeframe}:{type}``."""
    indicator: IndicatorValue
    backfilled: bool = False


_CHANNEL_PREFIX: Final = "channel:"


@dataclass
class ValueSubscriptionState(Generic[ValueT]):
    """What a ticker or indicator subscriber has seen: the newest timestamp per key, malformed messages.

    A value's channel is ``channel:`` + its key. After a reconnect, backfill reads
    the current value of every key seen once, and delivers it when it is newer
    than the newest seen; a live copy of it that arrives later is dropped.
    """

    kind: Kind[ValueT]
    make_event: Callable[[str, ValueT, bool], Any]
    pattern: str
    is_pattern: bool
    backfill: bool = True
    malformed: int = 0
    reconnects: int = 0
    last_seen: dict[str, int] = field(default_factory=dict)

    def on_message(self, message: dict[str, Any] | None) -> Any:
        if message is None or message.get("type") not in ("message", "pmessage"):
            return None
        channel = message["channel"]
        channel = channel.decode() if isinstance(channel, bytes) else channel
        key = channel[len(_CHANNEL_PREFIX) :] if channel.startswith(_CHANNEL_PREFIX) else None
        try:
            value = self.kind.decode(message["data"]) if key is not None else None
        except ValidationError:
            value = None
        if key is None or value is None or not key.startswith(self.kind.name + ":"):
            self.malformed += 1
            return None
        stamp: int = value.timestamp  # type: ignore[attr-defined]
        if stamp <= self.last_seen.get(key, -1) and key in self._backfilled:
            return None  # the live copy of what backfill delivered
        self._backfilled.discard(key)
        self.last_seen[key] = max(stamp, self.last_seen.get(key, stamp))
        return self.make_event(key, value, False)

    def backfill_reads(self) -> list[tuple[str, tuple[str, ...]]]:
        return [(key, ("GET", key)) for key in self.last_seen]

    def on_backfill(self, key: str, stored: bytes | None) -> list[Any]:
        if stored is None:
            return []
        try:
            value = self.kind.decode(stored)
        except ValidationError:
            self.malformed += 1
            return []
        stamp: int = value.timestamp  # type: ignore[attr-defined]
        if stamp <= self.last_seen.get(key, -1):
            return []
        self.last_seen[key] = stamp
        self._backfilled.add(key)
        return [self.make_event(key, value, True)]

    _backfilled: set[str] = field(default_factory=set)

"""Candle-close, ticker, orderbook and indicator events: the sans-I/O part of the subscribers.

Parsing a channel into its series, decoding a message into an event (or
counting it as malformed), and deciding what a reconnected subscriber must
read back from the cache are plain functions that both subscribers use.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Final, Generic, NamedTuple, TypeVar, cast

import msgspec

from .candles import Candle, UnifiedCandle, decode_candle
from .errors import ValidationError
from .keys import (
    candle_close_channel,
    candle_close_pattern,
    candle_key,
    check_ids,
    indicator_channel_pattern,
    orderbook_channel,
    parse_candle_close_channel,
    parse_indicator_channel,
    parse_orderbook_channel,
    parse_ticker_channel,
    ticker_channel_pattern,
)
from .plans.values import Kind
from .timeframes import TimeframeName
from .values import IndicatorValue, Orderbook, Ticker

__all__ = [
    "CandleClose",
    "IndicatorUpdate",
    "OrderbookUpdate",
    "Recovery",
    "Series",
    "SubscriptionState",
    "TickerUpdate",
    "ValueSubscriptionState",
    "check_subscriber_settings",
    "close_subscription_state",
    "parse_close_channel",
    "parse_value_channel",
    "value_matches",
    "value_subscription_state",
]

BACKFILL_MEMORY: Final = 10_000
"""The most backfilled members a subscriber remembers to drop their live copies (oldest forgotten first)."""
MAX_TRACKED_SERIES: Final = 10_000
"""The default ``max_tracked_series``: how many series (or value keys) a subscriber tracks for backfill."""
RECONNECT_TIMEOUT_S: Final = 30.0
"""The default ``reconnect_timeout_s``: how long a subscriber keeps trying to reconnect before it raises."""
RECONNECT_DELAY_S: Final = 0.25
"""The pause between two reconnect attempts."""
RECONNECT_ATTEMPT_TIMEOUT_S: Final = 2.0
"""The longest one reconnect attempt (TCP connect, handshake, resubscribe) may take."""
_MAX_SETTING: Final = 10**9


def check_subscriber_settings(reconnect_timeout_s: object, max_tracked_series: object) -> tuple[float, int]:
    """``(reconnect_timeout_s, max_tracked_series)`` checked: a finite number > 0, an int from 1 to 10**9."""
    if (
        isinstance(reconnect_timeout_s, bool)
        or not isinstance(reconnect_timeout_s, int | float)
        or not 0 < float(reconnect_timeout_s) <= 86400.0
    ):
        raise ValidationError(
            "reconnect_timeout_s", reconnect_timeout_s, "must be a number of seconds > 0 and <= 86400"
        )
    if type(max_tracked_series) is not int or not 0 < max_tracked_series <= _MAX_SETTING:
        raise ValidationError("max_tracked_series", max_tracked_series, f"must be an int from 1 to {_MAX_SETTING}")
    return float(reconnect_timeout_s), max_tracked_series


class Series(NamedTuple):
    """One candle series: whose, which exchange, which symbol, which timeframe."""

    user_id: int
    exchange_id: int
    symbol: str
    timeframe: TimeframeName

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
    """The series of a ``candle_close_channel``, or None if the channel is not one the key builders would make."""
    parts = parse_candle_close_channel(channel)
    if parts is None:
        return None
    user_id, exchange_id, symbol, timeframe = parts
    return Series(user_id, exchange_id, symbol, cast(TimeframeName, timeframe))  # parsed by the key builders' rules


def event_candle(payload: object) -> Candle | None:
    """The candle a message or backfilled member carries (``codec.decode_candle``'s rule), or None if malformed."""
    if not isinstance(payload, bytes | str):
        return None
    try:
        return decode_candle(payload, UnifiedCandle)
    except (msgspec.DecodeError, ValueError, TypeError):  # msgspec.ValidationError is a DecodeError
        return None


def candle_matches(series: Series, candle: Candle) -> bool:
    """Whether the candle belongs to the series: the same symbol and timeframe (the key a writer stores it under)."""
    return candle.symbol == series.symbol and candle.timeframe == series.timeframe


def subscription_target(user_id: int, exchange_id: int, symbol: str | None, timeframe: str | None) -> tuple[str, bool]:
    """The channel (or pattern, True) to subscribe to."""
    if symbol is not None and timeframe is not None:
        return candle_close_channel(user_id, exchange_id, symbol, timeframe), False
    return candle_close_pattern(user_id, exchange_id, symbol, timeframe), True


def close_subscription_state(
    user_id: int,
    exchange_id: int,
    symbol: str | None,
    timeframe: str | None,
    backfill: bool,
    max_tracked_series: int = MAX_TRACKED_SERIES,
) -> SubscriptionState:
    check_ids(user_id, exchange_id)  # None for either would subscribe to every user's (or exchange's) closes
    target, is_pattern = subscription_target(user_id, exchange_id, symbol, timeframe)
    return SubscriptionState(
        target,
        is_pattern,
        backfill,
        max_tracked_series=max_tracked_series,
        want=(user_id, exchange_id, symbol, timeframe),
    )


def _wanted(want: tuple[object, ...], parts: tuple[object, ...]) -> bool:
    """Whether parsed channel parts are the subscription's (None in ``want``: any)."""
    return all(w is None or w == p for w, p in zip(want, parts, strict=False))


def _is_message(message: object) -> bool:
    return isinstance(message, dict) and message.get("type") in ("message", "pmessage")


@dataclass
class SubscriptionState:
    """What a subscriber has seen: the newest timestamp per series, malformed messages, pending backfill.

    A message is delivered only if its channel parses by the key builders' rules
    (``keys.parse_candle_close_channel``), is one of the subscription's series,
    and carries a candle of that series (same symbol and timeframe); anything else
    is counted in ``malformed``, never raised. The same holds for members read
    back by backfill.

    At most ``max_tracked_series`` series are tracked (least recently seen
    forgotten first): a forgotten series is not read back after a reconnect,
    until it is seen again.

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
    max_tracked_series: int = MAX_TRACKED_SERIES
    want: tuple[int | str | None, ...] = ()
    evicted: int = 0
    """Series forgotten because more than ``max_tracked_series`` were tracked."""
    last_seen: OrderedDict[Series, int] = field(default_factory=OrderedDict)
    _backfilled: OrderedDict[tuple[Series, bytes], None] = field(default_factory=OrderedDict)
    _backfilled_of: dict[Series, set[bytes]] = field(default_factory=dict)
    _backfilled_until: dict[Series, int] = field(default_factory=dict)

    @property
    def remembered(self) -> int:
        """How many backfilled members are remembered, to drop their live copies."""
        return len(self._backfilled)

    def on_message(self, message: dict[str, Any] | None) -> CandleClose | None:
        """The event a pub/sub message carries; None for control messages, duplicates and malformed ones (counted)."""
        if message is None or not _is_message(message):
            return None
        series = parse_close_channel(message.get("channel", b""))
        data = message.get("data")
        candle = event_candle(data) if series is not None and _wanted(self.want, series) else None
        if series is None or candle is None or not candle_matches(series, candle):
            self.malformed += 1
            return None
        until = self._backfilled_until.get(series)
        if until is not None:
            if candle.timestamp > until:
                self._forget(series)
            else:
                marker = (series, data if isinstance(data, bytes) else str(data).encode())
                if marker in self._backfilled:
                    self._drop_marker(marker)
                    return None
        return self._seen(CandleClose(series, candle))

    def backfill_reads(self) -> list[tuple[Series, tuple[str, ...]]]:
        """Per series tracked: the read of every candle after the newest timestamp seen."""
        reads: list[tuple[Series, tuple[str, ...]]] = []
        for series, stamp in self.last_seen.items():
            try:
                key = series.key
            except ValidationError:  # cannot happen for a parsed channel; never raise out of a read
                continue
            reads.append((series, ("ZRANGEBYSCORE", key, f"({stamp}", "+inf")))
        return reads

    def on_backfill(self, series: Series, members: object) -> list[CandleClose]:
        """Events for members read back from the cache; live copies of them that arrive later are dropped.

        A reply that is not a list of members (an error such as WRONGTYPE) and a
        member that is not a candle of the series are counted in ``malformed``.
        """
        if not isinstance(members, list):
            self.malformed += 1
            return []
        events = []
        for member in members:
            candle = event_candle(member)
            if candle is None or not candle_matches(series, candle):
                self.malformed += 1
                continue
            raw = member if isinstance(member, bytes) else str(member).encode()
            self._backfilled[(series, raw)] = None
            self._backfilled_of.setdefault(series, set()).add(raw)
            if len(self._backfilled) > BACKFILL_MEMORY:
                self._drop_marker(next(iter(self._backfilled)))
            if candle.timestamp > self._backfilled_until.get(series, -1):
                self._backfilled_until[series] = candle.timestamp
            events.append(self._seen(CandleClose(series, candle, backfilled=True)))
        return events

    def _drop_marker(self, marker: tuple[Series, bytes]) -> None:
        del self._backfilled[marker]
        members = self._backfilled_of.get(marker[0])
        if members is not None:
            members.discard(marker[1])
            if not members:
                del self._backfilled_of[marker[0]]

    def _forget(self, series: Series) -> None:
        self._backfilled_until.pop(series, None)
        for member in self._backfilled_of.pop(series, ()):
            self._backfilled.pop((series, member), None)

    def _seen(self, event: CandleClose) -> CandleClose:
        series, stamp = event.series, event.candle.timestamp
        known = self.last_seen.get(series)
        if known is None:
            self.last_seen[series] = stamp
            while len(self.last_seen) > self.max_tracked_series:
                evicted, _ = self.last_seen.popitem(last=False)
                self._forget(evicted)
                self.evicted += 1
        else:
            self.last_seen.move_to_end(series)
            if stamp > known:
                self.last_seen[series] = stamp
        return event


# ---- ticker, orderbook and indicator updates ----------------------------------------------------

ValueT = TypeVar("ValueT")


@dataclass(frozen=True, slots=True)
class TickerUpdate:
    """A ticker announced on its channel (or read back from the cache after a reconnect)."""

    key: str
    """The ticker's key, ``ticker:{user}:{exchange}:{symbol}``."""
    ticker: Ticker
    backfilled: bool = False


@dataclass(frozen=True, slots=True)
class OrderbookUpdate:
    """An orderbook announced on its channel (or read back from the cache after a reconnect)."""

    key: str
    """The orderbook's key, ``orderbook:{user}:{exchange}:{symbol}``."""
    orderbook: Orderbook
    backfilled: bool = False


@dataclass(frozen=True, slots=True)
class IndicatorUpdate:
    """An indicator value announced on its channel (or read back from the cache after a reconnect)."""

    key: str
    """The value's key as the Node setter writes it, ``indicator:{user}:{exchange}:{symbol}:{timeframe}:{type}``."""
    indicator: IndicatorValue
    backfilled: bool = False


_CHANNEL_PREFIX: Final = "channel:"
_VALUE_CHANNELS: Final[dict[str, tuple[Callable[[str | bytes], tuple[Any, ...] | None], tuple[str, ...]]]] = {
    "ticker": (parse_ticker_channel, ("symbol",)),
    "orderbook": (parse_orderbook_channel, ("symbol",)),
    "indicator": (parse_indicator_channel, ("symbol", "timeframe", "type")),
}


def parse_value_channel(kind_name: str, channel: str | bytes) -> tuple[Any, ...] | None:
    """The parts of a ticker, orderbook or indicator channel (``kind_name``), or None if it is not one."""
    return _VALUE_CHANNELS[kind_name][0](channel)


def value_matches(kind: Kind[ValueT], parts: tuple[Any, ...], value: ValueT) -> bool:
    """Whether ``value`` belongs on the channel of ``parts``: its symbol (timeframe, type) and the key it derives."""
    fields = _VALUE_CHANNELS[kind.name][1]
    if tuple(getattr(value, name, None) for name in fields) != tuple(parts[2:]):
        return False
    try:
        derived = kind.key(parts[0], parts[1], value)
    except (ValidationError, TypeError, ValueError):
        return False
    return derived == f"{kind.name}:" + ":".join(map(str, parts))


def value_channel_pattern(kind_name: str, user_id: int, exchange_id: int, *parts: str | None) -> tuple[str, bool]:
    """The channel of one key, or the pattern with ``*`` for each part left out, for ``kind_name``."""
    if kind_name == "ticker":
        return ticker_channel_pattern(user_id, exchange_id, *parts)
    if kind_name == "indicator":
        return indicator_channel_pattern(user_id, exchange_id, *parts)
    (symbol,) = parts
    if symbol is not None:
        return orderbook_channel(user_id, exchange_id, symbol), False
    check_ids(user_id, exchange_id)
    return f"channel:orderbook:{user_id}:{exchange_id}:*", True


def value_subscription_state(
    kind: Kind[ValueT],
    make_event: Callable[[str, ValueT, bool], Any],
    user_id: int,
    exchange_id: int,
    parts: tuple[str | None, ...],
    backfill: bool,
    max_tracked_series: int = MAX_TRACKED_SERIES,
) -> ValueSubscriptionState[ValueT]:
    check_ids(user_id, exchange_id)
    target, is_pattern = value_channel_pattern(kind.name, user_id, exchange_id, *parts)
    return ValueSubscriptionState(
        kind,
        make_event,
        target,
        is_pattern,
        backfill,
        max_tracked_series=max_tracked_series,
        want=(user_id, exchange_id, *parts),
    )


@dataclass
class ValueSubscriptionState(Generic[ValueT]):
    """What a ticker, orderbook or indicator subscriber has seen: the newest timestamp per key, malformed messages.

    A value's channel is ``channel:`` + its key. A message is delivered only if
    its channel parses by the key builders' rules, is one of the subscription's,
    and its value belongs there (symbol; for indicators timeframe and type too;
    and the key derived from the value is the channel's key). Anything else is
    counted in ``malformed``. After a reconnect, backfill reads the current value
    of every key tracked (at most ``max_tracked_series``, least recently seen
    forgotten first), and delivers it when it is newer than the newest seen; a
    live copy of it that arrives later is dropped.
    """

    kind: Kind[ValueT]
    make_event: Callable[[str, ValueT, bool], Any]
    pattern: str
    is_pattern: bool
    backfill: bool = True
    malformed: int = 0
    reconnects: int = 0
    max_tracked_series: int = MAX_TRACKED_SERIES
    want: tuple[int | str | None, ...] = ()
    evicted: int = 0
    """Keys forgotten because more than ``max_tracked_series`` were tracked."""
    last_seen: OrderedDict[str, int] = field(default_factory=OrderedDict)
    _backfilled: set[str] = field(default_factory=set)

    def _decode(self, data: object) -> ValueT | None:
        if not isinstance(data, bytes | str):
            return None
        try:
            return self.kind.decode(data)
        except (ValidationError, msgspec.DecodeError, ValueError, TypeError):
            return None

    def on_message(self, message: dict[str, Any] | None) -> Any:
        if message is None or not _is_message(message):
            return None
        parts = parse_value_channel(self.kind.name, message.get("channel", b""))
        value = self._decode(message.get("data")) if parts is not None and _wanted(self.want, parts) else None
        if parts is None or value is None or not value_matches(self.kind, parts, value):
            self.malformed += 1
            return None
        key = f"{self.kind.name}:" + ":".join(map(str, parts))
        stamp: int = value.timestamp  # type: ignore[attr-defined]
        if stamp <= self.last_seen.get(key, -1) and key in self._backfilled:
            return None  # the live copy of what backfill delivered
        self._backfilled.discard(key)
        self._seen(key, stamp)
        return self.make_event(key, value, False)

    def backfill_reads(self) -> list[tuple[str, tuple[str, ...]]]:
        return [(key, ("GET", key)) for key in self.last_seen]

    def on_backfill(self, key: str, stored: object) -> list[Any]:
        """The event for a key's stored value when newer than the newest seen; a bad stored value is counted."""
        if stored is None:
            return []
        parts = parse_value_channel(self.kind.name, _CHANNEL_PREFIX + key)
        value = self._decode(stored)
        if parts is None or value is None or not value_matches(self.kind, parts, value):
            self.malformed += 1
            return []
        stamp: int = value.timestamp  # type: ignore[attr-defined]
        if stamp <= self.last_seen.get(key, -1):
            return []
        self._seen(key, stamp)
        self._backfilled.add(key)
        return [self.make_event(key, value, True)]

    def _seen(self, key: str, stamp: int) -> None:
        known = self.last_seen.get(key)
        if known is None:
            self.last_seen[key] = stamp
            while len(self.last_seen) > self.max_tracked_series:
                evicted, _ = self.last_seen.popitem(last=False)
                self._backfilled.discard(evicted)
                self.evicted += 1
        else:
            self.last_seen.move_to_end(key)
            if stamp > known:
                self.last_seen[key] = stamp


# ---- reconnecting -------------------------------------------------------------------------------


@dataclass
class Recovery:
    """When a subscriber that lost its connection tries again, and when it gives up (sans-I/O: times are given).

    Recovery begins when the connection is found lost (or redis-py reconnected it
    and a backfill is due). Attempts are ``delay_s`` apart, each bounded by
    ``attempt_timeout_s``, by what remains of the ``get()`` timeout and by what
    remains of ``timeout_s``; once ``timeout_s`` have passed since it began,
    ``expired`` is true and the subscriber raises.
    """

    timeout_s: float = RECONNECT_TIMEOUT_S
    delay_s: float = RECONNECT_DELAY_S
    attempt_timeout_s: float = RECONNECT_ATTEMPT_TIMEOUT_S
    since: float | None = None
    next_at: float = 0.0
    attempts: int = 0

    @property
    def active(self) -> bool:
        return self.since is not None

    def begin(self, now: float) -> None:
        if self.since is None:
            self.since, self.next_at, self.attempts = now, now, 0

    def expired(self, now: float) -> bool:
        return self.since is not None and now - self.since >= self.timeout_s

    def wait(self, now: float) -> float:
        """Seconds until the next attempt is due (0: now)."""
        return max(0.0, self.next_at - now)

    def budget(self, now: float, deadline: float | None) -> float:
        """How long the attempt starting now may take."""
        bound = self.attempt_timeout_s
        if self.since is not None:
            bound = min(bound, self.since + self.timeout_s - now)
        if deadline is not None:
            bound = min(bound, deadline - now)
        return max(bound, 0.0)

    def failed(self, now: float) -> None:
        self.attempts += 1
        self.next_at = now + self.delay_s

    def done(self) -> None:
        self.since, self.attempts = None, 0

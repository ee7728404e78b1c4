"""Candle-close events: the sans-I/O part of the subscribers.

Parsing a channel into its series, decoding a message into an event (or
counting it as malformed), and deciding what a reconnected subscriber must
read back from the cache are plain functions that both subscribers use.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Final, NamedTuple

import msgspec

from .keys import candle_close_channel, candle_close_pattern, candle_key
from .models import TIMEFRAME_VALUES, Candle, UnifiedCandle

__all__ = ["CandleClose", "Series", "SubscriptionState"]

_CLOSE_PREFIX: Final = "channel:candle:close:"
_UNIFIED: Final = msgspec.json.Decoder(UnifiedCandle)
_PLAIN: Final = msgspec.json.Decoder(Candle)


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


def decode_candle(payload: bytes | str) -> Candle | None:
    """A UnifiedCandle, else a plain Candle, else None (malformed)."""
    try:
        return _UNIFIED.decode(payload)
    except msgspec.ValidationError:
        pass
    except msgspec.DecodeError:
        return None
    try:
        return _PLAIN.decode(payload)
    except msgspec.DecodeError:
        return None


def subscription_target(user_id: int, exchange_id: int, symbol: str | None, timeframe: str | None) -> tuple[str, bool]:
    """The channel (or pattern, True) to subscribe to."""
    if symbol is not None and timeframe is not None:
        return candle_close_channel(user_id, exchange_id, symbol, timeframe), False
    return candle_close_pattern(user_id, exchange_id, symbol, timeframe), True


@dataclass
class SubscriptionState:
    """What a subscriber has seen: the newest timestamp per series, malformed messages, pending backfill."""

    pattern: str
    is_pattern: bool
    backfill: bool = True
    malformed: int = 0
    reconnects: int = 0
    last_seen: dict[Series, int] = field(default_factory=dict)
    _backfilled: set[tuple[Series, bytes]] = field(default_factory=set)

    def on_message(self, message: dict[str, Any] | None) -> CandleClose | None:
        """The event a pub/sub message carries; None for control messages, duplicates and malformed ones (counted)."""
        if message is None or message.get("type") not in ("message", "pmessage"):
            return None
        series = parse_close_channel(message["channel"])
        data = message["data"]
        candle = decode_candle(data) if series is not None else None
        if series is None or candle is None or candle.symbol != series.symbol or candle.timeframe != series.timeframe:
            self.malformed += 1
            return None
        if self._backfilled:
            marker = (series, data if isinstance(data, bytes) else data.encode())
            if marker in self._backfilled:
                self._backfilled.discard(marker)
                return None
        return self._seen(CandleClose(series, candle))

    def backfill_ranges(self) -> list[tuple[Series, str, str]]:
        """Per series seen so far: the ZRANGEBYSCORE bounds of what came after the newest timestamp seen."""
        return [(series, f"({stamp}", "+inf") for series, stamp in self.last_seen.items()]

    def on_backfill(self, series: Series, members: list[bytes]) -> list[CandleClose]:
        """Events for members read back from the cache; live copies of them that arrive later are dropped."""
        events = []
        for member in members:
            candle = decode_candle(member)
            if candle is None:
                self.malformed += 1
                continue
            self._backfilled.add((series, member))
            events.append(self._seen(CandleClose(series, candle, backfilled=True)))
        return events

    def _seen(self, event: CandleClose) -> CandleClose:
        stamp = event.candle.timestamp
        if stamp > self.last_seen.get(event.series, -1):
            self.last_seen[event.series] = stamp
        return event

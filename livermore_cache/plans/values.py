"""The sans-I/O part of the ticker, orderbook and indicator caches: kinds, write plans and their replies.

Each kind says how a value is checked, encoded, decoded, and which key and
channel the Node service uses for it. A newer-wins batch becomes one
``newer_wins.lua`` call per value (a key holds one value, so calls are per key;
several values for one key in a batch are applied in input order), sent and
retried by the same transport and ``retry.WriteRounds`` as candle batches.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Final, Generic, TypeVar

from livermore_cache.engine import Command, validate_settings
from livermore_cache.errors import ValidationError
from livermore_cache.keys import (
    check_ids,
    indicator_channel,
    indicator_key,
    orderbook_channel,
    orderbook_key,
    ticker_channel,
    ticker_key,
)
from livermore_cache.limits import MAX_TTL_SECONDS
from livermore_cache.values import (
    IndicatorValue,
    Orderbook,
    Ticker,
    check_indicator,
    check_orderbook,
    check_ticker,
    decode_indicator,
    decode_orderbook,
    decode_ticker,
    encode_indicator,
    encode_orderbook,
    encode_ticker,
)

__all__ = ["INDICATORS", "ORDERBOOKS", "TICKERS", "Kind", "ValueCall", "ValuePlan", "plan_values", "validate_ttl"]

ValueT = TypeVar("ValueT")

FIRST_ATTEMPT: Final = b"0"
RETRY_ATTEMPT: Final = b"1"
PROVING_RETRY_ATTEMPT: Final = b"2"


@dataclass(frozen=True, slots=True)
class Kind(Generic[ValueT]):
    """One of the Node service's value strategies: its model, JSON, key and channel."""

    name: str
    default_ttl: int
    check: Callable[[object], ValueT]
    encode: Callable[[ValueT], bytes]
    decode: Callable[[bytes | str], ValueT]
    key: Callable[[int, int, ValueT], str]
    channel: Callable[[int, int, ValueT], str]


TICKERS: Final[Kind[Ticker]] = Kind(
    "ticker",
    60,
    check_ticker,
    encode_ticker,
    decode_ticker,
    lambda u, e, t: ticker_key(u, e, t.symbol),
    lambda u, e, t: ticker_channel(u, e, t.symbol),
)
ORDERBOOKS: Final[Kind[Orderbook]] = Kind(
    "orderbook",
    30,
    check_orderbook,
    encode_orderbook,
    decode_orderbook,
    lambda u, e, o: orderbook_key(u, e, o.symbol),
    lambda u, e, o: orderbook_channel(u, e, o.symbol),
)
# The Node setters leave params out of the key (its getters put them in when given).
INDICATORS: Final[Kind[IndicatorValue]] = Kind(
    "indicator",
    90000,
    check_indicator,
    encode_indicator,
    decode_indicator,
    lambda u, e, i: indicator_key(u, e, i.symbol, i.timeframe, i.type),
    lambda u, e, i: indicator_channel(u, e, i.symbol, i.timeframe, i.type),
)


def validate_ttl(ttl_seconds: object, retries: int, retry_timeout_s: float) -> int:
    """A value cache's settings, checked once: the TTL is required (the Node strategies always set one)."""
    if type(ttl_seconds) is not int or not 0 < ttl_seconds <= MAX_TTL_SECONDS:
        raise ValidationError("ttl_seconds", ttl_seconds, f"must be an int from 1 to {MAX_TTL_SECONDS}")
    validate_settings(ttl_seconds, retries, retry_timeout_s)
    return ttl_seconds


@dataclass(slots=True)
class ValueCall:
    """One call of ``newer_wins.lua``: one value for one key."""

    key: str
    timestamp: int
    payload: bytes
    ttl_seconds: int
    channel: str

    def command(self, sha: str, source: str, *, by_sha: bool, retry: bool = False, prove: bool = False) -> Command:
        """The EVALSHA (or, after NOSCRIPT, EVAL) command; ``prove``: a retry that re-proves a value found stored."""
        attempt = (PROVING_RETRY_ATTEMPT if prove else RETRY_ATTEMPT) if retry else FIRST_ATTEMPT
        args = (self.timestamp, self.payload, self.ttl_seconds, self.channel, attempt)
        return ("EVALSHA", sha, 1, self.key, *args) if by_sha else ("EVAL", source, 1, self.key, *args)


@dataclass(slots=True)
class ValuePlan:
    """A checked batch of values, one script call each, in input order."""

    calls: list[ValueCall]
    items: str = "values"

    @property
    def size(self) -> int:
        return len(self.calls)

    def results(self, replies: Sequence[Any]) -> list[bool]:
        """Per value, in input order: True if it was written (or, on a retry, found stored as sent)."""
        return [reply == 1 for reply in replies]

    def partial_results(self, replies: Sequence[Any]) -> list[bool | None]:
        return [None if reply is None else reply == 1 for reply in replies]


def plan_values(
    kind: Kind[ValueT], user_id: int, exchange_id: int, values: Iterable[ValueT], *, ttl_seconds: int, publish: bool
) -> ValuePlan:
    """Check every value, then build its script call. Raises (naming the position) before any I/O."""
    check_ids(user_id, exchange_id)
    calls = []
    for position, value in enumerate(values):
        where = f"{kind.name}s[{position}]"
        try:
            checked = kind.check(value)
            key = kind.key(user_id, exchange_id, checked)
            channel = kind.channel(user_id, exchange_id, checked) if publish else ""
        except ValidationError as error:
            if error.field == kind.name:  # not a value of this kind at all: name its position only
                raise ValidationError(where, error.value, error.rule) from None
            raise error.at(where) from None
        timestamp: int = checked.timestamp  # type: ignore[attr-defined]
        calls.append(ValueCall(key, timestamp, kind.encode(checked), ttl_seconds, channel))
    return ValuePlan(calls, f"{kind.name}s")


def decode_stored(kind: Kind[ValueT], data: bytes | str | None, key: str) -> ValueT | None:
    """A stored value, None if the key holds none; an invalid value raises, naming the key."""
    if data is None:
        return None
    try:
        return kind.decode(data)
    except ValidationError as error:
        raise ValidationError(f"value of {key}", data, f"is not a valid {kind.name} ({error})") from None


def decode_many(
    kind: Kind[ValueT], names: Sequence[str], stored: Sequence[bytes | str | None]
) -> tuple[dict[str, ValueT], int]:
    """Values read with MGET by name, in request order; invalid ones are skipped (as Node does) and counted."""
    found: dict[str, ValueT] = {}
    invalid = 0
    for name, data in zip(names, stored, strict=True):
        if data is None:
            continue
        try:
            found[name] = kind.decode(data)
        except ValidationError:
            invalid += 1
    return found, invalid

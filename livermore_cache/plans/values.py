"""The sans-I/O part of the ticker, orderbook and indicator caches: kinds, write plans and their replies.

Each kind says how a value is checked, encoded, decoded, and which key and
channel the Node service uses for it. A newer-wins batch becomes one
``newer_wins.lua`` call per value (a key holds one value, so calls are per key;
several values for one key in a batch are applied in input order), sent and
retried by the same transport and ``retry.WriteRounds`` as candle batches.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, Generic, TypeVar

from livermore_cache.engine import Command
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

__all__ = [
    "DEFAULT_INDICATOR_TYPE",
    "DEFAULT_TTL",
    "INDICATORS",
    "ORDERBOOKS",
    "TICKERS",
    "DefaultTTL",
    "Kind",
    "ValueCall",
    "ValuePlan",
    "bulk_indicator_keys",
    "plan_values",
]

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


class DefaultTTL(enum.Enum):
    """The type of ``DEFAULT_TTL``."""

    DEFAULT_TTL = "the kind's default TTL"


DEFAULT_TTL: Final = DefaultTTL.DEFAULT_TTL
"""A value cache's ``ttl_seconds`` when none is given: the Node strategy's TTL for its kind (None: never expire)."""

DEFAULT_INDICATOR_TYPE: Final = "macd-v"
"""The indicator type a bulk request without one asks for (the Node service's default)."""


@dataclass(slots=True)
class ValueCall:
    """One call of ``newer_wins.lua``: every value of the batch for one key, decided in input order."""

    key: str
    ttl_seconds: int | None
    channel: str
    stamps: list[bytes] = field(default_factory=list)
    payloads: list[bytes] = field(default_factory=list)
    positions: list[int] = field(default_factory=list)

    def command(
        self, sha: str, source: str | bytes, *, by_sha: bool, retry: bool = False, prove: bool = False
    ) -> Command:
        """The EVALSHA (or, after NOSCRIPT, EVAL) command; ``prove``: a retry that re-proves a value found stored."""
        attempt = (PROVING_RETRY_ATTEMPT if prove else RETRY_ATTEMPT) if retry else FIRST_ATTEMPT
        args: list[Any] = [b"%d" % (self.ttl_seconds or 0), self.channel, attempt]
        for stamp, payload in zip(self.stamps, self.payloads, strict=True):
            args += (stamp, payload)
        return ("EVALSHA", sha, 1, self.key, *args) if by_sha else ("EVAL", source, 1, self.key, *args)

    def set_command(self) -> Command:
        """The Node setters' plain write of the last value (what a pipeline of SETs in input order leaves)."""
        if self.ttl_seconds is None:
            return ("SET", self.key, self.payloads[-1])
        return ("SET", self.key, self.payloads[-1], "EX", self.ttl_seconds)


@dataclass(slots=True)
class ValuePlan:
    """A checked batch of values: one script call per key, in first-seen key order."""

    calls: list[ValueCall]
    size: int
    items: str = "values"

    def results(self, replies: Sequence[Any]) -> list[bool]:
        """Per value, in input order: True if it was written (or, on a retry, found stored as sent)."""
        results = [False] * self.size
        for call, reply in zip(self.calls, replies, strict=True):
            for position, written in zip(call.positions, reply, strict=True):
                results[position] = written == 1
        return results

    def partial_results(self, replies: Sequence[Any]) -> list[bool | None]:
        results: list[bool | None] = [None] * self.size
        for call, reply in zip(self.calls, replies, strict=True):
            if reply is not None:
                for position, written in zip(call.positions, reply, strict=True):
                    results[position] = written == 1
        return results


def plan_values(
    kind: Kind[ValueT],
    user_id: int,
    exchange_id: int,
    values: Iterable[ValueT],
    *,
    ttl_seconds: int | None,
    publish: bool,
) -> ValuePlan:
    """Check every value, then group them by key into script calls. Raises (naming the position) before any I/O."""
    check_ids(user_id, exchange_id)
    calls: dict[str, ValueCall] = {}
    position = -1
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
        call = calls.get(key)
        if call is None:
            call = calls[key] = ValueCall(key, ttl_seconds, channel)
        call.stamps.append(b"%d" % checked.timestamp)  # type: ignore[attr-defined]
        call.payloads.append(kind.encode(checked))
        call.positions.append(position)
    return ValuePlan(list(calls.values()), position + 1, f"{kind.name}s")


def bulk_indicator_keys(
    user_id: int, exchange_id: int, requests: Iterable[tuple[str, ...]]
) -> tuple[list[str], list[str]]:
    """Names (``"symbol:timeframe"``) and keys of ``get_indicators_bulk`` requests, each checked before any I/O."""
    names, keys = [], []
    for position, request in enumerate(requests):
        if not isinstance(request, tuple | list) or not 2 <= len(request) <= 3:
            raise ValidationError(
                f"requests[{position}]", request, "must be a (symbol, timeframe) or (symbol, timeframe, type) tuple"
            )
        symbol, timeframe = request[0], request[1]
        kind = (request[2] if len(request) > 2 else "") or DEFAULT_INDICATOR_TYPE
        try:
            keys.append(indicator_key(user_id, exchange_id, symbol, timeframe, kind))
        except ValidationError as error:
            raise error.at(f"requests[{position}]") from None
        names.append(f"{symbol}:{timeframe}")
    return names, keys


def decode_stored(kind: Kind[ValueT], data: bytes | str | None, key: str) -> ValueT | None:
    """A stored value, None if the key holds none (or an empty string, as Node's getters read it); an invalid value raises, naming the key."""
    if not data:
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
        if not data:  # missing, or an empty string (Node's getters read it as null)
            continue
        try:
            found[name] = kind.decode(data)
        except ValidationError:
            invalid += 1
    return found, invalid

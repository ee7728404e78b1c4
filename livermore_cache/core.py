"""The sans-I/O core: what both facades send and how they read the replies.

Nothing here touches a socket. Validation, grouping a batch by key, building
the script's ARGV, encoding members, mapping script replies back to input order
and decoding stored members are plain functions, so the sync and asyncio
facades stay thin shells that cannot drift apart.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, Final, TypeVar, cast

import msgspec

from .errors import ValidationError
from .keys import candle_close_channel, candle_key, check_ids
from .models import Candle, UnifiedCandle

__all__ = [
    "Outcome",
    "ReplyCollector",
    "ScriptCall",
    "WritePlan",
    "decode_candles",
    "encode_candle",
    "plan_write",
    "script_command",
    "validate_settings",
]

CandleT = TypeVar("CandleT", bound=Candle)

_ENCODER: Final = msgspec.json.Encoder()
_DECODERS: Final[dict[type[Candle], msgspec.json.Decoder[Candle]]] = {
    Candle: msgspec.json.Decoder(Candle),
    UnifiedCandle: msgspec.json.Decoder(UnifiedCandle),
}
_CANDLE_FIELDS: Final = Candle.__struct_fields__
UNCONDITIONAL_MODE: Final = b"0"
VERSIONED_MODE: Final = b"1"
RETRY_MODE: Final = b"2"


def validate_settings(ttl_seconds: int | None, max_candles: int, retries: int = 0) -> None:
    """Check a cache's settings once, when it is made."""
    if type(retries) is not int or retries < 0:
        raise ValidationError("retries", retries, "must be an int >= 0")
    if ttl_seconds is not None and (type(ttl_seconds) is not int or ttl_seconds <= 0):
        raise ValidationError("ttl_seconds", ttl_seconds, "must be an int > 0, or None for no expiry")
    if type(max_candles) is not int or max_candles <= 0:
        raise ValidationError("max_candles", max_candles, "must be an int > 0")


def checked_candle(candle: object, where: str = "candle") -> Candle:
    """``candle`` itself, once it is known to be a Candle (valid by construction); errors name ``where``."""
    if not isinstance(candle, Candle):
        raise ValidationError(where, candle, "must be a Candle or UnifiedCandle")
    return candle


def as_plain_candle(candle: Candle) -> Candle:
    """The candle without its versioned fields, as the Node service's ``addCandle`` stores it."""
    if type(candle) is Candle:
        return candle
    return Candle(**{name: getattr(candle, name) for name in _CANDLE_FIELDS})


def encode_candle(candle: Candle) -> bytes:
    """The candle's JSON: the Node service's field names and order, unset optionals left out."""
    return _ENCODER.encode(candle)


@dataclass(slots=True)
class ScriptCall:
    """One call of ``versioned_write.lua``: one key and the candles of the batch that belong to it."""

    key: str
    header: tuple[bytes, int, int, str]
    candles: list[Candle] = field(default_factory=list)
    positions: list[int] = field(default_factory=list)

    def args(self, *, retry: bool = False) -> tuple[Any, ...]:
        """ARGV: mode, ttl, max candles, channel, then every candle as one newline-delimited JSON blob.

        A retried versioned call runs in mode "2": a candle the key already holds
        byte for byte reports 1, since an earlier attempt of this call may have stored it.
        """
        mode = RETRY_MODE if retry and self.header[0] == VERSIONED_MODE else self.header[0]
        return (mode, *self.header[1:], _ENCODER.encode_lines(self.candles))


@dataclass(slots=True)
class WritePlan:
    """A validated batch: one script call per key, in first-seen key order."""

    calls: list[ScriptCall]
    size: int

    def results(self, replies: Sequence[Sequence[int]]) -> list[bool]:
        """Per candle, in input order: True if it was written and is still stored."""
        results = [False] * self.size
        for call, reply in zip(self.calls, replies, strict=True):
            for position, written in zip(call.positions, reply, strict=True):
                results[position] = written == 1
        return results


def plan_write(
    user_id: int,
    exchange_id: int,
    candles: Iterable[Candle],
    *,
    versioned: bool,
    ttl_seconds: int | None,
    max_candles: int,
    publish_close: bool = False,
) -> WritePlan:
    """Check the whole batch, then group it by key into script calls. Raises before any I/O.

    A ``Candle`` is valid by construction: it is checked when it is made, decoded
    or changed, so only the type and the key parts are left to check here.
    """
    check_ids(user_id, exchange_id)
    header = (VERSIONED_MODE if versioned else UNCONDITIONAL_MODE, ttl_seconds or 0, max_candles, "")
    calls: dict[tuple[str, str], ScriptCall] = {}
    position = -1
    for position, candle in enumerate(candles):
        if not isinstance(candle, Candle):
            checked_candle(candle, f"candles[{position}]")  # raises, naming the position
        series = (candle.symbol, candle.timeframe)
        call = calls.get(series)
        if call is None:
            call = calls[series] = _new_call(user_id, exchange_id, candle, position, header, publish_close)
        call.candles.append(candle if versioned else as_plain_candle(candle))
        call.positions.append(position)
    return WritePlan(list(calls.values()), position + 1)


def _new_call(
    user_id: int,
    exchange_id: int,
    candle: Candle,
    position: int,
    header: tuple[bytes, int, int, str],
    publish_close: bool,
) -> ScriptCall:
    try:
        key = candle_key(user_id, exchange_id, candle.symbol, candle.timeframe)
        if publish_close:
            header = (*header[:3], candle_close_channel(user_id, exchange_id, candle.symbol, candle.timeframe))
    except ValidationError as error:
        raise error.at(f"candles[{position}]") from None
    return ScriptCall(key, header)


def script_command(call: ScriptCall, sha: str, source: str, *, by_sha: bool, retry: bool = False) -> tuple[Any, ...]:
    """The EVALSHA (or, after NOSCRIPT, EVAL) command for one script call."""
    args = call.args(retry=retry)
    return ("EVALSHA", sha, 1, call.key, *args) if by_sha else ("EVAL", source, 1, call.key, *args)


class Outcome(Enum):
    """What one script call's outcome asks of the write loop."""

    REPLY = "reply"  # done
    NOSCRIPT = "noscript"  # not run: send again by EVAL
    AMBIGUOUS = "ambiguous"  # may or may not have run: send again as a retry, after a pause
    RESEND = "resend"  # not run (redirected, cluster busy): send again after a pause
    FAIL = "fail"  # an error no retry can fix: raise it


class ReplyCollector:
    """Gathers the replies of a plan's script calls over one or more round trips.

    The first round sends every call by EVALSHA. A call that met NOSCRIPT (the
    server lost its script cache: SCRIPT FLUSH, restart, failover) did nothing,
    so it is sent again by EVAL, which carries the script itself and cannot meet
    NOSCRIPT however often the cache is flushed meanwhile. After a failure that
    leaves it unknown whether the pending calls were applied (a timeout, a
    dropped connection), every later round is sent as a retry.
    """

    def __init__(self, plan: WritePlan) -> None:
        self.plan = plan
        self.replies: list[Sequence[int] | None] = [None] * len(plan.calls)
        self.pending: list[int] = list(range(len(plan.calls)))
        self.by_sha = True
        self.retry = False

    def commands(self, sha: str, source: str) -> list[tuple[Any, ...]]:
        """The commands for the calls still pending."""
        return [
            script_command(self.plan.calls[i], sha, source, by_sha=self.by_sha, retry=self.retry) for i in self.pending
        ]

    def accept(self, outcomes: Sequence[object], classify: Callable[[object], Outcome]) -> BaseException | None:
        """Take the outcomes of the pending calls, in order.

        Returns the first failure that needs a pause before the next round (None
        when every call has its reply, or only NOSCRIPT is left to resend); raises
        an outcome that is an error no retry can fix.
        """
        pending, trouble = [], None
        for index, outcome in zip(self.pending, outcomes, strict=True):
            kind = classify(outcome)
            if kind is Outcome.REPLY:
                self.replies[index] = cast(Sequence[int], outcome)
                continue
            if kind is Outcome.FAIL:
                raise cast(BaseException, outcome)
            pending.append(index)
            if kind is Outcome.NOSCRIPT:
                self.by_sha = False
                continue
            if kind is Outcome.AMBIGUOUS:
                self.retry = True
            trouble = trouble or cast(BaseException, outcome)
        self.pending = pending
        return trouble

    def results(self) -> list[bool]:
        if self.pending:
            raise RuntimeError(f"{len(self.pending)} script calls got no reply")
        return self.plan.results(self.replies)  # type: ignore[arg-type]


def decode_candles(members: Iterable[bytes | str], model: type[CandleT], key: str) -> list[CandleT]:
    """Stored members decoded into ``model``; a member that is not a valid candle raises, naming the key.

    Asked for ``UnifiedCandle``, a member stored in the plain Candle schema (by
    ``add_candle`` here or ``addCandle`` in the Node service: no ``exchange``) comes
    back as a ``Candle``: it has no versioned fields to return.
    """
    decoder = _DECODERS.get(model) or msgspec.json.Decoder(model)
    plain = _DECODERS[Candle] if issubclass(model, UnifiedCandle) else None
    out = []
    for member in members:
        try:
            out.append(decoder.decode(member))
        except msgspec.ValidationError as error:
            if plain is not None and "missing required field `exchange`" in str(error):
                try:
                    out.append(plain.decode(member))
                    continue
                except msgspec.ValidationError:
                    pass
            raise ValidationError(f"member of {key}", member, f"is not a valid {model.__name__} ({error})") from None
        except msgspec.DecodeError as error:
            raise ValidationError(f"member of {key}", member, f"is not valid JSON ({error})") from None
    return out  # type: ignore[return-value]


@dataclass(frozen=True, slots=True)
class Query:
    """One Redis command and how to turn its reply into the facade's result."""

    command: tuple[str | int | bytes, ...]
    decode: Callable[[Any], Any]


def _as_int(reply: Any) -> int:
    return int(reply)


def _none(reply: Any) -> None:
    return None


def _check_model(model: object) -> type[Candle]:
    if not (isinstance(model, type) and issubclass(model, Candle)):
        raise ValidationError("model", model, "must be Candle, UnifiedCandle or a subclass")
    return model


def recent_candles_query(
    user_id: int, exchange_id: int, symbol: str, timeframe: str, count: int, model: type[Candle]
) -> Query:
    """The newest ``count`` candles, ascending by timestamp."""
    if type(count) is not int or count <= 0:
        raise ValidationError("count", count, "must be an int > 0")
    key = candle_key(user_id, exchange_id, symbol, timeframe)
    model = _check_model(model)
    return Query(("ZRANGE", key, -count, -1), lambda members: decode_candles(members, model, key))


def candles_in_range_query(
    user_id: int, exchange_id: int, symbol: str, timeframe: str, start: int, end: int, model: type[Candle]
) -> Query:
    """Candles with ``start <= timestamp <= end``, ascending."""
    for name, value in (("start", start), ("end", end)):
        if type(value) is not int:
            raise ValidationError(name, value, "must be an int (milliseconds)")
    key = candle_key(user_id, exchange_id, symbol, timeframe)
    model = _check_model(model)
    return Query(("ZRANGEBYSCORE", key, start, end), lambda members: decode_candles(members, model, key))


def latest_candle_query(user_id: int, exchange_id: int, symbol: str, timeframe: str, model: type[Candle]) -> Query:
    """The newest candle, or None when the series is empty."""
    key = candle_key(user_id, exchange_id, symbol, timeframe)
    model = _check_model(model)

    def decode(members: list[bytes]) -> Candle | None:
        found = decode_candles(members, model, key)
        return found[-1] if found else None

    return Query(("ZRANGE", key, -1, -1), decode)


def candle_count_query(user_id: int, exchange_id: int, symbol: str, timeframe: str) -> Query:
    return Query(("ZCARD", candle_key(user_id, exchange_id, symbol, timeframe)), _as_int)


def clear_candles_query(user_id: int, exchange_id: int, symbol: str, timeframe: str) -> Query:
    return Query(("DEL", candle_key(user_id, exchange_id, symbol, timeframe)), _none)


def publish_query(
    channel_of: Callable[[int, int, str, str], str], user_id: int, exchange_id: int, candle: Candle
) -> Query:
    """PUBLISH the candle's JSON on ``channel_of(...)`` of its series; the reply is the receiver count."""
    candle = checked_candle(candle)
    channel = channel_of(user_id, exchange_id, candle.symbol, candle.timeframe)
    return Query(("PUBLISH", channel, encode_candle(candle)), _as_int)

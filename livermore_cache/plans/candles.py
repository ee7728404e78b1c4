"""The candle planner: what the candle caches send and how they read the replies, free of I/O.

Validation, grouping a batch by key, building the script's ARGV, mapping script
replies back to input order and the read queries are plain functions; the
command type, settings checks and retry decisions are ``engine``'s, the member
encoding and decoding ``candles``'.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, Generic, TypeVar

from livermore_cache.candles import (
    Candle,
    UnifiedCandle,
    candle_valid,
    check_candle,
    decode_members,
    encode_candle,
    unified_valid,
)
from livermore_cache.engine import Command
from livermore_cache.errors import ValidationError
from livermore_cache.keys import candle_close_channel, candle_key, check_ids
from livermore_cache.limits import MAX_CANDLES, MAX_SAFE_INTEGER
from livermore_cache.timeframes import TIMEFRAME_VALUES, timeframe_ms

__all__ = [
    "Query",
    "ScriptCall",
    "WritePlan",
    "as_plain_candle",
    "candle_count_query",
    "candles_in_range_query",
    "check_max_candles",
    "checked_candle",
    "clear_candles_query",
    "latest_candle_query",
    "newest_timestamps_query",
    "plan_write",
    "publish_query",
    "recent_candles_query",
    "timestamps_in_range_query",
]

CandleT = TypeVar("CandleT", bound=Candle)
ResultT = TypeVar("ResultT")
_CANDLE_FIELDS: Final = Candle.__struct_fields__
UNCONDITIONAL_MODE: Final = b"0"
VERSIONED_MODE: Final = b"1"
RETRY_MODE: Final = b"2"
PROVING_RETRY_MODE: Final = b"3"
SPARSE_SPAN: Final = 1.5
"""A call whose candles' span holds more than this many open times per distinct timestamp reads
timestamp by timestamp (callgrind, docs/benchmark.md: W=16 -29% server instructions, W=1 unchanged)."""


def check_max_candles(max_candles: object) -> int:
    """A candle cache's ``max_candles``, checked once when the cache is made."""
    if type(max_candles) is not int or not 0 < max_candles <= MAX_CANDLES:
        raise ValidationError("max_candles", max_candles, f"must be an int from 1 to {MAX_CANDLES}")
    return max_candles


def checked_candle(candle: object, where: str = "candle") -> Candle:
    """``candle``, checked again before it is written; errors name ``where``.

    A Candle is checked when it is made, decoded or changed; checking again here
    with the library's own rule functions (``candles.check_candle``, a fraction of
    a microsecond on the fast path) stops a value put in by
    ``msgspec.structs.force_setattr``, or a subclass whose ``__post_init__`` skips
    the checks, from reaching the server. A written candle's timestamp must also be
    an open time of its timeframe (a multiple of its length since the epoch, UTC):
    reads stay liberal, but what this library writes is always on a boundary.
    """
    if not isinstance(candle, Candle):
        raise ValidationError(where, candle, "must be a Candle or UnifiedCandle")
    try:
        check_candle(candle)
    except ValidationError as error:
        raise error.at(where) from None
    step = timeframe_ms(candle.timeframe)
    if candle.timestamp % step:
        raise ValidationError(
            f"{where}.timestamp",
            candle.timestamp,
            f"must be an open time of its timeframe {candle.timeframe}: a multiple of {step} ms since the epoch (UTC)",
        )
    return candle


_STEPS: Final = {timeframe: timeframe_ms(timeframe) for timeframe in TIMEFRAME_VALUES}
_UNIFIED: Final = UnifiedCandle


def _passes(candle: object) -> bool:
    """``checked_candle``'s rules, the same functions, without building its error label: True when the
    candle passes them all. False sends the candle through ``checked_candle``, which raises naming the
    broken field (a timeframe given as a ``Timeframe`` member, not found here by its string, passes there).
    Per candle of a batch this saves the label's f-string and two calls (plan_write -17%, microbench)."""
    if isinstance(candle, _UNIFIED):
        if not unified_valid(candle):
            return False
    elif not isinstance(candle, Candle) or not candle_valid(candle):
        return False
    step = _STEPS.get(candle.timeframe)
    return step is not None and not candle.timestamp % step


def as_plain_candle(candle: Candle) -> Candle:
    """The candle without its versioned fields, as the Node service's ``addCandle`` stores it."""
    if type(candle) is Candle:
        return candle
    return Candle(**{name: getattr(candle, name) for name in _CANDLE_FIELDS})


@dataclass(slots=True)
class ScriptCall:
    """One call of ``versioned_write.lua``: one key and the candles of the batch that belong to it."""

    key: str
    mode: bytes
    ttl_seconds: int
    max_candles: int
    channel: str
    candles: list[Candle] = field(default_factory=list)
    positions: list[int] = field(default_factory=list)
    sent: list[int] = field(default_factory=list)
    """Indexes into ``candles`` of the candles the last ``args()`` sent, in order: what the reply answers."""

    def args(self, *, retry: bool = False, prove: bool = False) -> Command:
        """ARGV (see the script's header): mode, TTL, trim rank, channel, range, then three per candle.

        Outside retry mode, a candle that cannot end up stored is answered False
        without being sent: at one timestamp, in versioned mode, only the first
        candle with the highest sequence can win (if every candle there has a
        sequence); in unconditional mode, only the last. A retried versioned call
        runs in mode "2" and sends every candle: one the key already holds byte
        for byte reports 1, since an earlier attempt of this call may have stored it.
        A proving retry (``prove``, with ``min_replicas``) runs in mode "3": as "2", and a call that
        writes nothing yet finds a candle of its own stored makes one replicated write that changes nothing.
        """
        mode = self.mode
        if retry and self.mode == VERSIONED_MODE:
            mode = PROVING_RETRY_MODE if prove else RETRY_MODE
        candles = self.candles
        sent = self.sent = list(range(len(candles))) if retry or len(candles) == 1 else self._contenders()
        stamps = [candles[i].timestamp for i in sent]
        low, high, distinct = min(stamps), max(stamps), len(set(stamps))
        # One range read carries every member between low and high, with its score (formatted
        # by the server, parsed by Lua): when the span holds many open times this call does not
        # write (interleaved writers' batches), a read per timestamp costs less ("0", see the script).
        sparse = (high - low) // timeframe_ms(candles[0].timeframe) + 1 > SPARSE_SPAN * distinct
        args: list[Any] = [
            mode,
            b"%d" % self.ttl_seconds,
            b"-%d" % (self.max_candles + 1),
            self.channel,
            b"%d" % low,
            b"%d" % high,
            b"0" if sparse else b"%d" % (4 * distinct + 16),
        ]
        encode = encode_candle
        for i in sent:
            candle = candles[i]
            sequence = getattr(candle, "sequence_num", None)
            args += (b"%d" % candle.timestamp, b"" if sequence is None else b"%d" % sequence, encode(candle))
        return tuple(args)

    def _contenders(self) -> list[int]:
        """The indexes of the candles that may end up stored (see ``args``), in input order."""
        candles = self.candles
        chosen: dict[int, int] = {}  # timestamp -> index of the candle that may win there
        unsequenced: set[int] = set()  # timestamps where some candle has no sequence: send them all
        versioned = self.mode != UNCONDITIONAL_MODE
        for index, candle in enumerate(candles):
            stamp = candle.timestamp
            if not versioned:
                chosen[stamp] = index
                continue
            sequence = getattr(candle, "sequence_num", None)
            if sequence is None:
                unsequenced.add(stamp)
                continue
            best = chosen.get(stamp)
            if best is None or sequence > candles[best].sequence_num:  # type: ignore[attr-defined]
                chosen[stamp] = index
        if not unsequenced:
            return sorted(chosen.values())
        keep = set(chosen.values())
        return [i for i, c in enumerate(candles) if i in keep or c.timestamp in unsequenced]

    def command(
        self, sha: str, source: str | bytes, *, by_sha: bool, retry: bool = False, prove: bool = False
    ) -> Command:
        """The EVALSHA (or, after NOSCRIPT, EVAL) command for this call."""
        if by_sha:
            return ("EVALSHA", sha, 1, self.key, *self.args(retry=retry, prove=prove))
        return ("EVAL", source, 1, self.key, *self.args(retry=retry, prove=prove))


@dataclass(slots=True)
class WritePlan:
    """A validated batch: one script call per key, in first-seen key order."""

    calls: list[ScriptCall]
    size: int
    user_id: int = 0
    exchange_id: int = 0
    """The ids the keys were made with (roll-ups make their target keys from them)."""
    items = "candles"

    def results(self, replies: Sequence[Sequence[int]]) -> list[bool]:
        """Per candle, in input order: True if it was written and is still stored (unsent candles: False)."""
        results = [False] * self.size
        for call, reply in zip(self.calls, replies, strict=True):
            positions = call.positions
            for index, written in zip(call.sent, reply, strict=True):
                if written == 1:
                    results[positions[index]] = True
        return results

    def partial_results(self, replies: Sequence[Sequence[int] | None]) -> list[bool | None]:
        """``results`` where some calls have no reply: their candles are None."""
        results: list[bool | None] = [None] * self.size
        for call, reply in zip(self.calls, replies, strict=True):
            if reply is not None:
                positions = call.positions
                for position in positions:
                    results[position] = False
                for index, written in zip(call.sent, reply, strict=True):
                    if written == 1:
                        results[positions[index]] = True
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
    """Check the whole batch, then group it by key into script calls. Raises before any I/O."""
    check_ids(user_id, exchange_id)
    mode = VERSIONED_MODE if versioned else UNCONDITIONAL_MODE
    calls: dict[tuple[str, str], ScriptCall] = {}
    position = -1
    fast_check = _passes
    for position, candle in enumerate(candles):
        if not fast_check(candle):
            checked_candle(candle, f"candles[{position}]")  # raises, naming the field (or passes: a rare type)
        series = (candle.symbol, candle.timeframe)
        call = calls.get(series)
        if call is None:
            try:
                key = candle_key(user_id, exchange_id, candle.symbol, candle.timeframe)
                channel = candle_close_channel(user_id, exchange_id, *series) if publish_close else ""
            except ValidationError as error:
                raise error.at(f"candles[{position}]") from None
            call = calls[series] = ScriptCall(key, mode, ttl_seconds or 0, max_candles, channel)
        call.candles.append(candle if versioned else as_plain_candle(candle))
        call.positions.append(position)
    return WritePlan(list(calls.values()), position + 1, user_id, exchange_id)


@dataclass(frozen=True, slots=True)
class Query(Generic[ResultT]):
    """One Redis command and how to turn its reply into the facade's result."""

    command: Command
    decode: Callable[[Any], ResultT]


def _as_int(reply: Any) -> int:
    return int(reply)


def _none(reply: Any) -> None:
    return None


def _check_model(model: object) -> type[Candle]:
    if not (isinstance(model, type) and issubclass(model, Candle)):
        raise ValidationError("model", model, "must be Candle, UnifiedCandle or a subclass")
    return model


def recent_candles_query(
    user_id: int, exchange_id: int, symbol: str, timeframe: str, count: int, model: type[CandleT]
) -> Query[list[CandleT]]:
    """The newest ``count`` candles, ascending by timestamp."""
    if type(count) is not int or not 0 < count <= MAX_CANDLES:
        raise ValidationError("count", count, f"must be an int from 1 to {MAX_CANDLES}")
    key = candle_key(user_id, exchange_id, symbol, timeframe)
    _check_model(model)
    return Query(("ZRANGE", key, -count, -1), lambda members: decode_members(members, model, key))  # type: ignore[arg-type,return-value]


def candles_in_range_query(
    user_id: int, exchange_id: int, symbol: str, timeframe: str, start: int, end: int, model: type[CandleT]
) -> Query[list[CandleT]]:
    """Candles with ``start <= timestamp <= end``, ascending."""
    for name, value in (("start", start), ("end", end)):
        if type(value) is not int or not -MAX_SAFE_INTEGER <= value <= MAX_SAFE_INTEGER:
            raise ValidationError(name, value, f"must be an int (milliseconds) within +-{MAX_SAFE_INTEGER}")
    key = candle_key(user_id, exchange_id, symbol, timeframe)
    _check_model(model)
    return Query(("ZRANGEBYSCORE", key, start, end), lambda members: decode_members(members, model, key))  # type: ignore[arg-type,return-value]


def latest_candle_query(
    user_id: int, exchange_id: int, symbol: str, timeframe: str, model: type[CandleT]
) -> Query[CandleT | None]:
    """The newest candle, or None when the series is empty."""
    key = candle_key(user_id, exchange_id, symbol, timeframe)
    _check_model(model)

    def decode(members: list[bytes]) -> CandleT | None:
        found = decode_members(members, model, key)
        return found[-1] if found else None  # type: ignore[return-value]

    return Query(("ZRANGE", key, -1, -1), decode)


def candle_count_query(user_id: int, exchange_id: int, symbol: str, timeframe: str) -> Query[int]:
    return Query(("ZCARD", candle_key(user_id, exchange_id, symbol, timeframe)), _as_int)


def clear_candles_query(user_id: int, exchange_id: int, symbol: str, timeframe: str) -> Query[None]:
    return Query(("DEL", candle_key(user_id, exchange_id, symbol, timeframe)), _none)


def _timestamps(reply: Sequence[bytes | str]) -> list[int]:
    """The scores that are open times: a non-integral or out-of-range score (a foreign writer's) marks none."""
    scores = (float(score) for score in reply)
    return [int(score) for score in scores if score.is_integer() and 0 <= score <= MAX_SAFE_INTEGER]


def timestamps_in_range_query(
    user_id: int, exchange_id: int, symbol: str, timeframe: str, start: int, end: int
) -> tuple[str, tuple[Any, ...], Callable[[Any], list[int]]]:
    """``series_timestamps.lua`` keys-and-args for the distinct timestamps in [start, end], and the reply's decoder."""
    for name, value in (("start", start), ("end", end)):
        if type(value) is not int or not -MAX_SAFE_INTEGER <= value <= MAX_SAFE_INTEGER:
            raise ValidationError(name, value, f"must be an int (milliseconds) within +-{MAX_SAFE_INTEGER}")
    return candle_key(user_id, exchange_id, symbol, timeframe), ("range", start, end), _timestamps


def newest_timestamps_query(
    user_id: int, exchange_id: int, symbol: str, timeframe: str, count: int
) -> tuple[str, tuple[Any, ...], Callable[[Any], list[int]]]:
    """``series_timestamps.lua`` keys-and-args for the newest ``count`` distinct timestamps, and the decoder."""
    if type(count) is not int or not 0 < count <= MAX_CANDLES:
        raise ValidationError("count", count, f"must be an int from 1 to {MAX_CANDLES}")
    return candle_key(user_id, exchange_id, symbol, timeframe), ("newest", count), _timestamps


def publish_query(
    channel_of: Callable[[int, int, str, str], str], user_id: int, exchange_id: int, candle: Candle
) -> Query[int]:
    """PUBLISH the candle's JSON on ``channel_of(...)`` of its series; the reply is the receiver count."""
    candle = checked_candle(candle)
    channel = channel_of(user_id, exchange_id, candle.symbol, candle.timeframe)
    return Query(("PUBLISH", channel, encode_candle(candle)), _as_int)

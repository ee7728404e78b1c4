"""Aggregation and roll-up planning: pure functions, no I/O.

``aggregate_candles`` is the Node service's ``aggregateCandles``
(``packages/utils/src/candle/aggregate-candles.ts``) in Python, result for
result and bit for bit. ``validate_rollups`` checks a roll-up mapping such as
``{"1m": ["5m"], "5m": ["15m", "1h", "4h", "1d"]}`` and puts its edges in the
order to compute them; ``derived_sequence`` is the ``sequence_num`` a roll-up
candle carries, derived from its sources' sequences.
"""

from __future__ import annotations

import bisect
import itertools
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, NamedTuple

import msgspec

from .candles import Candle, UnifiedCandle, decode_candle, encode_candle
from .engine import Command
from .errors import ValidationError
from .keys import candle_close_channel, candle_key
from .limits import MAX_SAFE_INTEGER
from .plans.candles import UNCONDITIONAL_MODE, VERSIONED_MODE, ScriptCall, WritePlan
from .timeframes import check_timeframe, timeframe_ms

__all__ = [
    "MAX_ROLLUP_ROUNDS",
    "Period",
    "RangeCall",
    "ReadCall",
    "ReadPlan",
    "Rollup",
    "RollupRun",
    "aggregate_candles",
    "choose_sources",
    "derived_sequence",
    "rollup_candle",
    "validate_rollups",
]


def _timeframe(field: str, value: object) -> str:
    """A timeframe's plain string value (``Timeframe.M5`` -> ``"5m"``), or ``ValidationError`` naming ``field``."""
    check_timeframe(field, value)
    return str(value)


def _factor(source: str, target: str, field: str) -> int:
    """How many ``source`` candles make one ``target`` candle; Node's two refusals, in Node's order."""
    source_ms, target_ms = timeframe_ms(source), timeframe_ms(target)
    if target_ms <= source_ms:
        raise ValidationError(field, target, f"must be larger than source timeframe ({source})")
    if target_ms % source_ms:
        raise ValidationError(field, target, f"must be a whole multiple of source timeframe ({source})")
    return target_ms // source_ms


def aggregate_candles(candles: Iterable[Candle], source_timeframe: str, target_timeframe: str) -> list[Candle]:
    """The complete ``target_timeframe`` candles made of ``source_timeframe`` ``candles``, oldest first.

    Exactly Node's ``aggregateCandles`` (upstream HEAD af9e9b6), checked against
    120 cases captured from it (``tests/data/node-aggregate.json``):

    - The candles are grouped by target boundary, ``timestamp // target_ms * target_ms``
      (Node's ``Math.floor(timestamp / targetMs) * targetMs``: the same integer for
      every timestamp below 2**53, as the double quotient is never off by a whole 1/target_ms).
    - Only complete periods are kept: a group of exactly ``target / source`` candles.
      Candles are counted, not timestamps: two candles at one timestamp count twice,
      so a period with a duplicate and a hole is "complete", and one with a duplicate
      and no hole is not.
    - A kept group is sorted by timestamp with a *stable* sort (JavaScript's
      ``Array.prototype.sort``, as Python's ``sorted``): candles at one timestamp keep
      their input order. ``open`` is the first one's open, ``close`` the last one's
      close, ``high`` and ``low`` the extremes (the first of equal ones), ``volume``
      the floating-point sum ``0.0 + v1 + v2 + ...`` in that sorted order (the same
      double additions as Node, so the same bits; not ``math.fsum``), ``is_synthetic``
      True if any candle in the group has a truthy ``is_synthetic``, else False
      (always set, so always in the JSON).
    - ``symbol`` is the first *input* candle's (``candles[0]``, before any sorting),
      for every output candle, even when the input mixes symbols; ``timeframe`` is
      ``target_timeframe``.
    - The result is a plain ``Candle`` (no exchange fields, even from ``UnifiedCandle``
      input: Node builds an object literal of these nine fields), ascending by timestamp.
      Prices are the source values themselves (an int stays an int, as in Node's JSON).

    Refusals: a timeframe that is not a ``Timeframe`` raises ``ValidationError``
    (``source_timeframe``/``target_timeframe``; Node's types rule those out). A target not
    larger than the source, or not a whole multiple of it, raises ``ValidationError`` on
    ``target_timeframe``, where Node throws ``Target timeframe (X) must be larger than
    source timeframe (Y)`` or ``... is not evenly divisible by source timeframe (Y)``.
    As in Node, those two are checked only when there are candles: an empty input returns
    ``[]`` for any pair of timeframes. A volume sum that overflows to infinity (volumes
    near 1.8e308) raises ``ValidationError`` on ``volume``, where Node returns ``Infinity``.
    """
    source = _timeframe("source_timeframe", source_timeframe)
    target = _timeframe("target_timeframe", target_timeframe)
    if isinstance(candles, str | bytes) or not isinstance(candles, Iterable):
        raise ValidationError("candles", candles, "must be an iterable of Candle")
    items = list(candles)
    for i, candle in enumerate(items):
        if not isinstance(candle, Candle):
            raise ValidationError(f"candles[{i}]", candle, "must be a Candle")
    if not items:
        return []
    factor = _factor(source, target, "target_timeframe")
    step = timeframe_ms(target)

    groups: dict[int, list[Candle]] = {}
    for candle in items:
        groups.setdefault(candle.timestamp // step * step, []).append(candle)

    symbol = items[0].symbol
    aggregated: list[Candle] = []
    for boundary in sorted(groups):
        group = groups[boundary]
        if len(group) != factor:
            continue
        group.sort(key=_timestamp)  # stable, as Array.prototype.sort
        high, low, volume, synthetic = group[0].high, group[0].low, 0.0, False
        for candle in group:
            if candle.high > high:
                high = candle.high
            if candle.low < low:
                low = candle.low
            volume += candle.volume
            if candle.is_synthetic:
                synthetic = True
        aggregated.append(
            Candle(
                timestamp=boundary,
                open=group[0].open,
                high=high,
                low=low,
                close=group[-1].close,
                volume=volume,
                symbol=symbol,
                timeframe=target,
                is_synthetic=synthetic,
            )
        )
    return aggregated


def _timestamp(candle: Candle) -> int:
    return candle.timestamp


class Rollup(NamedTuple):
    """One roll-up edge: ``target`` candles built from ``factor`` ``source`` candles each."""

    source: str
    target: str
    factor: int


def validate_rollups(mapping: Mapping[str, Iterable[str]]) -> tuple[Rollup, ...]:
    """The edges of a roll-up mapping (source timeframe -> its targets), checked, in computing order.

    Refused with ``ValidationError`` (the field names the mapping entry, such as
    ``rollups['5m']``), in this order of checks:

    - a mapping that is not a ``Mapping`` of timeframe -> iterable of timeframes (a bare
      string as the targets is refused rather than read letter by letter);
    - an unknown timeframe, as a source or a target;
    - a target listed twice, or a target with two sources (each target has exactly one);
    - a cycle (``{"1m": ["5m"], "5m": ["1m"]}``, or ``{"5m": ["5m"]}``);
    - a target not larger than its source, or not a whole multiple of it.

    (A cycle always holds an edge whose target is not larger than its source; it is
    checked first so that the message shows the whole cycle.)

    The result: one ``Rollup`` per edge, ordered by source length, then target length,
    which is a topological order: an edge comes after the edge that builds its source
    (that edge's source is shorter still). Computing the edges in this order cascades
    a write through every level: ``1m -> 5m`` before ``5m -> 15m``. A source with no
    targets contributes nothing; an empty mapping gives ``()``.
    """
    if not isinstance(mapping, Mapping):
        raise ValidationError("rollups", mapping, "must be a mapping of source timeframe to target timeframes")
    source_of: dict[str, str] = {}
    for raw_source, raw_targets in mapping.items():
        source = _timeframe(f"rollups key {raw_source!r}", raw_source)
        field = f"rollups[{source!r}]"
        if isinstance(raw_targets, str | bytes) or not isinstance(raw_targets, Iterable):
            raise ValidationError(field, raw_targets, "must be an iterable of target timeframes (a list, not a string)")
        for i, raw_target in enumerate(raw_targets):
            target = _timeframe(f"{field}[{i}]", raw_target)
            previous = source_of.get(target)
            if previous == source:
                raise ValidationError(f"{field}[{i}]", target, f"is listed twice for source {source}")
            if previous is not None:
                raise ValidationError(
                    f"{field}[{i}]", target, f"already has source {previous} (each target has exactly one source)"
                )
            source_of[target] = source

    for start in source_of:
        path = [start]
        node = start
        while node in source_of:
            node = source_of[node]
            if node == start:
                cycle = " -> ".join(reversed([*path, start]))
                raise ValidationError(f"rollups[{source_of[start]!r}]", start, f"closes a cycle: {cycle}")
            if node in path:
                break  # a cycle that does not pass through start: reported from one of its own nodes
            path.append(node)

    edges = [
        Rollup(source, target, _factor(source, target, f"rollups[{source!r}]")) for target, source in source_of.items()
    ]
    edges.sort(key=lambda e: (timeframe_ms(e.source), timeframe_ms(e.target)))
    return tuple(edges)


_SEQUENCE_RULE: Final = f"must be None or an int from 0 to {MAX_SAFE_INTEGER}"


def derived_sequence(sequences: Iterable[int | None]) -> int | None:
    """The ``sequence_num`` of a roll-up candle: the sum of its sources' sequences, capped at 2**53 - 1.

    ``sequences`` are the source candles' ``sequence_num`` (one per stored source candle
    of the period; for a roll-up of roll-ups, the derived sequences of the level below,
    which makes the sum over the leaf sources). The rule:

    - **None** if any source has no sequence: the target is then unversioned (under the
      write rules, an unversioned candle replaces an unversioned one, and a versioned
      one replaces it), so it settles on the last computation once writers stop. A
      missing sequence is not read as 0: a revision of that source would leave the sum
      unchanged and be taken for an unchanged recomputation.
    - **Otherwise the sum.** A recomputation from the same sources gives the same number
      (written nothing: an equal sequence is skipped). The store only ever replaces a
      source by one with a higher sequence, so a later state of a period's sources has
      every sequence >= and at least one > the earlier state's, and the sum is then
      strictly higher: a computation from newer sources always beats one from older
      sources, in whatever order the two are written.
    - **The bound.** With N leaf sources per target candle (288 for 5m -> 1d, 1440 for
      1m -> 1d, directly or through a chain) each at most S, the sum is at most N * S,
      exact as long as N * S <= 2**53 - 1: S <= 6_254_999_482_459 for N = 1440, S <=
      31_274_997_412_295 for N = 288 (millisecond timestamps as sequences fit both,
      until the year 2168).
      No rule can do better: the sources' sequence vectors form chains of N * S + 1
      strictly newer states, each of which needs its own number.
    - **Beyond the bound** the sum is capped at 2**53 - 1 (``MAX_SAFE_INTEGER``), so the
      result is always a valid sequence and never decreases as sources get newer, but
      computations whose sums both reach the cap tie, and a tie is skipped: a period
      whose sources are that large keeps its first capped candle until it expires.

    Raises ``ValidationError`` for no sources or a sequence that is not None or an int
    from 0 to 2**53 - 1 (a bool is not an int here).
    """
    if isinstance(sequences, str | bytes) or not isinstance(sequences, Iterable):
        raise ValidationError("sequences", sequences, "must be an iterable of sequences")
    total = 0
    count = 0
    unversioned = False
    for i, sequence in enumerate(sequences):
        count += 1
        if sequence is None:
            unversioned = True
        elif type(sequence) is not int or not 0 <= sequence <= MAX_SAFE_INTEGER:
            raise ValidationError(f"sequences[{i}]", sequence, _SEQUENCE_RULE)
        else:
            total += sequence
    if count == 0:
        raise ValidationError("sequences", [], "must hold at least one source sequence")
    if unversioned:
        return None
    return min(total, MAX_SAFE_INTEGER)


# == Roll-up runs: what a candle cache sends after a write of source candles (no I/O) ==========
#
# A ``RollupRun`` is the plan of the roll-ups that follow one write of source candles. The
# facade drives it, round by round, through the same transport and write loop as every
# other write:
#
#     run = RollupRun(edges, source_plan, source_results, ttl_seconds=..., max_candles=...)
#     while (counts := run.source_reads()) is not None:     # ZCOUNT per due period
#         run.take_counts(counts, errors_of(counts))
#         if (reads := run.source_members()) is not None:   # ZREVRANGEBYSCORE per source key and range
#             run.take_sources(reads, errors_of(reads))
#         if (checks := run.target_reads()) is not None:    # only for unsequenced targets
#             run.take_targets(checks, errors_of(checks))
#         if (writes := run.target_writes()) is not None:   # versioned_write.lua, per target key
#             run.take_writes(writes, results, errors)
#
# The rules (docs/rollups.md explains why they converge):
#
# - Which periods: every target period of every source candle of the batch whose series
#   got a reply (written or not: a candle reported False may be one an earlier, failed
#   attempt stored, and sending a batch again must repair its roll-ups).
# - What is read: the period's stored members; per timestamp, the member with the highest
#   sequence (members without one rank below; ties: the greatest bytes), so duplicates left
#   by a non-atomic writer count once. A period holding fewer than ``factor`` members is
#   not read at all (it cannot be complete).
# - What is written: ``aggregate_candles`` of those candles (complete periods only), as a
#   ``UnifiedCandle`` with the first source's exchange and ``derived_sequence`` of the
#   sources' sequences, by the versioned script (newer wins). Without a derived sequence
#   (some source has none), it is written unconditionally, unless the target already holds
#   it byte for byte, and the period is read again afterwards: while the sources changed
#   meanwhile, it is recomputed (convergence once writers stop). Without any
#   ``UnifiedCandle`` source (all in the plain schema) the target is a plain ``Candle``.
# - Cascade: a target candle that was computed and whose write got a reply (written or
#   not) makes its own target periods due in the next round (5m -> 15m -> ...).


MAX_ROLLUP_ROUNDS: Final = 64
"""A run's read rounds at most; only a period whose unsequenced sources keep changing under
its verification reads can use them up (a sequenced run needs one per cascade level)."""


@dataclass(slots=True)
class ReadCall:
    """One call of ``rollup_sources.lua``: one key, and the periods to count (and read when they may be complete)."""

    key: str
    ranges: list[tuple[int, int, int]] = field(default_factory=list)
    """(lowest timestamp, highest timestamp, members that make the period worth reading), per period."""

    def args(self) -> Command:
        args: list[bytes] = []
        for low, high, need in self.ranges:
            args += (b"%d" % low, b"%d" % high, b"%d" % need)
        return tuple(args)

    def command(
        self, sha: str, source: str | bytes, *, by_sha: bool, retry: bool = False, prove: bool = False
    ) -> Command:
        """EVALSHA (or EVAL after NOSCRIPT); a read is the same in retry mode, and has nothing to prove."""
        if by_sha:
            return ("EVALSHA", sha, 1, self.key, *self.args())
        return ("EVAL", source, 1, self.key, *self.args())


@dataclass(slots=True)
class RangeCall:
    """One plain command on one source key: ``ZCOUNT`` of a period (``count``) or ``ZREVRANGEBYSCORE`` of a range.

    A roll-up's source reads are plain commands, not a script: members read through Lua are
    copied into Lua strings and back into the reply, which cost more than the ``ZCOUNT``s and
    the read themselves (``rollup_sources.lua`` cost as much server time per call as the source
    write it followed; docs/benchmark.md, "Performance round 3").
    The range is read with ``ZREVRANGEBYSCORE`` (the same work as ``ZRANGEBYSCORE``; the order
    does not matter, ``choose_sources`` ranks what it gets) so that INFO commandstats counts
    these reads apart from the ``ZRANGEBYSCORE``s the scripts make: ``zcount`` and
    ``zrevrangebyscore`` are the roll-ups' reads, and ``make bench`` adds them to the roll-up's
    server time.
    """

    key: str
    low: int
    high: int
    count: bool

    def command(
        self, sha: str, source: str | bytes, *, by_sha: bool, retry: bool = False, prove: bool = False
    ) -> Command:
        """The same command in every mode (a read; ``sha``/``source`` are not used)."""
        if self.count:
            return ("ZCOUNT", self.key, b"%d" % self.low, b"%d" % self.high)
        return ("ZREVRANGEBYSCORE", self.key, b"%d" % self.high, b"%d" % self.low)


@dataclass(slots=True)
class ReadPlan:
    """A round of ``rollup_sources.lua`` calls, one per key, for the write loop (``engine.Plan``).

    The write loop hands the replies to ``results`` (or ``partial_results``): they are kept
    in ``replies``, one per call, None for a call that failed.
    """

    calls: Sequence[ReadCall | RangeCall]
    replies: list[Any] = field(default_factory=list)
    items = "roll-up reads"

    @property
    def size(self) -> int:
        """One result per call (a read has no items of its own)."""
        return len(self.calls)

    def results(self, replies: Sequence[Any]) -> list[bool]:
        self.replies = list(replies)
        return [True] * len(self.replies)

    def partial_results(self, replies: Sequence[Any]) -> list[bool | None]:
        self.replies = list(replies)
        return [None if reply is None else True for reply in self.replies]

    def reply(self, index: int) -> Any:
        """Call ``index``'s raw reply; None if the call failed."""
        return self.replies[index] if index < len(self.replies) else None

    def members(self, index: int) -> tuple[list[int], list[bytes]] | None:
        """Call ``index``'s reply: the count per range, and the members read; None if the call failed."""
        reply = self.replies[index] if index < len(self.replies) else None
        if reply is None:
            return None
        counts, members = reply
        return [int(c) for c in counts], [m.encode() if isinstance(m, str) else bytes(m) for m in members]


@dataclass(frozen=True, slots=True)
class Period:
    """One target period of one series: ``edge.target`` candle ``boundary`` of ``symbol``, from ``edge.source`` candles."""

    symbol: str
    edge: Rollup
    boundary: int

    @property
    def last(self) -> int:
        return self.boundary + timeframe_ms(self.edge.target) - 1


def _rank(item: tuple[bytes, Candle]) -> tuple[int, bytes]:
    sequence = getattr(item[1], "sequence_num", None)
    return (-1 if sequence is None else sequence, item[0])


def choose_sources(members: Iterable[tuple[bytes, Candle]]) -> list[tuple[bytes, Candle]]:
    """One stored member per timestamp, ascending: the highest sequence (none ranks lowest), then the greatest bytes."""
    chosen: dict[int, tuple[bytes, Candle]] = {}
    for item in members:
        stamp = item[1].timestamp
        held = chosen.get(stamp)
        if held is None or _rank(item) > _rank(held):
            chosen[stamp] = item
    return [chosen[stamp] for stamp in sorted(chosen)]


def rollup_candle(symbol: str, edge: Rollup, sources: Sequence[Candle]) -> Candle | None:
    """The ``edge.target`` candle of ``sources`` (one per timestamp, one period), or None for an incomplete period.

    ``aggregate_candles`` of the sources, with the series' ``symbol``; a ``UnifiedCandle``
    with the first versioned source's ``exchange`` and ``derived_sequence`` of the sources'
    sequences (each taken at most 2**53 - 1: a wider one read from a Node member counts as
    the cap), or a plain ``Candle`` when no source is a ``UnifiedCandle``.
    """
    aggregated = aggregate_candles(sources, edge.source, edge.target)
    if len(aggregated) != 1:
        return None
    fields = {name: getattr(aggregated[0], name) for name in Candle.__struct_fields__}
    fields["symbol"] = symbol
    exchange = next((c.exchange for c in sources if isinstance(c, UnifiedCandle)), None)
    if exchange is None:
        return Candle(**fields)
    sequences = [getattr(c, "sequence_num", None) for c in sources]
    sequence = derived_sequence(None if s is None else min(s, MAX_SAFE_INTEGER) for s in sequences)
    return UnifiedCandle(**fields, exchange=exchange, sequence_num=sequence)


class RollupRun:
    """The roll-ups after one write of source candles: reads and writes to send, round by round (see above)."""

    def __init__(
        self,
        edges: Sequence[Rollup],
        source_plan: WritePlan,
        source_results: Sequence[bool | None],
        *,
        ttl_seconds: int | None,
        max_candles: int,
    ) -> None:
        self.user_id, self.exchange_id = source_plan.user_id, source_plan.exchange_id
        self.ttl_seconds, self.max_candles = ttl_seconds or 0, max_candles
        self.publish_close = any(call.channel for call in source_plan.calls)
        self.errors: dict[str, BaseException] = {}
        """Per target key (or source key of a failed read), the error that stopped a roll-up."""
        self.written: list[Candle] = []
        """Every roll-up candle this run wrote (reported True), in the order written."""
        self._edges: dict[str, list[Rollup]] = {}
        for edge in edges:
            self._edges.setdefault(edge.source, []).append(edge)
        self._due: dict[Period, None] = {}
        self._reading: list[list[Period]] = []
        self._waiting: dict[Period, list[Period]] = {}  # a due period -> the due periods around it, held off
        self._unknown: dict[Period, int] = {}  # a held-off period -> how many periods inside it are not yet complete
        self._owed: list[Period] = []  # held-off periods whose inner periods are all complete: counted next
        self._complete: dict[str, list[Period]] = {}  # source key -> its due periods that may be complete
        self._computed: dict[Period, Candle] = {}
        self._checking: list[list[Period]] = []
        self._states: dict[Period, tuple[bytes, ...]] = {}  # unsequenced periods: the members their candle came from
        self._verify: set[Period] = set()
        self._rounds = 0
        for call in source_plan.calls:
            for index, candle in enumerate(call.candles):
                if source_results[call.positions[index]] is not None:
                    self._make_due(candle.symbol, candle.timeframe, candle.timestamp)

    def _make_due(self, symbol: str, timeframe: str, timestamp: int) -> None:
        for edge in self._edges.get(timeframe, ()):
            step = timeframe_ms(edge.target)
            self._due[Period(symbol, edge, timestamp // step * step)] = None

    def _key(self, symbol: str, timeframe: str) -> str:
        return candle_key(self.user_id, self.exchange_id, symbol, timeframe)

    # -- round 1: the sources of every due period ------------------------------------------
    #
    # First a ZCOUNT per due period (O(log N) each: most periods are still incomplete when a
    # source candle lands), then one ZREVRANGEBYSCORE per source key and merged range of the
    # periods that may be complete (nested periods, a 1h inside its 4h, are read once). The
    # reads come after the count, not atomically with it: they see the sources as they are
    # then, which is as new as the write that made the period due or newer, and the
    # computation keeps only a period complete in what was read.
    #
    # A period that holds smaller due periods of the same series (a 1h holding a due 15m, both
    # of 5m candles) is counted only once each of those is known to be complete: if the 15m
    # period misses a source candle, so does every period around it. Its ZCOUNT then comes in
    # a later count round, still before any read (``source_reads`` returns it first, and
    # ``source_members`` waits for it): one more count round per nesting level at most. In a
    # feed that moves forward, most of the smallest periods are incomplete, and the periods
    # around them are never counted.

    def source_reads(self) -> ReadPlan | None:
        """The next round's source counts (a ZCOUNT per due period), or None when the run is over."""
        if self._owed:  # the same round, one nesting level up: periods whose inner periods are all complete
            periods, self._owed = self._owed, []
        else:
            if not self._due or self._rounds >= MAX_ROLLUP_ROUNDS:
                return None
            self._rounds += 1
            periods = self._hold_off(list(self._due))
            self._due = {}
            self._computed = {}
            self._complete = {}
        self._reading = [[period] for period in periods]
        return ReadPlan(
            [RangeCall(self._key(p.symbol, p.edge.source), p.boundary, p.last, count=True) for (p,) in self._reading]
        )

    def _hold_off(self, due: list[Period]) -> list[Period]:
        """The due periods to count first: those with no due period inside them.

        Each other period waits (``_waiting``, ``_unknown``) on every due period inside it
        that reads the same source series (every source candle of the inner period is one of
        its own), smallest periods first.
        """
        first: list[Period] = []
        series: dict[tuple[str, str], tuple[list[int], list[Period]]] = {}  # per source series, by boundary
        for period in sorted(due, key=lambda p: timeframe_ms(p.edge.target)):
            boundaries, seen = series.setdefault((period.symbol, period.edge.source), ([], []))
            at = bisect.bisect_left(boundaries, period.boundary)
            inner: list[Period] = []
            for candidate in itertools.islice(seen, at, None):
                if candidate.boundary > period.last:
                    break
                if candidate.last <= period.last:
                    inner.append(candidate)
            if inner:
                self._unknown[period] = len(inner)
                for held in inner:
                    self._waiting.setdefault(held, []).append(period)
            else:
                first.append(period)
            boundaries.insert(at, period.boundary)
            seen.insert(at, period)
        return first

    def take_counts(self, plan: ReadPlan, errors: Mapping[str, BaseException]) -> None:
        """The counts: incomplete periods are done, with every period around them; the others wait for
        ``source_members`` (after the periods around them, once all their inner periods are complete)."""
        for index, (call, (period,)) in enumerate(zip(plan.calls, self._reading, strict=True)):
            count = plan.reply(index)
            if count is None:
                self._settle(period, errors[call.key])
                continue
            if int(count) < period.edge.factor:
                self._settle(period, None)
                continue  # incomplete: nothing to store
            self._complete.setdefault(call.key, []).append(period)
            for outer in self._waiting.pop(period, ()):
                left = self._unknown.get(outer)
                if left == 1:
                    del self._unknown[outer]
                    self._owed.append(outer)
                elif left is not None:
                    self._unknown[outer] = left - 1
        self._reading = []

    def _settle(self, period: Period, error: BaseException | None) -> None:
        """``period`` is not computed in this round (incomplete, or ``error`` counting its sources), nor is any
        period waiting around it: the same source candle is missing from them, or the same key failed."""
        stack = [period]
        while stack:
            done = stack.pop()
            if error is None:
                self._verify.discard(done)
            else:
                self.errors[self._key(done.symbol, done.edge.target)] = error
            stack += (outer for outer in self._waiting.pop(done, ()) if self._unknown.pop(outer, None) is not None)

    def source_members(self) -> ReadPlan | None:
        """Reads of the periods that may be complete (merged ranges, per source key), or None.

        None also while counts are owed (``source_reads`` sends them first): every read of a
        round comes after all of its counts.
        """
        if self._owed:
            return None
        calls: list[RangeCall] = []
        for key, periods in self._complete.items():
            merged: list[list[int]] = []
            for low, high in sorted((p.boundary, p.last) for p in periods):
                if merged and low <= merged[-1][1]:
                    merged[-1][1] = max(merged[-1][1], high)
                else:
                    merged.append([low, high])
            calls += (RangeCall(key, low, high, count=False) for low, high in merged)
        if not calls:
            return None
        return ReadPlan(calls)

    def take_sources(self, plan: ReadPlan, errors: Mapping[str, BaseException]) -> None:
        """The members read: compute each complete period's target candle."""
        raw: dict[str, list[bytes]] = {}
        failed: dict[str, BaseException] = {}
        for index, call in enumerate(plan.calls):
            reply = plan.reply(index)
            if reply is None:
                failed[call.key] = errors[call.key]
                continue
            raw.setdefault(call.key, []).extend(m.encode() if isinstance(m, str) else bytes(m) for m in reply)
        for key, periods in self._complete.items():
            if key in failed:
                for period in periods:
                    self.errors[self._key(period.symbol, period.edge.target)] = failed[key]
                continue
            try:
                members = [(member, decode_candle(member, UnifiedCandle)) for member in raw.get(key, [])]
            except (msgspec.ValidationError, msgspec.DecodeError) as error:
                refused = ValidationError(f"member of {key}", key, f"is not a valid candle ({error})")
                for period in periods:
                    self.errors[self._key(period.symbol, period.edge.target)] = refused
                continue
            for period in periods:
                inside = [m for m in members if period.boundary <= m[1].timestamp <= period.last]
                chosen = choose_sources(inside)
                if period in self._verify:
                    self._verify.discard(period)
                    state = tuple(sorted(member for member, _ in inside))
                    if self._states.get(period) == state:
                        continue  # verified: the sources are those the written candle came from
                try:
                    candle = rollup_candle(period.symbol, period.edge, [c for _, c in chosen])
                except ValidationError as error:  # a volume sum beyond a double's range
                    self.errors[self._key(period.symbol, period.edge.target)] = error
                    continue
                if candle is None:
                    continue
                if getattr(candle, "sequence_num", None) is None:
                    self._states[period] = tuple(sorted(member for member, _ in inside))
                self._computed[period] = candle
        self._complete = {}

    # -- round 2 (unsequenced only): what the targets hold -----------------------------------

    def target_reads(self) -> ReadPlan | None:
        """Reads of the target candles that have no sequence (to skip writing what is already held), or None."""
        by_key: dict[str, tuple[ReadCall, list[Period]]] = {}
        for period, candle in self._computed.items():
            if getattr(candle, "sequence_num", None) is not None:
                continue
            key = self._key(period.symbol, period.edge.target)
            call, periods = by_key.setdefault(key, (ReadCall(key), []))
            call.ranges.append((period.boundary, period.boundary, 1))
            periods.append(period)
        if not by_key:
            return None
        self._checking = [periods for _, periods in by_key.values()]
        return ReadPlan([call for call, _ in by_key.values()])

    def take_targets(self, plan: ReadPlan, errors: Mapping[str, BaseException]) -> None:
        """Drop each unsequenced candle its target holds byte for byte (alone at its timestamp)."""
        for index, (call, periods) in enumerate(zip(plan.calls, self._checking, strict=True)):
            reply = plan.members(index)
            if reply is None:
                for period in periods:
                    self.errors[call.key] = errors[call.key]
                    del self._computed[period]
                continue
            counts, held = reply  # per period, the members at its boundary; and those members
            for period, count in zip(periods, counts, strict=True):
                if count == 1 and encode_candle(self._computed[period]) in held:  # held, alone at its timestamp
                    del self._computed[period]
                    self._states.pop(period, None)
                    self._cascade(period)  # computed, and held: its own targets are due as after a write
        self._checking = []

    # -- round 3: the target writes ----------------------------------------------------------

    def target_writes(self) -> WritePlan | None:
        """The versioned writes of the computed candles (one call per target key and mode), or None."""
        if not self._computed:
            return None
        calls: dict[tuple[str, bytes], ScriptCall] = {}
        for position, (period, candle) in enumerate(self._computed.items()):
            sequenced = getattr(candle, "sequence_num", None) is not None
            mode = VERSIONED_MODE if sequenced else UNCONDITIONAL_MODE
            key = self._key(period.symbol, period.edge.target)
            call = calls.get((key, mode))
            if call is None:
                channel = (
                    candle_close_channel(self.user_id, self.exchange_id, period.symbol, period.edge.target)
                    if self.publish_close
                    else ""
                )
                call = calls[key, mode] = ScriptCall(key, mode, self.ttl_seconds, self.max_candles, channel)
            call.candles.append(candle)
            call.positions.append(position)
        return WritePlan(list(calls.values()), len(self._computed), self.user_id, self.exchange_id)

    def take_writes(self, plan: WritePlan, results: Sequence[bool | None], errors: Mapping[str, BaseException]) -> None:
        """The writes' outcomes: cascade from each candle whose write got a reply; unsequenced ones are verified."""
        for (period, candle), result in zip(self._computed.items(), results, strict=True):
            if result is None:
                key = self._key(period.symbol, period.edge.target)
                self.errors[key] = errors[key]
                continue
            if result:
                self.written.append(candle)
            self._cascade(period)
            if period in self._states and result:
                self._verify.add(period)  # read its sources again: they may have changed since
                self._due[period] = None
        self._computed = {}

    def _cascade(self, period: Period) -> None:
        self._make_due(period.symbol, period.edge.target, period.boundary)

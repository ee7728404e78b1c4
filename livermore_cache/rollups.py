"""Aggregation and roll-up planning: pure functions, no I/O.

``aggregate_candles`` is the Node service's ``aggregateCandles``
(``packages/utils/src/candle/aggregate-candles.ts``) in Python, result for
result and bit for bit. ``validate_rollups`` checks a roll-up mapping such as
``{"1m": ["5m"], "5m": ["15m", "1h", "4h", "1d"]}`` and puts its edges in the
order to compute them; ``derived_sequence`` is the ``sequence_num`` a roll-up
candle carries, derived from its sources' sequences.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Final, NamedTuple

from .candles import Candle
from .errors import ValidationError
from .limits import MAX_SAFE_INTEGER
from .timeframes import check_timeframe, timeframe_ms

__all__ = ["Rollup", "aggregate_candles", "derived_sequence", "validate_rollups"]


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

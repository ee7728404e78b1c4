"""Any sequence of writes leaves the cache a plain-Python model of the rules predicts."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import msgspec
import redis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from livermore_cache import Candle, UnifiedCandle
from tests.support.builders import unified
from tests.support.constants import EXCHANGE, KEY, MINUTE, T0, USER
from tests.support.stored import zscored


@dataclass
class Model:
    """The rules table, one candle at a time; then EXPIRE/trim once per call if anything was written."""

    max_candles: int
    held: dict[int, Candle] = field(default_factory=dict)

    def write(self, candles: list[UnifiedCandle], versioned: bool) -> list[bool]:
        winner: dict[int, int] = {}
        for index, candle in enumerate(candles):
            current = self.held.get(candle.timestamp)
            current_seq = getattr(current, "sequence_num", None)
            if not versioned or current is None or current_seq is None:
                write = True
            else:
                write = candle.sequence_num is not None and candle.sequence_num > current_seq
            if write:
                stored = candle if versioned else Candle(**{f: getattr(candle, f) for f in Candle.__struct_fields__})
                self.held[candle.timestamp] = stored
                winner[candle.timestamp] = index
        if winner:
            for stamp in sorted(self.held)[: -self.max_candles]:
                del self.held[stamp]
        return [winner.get(c.timestamp) == i and c.timestamp in self.held for i, c in enumerate(candles)]


update = st.builds(
    lambda slot, seq, close: unified(T0 + slot * MINUTE, seq, close=float(close)),
    st.integers(0, 7),
    st.none() | st.integers(0, 6),
    st.integers(1, 1000),
)
calls = st.lists(st.tuples(st.lists(update, max_size=12), st.booleans()), min_size=1, max_size=8)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(calls=calls, max_candles=st.integers(1, 6))
def test_writes_match_model(
    make_cache: Any, r: redis.Redis, calls: list[tuple[list[UnifiedCandle], bool]], max_candles: int
) -> None:
    r.flushdb()
    cache = make_cache(max_candles=max_candles)
    model = Model(max_candles)
    for candles, versioned in calls:
        expected = model.write(candles, versioned)
        if versioned:
            assert cache.add_candles_if_newer(USER, EXCHANGE, candles) == expected
        else:
            cache.add_candles(USER, EXCHANGE, candles)
    stored = zscored(r, KEY)
    assert [int(score) for _, score in stored] == sorted(model.held)
    for member, score in stored:
        expected_candle = model.held[int(score)]
        assert msgspec.json.decode(member) == msgspec.to_builtins(expected_candle)

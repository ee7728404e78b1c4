"""Microbenchmarks: validate + encode, and decode + validate, msgspec against the standard library's json.

In the normal suite each runs once as a plain test (--benchmark-disable): the outputs of both paths are
compared, no timing is asserted. ``make microbench`` times them side by side.
"""

from __future__ import annotations

import json
import math
from typing import Any

import msgspec
import pytest
from pytest_benchmark.fixture import BenchmarkFixture

from livermore_cache import UnifiedCandle
from livermore_cache.timeframes import TIMEFRAME_VALUES
from tests.support.constants import MINUTE, T0

RAW: list[dict[str, Any]] = [
    {
        "timestamp": T0 + i * MINUTE, "open": 42000.0 + i, "high": 42010.5 + i, "low": 41990.25 + i,
        "close": 42005.125 + i, "volume": 12.5 * i, "symbol": "BTC-USD", "timeframe": "1m",
        "exchange": "coinbase", "exchange_timestamp": "2024-01-01T00:00:59.123Z", "sequence_num": i,
    }
    for i in range(200)
]  # fmt: skip
NODE_NAMES = {"exchange_timestamp": "exchangeTimestamp", "sequence_num": "sequenceNum", "is_synthetic": "isSynthetic"}
ENCODER = msgspec.json.Encoder()
DECODER = msgspec.json.Decoder(UnifiedCandle)


def stdlib_validate(fields: dict[str, Any]) -> dict[str, Any]:
    """The same rules, hand-written for plain dicts, as a stdlib-only service would."""
    ts = fields["timestamp"]
    if type(ts) is not int or not 0 < ts <= 2**53 - 1:
        raise ValueError(f"timestamp {ts!r}")
    for name in ("open", "high", "low", "close"):
        value = fields[name]
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value < math.inf:
            raise ValueError(f"{name} {value!r}")
    volume = fields["volume"]
    if isinstance(volume, bool) or not isinstance(volume, (int, float)) or not 0 <= volume < math.inf:
        raise ValueError(f"volume {volume!r}")
    if not isinstance(fields["symbol"], str) or not fields["symbol"] or fields["timeframe"] not in TIMEFRAME_VALUES:
        raise ValueError("symbol/timeframe")
    if not isinstance(fields["exchange"], str) or not fields["exchange"]:
        raise ValueError("exchange")
    seq = fields.get("sequence_num")
    if seq is not None and (type(seq) is not int or not 0 <= seq <= 2**53 - 1):
        raise ValueError(f"sequence_num {seq!r}")
    return fields


def stdlib_encode(fields: dict[str, Any]) -> bytes:
    node = {NODE_NAMES.get(k, k): v for k, v in stdlib_validate(fields).items() if v is not None}
    return json.dumps(node, separators=(",", ":")).encode()


def msgspec_encode(fields: dict[str, Any]) -> bytes:
    return ENCODER.encode(UnifiedCandle(**fields))


MEMBERS = [msgspec_encode(f) for f in RAW]


def stdlib_decode(member: bytes) -> dict[str, Any]:
    node = json.loads(member)
    fields = {
        k: node[n]
        for k, n in (("exchange_timestamp", "exchangeTimestamp"), ("sequence_num", "sequenceNum"))
        if n in node
    }
    fields.update({k: v for k, v in node.items() if k not in NODE_NAMES.values()})
    return stdlib_validate(fields)


@pytest.mark.parametrize("implementation", ["msgspec", "stdlib-json"])
def test_validate_and_encode(benchmark: BenchmarkFixture, implementation: str) -> None:
    encode = msgspec_encode if implementation == "msgspec" else stdlib_encode
    encoded = benchmark(lambda: [encode(f) for f in RAW])
    assert [json.loads(m) for m in encoded] == [json.loads(m) for m in MEMBERS]


@pytest.mark.parametrize("implementation", ["msgspec", "stdlib-json"])
def test_decode_and_validate(benchmark: BenchmarkFixture, implementation: str) -> None:
    if implementation == "msgspec":
        decoded = benchmark(lambda: [msgspec.structs.asdict(DECODER.decode(m)) for m in MEMBERS])
    else:
        decoded = benchmark(lambda: [stdlib_decode(m) for m in MEMBERS])
    assert [{k: v for k, v in d.items() if v is not None} for d in decoded] == RAW

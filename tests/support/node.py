"""The Node service's captures in ``tests/data`` (each read once), and how to compare our values with them."""

from __future__ import annotations

import functools
import json
import math
from typing import Any

from livermore_cache import MAX_SEQUENCE_NUM
from tests.support.constants import DATA


@functools.cache
def node_members() -> dict[str, Any]:
    """``node-members.json``: sorted-set members the Node service wrote, with the calls that wrote them."""
    return json.loads((DATA / "node-members.json").read_text(encoding="utf-8"))  # type: ignore[no-any-return]


@functools.cache
def node_snapshots() -> dict[str, Any]:
    """``node-snapshots.json``: the Node value strategies' and zod schemas' verdicts, stored bytes and replies."""
    return json.loads((DATA / "node-snapshots.json").read_text(encoding="utf-8"))  # type: ignore[no-any-return]


@functools.cache
def node_aggregate() -> list[dict[str, Any]]:
    """``node-aggregate.json``: Node's aggregateCandles on captured inputs."""
    return json.loads((DATA / "node-aggregate.json").read_text(encoding="utf-8"))  # type: ignore[no-any-return]


UNDEFINED = object()
"""JavaScript's ``undefined``, as a snapshot's ``{"$js": "undefined"}`` stands for it."""


def js(value: Any) -> Any:
    """A Node snapshot value as the JavaScript value it stands for (``{"$js": ...}`` resolved, undefined fields dropped)."""
    if isinstance(value, dict):
        if set(value) == {"$js"}:
            return {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf, "-0": -0.0}.get(
                value["$js"], UNDEFINED
            )
        return {k: js(v) for k, v in value.items() if js(v) is not UNDEFINED}
    if isinstance(value, list):
        return [js(v) for v in value]
    if type(value) is int and abs(value) > MAX_SEQUENCE_NUM:
        return float(value)  # a JavaScript number is a double
    return value


ATTRIBUTE = {"changePercent24h": "change_percent24h", "numOrders": "num_orders"}
"""JSON name -> attribute name where they differ."""


def field_of(path: list[str | int]) -> str:
    """A zod issue path as this library names the field: ``["bids", 0, "numOrders"]`` -> ``bids[0].num_orders``."""
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else ("." if out else "") + ATTRIBUTE.get(part, part)
    return out


def doubles(text: bytes | str) -> Any:
    """JSON with every number read as a double, as JavaScript reads it (objects as dicts: order does not count)."""
    return json.loads(text, parse_int=float)


def ordered(text: bytes | str) -> Any:
    """JSON with every object as a list of (name, value) pairs: order is compared too."""
    return json.loads(text, object_pairs_hook=list)

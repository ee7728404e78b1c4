"""The library's RESP packer against redis-py's: the same bytes for every kind of argument the write path sends."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from redis.connection import Connection

from livermore_cache import resp

arguments = st.lists(st.binary(max_size=40) | st.text(max_size=20) | st.integers(-(2**63), 2**63 - 1), max_size=12)


@given(commands=st.lists(arguments.map(lambda args: ("EVALSHA", *args)), min_size=1, max_size=4))
def test_packed_as_redis_py_packs(commands: list[tuple[object, ...]]) -> None:
    connection = Connection()  # type: ignore[no-untyped-call]
    expected = b"".join(b"".join(connection.pack_commands([command])) for command in commands)  # type: ignore[no-untyped-call]
    assert resp.pack_commands(commands) == expected
    assert b"".join(resp.pack_python(command) for command in commands) == expected


@pytest.mark.parametrize("value", [1.5, None, True, object()])
def test_other_arguments_are_refused_by_the_python_packer(value: object) -> None:
    with pytest.raises(TypeError, match="bytes, str or int"):
        resp.pack_python(("SET", "k", value))

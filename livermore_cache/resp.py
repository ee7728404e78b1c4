"""RESP encoding of the write path's commands, without redis-py's per-argument Python loop.

The script calls carry up to three arguments per candle; redis-py's packer
handles each one in Python. hiredis (a dependency, through ``redis[hiredis]``)
packs a whole command in C; without it, one ``bytes.join`` does the same. Text is
UTF-8, as the Node service writes keys and members.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any

_hiredis_pack: Callable[[tuple[Any, ...]], bytes] | None
try:
    from hiredis import pack_command as _hiredis_pack  # type: ignore[import-not-found, no-redef, unused-ignore]
except ImportError:  # hiredis is optional for redis-py; the pure-Python packer below serves then
    _hiredis_pack = None

__all__ = ["pack_commands", "pack_python"]


def _argument(value: Any) -> bytes:
    if isinstance(value, bytes):
        return value
    if isinstance(value, str):
        return value.encode()
    if isinstance(value, int) and not isinstance(value, bool):
        return b"%d" % value
    raise TypeError(f"a command argument must be bytes, str or int, got {type(value).__name__}")


def pack_python(command: Sequence[Any]) -> bytes:
    """One command in RESP: an array of bulk strings."""
    parts = [b"*%d\r\n" % len(command)]
    for value in command:
        data = _argument(value)
        parts.append(b"$%d\r\n%s\r\n" % (len(data), data))
    return b"".join(parts)


def pack_commands(commands: Iterable[Sequence[Any]]) -> bytes:
    """Every command in RESP, in one buffer (sent with one ``sendall``)."""
    if _hiredis_pack is None:
        return b"".join(pack_python(command) for command in commands)
    return b"".join(_hiredis_pack(tuple(command)) for command in commands)

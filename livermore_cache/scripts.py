"""The Lua scripts: the files of the top-level ``lua/`` directory, and a per-client registry.

Each script lives in its own ``.lua`` file whose header names its KEYS, ARGV and
reply. A ``Scripts`` object is made per cache object, so a registered script is
never shared through a global.

The files are read once, when this module is imported: a broken install fails at
import, not at a cache's first construction, and processes forked after the import
(prefork servers, multiprocessing's fork) share the text instead of each reading
the files again (about 1 ms per process, most of it importlib's resource readers).
"""

from __future__ import annotations

from importlib.resources import files
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Any, Final

__all__ = ["SCRIPT_NAMES", "Scripts", "script_source"]


def _lua_dir() -> Traversable:
    """Where the scripts are: ``livermore_cache/lua`` in an installed wheel (the build copies the
    top-level ``lua/`` there), else the checkout's own ``lua/`` beside the package (an editable install)."""
    packaged = files(__package__).joinpath("lua")
    if packaged.is_dir():
        return packaged
    return Path(__file__).resolve().parent.parent / "lua"


SCRIPT_NAMES: Final = ("versioned_write", "newer_wins", "series_timestamps", "heal", "rollup_sources")
"""Every script the library sends, by file name (``lua/<name>.lua``)."""


def _read_all() -> dict[str, bytes]:
    directory = _lua_dir()
    return {
        name: directory.joinpath(f"{name}.lua").read_text(encoding="utf-8").encode("ascii") for name in SCRIPT_NAMES
    }


_ENCODED: Final = _read_all()
"""Registered as bytes: redis-py then hashes them as they are, instead of encoding the text with a new
``Encoder`` for every cache made (75 us of the 95 a cache's five scripts cost). They are ASCII, so the
bytes are the same whatever encoding a client is made with."""


def script_source(name: str) -> str:
    """The text of ``lua/<name>.lua``, one of ``SCRIPT_NAMES``."""
    try:
        return _ENCODED[name].decode("ascii")
    except KeyError:
        raise _unknown(name) from None


def _unknown(name: str) -> ValueError:
    return ValueError(f"no script named {name!r}: the scripts are {', '.join(SCRIPT_NAMES)}")


class _Registered:
    """A ``Scripts`` attribute named after its script: registered with the client on first access, then kept.

    A non-data descriptor: the registered script is stored in the instance's
    ``__dict__`` under the same name, so later reads never reach ``__get__``.
    """

    name: str

    def __set_name__(self, owner: type, name: str) -> None:
        if name not in _ENCODED:
            raise _unknown(name)
        self.name = name

    def __get__(self, scripts: Scripts | None, owner: type) -> Any:
        if scripts is None:
            return self
        registered = scripts.__dict__[self.name] = scripts._client.register_script(_ENCODED[self.name])
        return registered


class Scripts:
    """The scripts registered with one client (sync or asyncio, single server or cluster).

    ``register_script`` sends nothing: the script reaches the server on first use
    (EVALSHA, then EVAL on NOSCRIPT). Each is registered when the cache first
    needs it (redis-py hashes it then): a candle cache that only writes never
    registers the value caches' script, a value cache never the candle scripts.
    """

    versioned_write = _Registered()
    newer_wins = _Registered()
    series_timestamps = _Registered()
    heal = _Registered()
    rollup_sources = _Registered()

    def __init__(self, client: Any) -> None:
        self._client = client

"""The Lua scripts: package files (``livermore_cache/lua/*.lua``) and a per-client registry.

Each script lives in its own ``.lua`` file whose header names its KEYS, ARGV and
reply. A ``Scripts`` object is made per cache object, so a registered script is
never shared through a global.
"""

from __future__ import annotations

from functools import cache
from importlib.resources import files
from typing import Any

__all__ = ["Scripts", "script_source"]


@cache
def script_source(name: str) -> str:
    """The text of ``livermore_cache/lua/<name>.lua``."""
    return files(__package__).joinpath("lua", f"{name}.lua").read_text(encoding="utf-8")


class Scripts:
    """The scripts registered with one client (sync or asyncio, single server or cluster).

    ``register_script`` sends nothing: the script reaches the server on first use
    (EVALSHA, then EVAL on NOSCRIPT).
    """

    def __init__(self, client: Any) -> None:
        self.versioned_write = client.register_script(script_source("versioned_write"))
        self.newer_wins = client.register_script(script_source("newer_wins"))
        self.series_timestamps = client.register_script(script_source("series_timestamps"))

"""The Lua scripts: their source, loaded from package files, and a per-client registry.

Each script lives in its own ``.lua`` file whose header names its KEYS, ARGV and
reply. In a checkout they sit in the top-level ``lua/`` folder; a wheel carries
them inside the package (``livermore_cache/lua/``). A ``Scripts`` object is made
per cache object, so a registered script is never shared through a global.
"""

from __future__ import annotations

from functools import cache
from importlib.resources import files
from pathlib import Path
from typing import Any

__all__ = ["Scripts", "script_source"]

_CHECKOUT_LUA = Path(__file__).resolve().parent.parent / "lua"


@cache
def script_source(name: str) -> str:
    """The text of ``lua/<name>.lua``, from the installed package or, failing that, the checkout."""
    packaged = files(__package__).joinpath("lua", f"{name}.lua")
    if packaged.is_file():
        return packaged.read_text(encoding="utf-8")
    return (_CHECKOUT_LUA / f"{name}.lua").read_text(encoding="utf-8")


class Scripts:
    """The scripts registered with one client (sync or asyncio, single server or cluster).

    ``register_script`` sends nothing: the script reaches the server on first use
    (EVALSHA, then SCRIPT LOAD on NOSCRIPT).
    """

    def __init__(self, client: Any) -> None:
        self.versioned_write = client.register_script(script_source("versioned_write"))

"""The script files the package reads at import: every file under ``lua/`` is one the library knows, and back."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
import redis

from livermore_cache.scripts import SCRIPT_NAMES, Scripts, script_source

LUA_DIR = Path(__file__).resolve().parents[2] / "lua"


def test_every_lua_file_is_read_at_import() -> None:
    assert sorted(path.stem for path in LUA_DIR.glob("*.lua")) == sorted(SCRIPT_NAMES)


@pytest.mark.parametrize("name", SCRIPT_NAMES)
def test_the_text_is_the_file_s(name: str) -> None:
    source = script_source(name)
    assert source == (LUA_DIR / f"{name}.lua").read_text(encoding="utf-8")
    assert source.startswith(f"-- {name}.lua:"), "each file opens with a header naming itself"


def test_an_unknown_name_is_refused_by_name() -> None:
    with pytest.raises(ValueError, match=r"no script named 'versioned_writes': the scripts are versioned_write, "):
        script_source("versioned_writes")


@pytest.mark.parametrize("name", SCRIPT_NAMES)
def test_each_script_is_registered_once_when_first_read(name: str) -> None:
    """``redis.Redis()`` opens no socket until a command is sent, and ``register_script`` sends none."""
    client = redis.Redis()
    scripts = Scripts(client)
    assert name not in vars(scripts), "nothing is registered before it is needed"
    script = getattr(scripts, name)
    assert script.sha == hashlib.sha1((LUA_DIR / f"{name}.lua").read_bytes()).hexdigest()
    assert getattr(scripts, name) is script
    assert script.registered_client is client
    client.close()


def test_a_registry_attribute_must_name_a_script() -> None:
    """The class cannot even be made (Python 3.11 wraps the error in a RuntimeError, 3.12 adds a note)."""
    with pytest.raises((RuntimeError, ValueError)) as raised:

        class Misspelt(Scripts):
            versioned_writes = Scripts.__dict__["versioned_write"].__class__()

    error = raised.value if isinstance(raised.value, ValueError) else raised.value.__cause__
    assert isinstance(error, ValueError)
    assert str(error).startswith("no script named 'versioned_writes': the scripts are versioned_write, ")

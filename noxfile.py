"""The compatibility matrix: the non-slow suite and ``mypy --strict`` per (Python, redis-py, hiredis) combination.

    make test-compat                           # every combination (venvs in .nox/, reused)
    make test-compat NOX_ARGS="-s 'compat(py3.11-redis5.0)'"
    .venv/bin/nox -l                           # the combinations
    .venv/bin/nox -- -k candle                 # arguments after -- go to pytest

Each session installs the dev tools from requirements/dev.lock, then lets redis-py (and hiredis) float
to the newest release in the combination's range, so a reused venv picks up a new redis-py release too.
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess

import nox

PYTHONS = ("3.11", "3.12", "3.13")
NEWEST = "redis>=8.0,<9"
# The lowest release of every other range pyproject.toml declares (the library's and the otel extra's):
# one session runs them all, beside the oldest redis-py line, so each declared lower bound is tested.
LOWEST = ("msgspec==0.18.6", "click==8.1.2", "opentelemetry-api==1.20.0", "opentelemetry-sdk==1.20.0")
# (python, label, redis-py requirement, hiredis, extra pins): the combinations .ci/run expects.
COMBINATIONS: list[tuple[str, str, str, bool, tuple[str, ...]]] = [
    ("3.11", "redis5.0", "redis>=5.0,<5.1", True, ()),
    ("3.11", "redis5.0-lowest-deps", "redis>=5.0,<5.1", True, LOWEST),
    ("3.11", "redis5.3", "redis>=5.3,<5.4", True, ()),
    ("3.11", "redis6.4", "redis>=6.4,<6.5", True, ()),
    ("3.11", "redis7.4", "redis>=7.4,<7.5", True, ()),
    ("3.11", "redis-newest", NEWEST, True, ()),
    ("3.12", "redis-newest", NEWEST, True, ()),
    ("3.13", "redis-newest", NEWEST, True, ()),
    ("3.11", "redis-newest", NEWEST, False, ()),
]
LOCK = "requirements/dev.lock"
PROBE = """
import importlib.metadata, sys, redis.utils
hiredis = redis.utils.HIREDIS_AVAILABLE and importlib.metadata.version("hiredis")
print(f"redis-py {redis.__version__}, hiredis {hiredis or 'not used'}")
sys.exit(bool(hiredis) != (sys.argv[1] == "with"))  # hiredis used exactly when the combination says so
"""

nox.options.default_venv_backend = "uv"  # uv is in the lock, beside nox
nox.options.reuse_venv = "yes"
nox.options.error_on_missing_interpreters = True  # a missing Python fails the run, it is not skipped
nox.options.download_python = "never"  # nor is one downloaded behind the user's back


def _runs(python: str | None) -> bool:
    return python is not None and subprocess.run([python, "-c", ""], capture_output=True, check=False).returncode == 0


def _expose_pyenv_interpreters() -> None:
    """Put pyenv's builds of PYTHONS on PATH where ``pythonX.Y`` is missing or is a pyenv shim that refuses to run.

    pyenv's shims run only the versions a ``.python-version`` file or ``pyenv global`` selects; this makes the
    matrix independent of both.
    """
    root = os.environ.get("PYENV_ROOT", os.path.expanduser("~/.pyenv"))
    for version in PYTHONS:
        if _runs(shutil.which(f"python{version}")):
            continue
        builds = sorted(glob.glob(os.path.join(root, "versions", f"{version}.*", "bin")), reverse=True)
        usable = [bin_dir for bin_dir in builds if _runs(os.path.join(bin_dir, f"python{version}"))]
        if usable:
            os.environ["PATH"] = usable[0] + os.pathsep + os.environ["PATH"]


_expose_pyenv_interpreters()


@nox.session
@nox.parametrize(
    ("python", "requirement", "hiredis", "pins"),
    [
        nox.param(python, requirement, hiredis, pins, id=f"py{python}-{label}" + ("" if hiredis else "-nohiredis"))
        for python, label, requirement, hiredis, pins in COMBINATIONS
    ],
)
def compat(session: nox.Session, requirement: str, hiredis: bool, pins: tuple[str, ...]) -> None:
    """The non-slow suite and mypy --strict on one Python x redis-py (x hiredis) combination."""
    session.install("--require-hashes", "-r", LOCK)
    session.install(
        "--upgrade-package", "redis", "--upgrade-package", "hiredis", requirement, *(["hiredis"] if hiredis else [])
    )
    if pins:
        session.install(*pins)
    if not hiredis:
        session.run_install("uv", "pip", "uninstall", "hiredis")
    session.install("--no-deps", "--no-build-isolation", "-e", ".")
    session.run("python", "-c", PROBE, "with" if hiredis else "without")
    location = session.virtualenv.location
    # The library against this redis-py (make lint type-checks tests, benchmarks and tools too, on the locked one).
    session.run("mypy", "--strict", "--cache-dir", os.path.join(location, "mypy_cache"), "livermore_cache")
    # pytest exits 5 when it selects no test, which fails the session like any other non-zero exit.
    # -X dev with ResourceWarning as an error: an unclosed socket or client fails the run on this redis-py too.
    session.run(
        "python",
        "-X",
        "dev",
        "-W",
        "error::ResourceWarning",
        "-m",
        "pytest",
        "-m",
        "not slow",
        "-p",
        "no:cacheprovider",
        *session.posargs,
        env={"HYPOTHESIS_STORAGE_DIRECTORY": os.path.join(location, "hypothesis")},
    )

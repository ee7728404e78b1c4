"""The non-slow suite once per (Python, redis-py, hiredis) combination, each in a venv of its own.

Usage: ``make test-compat`` or ``python3 tools/compat.py [--list] [--rebuild] [PATTERN ...]``.

Each combination lives in ``.venv-compat/<name>``: made with the combination's interpreter
(``pyenv prefix X.Y``, then ``~/.pyenv/versions/X.Y*``, then ``pythonX.Y`` on PATH), holding the
project editable with its ``dev`` extra, resolved in one pip call together with the combination's
redis-py constraint (``redis>=5.0,<5.1`` means the newest 5.0 patch at install time); the
no-hiredis combination then uninstalls hiredis. A venv is reused while its stamp (interpreter,
requirements, hiredis choice, sha256 of pyproject.toml) still matches; ``--rebuild`` or
``COMPAT_REBUILD=1`` makes it anew (the way to pick up a redis-py release newer than the one installed).

Environment: ``COMPAT_PYTEST_ARGS`` (extra pytest arguments, shell-split), ``COMPAT_ONLY``
(comma-separated fnmatch patterns of combination names), ``COMPAT_REBUILD=1``,
``COMPAT_VERBOSE=1`` (stream pytest's output instead of only logging it),
``COMPAT_RUN_TIMEOUT`` (seconds for one pytest run, default 900).

Prints one summary line per combination as it finishes, then a table of all of them, then
the failures grouped by error across combinations. Exits 1 if any combination failed to
install, had a failure or error, ran no test, or pytest exited non-zero (5, no tests, included).
"""

from __future__ import annotations

import argparse
import concurrent.futures
import fnmatch
import glob
import hashlib
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import threading
import time
import xml.etree.ElementTree as ET
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

ROOT = Path(__file__).resolve().parent.parent
COMPAT_DIR = ROOT / ".venv-compat"
STAMP_NAME = ".compat-stamp"
RECIPE = "2"  # bump when the way a venv is built changes: every stamp then mismatches
PYTEST_BASE = ["-m", "not slow", "-p", "no:cacheprovider"]
SHOWN_TESTS_PER_GROUP = 12
WHOLE_RUN = "the whole run (no test result)"


@dataclass(frozen=True)
class Combination:
    python: str  # "3.11"
    redis_label: str  # "5.0" or "newest"
    redis_requirement: str  # a pip requirement: "redis>=5.0,<5.1"
    hiredis: bool = True

    @property
    def name(self) -> str:
        return f"py{self.python}-redis{self.redis_label}" + ("" if self.hiredis else "-nohiredis")


NEWEST = "redis>=8.0"
COMBINATIONS = (
    Combination("3.11", "5.0", "redis>=5.0,<5.1"),
    Combination("3.11", "5.3", "redis>=5.3,<5.4"),
    Combination("3.11", "6.4", "redis>=6.4,<6.5"),
    Combination("3.11", "7.4", "redis>=7.4,<7.5"),
    Combination("3.11", "-newest", NEWEST),
    Combination("3.12", "-newest", NEWEST),
    Combination("3.13", "-newest", NEWEST),
    Combination("3.11", "-newest", NEWEST, hiredis=False),
)


@dataclass
class Failure:
    test: str  # a pytest node id
    kind: str  # "failed" or "error"
    message: str  # the first line of the error


@dataclass
class Result:
    combination: Combination
    redis_version: str = "?"
    hiredis_version: str | None = None
    reused: bool = False
    install_seconds: float = 0.0
    test_seconds: float = 0.0
    problem: str | None = None  # install trouble, a crash, no tests: anything that is not a counted test result
    exit_code: int | None = None
    passed: int = 0
    failed: int = 0
    errors: int = 0
    skipped: int = 0
    failures: list[Failure] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return (
            self.problem is None
            and self.exit_code == 0
            and self.failed == 0
            and self.errors == 0
            and self.passed + self.skipped > 0
        )

    def summary(self) -> str:
        c = self.combination
        if self.hiredis_version is not None:
            hiredis = f"hiredis {self.hiredis_version}"
        else:
            hiredis = "no hiredis" if not c.hiredis else "hiredis missing"
        head = f"py{c.python} redis-py {self.redis_version} {hiredis}"
        counts = [f"{self.passed} passed", f"{self.failed} failed"]
        if self.errors:
            counts.append(f"{self.errors} errors")
        if self.skipped:
            counts.append(f"{self.skipped} skipped")
        venv = "venv reused" if self.reused else f"install {self.install_seconds:.0f} s"
        line = f"{head}: {', '.join(counts)} ({self.test_seconds:.0f} s; {venv})"
        if self.problem:
            line += f" -- {self.problem}"
        return line


class CompatError(Exception):
    """A combination that cannot be set up; its message says why."""


def log(message: str) -> None:
    print(message, flush=True)


def find_interpreter(version: str) -> Path:
    """The interpreter for ``version`` ("3.12"): pyenv's, then ~/.pyenv/versions, then PATH."""
    tried: list[str] = []
    candidates: list[Path] = []
    pyenv = shutil.which("pyenv")
    if pyenv:
        tried.append(f"pyenv prefix {version}")
        out = subprocess.run([pyenv, "prefix", version], capture_output=True, text=True, check=False)
        if out.returncode == 0:
            candidates += [Path(line.strip()) / "bin" / "python" for line in out.stdout.splitlines() if line.strip()]
    root = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv"))
    pattern = str(root / "versions" / f"{version}.*" / "bin" / "python")
    tried.append(pattern)
    candidates += [Path(p) for p in sorted(glob.glob(pattern), reverse=True)]
    tried.append(f"python{version} on PATH")
    on_path = shutil.which(f"python{version}")
    if on_path:
        candidates.append(Path(on_path))
    for candidate in candidates:
        if not os.access(candidate, os.X_OK):
            continue
        probe = subprocess.run(
            [str(candidate), "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
            capture_output=True,
            text=True,
            check=False,
        )
        if probe.returncode == 0 and probe.stdout.strip() == version:
            return candidate
    raise CompatError(
        f"no Python {version} interpreter found (tried: {'; '.join(tried)}); install it, e.g. pyenv install {version}"
    )


def python_full_version(python: Path) -> str:
    out = subprocess.run(
        [str(python), "-c", "import sys; print(sys.version.split()[0])"], capture_output=True, text=True
    )
    return out.stdout.strip()


def stamp_text(combination: Combination, interpreter: Path) -> str:
    digest = hashlib.sha256((ROOT / "pyproject.toml").read_bytes()).hexdigest()
    return "\n".join(
        [
            f"recipe: {RECIPE}",
            f"interpreter: {interpreter} ({python_full_version(interpreter)})",
            "requirements: -e .[dev]",
            f"requirements: {combination.redis_requirement}",
            f"hiredis: {'installed' if combination.hiredis else 'uninstalled'}",
            f"pyproject.toml sha256: {digest}",
            "",
        ]
    )


def run_logged(command: list[str], logfile: Path, what: str) -> None:
    with logfile.open("a") as out:
        out.write(f"$ {shlex.join(command)}\n")
        out.flush()
        done = subprocess.run(command, stdout=out, stderr=subprocess.STDOUT, cwd=ROOT, env=pip_env(), check=False)
    if done.returncode != 0:
        tail = "\n".join(logfile.read_text(errors="replace").splitlines()[-25:])
        log(f"    {what} failed (exit {done.returncode}); last lines of {logfile}:\n{tail}")
        raise CompatError(f"{what} failed (exit {done.returncode}), see {logfile.relative_to(ROOT)}")


def pip_env() -> dict[str, str]:
    env = dict(os.environ)
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    env.pop("VIRTUAL_ENV", None)
    env.pop("PYTHONPATH", None)
    return env


def ensure_venv(combination: Combination, rebuild: bool) -> tuple[Path, bool, float]:
    """The venv's python, whether it was reused, and the seconds spent installing."""
    interpreter = find_interpreter(combination.python)
    venv = COMPAT_DIR / combination.name
    python = venv / "bin" / "python"
    stamp = venv / STAMP_NAME
    wanted = stamp_text(combination, interpreter)
    if not rebuild and python.exists() and stamp.exists() and stamp.read_text() == wanted:
        return python, True, 0.0
    started = time.monotonic()
    log(f"  building {venv.relative_to(ROOT)} with {interpreter} ({combination.redis_requirement})")
    shutil.rmtree(venv, ignore_errors=True)
    venv.mkdir(parents=True)
    install_log = venv / "install.log"
    run_logged([str(interpreter), "-m", "venv", str(venv)], install_log, "venv creation")
    # One resolve: the project with its dev extra and the combination's redis-py constraint together.
    run_logged(
        [str(python), "-m", "pip", "install", "-q", "-e", ".[dev]", combination.redis_requirement],
        install_log,
        "pip install",
    )
    if not combination.hiredis:  # with hiredis: the project's redis[hiredis] requirement brought it
        run_logged([str(python), "-m", "pip", "uninstall", "-q", "-y", "hiredis"], install_log, "hiredis uninstall")
    stamp.write_text(wanted)
    return python, False, time.monotonic() - started


PROBE = """
import importlib.metadata as m
import redis.utils
def version(name):
    try:
        return m.version(name)
    except m.PackageNotFoundError:
        return "-"
print(version("redis"), version("hiredis"), int(bool(redis.utils.HIREDIS_AVAILABLE)))
"""


def installed_versions(python: Path, combination: Combination) -> tuple[str, str | None]:
    out = subprocess.run([str(python), "-c", PROBE], capture_output=True, text=True, env=pip_env(), check=False)
    if out.returncode != 0:
        raise CompatError(f"redis-py does not import in the venv: {out.stderr.strip().splitlines()[-1:]}")
    redis_version, hiredis_version, available = out.stdout.split()
    if combination.hiredis and (hiredis_version == "-" or available != "1"):
        raise CompatError(f"hiredis {hiredis_version} is installed but redis-py {redis_version} does not use it")
    if not combination.hiredis and (hiredis_version != "-" or available == "1"):
        raise CompatError("hiredis is still installed in the no-hiredis venv")
    return redis_version, None if hiredis_version == "-" else hiredis_version


def node_id(classname: str, name: str) -> str:
    """``tests.test_access.TestX`` + ``test_y[sync]`` -> ``tests/test_access.py::TestX::test_y[sync]``."""
    parts = classname.split(".")
    for cut in range(len(parts), 0, -1):
        path = "/".join(parts[:cut]) + ".py"
        if (ROOT / path).is_file():
            return "::".join([path, *parts[cut:], name])
    return f"{classname}::{name}"


def first_line(text: str) -> str:
    for line in text.splitlines():
        if line.strip():
            return line.strip()
    return "(no message)"


def read_junit(path: Path, result: Result) -> None:
    suites = ET.parse(path).getroot()
    for suite in suites.iter("testsuite"):
        tests = int(suite.get("tests", "0"))
        result.failed += int(suite.get("failures", "0"))
        result.errors += int(suite.get("errors", "0"))
        result.skipped += int(suite.get("skipped", "0"))
        result.passed += tests - int(suite.get("failures", "0")) - int(suite.get("errors", "0"))
        result.passed -= int(suite.get("skipped", "0"))
        for case in suite.iter("testcase"):
            for kind, tag in (("failed", "failure"), ("error", "error")):
                for element in case.findall(tag):
                    message = first_line(element.get("message") or element.text or "")
                    test = node_id(case.get("classname", ""), case.get("name", ""))
                    phase = re.fullmatch(r'failed on (setup|teardown) with "(.*)"', message)
                    if phase:  # grouped with the same error in a test's body; the test name tells the phase
                        test, message = f"{test} (in {phase[1]})", phase[2]
                    result.failures.append(Failure(test, kind, message))


def copy_lines(process: subprocess.Popen[str], out: TextIO, verbose: bool) -> None:
    """pytest's output into its log file, and to the terminal too when verbose."""
    assert process.stdout is not None
    for line in process.stdout:
        out.write(line)
        if verbose:
            sys.stdout.write(line)
            sys.stdout.flush()


def last_error(pytest_log: Path) -> str:
    """The last ``E   ...`` line of pytest's output (a conftest that does not import, say), else its last line."""
    lines = [line for line in pytest_log.read_text(errors="replace").splitlines() if line.strip()]
    errors = [line[1:].strip() for line in lines if line.startswith("E ")]
    return errors[-1] if errors else (lines[-1].strip() if lines else "no output")


def internal_error(pytest_log: Path) -> str:
    """The exception line of pytest's INTERNALERROR traceback (pluggy's wrapper warning passed over)."""
    found = "see the log"
    for line in pytest_log.read_text(errors="replace").splitlines():
        rest = line.removeprefix("INTERNALERROR> ")
        if rest != line and re.match(r"[\w.]+(Error|Exception|Exit): ", rest) and "Pluggy" not in rest:
            found = rest.strip()
    return found


def selected_count(pytest_log: Path) -> int | None:
    """How many tests pytest selected, from its ``collected N items / M deselected / K selected`` line."""
    text = pytest_log.read_text(errors="replace")
    match = re.search(r"collected (\d+) items?(?: / \d+ errors?)?(?: / (\d+) deselected)?(?: / (\d+) selected)?", text)
    if match is None:
        return None
    collected, deselected, selected = match.groups()
    if selected is not None:
        return int(selected)
    return int(collected) - int(deselected or 0)


def run_pytest(python: Path, combination: Combination, result: Result) -> None:
    venv = python.parent.parent
    junit = venv / "junit.xml"
    pytest_log = venv / "pytest.log"
    junit.unlink(missing_ok=True)
    extra = shlex.split(os.environ.get("COMPAT_PYTEST_ARGS", ""))
    command = [str(python), "-m", "pytest", *PYTEST_BASE, f"--junitxml={junit}", *extra]
    env = pip_env()
    env["VIRTUAL_ENV"] = str(venv)
    env["PATH"] = f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    env.setdefault("HYPOTHESIS_STORAGE_DIRECTORY", str(venv / "hypothesis"))
    timeout = float(os.environ.get("COMPAT_RUN_TIMEOUT", "900"))
    verbose = os.environ.get("COMPAT_VERBOSE") == "1"
    started = time.monotonic()
    with pytest_log.open("w") as out:
        out.write(f"$ {shlex.join(command)}\n")
        out.flush()
        process = subprocess.Popen(
            command,
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
        tee = threading.Thread(target=copy_lines, args=(process, out, verbose), daemon=True)
        tee.start()
        try:
            result.exit_code = process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            result.exit_code = process.wait()
            result.problem = f"timed out after {timeout:.0f} s"
        tee.join(10)
    result.test_seconds = time.monotonic() - started
    if junit.exists():
        read_junit(junit, result)
    elif result.problem is None:
        result.problem = f"pytest wrote no report (exit {result.exit_code}): {last_error(pytest_log)}"
    ran, selected = result.passed + result.failed + result.errors + result.skipped, selected_count(pytest_log)
    internal = [f for f in result.failures if f.test == "pytest::internal"]
    if internal:  # pytest's own crash, reported as a pseudo-test: not a test result
        result.failures = [f for f in result.failures if f not in internal]
        result.errors -= len(internal)
        ran -= len(internal)
        result.problem = f"pytest INTERNALERROR after {ran} of {selected or '?'} tests: {internal_error(pytest_log)}"
    elif result.problem is None and selected is not None and 0 < ran < selected:
        result.problem = f"pytest stopped after {ran} of {selected} tests"
    if result.problem is None:
        if result.exit_code == 5 or result.passed + result.failed + result.errors + result.skipped == 0:
            result.problem = "ran no test (pytest exit 5)" if result.exit_code == 5 else "ran no test"
        elif result.exit_code not in (0, 1):
            result.problem = f"pytest exit {result.exit_code}"
        elif result.exit_code == 1 and not result.failures:
            result.problem = "pytest exit 1 with no failure in its report"
    if result.problem is not None and not verbose:
        tail = "\n".join(pytest_log.read_text(errors="replace").splitlines()[-30:])
        log(f"    last lines of {pytest_log.relative_to(ROOT)}:\n{tail}")


def prepare(combination: Combination, rebuild: bool) -> tuple[Result, Path | None]:
    """The combination's venv, made or reused, and the versions it holds (runs beside the previous test run)."""
    result = Result(combination)
    try:
        python, result.reused, result.install_seconds = ensure_venv(combination, rebuild)
        result.redis_version, result.hiredis_version = installed_versions(python, combination)
    except CompatError as error:
        result.problem = f"could not be installed: {error}"
        return result, None
    return result, python


def run_combination(prepared: tuple[Result, Path | None]) -> Result:
    result, python = prepared
    log(f"== {result.combination.name}")
    if python is None:
        log(result.summary())
        return result
    log(
        f"  redis-py {result.redis_version}, "
        + (f"hiredis {result.hiredis_version}" if result.hiredis_version else "no hiredis")
        + (" (venv reused)" if result.reused else f" (installed in {result.install_seconds:.0f} s)")
    )
    run_pytest(python, result.combination, result)
    log(result.summary())
    return result


def normalized(message: str) -> str:
    """The message with what varies between runs and combinations (addresses, ports, versions) blanked, for grouping."""
    message = re.sub(r"0x[0-9a-fA-F]+", "0x...", message)
    message = re.sub(r"/pytest-of-[^/]+/pytest-\d+/", "/pytest-of-USER/pytest-N/", message)
    message = re.sub(r"(?<![\d.])\d+\.\d+\.\d+(?![\d.])", "X.Y.Z", message)  # "this is redis-py 5.0.8"
    return re.sub(r"(127\.0\.0\.1|localhost):\d+", r"\1:PORT", message)


def collapse(tests: list[str]) -> list[str]:
    """``t[sync]``, ``t[async]`` -> ``t[sync|async]``: parametrized variants on one line."""
    variants: dict[str, list[str]] = {}
    for test in tests:
        head, _, phase = test.partition(" (in ")
        base, bracket, param = head.partition("[")
        key = base + (f" (in {phase}" if phase else "")
        variants.setdefault(key, [])
        if bracket:
            variants[key].append(param.removesuffix("]"))
    shown = []
    for key, params in variants.items():
        base, _, phase = key.partition(" (in ")
        shown.append(base + (f"[{'|'.join(params)}]" if params else "") + (f" (in {phase}" if phase else ""))
    return shown


def report(results: list[Result]) -> str:
    lines = ["", "== compat summary"]
    width = max(len(r.combination.name) for r in results)
    for r in results:
        status = "ok  " if r.ok else "FAIL"
        lines.append(f"{status} {r.combination.name:<{width}}  {r.summary()}")
    groups: dict[str, dict[str, list[str]]] = defaultdict(lambda: defaultdict(list))
    for r in results:
        for failure in r.failures:
            groups[normalized(failure.message)][r.combination.name].append(failure.test)
        if r.problem is not None and not r.failures:
            groups[normalized(r.problem)][r.combination.name].append(WHOLE_RUN)
    if groups:
        lines += ["", f"== failures grouped by error ({len(groups)} distinct)"]
    ordered = sorted(groups.items(), key=lambda item: -sum(len(t) for t in item[1].values()))
    for number, (message, by_combination) in enumerate(ordered, 1):
        lines.append(f"[{number}] {message}")
        previous: list[str] | None = None
        for name, tests in by_combination.items():
            shown = collapse(sorted(set(tests)))
            if shown == previous:
                lines.append(f"    {name}: the same {len(tests)} as above")
                continue
            previous = shown
            if tests == [WHOLE_RUN]:
                lines.append(f"    {name}: {WHOLE_RUN}")
                continue
            lines.append(f"    {name}: {len(tests)} test{'s' if len(tests) != 1 else ''}")
            lines += [f"      {test}" for test in shown[:SHOWN_TESTS_PER_GROUP]]
            if len(shown) > SHOWN_TESTS_PER_GROUP:
                lines.append(f"      ... and {len(shown) - SHOWN_TESTS_PER_GROUP} more (see .venv-compat/report.txt)")
    return "\n".join(lines)


def full_failure_list(results: list[Result]) -> str:
    lines: list[str] = []
    for r in results:
        lines.append(f"{r.combination.name}: {r.summary()}")
        lines += [f"  {f.kind}: {f.test}: {f.message}" for f in r.failures]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("patterns", nargs="*", help="fnmatch patterns of combination names (default: all)")
    parser.add_argument("--list", action="store_true", help="print the combinations and exit")
    parser.add_argument("--rebuild", action="store_true", help="make every selected venv anew")
    args = parser.parse_args(argv)
    patterns = list(args.patterns) or [p for p in os.environ.get("COMPAT_ONLY", "").split(",") if p.strip()]
    selected = [c for c in COMBINATIONS if not patterns or any(fnmatch.fnmatch(c.name, p.strip()) for p in patterns)]
    if args.list:
        for c in COMBINATIONS:
            hiredis = "with hiredis" if c.hiredis else "without hiredis"
            print(f"{c.name:<28} python {c.python}, {c.redis_requirement}, {hiredis}")
        return 0
    if not selected:
        print(f"no combination matches {patterns}; see --list", file=sys.stderr)
        return 2
    rebuild = args.rebuild or os.environ.get("COMPAT_REBUILD") == "1"
    COMPAT_DIR.mkdir(exist_ok=True)
    started = time.monotonic()
    # The next combination's venv is installed while the current one's tests run (pip waits on disk and network).
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as installer:
        pending = [installer.submit(prepare, c, rebuild) for c in selected]
        results = [run_combination(future.result()) for future in pending]
    text = report(results)
    log(text)
    (COMPAT_DIR / "report.txt").write_text(text + "\n\n== every failure\n" + full_failure_list(results))
    failed = [r for r in results if not r.ok]
    log(f"\n{len(results) - len(failed)} of {len(results)} combinations ok in {time.monotonic() - started:.0f} s")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

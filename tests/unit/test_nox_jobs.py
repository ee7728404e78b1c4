"""tools/nox_jobs.py: sessions run N at a time, one merged report, and any failed session fails the run.

The nox here is a stand-in script (these tests are about the scheduling, not about nox): it lists three
sessions, writes the report nox would for each, and fails the session called ``bad``. Like nox's, its
report entries carry the function's name (``fake``) in ``name`` and the session's full name in ``signatures``.
"""

from __future__ import annotations

import json
import stat
import sys
from pathlib import Path

import pytest

from tools import nox_jobs

FAKE_NOX = """#!{python}
import json, sys, time
args = sys.argv[1:]
names = {names!r}
if "--list" in args:
    print(json.dumps([{{"session": name}} for name in names]))
    sys.exit(0)
name = args[args.index("-s") + 1]
report = args[args.index("--report") + 1]
time.sleep(0.2)
ok = name != "bad"
print(f"ran {{name}} with {{args}}")
with open(report, "w") as file:
    json.dump({{"result": int(ok), "sessions": [{{"name": "fake", "signatures": [name],
               "result": "success" if ok else "failed", "result_code": int(ok), "args": {{}}}}]}}, file)
sys.exit(0 if ok else 1)
"""


def fake_nox(tmp_path: Path, names: list[str]) -> str:
    path = tmp_path / "nox"
    path.write_text(FAKE_NOX.format(python=sys.executable, names=names))
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return str(path)


def test_every_session_runs_once_and_the_report_merges_them(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    names = ["a", "b", "c"]
    report = tmp_path / "report.json"
    status = nox_jobs.main(
        ["--jobs", "3", "--nox", fake_nox(tmp_path, names), "--report", str(report), "--", "-k", "x"]
    )
    out = capsys.readouterr().out
    assert status == 0
    assert json.loads(report.read_text()) == {
        "result": 1,
        "sessions": [
            {"name": "fake", "signatures": [name], "result": "success", "result_code": 1, "args": {}} for name in names
        ],
    }
    for name in names:
        assert out.count(f"==== nox session {name}: exit 0") == 1
        assert f"ran {name} with " in out
        assert f"success  {name}\n" in out  # the summary names each session by its full name, as nox's report does
    assert "'--', '-k', 'x'" in out  # pytest's arguments reach every session, after nox's "--"


def test_a_failed_session_fails_the_run_and_is_named(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    report = tmp_path / "report.json"
    status = nox_jobs.main(["--jobs", "2", "--nox", fake_nox(tmp_path, ["a", "bad"]), "--report", str(report)])
    captured = capsys.readouterr()
    assert status == 1
    assert [session["result"] for session in json.loads(report.read_text())["sessions"]] == ["success", "failed"]
    assert json.loads(report.read_text())["result"] == 0
    assert "1 of 2 nox sessions failed: bad" in captured.err


def test_no_session_selected_fails(tmp_path: Path) -> None:
    assert nox_jobs.main(["--nox", fake_nox(tmp_path, [])]) == 1


def test_jobs_below_one_is_refused(tmp_path: Path) -> None:
    with pytest.raises(SystemExit) as refused:
        nox_jobs.main(["--jobs", "0", "--nox", fake_nox(tmp_path, ["a"])])
    assert refused.value.code == 2

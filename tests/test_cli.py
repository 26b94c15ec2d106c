"""The ``harness`` command as a person and a CI job use it: exit codes, JSON, failure files,
replay, and one clear line for every input the harness cannot work with.

Every run goes to the test session's server through ``--database-url``, so each test can list
the server's databases afterwards and prove that nothing was left behind.
"""

from __future__ import annotations

import json
import subprocess
import sys

import psycopg
import pytest

from harness.cli import main
from harness.server import Server
from projects import Rev, make_project, write_revision

# b's downgrade forgets the column its upgrade added: the smallest history with a defect.
BROKEN = Rev("b", down="a", upgrade='op.add_column("t_a", sa.Column("x", sa.Integer))', downgrade="pass")
FIXED = Rev("b", down="a", upgrade=BROKEN.upgrade, downgrade='op.drop_column("t_a", "x")')


def scratch_databases(server: Server) -> set[str]:
    with psycopg.connect(server.dsn(), autocommit=True) as conn:
        return {r[0] for r in conn.execute("SELECT datname FROM pg_database WHERE datname LIKE 'harness%'")}


@pytest.fixture
def harness(pg_server: Server, capsys: pytest.CaptureFixture[str]):
    """Run ``harness ARGS --database-url <session server>``; (exit code, stdout, stderr).

    Also checks that the run left no scratch database on the server, whatever its outcome.
    """
    before = scratch_databases(pg_server)

    def run(*args: str) -> tuple[int, str, str]:
        code = main([*args] if "--database-url" in args else [*args, "--database-url", pg_server.dsn()])
        out, err = capsys.readouterr()
        assert scratch_databases(pg_server) <= before, "scratch databases left behind"
        return code, out, err

    return run


def test_a_broken_history_fails_with_a_shrunk_sequence_that_replay_reproduces_until_fixed(tmp_path, harness):
    ini = make_project(tmp_path, [Rev("a"), BROKEN])
    report = tmp_path / "walk.md"

    code, out, _ = harness("walk", "-c", str(ini), "--seed", "3", "--max-examples", "20", "--steps", "6",
                           "--json", str(tmp_path / "walk.json"), "--report", str(report))

    assert code == 1
    result = json.loads((tmp_path / "walk.json").read_text())
    assert result["ok"] is False and result["seed"] == 3
    failure = next(f for f in result["failures"] if f["revision"] == "b")
    assert failure["property"] == "schema" and "t_a.x" in failure["violations"][0]["message"]
    # Cut to what shows it: b's downgrade, from b (every revision up), the example's start
    # reached from base perhaps with the filler's rows (which a replay inserts as recorded).
    steps = failure["steps"]
    assert steps[-1] == {"op": "downgrade", "revision": "b"}
    if failure["start"] != ["b"]:
        assert failure["start"] == [] and steps[0] == {"op": "upgrade", "target": "b"}
        assert [step["op"] for step in steps[1:-1]] in ([], ["seed"])
    assert {"upgrade", "downgrade"} <= set(result["coverage"]["revisions"]["b"])
    assert "alembic downgrade" in out and "harness walk" in out and "@reproduce_failure" in out
    assert report.read_text().startswith("# harness walk: ")
    failure_files = sorted((tmp_path / ".harness" / "failures").glob("schema-b-*.json"))
    assert failure_files, out

    code, out, _ = harness("replay", str(failure_files[0]))
    assert code == 1 and "[schema] at b" in out

    write_revision(tmp_path / "migrations" / "versions", FIXED)
    code, out, _ = harness("replay", str(failure_files[0]))
    assert code == 0, out


def test_a_hanging_migration_is_a_violation_not_a_hang(tmp_path, harness):
    ini = make_project(tmp_path, [Rev("a"), Rev("slow", down="a", upgrade='op.execute("SELECT pg_sleep(60)")',
                                                downgrade="pass")])
    (tmp_path / "pyproject.toml").write_text("[tool.harness]\nstatement_timeout_ms = 300\n")

    code, out, _ = harness("sweep", "-c", str(ini), "--json", str(tmp_path / "sweep.json"))

    assert code == 1
    violations = json.loads((tmp_path / "sweep.json").read_text())["violations"]
    assert [(v["property"], v["revision"]) for v in violations] == [("migration_error", "slow")]


@pytest.mark.parametrize("case, reason", [
    ("missing ini", "no alembic.ini at"),
    ("broken env.py", "env.py"),
    ("unknown revision", "nope"),
    ("unreachable server", "127.0.0.1"),
])
def test_bad_input_exits_2_with_one_line_saying_why(tmp_path, harness, case, reason):
    ini = make_project(tmp_path, [Rev("a")], env_py="import no_such_module\n" if case == "broken env.py" else None)
    args = {
        "missing ini": ["sweep", "-c", str(tmp_path / "nowhere.ini")],
        "broken env.py": ["sweep", "-c", str(ini)],
        "unknown revision": ["sweep", "-c", str(ini), "--revision", "nope"],
        "unreachable server": ["sweep", "-c", str(ini), "--database-url", "postgresql://u@127.0.0.1:9/db"],
    }[case]

    code, out, err = harness(*args)

    assert code == 2, (out, err)
    first = err.splitlines()[0]
    assert first.startswith("harness: error: ") and reason in first, err


def test_usage_errors_exit_2_reason_first(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["walk", "--max-examples", "many"])
    assert exit_.value.code == 2
    assert capsys.readouterr().err.startswith("harness: error: argument --max-examples")


def test_ctrl_c_leaves_no_scratch_database(tmp_path, harness):
    interrupt = 'raise KeyboardInterrupt'
    ini = make_project(tmp_path, [Rev("a"), Rev("b", down="a", upgrade=interrupt)])

    code, _, err = harness("walk", "-c", str(ini), "--seed", "1", "--max-examples", "5", "--steps", "5")

    assert code == 130 and "interrupted" in err


def test_report_writes_the_verification_document(tmp_path, harness):
    ini = make_project(tmp_path, [Rev("a"), FIXED])

    code, out, _ = harness("report", "-c", str(ini), "-o", str(tmp_path / "r.md"), "--json", str(tmp_path / "r.json"),
                           "--sarif", str(tmp_path / "r.sarif"), "--gitlab", str(tmp_path / "gl.json"))

    # b's ADD COLUMN takes an ACCESS EXCLUSIVE lock, which the report's lock section flags.
    assert code == 1 and out.startswith("harness report: VIOLATED") and "lock_safety" in out, out
    assert (tmp_path / "r.md").read_text().startswith("# ") and json.loads((tmp_path / "r.json").read_text())
    # ... and code scanning gets it as a result in b's file, under a rule per report section.
    (run,) = json.loads((tmp_path / "r.sarif").read_text())["runs"]
    assert "lock_safety" in [rule["id"] for rule in run["tool"]["driver"]["rules"]]
    locks = [r for r in run["results"] if r["ruleId"] == "lock_safety"]
    assert locks and locks[0]["locations"][0]["physicalLocation"]["artifactLocation"]["uri"].endswith("b_.py")
    assert any(item["check_name"] == "lock_safety" for item in json.loads((tmp_path / "gl.json").read_text()))


def test_python_dash_m_is_the_same_command():
    done = subprocess.run([sys.executable, "-m", "harness", "walk", "--help"], capture_output=True, text=True)
    assert done.returncode == 0
    for option in ("--profile", "--seed", "--max-examples", "--steps", "--json", "--report", "--database-url"):
        assert option in done.stdout


def test_help_loads_no_hypothesis():
    """Listing the commands and profiles must not pay the second it takes to import Hypothesis."""
    code = (
        "import sys\n"
        "from harness.cli import main\n"
        "try:\n"
        "    main(['walk', '--help'])\n"
        "except SystemExit:\n"
        "    pass\n"
        "assert 'hypothesis' not in sys.modules\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "nightly" in done.stdout

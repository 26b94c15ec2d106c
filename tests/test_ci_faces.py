"""The faces CI reads: GitHub annotations and job summary, SARIF for code scanning, GitLab Code
Quality. Each violation must point at its revision file and at the line that did it: the failing
operation when a migration raised, else the ``def upgrade()``/``def downgrade()`` that ran.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.cli import main
from harness.faces import Annotation, from_report, github
from harness.faces.annotations import RULES
from harness.report import Report, Section
from harness.violations import PROPERTIES
from projects import Rev, make_project

# b's downgrade forgets the column its upgrade added.
LEAKY = Rev("b", down="a", upgrade='op.add_column("t_a", sa.Column("x", sa.Integer))', downgrade="pass")
# b's upgrade raises on its second operation, whatever the data.
RAISING = Rev("b", down="a", upgrade='op.add_column("t_a", sa.Column("x", sa.Integer))\n'
                                     'op.execute("SELECT 1/0")', downgrade='op.drop_column("t_a", "x")')


def line_of(path: Path, text: str) -> int:
    return next(n for n, line in enumerate(path.read_text().splitlines(), 1) if text in line)


@pytest.fixture
def ci(tmp_path, monkeypatch, pg_server, capsys):
    """Run ``harness`` as on a GitHub runner, from the repository root (``tmp_path``)."""
    summary = tmp_path / "step_summary.md"
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))

    def run(*args: str) -> tuple[int, str, str]:
        code = main([*args, "--database-url", pg_server.dsn(), "--sarif", "out/harness.sarif",
                     "--gitlab", "out/gl-code-quality.json"])
        out, _ = capsys.readouterr()
        text = summary.read_text() if summary.exists() else ""
        return code, out, text

    return run


def test_a_leaky_downgrade_is_annotated_at_its_downgrade_and_scanned_as_a_sarif_result(tmp_path, ci):
    make_project(tmp_path, [Rev("a"), LEAKY])
    revision_file = tmp_path / "migrations" / "versions" / "b_.py"
    line = line_of(revision_file, "def downgrade")

    code, out, summary = ci("sweep", "-c", "alembic.ini")

    assert code == 1
    annotations = [l for l in out.splitlines() if l.startswith("::error ")]
    assert annotations and all(
        a.startswith(f"::error file=migrations/versions/b_.py,line={line},title=[schema] at b::")
        for a in annotations), out
    assert "t_a.x" in annotations[0] and "\n" not in annotations[0]

    sarif = json.loads((tmp_path / "out" / "harness.sarif").read_text())
    assert sarif["version"] == "2.1.0" and sarif["$schema"].endswith("sarif-2.1.0.json")
    (run,) = sarif["runs"]
    rules = run["tool"]["driver"]["rules"]
    assert run["tool"]["driver"]["name"] == "harness"
    assert [r["id"] for r in rules] == list(PROPERTIES) == list(RULES), "a rule text per property"
    assert all(r["shortDescription"]["text"] and r["fullDescription"]["text"] for r in rules)
    result = run["results"][0]
    assert rules[result["ruleIndex"]]["id"] == result["ruleId"] == "schema"
    assert result["level"] == "error" and "t_a.x" in result["message"]["text"]
    (location,) = result["locations"]
    assert location["physicalLocation"] == {
        "artifactLocation": {"uri": "migrations/versions/b_.py", "uriBaseId": "%SRCROOT%"},
        "region": {"startLine": line},
    }
    assert result["partialFingerprints"]["harnessFinding/v1"]

    (quality,) = json.loads((tmp_path / "out" / "gl-code-quality.json").read_text())
    assert quality["check_name"] == "schema" and quality["severity"] == "major"
    assert quality["location"] == {"path": "migrations/versions/b_.py", "lines": {"begin": line}}
    assert quality["description"].startswith("[schema] at b: ") and quality["fingerprint"]

    assert f"| `schema` | `b` | `migrations/versions/b_.py:{line}` |" in summary
    assert "# harness sweep: 1 defect(s)" in summary


def test_a_migration_error_points_at_the_operation_that_raised(tmp_path, ci):
    make_project(tmp_path, [Rev("a"), RAISING])
    line = line_of(tmp_path / "migrations" / "versions" / "b_.py", "1/0")

    code, out, _ = ci("sweep", "-c", "alembic.ini")

    assert code == 1
    assert f"::error file=migrations/versions/b_.py,line={line},title=[migration_error] at b::" in out
    sarif = json.loads((tmp_path / "out" / "harness.sarif").read_text())
    region = sarif["runs"][0]["results"][0]["locations"][0]["physicalLocation"]["region"]
    assert region == {"startLine": line}


def test_a_correct_history_gives_empty_reports_no_annotation_and_a_green_summary(tmp_path, ci):
    make_project(tmp_path, [Rev("a"), Rev("b", down="a")])

    code, out, summary = ci("sweep", "-c", "alembic.ini")

    assert code == 0 and "::error" not in out
    assert json.loads((tmp_path / "out" / "harness.sarif").read_text())["runs"][0]["results"] == []
    assert json.loads((tmp_path / "out" / "gl-code-quality.json").read_text()) == []
    assert "every property holds" in summary


def test_off_github_nothing_is_annotated(tmp_path, pg_server, monkeypatch, capsys):
    monkeypatch.delenv("GITHUB_ACTIONS", raising=False)
    ini = make_project(tmp_path, [Rev("a"), LEAKY])
    assert main(["sweep", "-c", str(ini), "--database-url", pg_server.dsn()]) == 1
    assert "::error" not in capsys.readouterr().out


def test_annotation_text_is_escaped_so_it_stays_one_workflow_command():
    annotation = Annotation("data", "b", "50% lost: a, b\nrow 1", "v/b.py", 7, "f")
    assert github.workflow_command(annotation) == "::error file=v/b.py,line=7,title=[data] at b::50%25 lost: a, b%0Arow 1"


def test_a_violated_report_section_is_located_in_each_revision_it_names(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    ini = make_project(tmp_path, [Rev("a"), LEAKY])
    section = Section("lock_safety", "Lock safety", "violated", "b takes ACCESS EXCLUSIVE on t_a",
                      evidence={"problems": {"b": "takes ACCESS EXCLUSIVE"}})
    quiet = Section("backup", "Backup", "verified", "fine", evidence={"revision": "a"})
    project = {"alembic_ini": "alembic.ini", "revisions": [
        {"id": r, "file": f"migrations/versions/{r}_.py"} for r in ("a", "b")]}
    report = Report((section, quiet), project, 1.0)

    (annotation,) = from_report(report)

    assert (annotation.rule, annotation.revision, annotation.path) == ("lock_safety", "b", "migrations/versions/b_.py")
    assert annotation.line == line_of(ini.parent / "migrations" / "versions" / "b_.py", "def upgrade")

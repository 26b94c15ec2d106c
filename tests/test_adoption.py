"""Adopting the harness on a history with old defects: baseline, irreversible marks, PR mode."""

from __future__ import annotations

import subprocess
from pathlib import Path

from harness import commands
from harness.baseline import Baseline
from harness.cli import main
from harness.changes import revisions_since
from harness.project import Project
from harness.settings import load_settings
from projects import Rev, make_project, write_revision

LEAVES_INDEX = Rev("b", down="a", upgrade='op.create_index("ix_a", "t_a", ["id"])', downgrade="pass")
LEAVES_COMMENT = Rev("c", down="b", upgrade='op.execute("COMMENT ON TABLE t_a IS \'audited\'")', downgrade="pass")


def _sweep(ini: Path, pg_server, **options):
    return commands.sweep(load_settings(ini, **options), server=pg_server)


def test_baseline_accepts_old_findings_and_fails_on_new_ones(tmp_path: Path, pg_server) -> None:
    ini = make_project(tmp_path, [Rev("a"), LEAVES_INDEX])
    old = _sweep(ini, pg_server)
    assert [v.revision for v in old.violations] == ["b"]
    baseline_file = Baseline.of(old.violations).write(tmp_path / "harness-baseline.json")

    baseline = Baseline.read(baseline_file)
    assert baseline.filter(_sweep(ini, pg_server).violations) == []

    write_revision(tmp_path / "migrations" / "versions", LEAVES_COMMENT)
    new = baseline.filter(_sweep(ini, pg_server).violations)
    assert [(v.property, v.revision) for v in new] == [("schema", "c")]
    assert "comment" in new[0].message


def test_a_new_object_in_an_accepted_violation_still_fails(tmp_path: Path, pg_server) -> None:
    ini = make_project(tmp_path, [Rev("a"), LEAVES_INDEX])
    baseline = Baseline.of(_sweep(ini, pg_server).violations)
    worse = Rev("b", down="a", downgrade="pass", upgrade=(
        'op.create_index("ix_a", "t_a", ["id"])\nop.execute("COMMENT ON TABLE t_a IS \'x\'")'
    ))
    write_revision(tmp_path / "migrations" / "versions", worse)
    kept = baseline.filter(_sweep(ini, pg_server).violations)
    assert len(kept) == 1
    assert [d["object"] for d in kept[0].evidence["differences"]] == ["table public.t_a"]
    assert "ix_a" not in kept[0].message


def test_irreversible_revision_is_never_downgraded(tmp_path: Path, pg_server) -> None:
    drops_data = Rev("b", down="a", upgrade='op.drop_table("t_a")',
                     downgrade='raise RuntimeError("the data is gone")')
    ini = make_project(tmp_path, [Rev("a"), drops_data])
    assert [v.property for v in _sweep(ini, pg_server).violations] == ["migration_error"]
    result = _sweep(ini, pg_server, irreversible={"b": "drops t_a for good (ticket 42)"})
    assert result.ok
    assert result.coverage["irreversible"] == {"b": "drops t_a for good (ticket 42)"}
    assert "downgrade b" not in result.coverage["unvisited"]


def test_pull_request_mode_selects_the_revisions_added_since_a_ref(tmp_path: Path) -> None:
    ini = make_project(tmp_path, [Rev("a"), Rev("b", down="a")])
    git = ["git", "-C", str(tmp_path), "-c", "user.email=t@t", "-c", "user.name=t"]
    subprocess.run([*git, "init", "-q"], check=True)
    subprocess.run([*git, "add", "."], check=True)
    subprocess.run([*git, "commit", "-qm", "base"], check=True)
    versions = tmp_path / "migrations" / "versions"
    write_revision(versions, Rev("c", down="b"))
    subprocess.run([*git, "add", "."], check=True)
    subprocess.run([*git, "commit", "-qm", "c"], check=True)
    write_revision(versions, Rev("d", down="c"))  # not committed yet: part of the change too
    graph = Project(load_settings(ini)).graph
    assert revisions_since(graph, "HEAD~1") == ["c", "d"]
    assert revisions_since(graph, "HEAD") == ["d"]


def test_baseline_from_the_command_line(tmp_path: Path, pg_server, capsys) -> None:
    ini = make_project(tmp_path, [Rev("a"), LEAVES_INDEX])
    url = ["--database-url", pg_server.dsn()]
    assert main(["baseline", "-c", str(ini), *url]) == 0
    assert (tmp_path / "harness-baseline.json").is_file()
    (tmp_path / "pyproject.toml").write_text('[tool.harness]\nbaseline = "harness-baseline.json"\n')
    assert main(["sweep", "-c", str(ini), *url]) == 0
    assert "1 accepted by the baseline" in capsys.readouterr().out
    write_revision(tmp_path / "migrations" / "versions", LEAVES_COMMENT)
    assert main(["sweep", "-c", str(ini), *url]) == 1


def test_sweep_since_a_ref_sweeps_only_the_new_revisions(tmp_path: Path, pg_server) -> None:
    ini = make_project(tmp_path, [Rev("a"), LEAVES_INDEX])
    git = ["git", "-C", str(tmp_path), "-c", "user.email=t@t", "-c", "user.name=t"]
    subprocess.run([*git, "init", "-q"], check=True)
    subprocess.run([*git, "add", "."], check=True)
    subprocess.run([*git, "commit", "-qm", "old history with an old defect"], check=True)
    write_revision(tmp_path / "migrations" / "versions", Rev("c", down="b"))
    result = commands.sweep(load_settings(ini), server=pg_server, since="HEAD")
    assert result.ok
    assert result.coverage["revisions"]["c"]["downgrade"] == 1
    assert result.coverage["revisions"]["b"]["downgrade"] == 0

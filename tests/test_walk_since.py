"""Pull-request mode of the walk: only the revisions a change adds are walked, from the state
just before them; the rest of the history is applied from references and never walked down.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

from harness import commands
from harness.failures import write_failure_file
from harness.settings import load_settings
from projects import Rev, make_project, write_revision

OLD_DEFECT = Rev("b", down="a", upgrade='op.create_index("ix_a", "t_a", ["id"])', downgrade="pass")


def committed_history(tmp_path: Path) -> Path:
    """a, then b whose downgrade leaves an index behind: an old defect a full walk finds."""
    ini = make_project(tmp_path, [Rev("a"), OLD_DEFECT])
    git = ["git", "-C", str(tmp_path), "-c", "user.email=t@t", "-c", "user.name=t"]
    subprocess.run([*git, "init", "-q"], check=True)
    subprocess.run([*git, "add", "."], check=True)
    subprocess.run([*git, "commit", "-qm", "old history"], check=True)
    return ini


def walk_since(ini: Path, pg_server):
    return commands.walk(load_settings(ini), seed=4, max_examples=8, steps=8, server=pg_server,
                         since="HEAD")


def test_walk_since_a_ref_walks_only_the_new_revision(tmp_path, pg_server):
    ini = committed_history(tmp_path)
    write_revision(tmp_path / "migrations" / "versions", Rev("c", down="b"))

    result = walk_since(ini, pg_server)

    assert result.ok, [v.headline() for v in result.violations]
    assert list(result.coverage["revisions"]) == ["c"]
    assert result.coverage["revisions"]["c"]["upgrade"] > 0
    assert result.coverage["revisions"]["c"]["downgrade"] > 0
    assert result.coverage["unvisited"] == []


def test_walk_since_a_ref_finds_the_defect_of_the_new_revision(tmp_path, pg_server):
    ini = committed_history(tmp_path)
    write_revision(tmp_path / "migrations" / "versions",
                   Rev("c", down="b", upgrade='op.add_column("t_a", sa.Column("x", sa.Integer))',
                       downgrade="pass"))

    result = walk_since(ini, pg_server)

    assert {(v.property, v.revision) for v in result.violations} == {("schema", "c")}
    # The failure starts where the walk did, at b: its file replays from there.
    path = write_failure_file(tmp_path / "failures", result.failures[0], ini)
    replayed = commands.replay(path, server=pg_server)
    assert {(v.property, v.revision) for v in replayed.violations} == {("schema", "c")}


def test_walk_since_a_ref_with_no_new_revision_walks_nothing(tmp_path, pg_server):
    ini = committed_history(tmp_path)
    result = walk_since(ini, pg_server)
    assert result.ok and result.coverage["steps"] == 0 and result.coverage["revisions"] == {}


def test_walk_since_spends_the_profiles_budget_in_proportion_to_the_revisions_walked(tmp_path, pg_server):
    """One revision of three under ci: a third of its 30 examples, never fewer than dev's 10."""
    ini = committed_history(tmp_path)
    write_revision(tmp_path / "migrations" / "versions", Rev("c", down="b"))

    result = commands.walk(load_settings(ini), seed=4, server=pg_server, since="HEAD")

    assert result.ok and 0 < result.health["examples"] <= 10

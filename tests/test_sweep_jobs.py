"""A sweep shared out among processes: the same result for any number of jobs, every defect
found, nothing left behind; and the references its segments start from, made in one run."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import psycopg
import pytest

from harness import commands
from harness.server import roles
from harness.session import open_session
from harness.settings import load_settings
from harness.snapshot import diff_snapshots, take_snapshot
from harness.runner import Runner
from harness.sweep import SEGMENT, _start_of
from projects import Rev, make_project, numbered
from projects import numbered_id as _rid

LENGTH = 2 * SEGMENT + 10
"""Three segments: the harness's process and two workers each sweep one with ``jobs=3``."""
ROLE = f"sweep_jobs_{os.getpid()}"
"""Created, granted and dropped by the history: roles are cluster-wide, so a segment sharing
its server with another would see it come and go under its feet."""

DEFECTS = {
    20: ('op.create_index("ix_left", "t_r019", ["id"])', "pass", "schema"),
    SEGMENT + 20: ('op.create_table("s", sa.Column("id", sa.Integer))', 'op.drop_table("no_such_table")',
                   "migration_error"),
    2 * SEGMENT + 5: ('op.add_column("t_r104", sa.Column("note", sa.Text))',
                      'op.execute("UPDATE t_r104 SET note = NULL")', "schema"),
}
_CREATE_ROLE = (f"DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{ROLE}') "
                f"THEN CREATE ROLE {ROLE}; END IF; END $$")
ROLE_REVISIONS = {
    SEGMENT + 10: (f'op.execute("{_CREATE_ROLE}")', f'op.execute("DROP ROLE {ROLE}")'),
    SEGMENT + 11: (f'op.execute("GRANT SELECT ON t_r059 TO {ROLE}")',
                   f'op.execute("REVOKE SELECT ON t_r059 FROM {ROLE}")'),
}


def _history() -> list[Rev]:
    return numbered(LENGTH, {**{i: (up, down) for i, (up, down, _) in DEFECTS.items()}, **ROLE_REVISIONS})


def _sweep(ini: Path, server, jobs: int) -> dict:
    result = commands.sweep(load_settings(ini, jobs=jobs), server=server).to_json()
    result.pop("duration_s")
    return result


def test_the_result_is_the_same_for_any_number_of_jobs(tmp_path: Path, pg_server, capfd) -> None:
    ini = make_project(tmp_path, _history())
    scratch, role_names = pg_server.scratch_names(), roles.role_names(pg_server.admin)
    alone = _sweep(ini, pg_server, jobs=1)
    shared = _sweep(ini, pg_server, jobs=3)
    assert shared == alone
    found = {(f["violations"][0]["property"], f["violations"][0]["revision"]) for f in alone["failures"]}
    assert found == {(prop, _rid(i)) for i, (_, _, prop) in DEFECTS.items()}
    assert alone["coverage"]["revisions"][_rid(SEGMENT + 10)] == {"upgrade": 2, "downgrade": 1}
    # Nothing left: scratch databases, the history's role, worker processes' complaints.
    assert pg_server.scratch_names() == scratch
    assert roles.role_names(pg_server.admin) == role_names
    assert "sweep worker" not in capfd.readouterr().err


def test_a_worker_that_dies_gives_its_segments_back(tmp_path: Path, pg_server, capfd, monkeypatch) -> None:
    ini = make_project(tmp_path, _history())
    alone = _sweep(ini, pg_server, jobs=1)
    monkeypatch.setattr(sys, "executable", "/bin/true")
    assert _sweep(ini, pg_server, jobs=3) == alone
    assert "a sweep worker stopped, its segment runs here instead" in capfd.readouterr().err


def test_a_worker_that_cannot_start_leaves_its_segments_here(tmp_path: Path, pg_server, capfd, monkeypatch) -> None:
    ini = make_project(tmp_path, _history()[:SEGMENT + 5])
    alone = _sweep(ini, pg_server, jobs=1)
    monkeypatch.setattr(sys, "executable", str(tmp_path / "no-python"))
    assert _sweep(ini, pg_server, jobs=2) == alone
    assert "cannot start a sweep worker" in capfd.readouterr().err


def test_jobs_below_one_is_an_error_naming_the_setting(tmp_path: Path, pg_server) -> None:
    ini = make_project(tmp_path, _history()[:3])
    with pytest.raises(commands.HarnessError, match="jobs must be 1 or more"):
        commands.sweep(load_settings(ini, jobs=0), server=pg_server)


def test_segments_start_from_templates_made_up_the_history_once(tmp_path: Path, pg_server, monkeypatch) -> None:
    """A process makes the template a segment starts from out of the one the segment before
    it starts from: its templates cost one step per revision, not a run from the base per
    segment. Whichever segments it swept before, the runs that make a segment's template are
    the same; the templates passed on the way are dropped, the last one is kept."""
    ini = make_project(tmp_path, numbered(3 * SEGMENT + 1, {}))
    runs: list[int] = []
    run = Runner.run
    monkeypatch.setattr(Runner, "run", lambda self, steps: runs.append(len(steps)) or run(self, steps))
    settings = load_settings(ini)
    firsts = [_rid(k * SEGMENT + 1) for k in (1, 2, 3)]
    at_last = frozenset({_rid(3 * SEGMENT)})
    with open_session(settings, pg_server) as in_order, open_session(settings, pg_server) as last_only:
        for k, first in enumerate(firsts, 1):
            assert _start_of(in_order, first)[0] == frozenset({_rid(k * SEGMENT)})
            assert runs == [SEGMENT] * k
        assert set(in_order.references._chain.kept) == {at_last}
        runs.clear()
        state, name = _start_of(last_only, firsts[-1])
        assert runs == [SEGMENT] * 3
        assert set(last_only.references._chain.kept) == {at_last}
        # A segment's own session uses the template and leaves it to its owner.
        fresh = last_only.fresh()
        fresh.references.lend(state, name)
        assert fresh.references.template(state) == name
        fresh.close()
        assert name in pg_server.scratch_names()
    assert name not in pg_server.scratch_names()


def test_a_template_made_in_one_run_is_the_one_built_step_by_step(tmp_path: Path, pg_server) -> None:
    ini = make_project(tmp_path, _history()[:12])
    settings = load_settings(ini)
    with open_session(settings, pg_server) as reached, open_session(settings, pg_server) as stepped:
        state = frozenset({_rid(11)})
        reached.references.template(state)
        assert set(reached.references._chain.kept) == {frozenset(), state}
        stepped.references._chain.get(state)
        assert len(stepped.references._chain.kept) == 12
        taken = {}
        for session in (reached, stepped):
            with psycopg.connect(pg_server.dsn(session.references.template(state)), autocommit=True) as conn:
                taken[session] = take_snapshot(conn, version_table=session.project.version_table)
        assert diff_snapshots(taken[reached], taken[stepped]) == []


def test_references_walked_up_once_give_every_state_no_template(tmp_path: Path, pg_server) -> None:
    """A walk needs the snapshots of most states and the databases of a few: the snapshots come
    from one database walked up the path, each patched from its change log, equal to those of
    templates built step by step."""
    ini = make_project(tmp_path, _history()[:12])
    settings = load_settings(ini)
    with open_session(settings, pg_server) as walked, open_session(settings, pg_server) as stepped:
        top = frozenset({_rid(11)})
        stepped.references._chain.get(top)
        walked.references.snapshot(top)
        assert set(walked.references._chain.kept) == {frozenset()}
        for i in range(1, 12):
            state = frozenset({_rid(i)})
            assert walked.references.has_snapshot(state)
            assert diff_snapshots(walked.references.snapshot(state), stepped.references.snapshot(state)) == []
        # Patched from the walked database's change log, all but the first: templates are not
        # read when made, so the state the walk starts from has no snapshot to patch.
        assert walked.references._patched == {frozenset({_rid(i)}) for i in range(2, 12)}
        assert set(walked.references._chain.kept) == {frozenset()}


def test_a_reference_one_run_cannot_reach_is_built_step_by_step(tmp_path: Path, pg_server) -> None:
    # An enum value added in one revision cannot be used by the next in the same transaction,
    # unless the type was made in that transaction too: the run starts from a1's template.
    revisions = [
        Rev("a1", upgrade="op.execute(\"CREATE TYPE mood AS ENUM ('ok')\")", downgrade='op.execute("DROP TYPE mood")'),
        Rev("a2", down="a1", upgrade="op.execute(\"ALTER TYPE mood ADD VALUE 'sad'\")", downgrade="pass"),
        Rev("a3", down="a2", upgrade="op.execute(\"CREATE TABLE m (v mood); INSERT INTO m VALUES ('sad')\")",
            downgrade='op.execute("DROP TABLE m")'),
    ]
    ini = make_project(tmp_path, revisions)
    with open_session(load_settings(ini), pg_server) as session:
        session.references.template(frozenset({"a1"}))
        session.references.template(frozenset({"a3"}))
        assert len(session.references._chain.kept) == 4

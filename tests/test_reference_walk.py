"""The reference walk: one database walked up the canonical path, its states read between the
steps of one env.py run, equal to templates built one run a step; and a revision that only fails
in company gets its reference all the same, a revision that fails alone its failure as before."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.references import Unreachable
from harness.runner import Runner
from harness.session import open_session
from harness.settings import load_settings
from harness.snapshot import diff_snapshots
from projects import READS_BETWEEN_STEPS, Rev, make_project

_OBJECTS = [
    Rev("a1", upgrade="""
        op.execute("CREATE TYPE mood AS ENUM ('ok')")
        op.create_table("t", sa.Column("id", sa.Integer, primary_key=True), sa.Column("m", sa.Text))
    """, downgrade='op.drop_table("t")\nop.execute("DROP TYPE mood")'),
    Rev("a2", down="a1", upgrade="""
        op.create_index("ix_t_m", "t", ["m"])
        op.execute("CREATE VIEW v WITH (security_invoker = true) AS SELECT id FROM t")
        op.execute("COMMENT ON TABLE t IS 'kept'")
    """, downgrade='op.execute("COMMENT ON TABLE t IS NULL")\nop.execute("DROP VIEW v")\nop.drop_index("ix_t_m", "t")'),
    Rev("a3", down="a2", upgrade="""
        op.create_table("u", sa.Column("id", sa.Integer, primary_key=True),
                        sa.Column("t_id", sa.Integer, sa.ForeignKey("t.id")), sa.CheckConstraint("id > 0"))
        op.execute("CREATE FUNCTION f() RETURNS int LANGUAGE sql AS 'SELECT 1'")
        op.execute("ALTER TABLE t ENABLE ROW LEVEL SECURITY")
    """, downgrade='op.execute("ALTER TABLE t DISABLE ROW LEVEL SECURITY")\nop.execute("DROP FUNCTION f()")\nop.drop_table("u")'),
    Rev("a4", down="a3", upgrade='op.add_column("u", sa.Column("note", sa.Text, server_default="x"))',
        downgrade='op.drop_column("u", "note")'),
]
# An enum value added in one revision cannot be used by the next in the same transaction.
_IN_COMPANY = [
    Rev("a1", upgrade="op.execute(\"CREATE TYPE mood AS ENUM ('ok')\")", downgrade='op.execute("DROP TYPE mood")'),
    Rev("a2", down="a1", upgrade="op.execute(\"ALTER TYPE mood ADD VALUE 'sad'\")", downgrade="pass"),
    Rev("a3", down="a2", upgrade="op.execute(\"CREATE TABLE m (v mood); INSERT INTO m VALUES ('sad')\")",
        downgrade='op.execute("DROP TABLE m")'),
    Rev("a4", down="a3"),
]


@pytest.fixture
def runs(monkeypatch) -> list[tuple[int, bool]]:
    """Each env.py run: how many steps, and whether it was read between them."""
    seen: list[tuple[int, bool]] = []
    run = Runner.run

    def counted(self, steps, *, between=None):
        seen.append((len(steps), between is not None))
        return run(self, steps, between=between)

    monkeypatch.setattr(Runner, "run", counted)
    return seen


def _states(*ids: str) -> list[frozenset[str]]:
    return [frozenset({rev}) for rev in ids]


@pytest.mark.parametrize("env", ["cookbook", "per_migration"])
def test_states_read_between_the_steps_of_one_run_are_the_templates(
    tmp_path: Path, pg_server, runs: list[tuple[int, bool]], env: str,
) -> None:
    """After its first run (which tells whether env.py migrates on the harness's connection) the
    walk goes up the rest in one run (one run a step on psycopg2); every state it read is the one
    a template built one run a step has, scoped or whole."""
    ini = make_project(tmp_path, _OBJECTS, env=env)
    for scoped in (True, False):
        settings = load_settings(ini, scoped_snapshots=scoped)
        with open_session(settings, pg_server) as walked, open_session(settings, pg_server) as stepped:
            runs.clear()
            walked.references.snapshot(frozenset({"a4"}))
            assert runs == ([(1, False), (3, True)] if READS_BETWEEN_STEPS else [(1, False)] * 4)
            stepped.references._chain.get(frozenset({"a4"}))
            for state in _states("a1", "a2", "a3", "a4"):
                assert diff_snapshots(walked.references.snapshot(state), stepped.references.snapshot(state)) == []
                assert walked.references.snapshot(state).versions == ((next(iter(state)),),)


def test_a_revision_failing_only_in_company_gets_its_reference(tmp_path: Path, pg_server,
                                                               runs: list[tuple[int, bool]]) -> None:
    """The run of a2 to a4 fails on a3 (a2's enum value is not committed yet): what it read is
    forgotten and the walk goes again from the nearest template, one run a step."""
    ini = make_project(tmp_path, _IN_COMPANY)
    settings = load_settings(ini)
    with open_session(settings, pg_server) as walked, open_session(settings, pg_server) as stepped:
        walked.references.snapshot(frozenset({"a4"}))
        assert runs == ([(1, False), (3, True)] if READS_BETWEEN_STEPS else []) + [(1, False)] * 4
        stepped.references._chain.get(frozenset({"a4"}))
        for state in _states("a1", "a2", "a3", "a4"):
            assert diff_snapshots(walked.references.snapshot(state), stepped.references.snapshot(state)) == []


_FAILING = {
    "in-a-statement": ('op.execute("SELECT * FROM no_such_table")', "no_such_table"),
    # Read between the steps before it fails: the run's commit, at its end, is what fails.
    "at-commit": ('op.execute("CREATE TABLE d (id int PRIMARY KEY, parent int REFERENCES d DEFERRABLE '
                  'INITIALLY DEFERRED); INSERT INTO d VALUES (1, 2)")', "ForeignKeyViolation"),
}


@pytest.mark.parametrize("failing", list(_FAILING))
def test_a_revision_failing_alone_is_unreachable_as_before(tmp_path: Path, pg_server, failing: str) -> None:
    """A failure of the walk's run is reported from a run of the failing revision alone: its
    step, its error; the states before it still have their references, the failing one none."""
    body, error = _FAILING[failing]
    broken = [*_OBJECTS[:2], Rev("a3", down="a2", upgrade=body), Rev("a4", down="a3")]
    ini = make_project(tmp_path, broken)
    with open_session(load_settings(ini), pg_server) as session:
        with pytest.raises(Unreachable) as raised:
            session.references.snapshot(frozenset({"a4"}))
        assert raised.value.step.revision == "a3" and error in str(raised.value)
        with pytest.raises(Unreachable):
            session.references.snapshot(frozenset({"a3"}))
        assert raised.value.outcome.heads == frozenset({"a2"})
        assert session.references.has_snapshot(frozenset({"a2"}))
        assert not session.references.has_snapshot(frozenset({"a3"}))

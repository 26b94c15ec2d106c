"""The read a step's check runs meanwhile, in a thread (see harness.step_check): on its own, and
in a step checked on a real scratch database."""

from __future__ import annotations

import contextlib
import threading

import psycopg
import pytest

from harness.errors import HarnessError
from harness.graph import Step
from harness.schema_watch import SchemaWatch
from harness.session import Session
from harness.settings import load_settings
from harness.step_check import _meanwhile, check_step

from projects import Rev, make_project


def test_the_read_runs_while_the_block_does_and_is_over_when_it_ends():
    started, release = threading.Event(), threading.Event()
    done = []

    def read():
        started.set()
        release.wait(5)
        done.append(True)

    with _meanwhile(read) as reading:
        assert started.wait(5), "the read did not start before the block's own work"
        release.set()
    assert done == [True]
    assert reading.error is None


def test_the_read_s_error_is_handed_back_not_lost():
    def read():
        raise HarnessError("cannot read every row")

    with _meanwhile(read) as reading:
        pass
    assert isinstance(reading.error, HarnessError)


def test_without_a_read_no_thread_starts():
    before = threading.active_count()
    with _meanwhile(None) as reading:
        assert threading.active_count() == before
    assert reading.error is None


def test_the_block_s_own_error_waits_for_the_read():
    finished = []

    def read():
        threading.Event().wait(0.05)
        finished.append(True)

    with pytest.raises(ValueError):
        with _meanwhile(read):
            raise ValueError("the schema check failed")
    assert finished == [True]


@pytest.fixture
def stepping(tmp_path, pg_server):
    """A scratch database at base of a history of one good revision ``a`` (table ``t_a``) and
    one failing revision ``b``; its watch on a connection of its own, the other connection for
    the reads; and ``step(revision, alongside)``, which runs and checks one upgrade."""
    ini = make_project(tmp_path, [Rev("a"), Rev("b", down="a", upgrade='raise RuntimeError("b fails")')])
    session = Session(load_settings(ini), pg_server)
    database = pg_server.create_database(template=session.references.template(frozenset()))
    with contextlib.ExitStack() as stack:
        stack.callback(session.close)
        stack.callback(pg_server.drop_database, database.name)
        watching = stack.enter_context(psycopg.connect(database.dsn, autocommit=True))
        conn = stack.enter_context(psycopg.connect(database.dsn, autocommit=True))
        runner = stack.enter_context(session.project.runner(database))
        watch = SchemaWatch(session, watching, frozenset())

        def step(revision, alongside):
            return check_step(session.project, conn, watch, lambda: runner.run([Step("upgrade", revision)]),
                              command=f"alembic upgrade {revision}", revision=revision, rows={},
                              canonical=True, alongside=alongside)

        yield conn, step


def test_the_read_sees_what_the_step_committed(stepping):
    conn, step = stepping
    seen = []
    checked = step("a", lambda: seen.append(conn.execute("SELECT count(*) FROM t_a").fetchone()[0]))
    assert checked.schema_checked and checked.violations == () and checked.state == frozenset({"a"})
    assert seen == [0]


def test_an_error_of_the_read_is_raised_once_the_schema_is_checked(stepping):
    conn, step = stepping
    with pytest.raises(psycopg.errors.DivisionByZero):
        step("a", lambda: conn.execute("SELECT 1/0"))
    assert conn.execute("SELECT version_num FROM alembic_version").fetchall() == [("a",)]


def test_a_step_that_fails_reads_nothing(stepping):
    conn, step = stepping
    seen = []
    step("a", None)
    checked = step("b", lambda: seen.append(True))
    assert not checked.outcome.ok and [v.property for v in checked.violations] == ["migration_error"]
    assert seen == []

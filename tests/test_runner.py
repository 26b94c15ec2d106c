"""The runner against a real PostgreSQL: exact steps, Alembic's bookkeeping, failures as data.

Every default revision of the test projects creates table ``t_<id>``, so the tables present
tell which revisions are really applied, independently of ``alembic_version``.
"""

from __future__ import annotations

import os
import re
import signal
import time
from pathlib import Path

import psycopg

import pytest
import sqlalchemy as sa
from alembic.config import Config
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from harness.errors import HarnessError
from harness.graph import BASE, RevisionGraph, Step
from harness.runner import Runner

from projects import DRIVER, ENV_VAR_NAME, READS_BETWEEN_STEPS, Rev, chain, make_project


DIAMOND = [*chain("a", "b", "c"), Rev("d", down="a"), Rev("m", down=("c", "d")), Rev("e", down="m")]


def S(*ids: str) -> frozenset[str]:
    return frozenset(ids)


def up(*revs: str) -> list[Step]:
    return [Step("upgrade", r) for r in revs]


def down(*revs: str) -> list[Step]:
    return [Step("downgrade", r) for r in revs]


@pytest.fixture
def make_runner(tmp_path, scratch_db):
    runners = []

    def make(revs, env="cookbook", env_py=None, ini_url=None, **options):
        ini = make_project(tmp_path / f"p{len(runners)}", revs, env=env, env_py=env_py,
                           url=ini_url)
        config = Config(str(ini))
        graph = RevisionGraph.load(config)
        runner = Runner(config, graph, url=scratch_db.sqlalchemy_url(DRIVER), **options)
        runners.append(runner)
        return graph, runner

    yield make
    for runner in runners:
        runner.close()


def tables(pg_conn) -> set[str]:
    rows = pg_conn.execute(
        "SELECT tablename FROM pg_tables WHERE schemaname = 'public' AND tablename <> "
        "'alembic_version'").fetchall()
    return {r[0] for r in rows}


def tables_for(graph: RevisionGraph, state) -> set[str]:
    return {f"t_{r}" for r in graph.applied(state)}


def walk(graph, runner, pg_conn, steps, state=BASE):
    """Run ``steps`` one per env.py run, checking the database against the graph each time."""
    for step in steps:
        outcome = runner.run([step])
        assert outcome.ok, outcome.error
        assert outcome.heads_before == state
        state = graph.after(state, step)
        assert outcome.heads == state, step
        assert tables(pg_conn) == tables_for(graph, state), step
    return state


def test_linear(make_runner, pg_conn):
    graph, runner = make_runner(chain("r1", "r2", "r3"))
    state = walk(graph, runner, pg_conn, up("r1", "r2", "r3"))
    assert state == S("r3") and runner.current() == S("r3")
    walk(graph, runner, pg_conn, down("r3", "r2", "r1"), state)
    assert runner.current() == BASE


def test_branches_walked_in_both_orders(make_runner, pg_conn):
    graph, runner = make_runner(DIAMOND)
    state = walk(graph, runner, pg_conn, up("a", "b", "c", "d"))
    assert state == S("c", "d")
    state = walk(graph, runner, pg_conn, down("c", "b", "d"), state)
    assert state == S("a")
    state = walk(graph, runner, pg_conn, up("d", "b", "c"), state)
    state = walk(graph, runner, pg_conn, down("d", "c"), state)
    assert state == S("b")


def test_merge(make_runner, pg_conn):
    graph, runner = make_runner(DIAMOND)
    state = walk(graph, runner, pg_conn, up("a", "b", "c", "d", "m", "e"))
    assert state == S("e")
    state = walk(graph, runner, pg_conn, down("e", "m"), state)
    assert state == S("c", "d")


def test_depends_on(make_runner, pg_conn):
    graph, runner = make_runner([*chain("x1", "x2"), Rev("y1", depends_on="x1")])
    state = walk(graph, runner, pg_conn, up("x1", "y1"))
    assert state == S("y1")  # Alembic forgets x1: y1 implies it
    state = walk(graph, runner, pg_conn, up("x2") + down("y1"), state)
    assert state == S("x2")


HISTORY = [*chain("a", "b", "c"), Rev("d", down="a"), Rev("m", down=("c", "d")),
           Rev("x1", branch_labels="xs"), Rev("y1", down="m", depends_on="xs"), Rev("z1")]


@pytest.fixture(scope="module")
def shared(tmp_path_factory, pg_server):
    with pg_server.scratch() as db:
        ini = make_project(tmp_path_factory.mktemp("walk"), HISTORY, env="per_migration")
        config = Config(str(ini))
        graph = RevisionGraph.load(config)
        with Runner(config, graph, url=db.sqlalchemy_url(DRIVER)) as runner, \
                psycopg.connect(db.dsn, autocommit=True) as conn:
            yield graph, runner, conn


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_random_walks_match_the_graph(shared, data):
    graph, runner, conn = shared
    assert runner.jump("downgrade", "base").ok
    state = BASE
    for _ in range(10):
        moves = up(*graph.upgrade_moves(state)) + down(*graph.downgrade_moves(state))
        step = data.draw(st.sampled_from(moves))
        outcome = runner.run([step])
        assert outcome.ok, outcome.error
        state = graph.after(state, step)
        assert outcome.heads == state
        assert tables(conn) == tables_for(graph, state)


def test_jumps(make_runner, pg_conn):
    graph, runner = make_runner(DIAMOND)
    outcome = runner.jump("upgrade", "heads")
    assert outcome.ok and outcome.heads == S("e")
    assert set(outcome.steps) == set(up(*graph.revisions))
    assert tables(pg_conn) == tables_for(graph, S("e"))
    outcome = runner.jump("downgrade", "c")  # un-applies what needs c, and only that
    assert outcome.ok and outcome.heads == S("c", "d") and outcome.steps == tuple(down("e", "m"))
    outcome = runner.jump("downgrade", "base")
    assert outcome.ok and outcome.heads == BASE and tables(pg_conn) == set()
    with pytest.raises(HarnessError, match="nope"):
        runner.jump("upgrade", "nope")


def test_multi_step_run(make_runner, pg_conn):
    graph, runner = make_runner(DIAMOND)
    outcome = runner.run(up("a", "d", "b", "c", "m"))
    assert outcome.ok and outcome.heads == S("m") and outcome.heads_before == BASE


def test_illegal_steps_raise_before_anything_runs(make_runner, pg_conn):
    graph, runner = make_runner(DIAMOND)
    with pytest.raises(HarnessError, match="cannot upgrade 'c' from {a}: .* needs b"):
        runner.run(up("a", "c"))
    assert tables(pg_conn) == set() and runner.current() == BASE
    assert runner.run(up("a")).ok  # and the runner is still usable


FAILING = [Rev("a"), Rev("b", down="a", upgrade="""
    op.create_table("t_b", sa.Column("id", sa.Integer))
    op.execute("SELECT * FROM no_such_table")
"""), Rev("p", down="a", upgrade="raise ValueError('boom')")]


@pytest.mark.parametrize("env", ["cookbook", "per_migration", "generic"])
def test_failing_migration_is_an_outcome_and_rolled_back(make_runner, pg_conn, env):
    graph, runner = make_runner(FAILING, env=env)
    assert runner.run(up("a")).ok
    outcome = runner.run(up("b"))
    assert not outcome.ok and not outcome.timed_out
    assert outcome.revision == "b" and outcome.failed_step == Step("upgrade", "b")
    assert "UndefinedTable" in outcome.error and "no_such_table" in outcome.error
    assert outcome.error.startswith("upgrade b (")
    path, line = outcome.location.rsplit(":", 1)
    source = Path(path).read_text().splitlines()
    assert path.endswith("b_.py") and "no_such_table" in source[int(line) - 1]
    assert "SELECT * FROM no_such_table" in outcome.detail
    assert outcome.heads == S("a") and tables(pg_conn) == {"t_a"}
    outcome = runner.run(up("p"))
    assert outcome.revision == "p" and "ValueError: boom" in outcome.error
    assert runner.run(down("a")).ok  # still usable
    assert tables(pg_conn) == set()


def test_failure_in_a_multi_step_run(make_runner, pg_conn):
    # one transaction: everything rolls back; per migration: the steps before stay
    graph, runner = make_runner(FAILING)
    outcome = runner.run(up("a", "b"))
    assert outcome.revision == "b" and outcome.heads == BASE and tables(pg_conn) == set()
    graph, runner = make_runner(FAILING, env="per_migration")
    outcome = runner.run(up("a", "b"))
    assert outcome.revision == "b" and outcome.heads == S("a") and tables(pg_conn) == {"t_a"}


def test_error_at_commit_belongs_to_the_step(make_runner, pg_conn):
    graph, runner = make_runner([Rev("a", upgrade="""
        op.execute("CREATE TABLE t_a (id int PRIMARY KEY, parent int REFERENCES t_a "
                   "DEFERRABLE INITIALLY DEFERRED)")
        op.execute("INSERT INTO t_a VALUES (1, 2)")
    """)])
    outcome = runner.run(up("a"))
    assert outcome.revision == "a" and "ForeignKeyViolation" in outcome.error
    assert tables(pg_conn) == set()


HANGS = {
    # in SQL: cut off by statement_timeout, also in an env.py that builds its own engine
    "in-sql": ('op.execute("SELECT pg_sleep(10)")', {"statement_timeout_ms": 300}, "statement timeout"),
    # in Python, holding a transaction and its lock open: cut off by the step's wall-clock limit
    "in-python": ('op.execute("LOCK TABLE t_a")\nimport time\ntime.sleep(60)', {"step_timeout_s": 0.5},
                  "step_timeout"),
}


@pytest.mark.parametrize("hang", list(HANGS))
@pytest.mark.parametrize("env", ["cookbook", "generic", "env_var"])
def test_hanging_migration_is_cut_off_and_the_runner_goes_on(make_runner, pg_conn, env, hang):
    body, options, named = HANGS[hang]
    graph, runner = make_runner([Rev("a"), Rev("b", down="a", upgrade=body)],
                                env=env, env_var=ENV_VAR_NAME, **options)
    assert runner.run(up("a")).ok
    started = time.monotonic()
    outcome = runner.run(up("b"))
    assert time.monotonic() - started < 10
    assert not outcome.ok and outcome.timed_out and outcome.revision == "b"
    assert named in outcome.error
    assert outcome.location is not None and "/versions/b_.py:" in outcome.location
    assert outcome.heads == S("a")
    assert "PGOPTIONS" not in os.environ or "statement_timeout" not in os.environ["PGOPTIONS"]
    assert signal.getsignal(signal.SIGALRM) is signal.SIG_DFL
    assert runner.run(down("a")).ok and tables(pg_conn) == set()


def test_a_timer_armed_by_someone_else_survives_a_step(make_runner):
    graph, runner = make_runner(chain("a"), step_timeout_s=30)
    fired = []
    signal.signal(signal.SIGALRM, lambda *_: fired.append(1))
    try:
        signal.setitimer(signal.ITIMER_REAL, 2)
        assert runner.run(up("a")).ok
        left, _ = signal.getitimer(signal.ITIMER_REAL)
        assert 0 < left < 2
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, signal.SIG_DFL)


def test_sys_exit_in_a_migration_is_that_migration_failing(make_runner, pg_conn):
    graph, runner = make_runner([Rev("a"), Rev("b", down="a", upgrade="import sys\nsys.exit(3)")])
    assert runner.run(up("a")).ok
    outcome = runner.run(up("b"))
    assert not outcome.ok and not outcome.timed_out and outcome.revision == "b"
    assert "SystemExit: 3" in outcome.error
    assert runner.run(down("a")).ok and tables(pg_conn) == set()


CONCURRENTLY = [Rev("a"), Rev("b", down="a", upgrade="""
    with op.get_context().autocommit_block():
        op.execute("CREATE INDEX CONCURRENTLY ix_t_a ON t_a (id)")
""", downgrade="""
    with op.get_context().autocommit_block():
        op.execute("DROP INDEX CONCURRENTLY ix_t_a")
"""), Rev("c", down="b")]


@pytest.mark.parametrize("env", ["cookbook", "per_migration", "generic"])
def test_autocommit_block_runs_create_index_concurrently(make_runner, pg_conn, env):
    graph, runner = make_runner(CONCURRENTLY, env=env)
    for steps in (up("a"), up("b"), up("c"), down("c"), down("b"), up("b", "c")):
        outcome = runner.run(steps)
        assert outcome.ok, outcome.error
    valid = pg_conn.execute("SELECT indisvalid FROM pg_index WHERE indexrelid = 'ix_t_a'::regclass")
    assert valid.fetchone() == (True,)
    assert runner.current() == S("c")
    assert runner.jump("downgrade", "base").ok and tables(pg_conn) == set()


def test_failure_inside_an_autocommit_block(make_runner, pg_conn):
    graph, runner = make_runner([Rev("a"), Rev("b", down="a", upgrade="""
        with op.get_context().autocommit_block():
            op.execute("CREATE INDEX CONCURRENTLY ix ON no_such_table (id)")
    """)], env="per_migration")
    assert runner.run(up("a")).ok
    outcome = runner.run(up("b"))
    assert outcome.revision == "b" and "UndefinedTable" in outcome.error
    assert runner.run(down("a")).ok and runner.current() == BASE


@pytest.mark.parametrize("source, expected", [
    ("from alembic import context\nimport no_such_app_module\n",
     r"env\.py failed \(.*env\.py:2\): ModuleNotFoundError: No module named 'no_such_app_module'"),
    ("from alembic import context\ndef broken(:\n", r"env\.py failed \(.*env\.py:2\): SyntaxError"),
    ("from alembic import context\n", r"env\.py did not call context\.run_migrations\(\)"),
])
def test_broken_env_py_is_an_outcome(make_runner, pg_conn, source, expected):
    graph, runner = make_runner(chain("a"), env_py=source)
    outcome = runner.run(up("a"))
    assert not outcome.ok and outcome.failed_step is None and outcome.revision is None
    assert re.search(expected, outcome.error), outcome.error
    assert outcome.heads == BASE


def test_env_py_reaches_the_scratch_database_not_alembic_ini(make_runner, pg_conn):
    graph, runner = make_runner(
        chain("a"), env="generic",
        ini_url="postgresql+psycopg://nobody:secret@127.0.0.1:1/production")
    assert runner.run(up("a")).ok and tables(pg_conn) == {"t_a"}


def test_env_var_shape(make_runner, pg_conn):
    graph, runner = make_runner(chain("a", "b"), env="env_var", env_var=ENV_VAR_NAME)
    assert runner.run(up("a", "b")).ok and tables(pg_conn) == {"t_a", "t_b"}
    assert ENV_VAR_NAME not in os.environ


def test_session_state_does_not_leak_between_runs(make_runner, pg_conn):
    # a migration leaving a session setting behind must not change the next command's run
    graph, runner = make_runner([
        Rev("a", upgrade="""
            op.execute("CREATE TEMP TABLE scratch (id int)")
            op.execute("SET default_transaction_read_only = on")
        """, downgrade="pass"),
        Rev("b", down="a", upgrade="""
            op.execute("CREATE TEMP TABLE scratch (id int)")
            op.create_table("t_b", sa.Column("id", sa.Integer))
        """),
    ], env="per_migration")
    assert runner.run(up("a")).ok
    outcome = runner.run(up("b"))
    assert outcome.ok, outcome.error
    assert tables(pg_conn) == {"t_b"}


def test_connection_is_idle_between_runs(make_runner, scratch_db, pg_conn):
    graph, runner = make_runner(chain("a"))
    assert runner.run(up("a")).ok
    states = pg_conn.execute(
        "SELECT state FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
        (scratch_db.name,)).fetchall()
    assert states == [("idle",)]


@pytest.mark.parametrize("env", ["cookbook", "per_migration", "builtin"])
def test_a_run_starts_from_the_heads_the_last_one_left(make_runner, env):
    """Alembic reads the version table before a run's first migration; the runner tells it
    instead the heads it read when the last run ended, unless there were none. Also where the
    harness's own env configures the run instead of the project's env.py."""
    graph, runner = make_runner(chain("a", "b", "c"), env="cookbook" if env == "builtin" else env)
    if env == "builtin":
        runner = Runner(runner.config, graph, url=runner.url, env="builtin")
    statements: list[str] = []

    def seen(conn, cursor, statement, *rest):
        statements.append(statement.strip())

    read_first = []
    state = BASE
    sa.event.listen(sa.engine.Engine, "before_cursor_execute", seen)
    try:
        for steps in (up("a"), up("b"), down("b"), up("b", "c"), down("c", "b", "a"), up("a")):
            statements.clear()
            outcome = runner.run(steps)
            assert outcome.ok, outcome.error
            assert outcome.heads_before == state
            state = outcome.heads
            first = next(i for i, s in enumerate(statements) if s.startswith(("CREATE TABLE t_", "DROP TABLE t_")))
            read_first.append(any("version_num" in s or "pg_class" in s for s in statements[:first]))
    finally:
        sa.event.remove(sa.engine.Engine, "before_cursor_execute", seen)
        runner.close()
    assert read_first == [True, False, False, False, False, True]
    assert state == S("a")


def test_a_connection_opened_ahead_is_the_one_the_runs_use(make_runner, scratch_db, pg_conn):
    """The session opened ahead is there before any run, and the run goes on it (no second)."""
    graph, runner = make_runner(chain("a"))
    others = ("SELECT array_agg(pid) FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
              (scratch_db.name,))
    runner.open_ahead()
    deadline = time.monotonic() + 10
    while (ahead := pg_conn.execute(*others).fetchone()[0]) is None and time.monotonic() < deadline:
        time.sleep(0.01)
    assert ahead is not None and len(ahead) == 1
    assert runner.run(up("a")).ok
    assert pg_conn.execute(*others).fetchone()[0] == ahead


@pytest.mark.filterwarnings("error::pytest.PytestUnhandledThreadExceptionWarning")
def test_a_connection_that_fails_ahead_is_reported_by_the_first_run(tmp_path, pg_server):
    """Opening ahead keeps its failure to itself (no traceback from its thread); the first run
    connects again and says why."""
    ini = make_project(tmp_path, chain("a"))
    config = Config(str(ini))
    url = pg_server.dsn("harness_no_such_database").replace("postgresql", f"postgresql+{DRIVER}", 1)
    runner = Runner(config, RevisionGraph.load(config), url=url)
    try:
        runner.open_ahead()
        with pytest.raises(HarnessError, match="cannot connect to .*harness_no_such_database"):
            runner.run(up("a"))
    finally:
        runner.close()


# --- reads between the steps of one run -------------------------------------------------------

@pytest.mark.parametrize("env", ["cookbook", "per_migration"])
def test_a_read_between_steps_sees_each_step_and_leaves_nothing(make_runner, pg_conn, env):
    """Each read sees the step just run, committed or not; what it creates or sets (here a
    search_path that would leave the next migration nowhere to create its table) is gone
    before the next migration runs."""
    graph, runner = make_runner(chain("a", "b", "c"), env=env)
    seen = []

    def between(step, conn):
        seen.append((step.revision, conn.execute("SELECT count(*) FROM pg_tables WHERE tablename LIKE 't!_%' "
                                                 "ESCAPE '!'").fetchone()[0]))
        conn.execute(f"CREATE TABLE read_{step.revision} (id int)")
        conn.execute("SET search_path = nowhere")
        conn.execute("SELECT set_config('lock_timeout', '1ms', true)")

    if not READS_BETWEEN_STEPS:
        with pytest.raises(HarnessError, match="need a psycopg 3 connection, not psycopg2"):
            runner.run(up("a", "b", "c"), between=between)
        assert tables(pg_conn) == set()
        return
    outcome = runner.run(up("a", "b", "c"), between=between)
    assert outcome.ok, outcome.error
    assert seen == [("a", 1), ("b", 2), ("c", 3)]
    assert tables(pg_conn) == {"t_a", "t_b", "t_c"} and outcome.heads == S("c")
    assert runner.shares_connection


@pytest.mark.parametrize("failing", ["python", "sql"])
def test_what_a_read_between_steps_raises_is_raised_not_reported(make_runner, pg_conn, failing):
    """A read that fails is the harness's own error, not the migration's: the run ends
    (rolled back like a failed step) and the runner goes on."""
    graph, runner = make_runner(chain("a", "b"))

    def between(step, conn):
        if failing == "python":
            raise RuntimeError("the reader broke")
        conn.execute("SELECT * FROM the_reader_broke")

    raised = (RuntimeError, psycopg.errors.UndefinedTable) if READS_BETWEEN_STEPS else HarnessError
    with pytest.raises(raised, match="reader.broke" if READS_BETWEEN_STEPS else "psycopg 3"):
        runner.run(up("a", "b"), between=between)
    assert tables(pg_conn) == set()
    assert runner.run(up("a", "b")).ok and tables(pg_conn) == {"t_a", "t_b"}


@pytest.mark.parametrize(("env", "shares"), [("cookbook", READS_BETWEEN_STEPS), ("generic", False)])
def test_the_runner_knows_whether_env_py_migrates_on_its_connection(make_runner, pg_conn, env, shares):
    """An env.py that builds its own engine migrates where no read between steps could be made
    without a connection of its own, and so does psycopg2: the runner says so after its first
    run."""
    graph, runner = make_runner(chain("a", "b"), env=env)
    assert runner.shares_connection is None
    assert runner.run(up("a")).ok
    assert runner.shares_connection is shares
    if not shares:
        # Asked anyway, the read is refused: there is no connection to read what env.py did.
        with pytest.raises(HarnessError, match="psycopg 3|a connection of its own"):
            runner.run(up("b"), between=lambda step, conn: None)
        assert runner.current() == S("a")

"""Run migration steps through the project's own env.py, on a connection the harness owns.

Each run is what ``alembic upgrade``/``downgrade`` does -- an :class:`EnvironmentContext` around
``script.run_env()`` -- except that the work function hands Alembic exactly the revisions the
harness chose (``MigrationStep.upgrade_from_script`` / ``downgrade_from_script``). Alembic's own
``HeadMaintainer`` then writes ``alembic_version`` for branches and merges as the real command
would, and nothing depends on relative steps, which Alembic cannot walk at branch points.

The connection is handed to env.py through ``config.attributes["connection"]`` *outside* any
transaction: env.py's ``context.begin_transaction()`` then begins and commits real transactions,
which is what ``transaction_per_migration`` and ``autocommit_block()`` need. (Handed in inside a
transaction, Alembic treats it as external: ``begin_transaction()`` does nothing and
``autocommit_block()`` fails an assertion -- the crash pytest-alembic users report.)

Whatever a migration or env.py raises becomes a :class:`StepOutcome`; only mistakes of the
harness itself (an illegal step, an unknown revision) raise :class:`HarnessError`.
"""

from __future__ import annotations

import contextlib
import os
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable, Iterable, Iterator, Sequence

import sqlalchemy as sa
from alembic.runtime.environment import EnvironmentContext
from alembic.runtime.migration import MigrationStep
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool

from .errors import HarnessError
from .graph import Op, RevisionGraph, State, Step, source_location

if TYPE_CHECKING:
    from alembic.config import Config
    from alembic.runtime.migration import MigrationContext, RevisionStep
    from sqlalchemy.engine import URL, Connection

QUERY_CANCELED = "57014"  # SQLSTATE of a statement stopped by statement_timeout


@dataclass(frozen=True)
class StepOutcome:
    """What one run of env.py did.

    ``heads`` is ``alembic_version`` read back after the run, so it tells what was really
    committed, also after a failure (with ``transaction_per_migration`` or an
    ``autocommit_block`` the steps before the failing one stay applied). It holds raw rows:
    :meth:`RevisionGraph.state_of` turns them into a state. None when the table could not be
    read.
    """

    ok: bool
    steps: tuple[Step, ...]
    """The steps asked for; for a jump, the steps Alembic planned (empty if planning failed)."""
    heads_before: frozenset[str] | None
    """``alembic_version`` as Alembic read it at the start; None if env.py never got that far."""
    heads: frozenset[str] | None
    duration_s: float
    failed_step: Step | None = None
    """The step that raised (or whose transaction failed to commit); None for env.py errors."""
    error: str | None = None
    """One line: the step, where, the exception class and its first message line."""
    detail: str | None = None
    """The full exception text, with the SQL statement when there was one."""
    location: str | None = None
    """``path:line`` in the revision file or env.py that raised."""
    timed_out: bool = False

    @property
    def revision(self) -> str | None:
        """The id of the revision that failed, if a revision failed."""
        return self.failed_step.revision if self.failed_step else None


class Runner:
    """Runs steps of one project against one database, reusing the graph's loaded scripts.

    ``url`` is the database's SQLAlchemy URL with the project's driver. ``env_var``, when set,
    names an environment variable set to ``url`` during each run, for env.py files that build
    their own engine from the application's settings; ``sqlalchemy.url`` in ``config`` is set
    to ``url`` too, so an env.py that ignores the handed connection still reaches the scratch
    database and never the one in alembic.ini.
    """

    def __init__(
        self,
        config: Config,
        graph: RevisionGraph,
        url: str | URL,
        statement_timeout_ms: int = 60_000,
        env_var: str | None = None,
    ) -> None:
        self.config = config
        self.graph = graph
        self.url = url if isinstance(url, str) else url.render_as_string(hide_password=False)
        self.statement_timeout_ms = int(statement_timeout_ms)
        self.env_var = env_var
        # future=True: SQLAlchemy 1.4 then gives 2.0-style connections (autobegin, commit());
        # 2.x accepts and ignores it
        self._engine = sa.create_engine(_sync_url(self.url), poolclass=NullPool, future=True)
        self._conn: Connection | None = None
        # where env.py keeps alembic_version; learnt from the MigrationContext of each run
        self._version_table: tuple[str, str | None] = ("alembic_version", None)

    def __enter__(self) -> Runner:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the connection and engine; the database can then be dropped or cloned."""
        if self._conn is not None:
            self._conn.close()
            self._conn = None
        self._engine.dispose()

    # -- public moves ----------------------------------------------------------------------

    def run(self, steps: Sequence[Step]) -> StepOutcome:
        """Apply ``steps`` in one env.py run, exactly those revisions, in that order.

        The steps must be legal one after the other from the database's current state
        (:class:`HarnessError` otherwise, before anything runs). Like one ``alembic`` command,
        they share env.py's transaction layout: one transaction unless env.py asks for one
        per migration.
        """
        steps = tuple(steps)

        def plan(heads: frozenset[str]) -> Sequence[Step]:
            state = self.graph.state_of(heads)
            for step in steps:
                state = self.graph.after(state, step)
            return steps

        last = steps[-1] if steps else None
        destination = last.revision if last is not None and last.op == "upgrade" else None
        return self._execute(plan, destination, steps)

    def jump(self, op: Op, target: str) -> StepOutcome:
        """``alembic <op> <target>``, steps planned by Alembic (to a revision, heads, base)."""
        if op not in ("upgrade", "downgrade"):
            raise HarnessError(f"a jump is an upgrade or a downgrade, not {op!r}")

        def plan(heads: frozenset[str]) -> Sequence[Step]:
            return self.graph.plan(op, target, heads)

        return self._execute(plan, target, ())

    def current(self) -> frozenset[str]:
        """The rows of ``alembic_version`` now (empty when the table does not exist)."""
        conn = self._connection()
        with _ended(conn):
            return self._read_heads(conn)

    # -- one env.py run --------------------------------------------------------------------

    def _connection(self) -> Connection:
        if self._conn is None or self._conn.closed or self._conn.invalidated:
            try:
                self._conn = self._engine.connect()
            except sa.exc.DBAPIError as exc:
                raise HarnessError(
                    f"cannot connect to {make_url(self.url).render_as_string()}: "
                    f"{_first_line(str(exc.orig))}"
                ) from exc
        return self._conn

    def _fresh_session(self) -> Connection:
        """The connection, reset as if new, outside any transaction.

        Each run stands for a separate ``alembic`` command: what a previous migration SET,
        assumed (SET ROLE) or created as TEMP must not leak into the next. A connection that
        died in between (a migration may terminate other backends) is replaced once.
        """
        try:
            return self._reset(self._connection())
        except sa.exc.DBAPIError:
            self._discard_connection()
        try:
            return self._reset(self._connection())
        except sa.exc.DBAPIError as exc:
            self._discard_connection()
            raise HarnessError(
                f"cannot use the database at {make_url(self.url).render_as_string()}: "
                f"{_first_line(str(exc.orig))}"
            ) from exc

    def _reset(self, conn: Connection) -> Connection:
        conn.exec_driver_sql("SET SESSION AUTHORIZATION DEFAULT")
        conn.exec_driver_sql("RESET ALL")
        conn.exec_driver_sql("DISCARD TEMP")
        conn.exec_driver_sql(f"SET statement_timeout = {self.statement_timeout_ms}")
        conn.commit()
        return conn

    def _execute(
        self,
        plan: Callable[[frozenset[str]], Sequence[Step]],
        destination: str | None,
        steps: tuple[Step, ...],
    ) -> StepOutcome:
        tracker = _Tracker(self.graph, plan)
        conn = self._fresh_session()
        started = time.perf_counter()
        error: Exception | None = None
        try:
            with self._environment(conn):
                with EnvironmentContext(
                    self.config, self.graph.script, fn=tracker, destination_rev=destination
                ):
                    self.graph.script.run_env()
            if conn.in_transaction():  # env.py ran migrations without begin_transaction()
                conn.commit()
        except Exception as exc:
            error = exc
        except BaseException:
            self._discard_connection()
            raise
        duration = time.perf_counter() - started
        if error is not None:
            # A new session is cheaper to trust than one that failed mid-way (aborted
            # transaction, isolation level left by an autocommit block, a killed backend).
            self._discard_connection()
        if tracker.harness_error is not None:
            raise tracker.harness_error
        if tracker.context is not None:
            self._version_table = (
                tracker.context.version_table, tracker.context.version_table_schema
            )
        heads = self._heads_after()
        common = dict(
            steps=tracker.steps if tracker.steps is not None else steps,
            heads_before=tracker.heads_before,
            heads=heads,
            duration_s=duration,
        )
        if error is not None:
            return self._failure(error, tracker, common)
        if not tracker.called:
            return StepOutcome(
                ok=False,
                error=f"{self.graph.script.env_py_location} did not call "
                      "context.run_migrations()",
                **common,
            )
        return StepOutcome(ok=True, **common)

    @contextlib.contextmanager
    def _environment(self, conn: Connection) -> Iterator[None]:
        """Point env.py at the scratch database, whichever way it looks for one."""
        self.config.attributes["connection"] = conn
        # configparser interpolates '%': a password may contain one
        self.config.set_main_option("sqlalchemy.url", self.url.replace("%", "%%"))
        # env.py files that build their own engine miss our SET; libpq drivers read PGOPTIONS
        timeout = f"-c statement_timeout={self.statement_timeout_ms}"
        env = {"PGOPTIONS": f"{os.environ.get('PGOPTIONS', '')} {timeout}".strip()}
        if self.env_var:
            env[self.env_var] = self.url
        saved = {name: os.environ.get(name) for name in env}
        os.environ.update(env)
        try:
            yield
        finally:
            self.config.attributes.pop("connection", None)
            for name, value in saved.items():
                if value is None:
                    os.environ.pop(name, None)
                else:
                    os.environ[name] = value

    def _discard_connection(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(Exception):
                self._conn.close()
            self._conn = None

    def _heads_after(self) -> frozenset[str] | None:
        try:
            conn = self._connection()
            with _ended(conn):
                return self._read_heads(conn)
        except Exception:
            self._discard_connection()
            return None

    def _read_heads(self, conn: Connection) -> frozenset[str]:
        table, schema = self._version_table
        quote = conn.dialect.identifier_preparer.quote
        name = f"{quote(schema)}.{quote(table)}" if schema else quote(table)
        if conn.execute(sa.text("SELECT to_regclass(:name)"), {"name": name}).scalar() is None:
            return frozenset()
        return frozenset(conn.exec_driver_sql(f"SELECT version_num FROM {name}").scalars())

    def _failure(self, error: Exception, tracker: _Tracker, common: dict) -> StepOutcome:
        location = source_location(error, self.graph.script.dir)
        where = f" ({location})" if location else ""
        step = tracker.current
        message = f"{step}{where}" if step is not None else f"env.py failed{where}"
        summary, detail = _describe(error)
        return StepOutcome(
            ok=False,
            failed_step=step,
            error=f"{message}: {summary}",
            detail=detail,
            location=location,
            timed_out=_sqlstate(error) == QUERY_CANCELED,
            **common,
        )


class _Tracker:
    """The work function handed to Alembic; remembers how far the run got.

    Alembic calls it once per ``context.run_migrations()`` with the heads it read, and runs
    each step it yields before asking for the next, so the last step yielded is the one any
    exception belongs to -- including one raised when its transaction commits.
    """

    def __init__(self, graph: RevisionGraph, plan: Callable[[frozenset[str]], Sequence[Step]]):
        self.graph = graph
        self.plan = plan
        self.called = False
        self.context: MigrationContext | None = None
        self.heads_before: frozenset[str] | None = None
        self.steps: tuple[Step, ...] | None = None
        self.current: Step | None = None
        self.harness_error: HarnessError | None = None

    def __call__(self, heads: Iterable[str], context: MigrationContext) -> Iterator[RevisionStep]:
        if self.called:
            raise self._harness_error(HarnessError(
                "env.py called context.run_migrations() more than once",
                hint="the harness migrates one database; use a single-database env.py",
            ))
        self.called = True
        self.context = context
        self.heads_before = frozenset(heads)
        try:
            self.steps = tuple(self.plan(self.heads_before))
        except HarnessError as exc:
            raise self._harness_error(exc) from None
        return self._walk(self.steps)

    def _walk(self, steps: tuple[Step, ...]) -> Iterator[RevisionStep]:
        revision_map = self.graph.script.revision_map
        for step in steps:
            self.current = step
            make = (MigrationStep.upgrade_from_script if step.op == "upgrade"
                    else MigrationStep.downgrade_from_script)
            yield make(revision_map, self.graph.revision(step.revision))

    def _harness_error(self, exc: HarnessError) -> HarnessError:
        self.harness_error = exc
        return exc


@contextlib.contextmanager
def _ended(conn: Connection) -> Iterator[None]:
    """End the transaction SQLAlchemy autobegins for a read, so the session is left idle."""
    try:
        yield
    finally:
        if conn.in_transaction():
            conn.rollback()


def _sync_url(url: str) -> str:
    # An asyncpg project's env.py runs its migrations through run_sync() on a sync
    # connection; the connection we hand it must be sync too.
    parsed = make_url(url)
    if parsed.get_dialect().is_async:
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed.render_as_string(hide_password=False)


def _sqlstate(exc: BaseException | None) -> str | None:
    """The SQLSTATE anywhere in the exception chain, whatever the driver calls it."""
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        for candidate in (exc, getattr(exc, "orig", None)):
            code = getattr(candidate, "sqlstate", None) or getattr(candidate, "pgcode", None)
            if isinstance(code, str):
                return code
        exc = exc.__cause__ or exc.__context__
    return None


def _describe(exc: BaseException) -> tuple[str, str]:
    """(one line, full text) for an exception, preferring the driver's own error."""
    orig = getattr(exc, "orig", None)
    if isinstance(exc, sa.exc.DBAPIError) and orig is not None:
        summary = f"{type(orig).__name__}: {_first_line(str(orig))}"
        detail = str(orig).strip()
        if exc.statement:
            detail += f"\n[SQL: {exc.statement}]"
        return summary, detail
    return f"{type(exc).__name__}: {_first_line(str(exc))}", f"{type(exc).__name__}: {exc}"


def _first_line(text: str) -> str:
    return text.strip().splitlines()[0] if text.strip() else ""

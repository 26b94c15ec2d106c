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

Whatever a migration raises becomes a :class:`StepOutcome`; only mistakes of the harness
itself (an illegal step, an unknown revision) raise :class:`HarnessError`. So does, with
``strict_env``, an env.py that fails before any migration ran or that migrates another database
than the scratch one: such a failure would repeat on every step, says nothing about the
migrations, and is fixed by a setting, which the error names.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import threading
import time
from typing import TYPE_CHECKING, Callable, Iterator, Sequence

import psycopg
import sqlalchemy as sa
from alembic.runtime.environment import EnvironmentContext
from alembic.util import CommandError
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool

from . import builtin_env
from .connection import SQLALCHEMY_2, default_driver, driver_of, ended, in_autocommit, sync_url
from .deadline import StepHang, step_deadline
from .env_run import Between, Tracker, run_env_py, tell_heads
from .errors import HarnessError, Terminated
from .graph import Op, RevisionGraph, Step, source_location
from .migration_errors import describe, first_line, raised_in, sqlstate_of
from .server.roles import ROLE_OPTIONS

if TYPE_CHECKING:
    from alembic.config import Config
    from alembic.runtime.migration import MigrationContext
    from .server.role_ledger import RoleLedger, Roles
    from sqlalchemy.engine import URL, Connection


QUERY_CANCELED = "57014"  # SQLSTATE of a statement stopped by statement_timeout

_NO_RUN = "{env_py} did not call context.run_migrations()"
_BUILTIN_HINT = (
    'set env = "builtin" in [tool.harness] to run the revision files without this env.py'
)
_ENV_VAR_HINT = 'set env_var = "NAME" in [tool.harness] if env.py reads its URL from $NAME'


@dataclasses.dataclass(frozen=True)
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
    sqlstate: str | None = None
    """The SQLSTATE of the database error it failed on, if any."""

    @property
    def revision(self) -> str | None:
        """The id of the revision that failed, if a revision failed."""
        return self.failed_step.revision if self.failed_step else None

    def followed_by(self, again: StepOutcome) -> StepOutcome:
        """This failed run's committed steps, then ``again``, a run planned from where it
        stopped: what one run that had not failed would have been."""
        done = self.steps[:self.steps.index(self.failed_step)] if (
            self.heads != self.heads_before and self.failed_step in self.steps) else ()
        return dataclasses.replace(again, steps=done + again.steps, heads_before=self.heads_before,
                                   duration_s=self.duration_s + again.duration_s)


class Runner:
    """Runs steps of one project against one database, reusing the graph's loaded scripts.

    ``url`` is the database's SQLAlchemy URL with the project's driver. ``env_var``, when set,
    names an environment variable set to ``url`` during each run, for env.py files that build
    their own engine from the application's settings; ``sqlalchemy.url`` in ``config`` is set
    to ``url`` too, so an env.py that ignores the handed connection still reaches the scratch
    database and never the one in alembic.ini.

    ``env`` is ``"project"`` (the project's env.py) or ``"builtin"`` (:mod:`harness.builtin_env`,
    configured with ``version_table`` and ``transaction_per_migration``). ``future`` says the
    project asks SQLAlchemy 1.4 for 2.0-style connections; otherwise 1.4 hands migrations a
    legacy one, as plain ``alembic`` would. The harness's own statements on the connection work
    in either style. ``connection_attribute``
    says what goes into ``config.attributes["connection"]``: the connection, as Alembic's
    cookbook shares it, or an engine, for env.py files that call ``.connect()`` on it.
    ``version_table`` is ``(schema, table)``, where the rest of the harness reads the version
    table; a project env.py that keeps it elsewhere is an error naming the setting.
    ``roles``, the server's, mends the runs that fail on roles other scratch databases made.
    """

    def __init__(
        self,
        config: Config,
        graph: RevisionGraph,
        url: str | URL,
        statement_timeout_ms: int = 60_000,
        env_var: str | None = None,
        *,
        env: str = "project",
        future: bool = False,
        connection_attribute: str = "connection",
        version_table: tuple[str, str] = ("public", "alembic_version"),
        transaction_per_migration: bool = False,
        strict_env: bool = False,
        step_timeout_s: float | None = None,
        roles: RoleLedger | None = None,
    ) -> None:
        self.config = config
        self.roles = roles
        self.graph = graph
        self.url = url if isinstance(url, str) else url.render_as_string(hide_password=False)
        self.statement_timeout_ms = int(statement_timeout_ms)
        self.env_var = env_var
        self.env = env
        self.connection_attribute = connection_attribute
        self.version_table = version_table
        self.transaction_per_migration = transaction_per_migration
        self.strict_env = strict_env
        self.context_options: dict = {}
        """What env.py passed to ``context.configure()`` in the last run (target_metadata...)."""
        self.step_timeout_s = step_timeout_s
        # Migrations get the connection style their own stack gives them: on SQLAlchemy 1.4 a
        # legacy one (string execute(), engine.execute(), autocommit) unless the project opts
        # in to `future`; 2.x has only the one style and refuses future=False.
        engine_url = sync_url(self.url)
        style = {} if SQLALCHEMY_2 else {"future": future}
        try:
            self._engine = sa.create_engine(engine_url, poolclass=NullPool, **style)
        except (ImportError, sa.exc.NoSuchModuleError) as exc:
            raise HarnessError(
                f"cannot load the driver of {make_url(engine_url).drivername}: {exc}",
                hint=f'install it, or set driver = "{default_driver()}" in [tool.harness]',
            ) from exc
        self._conn: Connection | None = None
        self._backend_pid: int | None = None
        self._heads: frozenset[str] | None = None  # as the last run left them: see tell_heads
        self._opening: threading.Thread | None = None
        self.shares_connection: bool | None = None
        """Whether env.py migrated, in its last run, on the connection the harness handed it,
        of psycopg 3: reads between its steps (``run(between=...)``) can then be made there.
        None before the first run."""

    def __enter__(self) -> Runner:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the connection and engine; the database can then be dropped or cloned."""
        self._opened()
        if self._conn is not None:
            self._conn.close()
            self._conn = None
        self._engine.dispose()

    def open_ahead(self) -> None:
        """Connect in a thread while the caller does something else before the first run.

        A new engine's first connection reads the server's settings (the dialect's
        initialisation): about 8 ms, once per scratch database, which a trial spends reading
        its rows on another session. A failure here is left to the first run, which connects
        again and reports it.
        """
        def connect() -> None:
            try:
                self._connect()
            except Exception:  # noqa: BLE001 - the first run's own connection reports it
                self._discard_connection()

        self._opened()
        self._opening = threading.Thread(target=connect, name="harness connect", daemon=True)
        self._opening.start()

    def _opened(self) -> None:
        """Wait for :meth:`open_ahead`'s connection, if one is under way."""
        if self._opening is not None:
            self._opening.join()
            self._opening = None

    # -- public moves ----------------------------------------------------------------------

    def run(self, steps: Sequence[Step], *, between: Between | None = None) -> StepOutcome:
        """Apply ``steps`` in one env.py run, exactly those revisions, in that order.

        The steps must be legal one after the other from the database's current state
        (:class:`HarnessError` otherwise, before anything runs). Like one ``alembic`` command,
        they share env.py's transaction layout: one transaction unless env.py asks for one
        per migration.

        ``between(step, conn)`` is called after each step, on the migration's own connection
        (see :attr:`shares_connection`), in a savepoint rolled back afterwards: it sees what the
        step did, committed or not, and whatever it sets or writes never reaches the next
        migration. What it raises ends the run (rolled back as a failed step would be) and is
        raised here, never reported as the migration's failure.
        """
        steps = tuple(steps)
        if between is not None and not isinstance(driver_of(self._connection()), psycopg.Connection):
            raise HarnessError(f"reads between steps need a psycopg 3 connection, not {self._engine.dialect.driver}",
                               hint="a harness bug: callers ask Runner.shares_connection first")

        def plan(heads: frozenset[str]) -> Sequence[Step]:
            state = self.graph.state_of(heads)
            for step in steps:
                state = self.graph.after(state, step)
            return steps

        last = steps[-1] if steps else None
        destination = last.revision if last is not None and last.op == "upgrade" else None
        return self._execute(plan, destination, steps, between)

    def jump(self, op: Op, target: str) -> StepOutcome:
        """``alembic <op> <target>``, steps planned by Alembic (to a revision, heads, base)."""
        if op not in ("upgrade", "downgrade"):
            raise HarnessError(f"a jump is an upgrade or a downgrade, not {op!r}")

        def plan(heads: frozenset[str]) -> Sequence[Step]:
            return self.graph.plan(op, target, heads)

        return self._execute(plan, target, ())

    def current(self) -> frozenset[str]:
        """The rows of ``alembic_version`` now (empty when the table does not exist)."""
        return self._read_heads(self._connection())[0]

    # -- one env.py run --------------------------------------------------------------------

    def _connection(self) -> Connection:
        self._opened()
        return self._connect()

    def _connect(self) -> Connection:
        if self._conn is None or self._conn.closed or self._conn.invalidated:
            try:
                self._conn = self._engine.connect()
                # Read once per connection: a step cut off mid-statement has this backend ended,
                # so that its locks go with it.
                with ended(self._conn):
                    self._backend_pid = self._conn.exec_driver_sql("SELECT pg_backend_pid()").scalar()
                driver = driver_of(self._conn)
                if isinstance(driver, psycopg.Connection):
                    # psycopg answers a ROLLBACK on a connection where it prepared statements
                    # of its own with DEALLOCATE ALL, which would also take those the harness
                    # prepares there to read between steps (see harness.prepared).
                    driver.prepare_threshold = None
            except sa.exc.DBAPIError as exc:
                raise HarnessError(
                    f"cannot connect to {make_url(self.url).render_as_string()}: "
                    f"{first_line(str(exc.orig))}"
                ) from exc
        return self._conn

    def _fresh_session(self, read_roles: bool = False) -> tuple[Connection, Roles | None]:
        """The connection, reset as if new, outside any transaction; with ``read_roles``, the
        cluster's roles read in the same round trip, where the driver allows (else None).

        Each run stands for a separate ``alembic`` command: what a previous migration SET,
        assumed (SET ROLE) or created as TEMP must not leak into the next. A connection that
        died in between (a migration may terminate other backends) is replaced once.
        """
        try:
            conn = self._connection()
            return conn, self._reset(conn, read_roles)
        except sa.exc.DBAPIError:
            self._discard_connection()
        try:
            conn = self._connection()
            return conn, self._reset(conn, read_roles)
        except sa.exc.DBAPIError as exc:
            self._discard_connection()
            raise HarnessError(
                f"cannot use the database at {make_url(self.url).render_as_string()}: "
                f"{first_line(str(exc.orig))}"
            ) from exc

    def _reset(self, conn: Connection, read_roles: bool) -> Roles | None:
        statements = ("SET SESSION AUTHORIZATION DEFAULT", "RESET ALL", "DISCARD TEMP",
                      f"SET statement_timeout = {self.statement_timeout_ms}")
        # One round trip instead of six (BEGIN, four statements, COMMIT) where the driver can;
        # the role ledger's reading before the run goes with it.
        rows = in_autocommit(conn, "; ".join((*statements, ROLE_OPTIONS) if read_roles else statements))
        if rows is None:
            with conn.begin():  # a legacy 1.4 connection has no commit()
                for statement in statements:
                    conn.exec_driver_sql(statement)
            return None
        return dict(rows) if read_roles else None

    def _execute(
        self,
        plan: Callable[[frozenset[str]], Sequence[Step]],
        destination: str | None,
        steps: tuple[Step, ...],
        between: Between | None = None,
    ) -> StepOutcome:
        if self.roles is None:
            return self._execute_once(plan, destination, steps, between)[0]
        return self.roles.run(make_url(self.url).database,
                              lambda: self._execute_once(plan, destination, steps, between, self.roles),
                              resumable=not steps)

    def _execute_once(
        self,
        plan: Callable[[frozenset[str]], Sequence[Step]],
        destination: str | None,
        steps: tuple[Step, ...],
        between: Between | None = None,
        roles: RoleLedger | None = None,
    ) -> tuple[StepOutcome, Roles, Roles]:
        """One run, and with ``roles`` the cluster's roles just before and just after it (read
        in the messages the run sends anyway where the driver allows, else by the ledger)."""
        tracker = Tracker(self.graph, plan, self._check_context, between)
        known, self._heads = self._heads, None
        conn, before = self._fresh_session(read_roles=roles is not None)
        if roles is not None and before is None:
            before = roles.read()
        started = time.perf_counter()
        error: BaseException | None = None
        try:
            with step_deadline(self.step_timeout_s):
                with self._environment(conn):
                    environment = EnvironmentContext(self.config, self.graph.script, fn=tracker,
                                                     destination_rev=destination)
                    tell_heads(environment, known)
                    with environment:
                        self._run_env(environment, conn)
                if conn.in_transaction():  # env.py ran migrations without begin_transaction()
                    conn.get_transaction().commit()  # a legacy 1.4 connection has no commit()
        except Terminated:
            self._discard_connection()
            raise
        # sys.exit() in a migration is that migration failing, not the harness being told to end
        except (Exception, SystemExit, StepHang) as exc:
            error = exc
        except BaseException:
            self._discard_connection()
            raise
        duration = time.perf_counter() - started
        if error is not None:
            # A new session is cheaper to trust than one that failed mid-way (aborted
            # transaction, isolation level left by an autocommit block, a killed backend).
            self._discard_connection()
        if isinstance(error, StepHang) and self._backend_pid is not None:
            self._terminate(self._backend_pid)
        if tracker.harness_error is not None:
            raise tracker.harness_error
        if self.strict_env and not tracker.called:
            raise self._env_error(error)
        heads, after = self._heads_after(read_roles=roles is not None)
        self._heads = heads
        if roles is not None and after is None:
            after = roles.read()
        common = dict(
            steps=tracker.steps if tracker.steps is not None else steps,
            heads_before=tracker.heads_before,
            heads=heads,
            duration_s=duration,
        )
        if error is not None:
            outcome = self._failure(error, tracker, common)
        elif not tracker.called:
            outcome = StepOutcome(ok=False, error=_NO_RUN.format(env_py=self._env_py()), **common)
        else:
            outcome = StepOutcome(ok=True, **common)
        return outcome, before or {}, after or {}

    def _run_env(self, environment: EnvironmentContext, conn: Connection) -> None:
        if self.env == "builtin":
            builtin_env.run_migrations(
                environment, conn, version_table=self.version_table,
                transaction_per_migration=self.transaction_per_migration,
            )
        else:
            run_env_py(self.graph.script)

    def _env_py(self) -> str:
        return ("the built-in env" if self.env == "builtin"
                else self.graph.script.env_py_location)

    def _check_context(self, context: MigrationContext) -> bool:
        """Stop a run whose env.py would migrate elsewhere than the harness will look; else
        whether it migrates on the connection the harness handed it (see
        :attr:`shares_connection`).

        Called before the first migration: an env.py that reads its URL from where the harness
        cannot reach (a settings module, a hard-coded URL) would otherwise migrate another
        database, perhaps a real one; one that keeps the version table elsewhere would have
        every state misread.
        """
        self.context_options = dict(context.opts)
        database = make_url(self.url).database
        # The connection the harness opened on the scratch database needs no asking.
        handed = context.connection is self._conn
        self.shares_connection = handed and isinstance(driver_of(context.connection), psycopg.Connection)
        actual = database if handed else context.connection.exec_driver_sql("SELECT current_database()").scalar()
        if actual != database:
            hint = f"{_ENV_VAR_HINT}, or {_BUILTIN_HINT}"
            if self.env_var:
                hint = (f"env.py keeps a URL read before the harness set {self.env_var} "
                        f"(a settings module imported once?): {_BUILTIN_HINT}")
            raise HarnessError(
                f"{self._env_py()} connects to database {actual!r}, not to the scratch database "
                f"{database!r}; no migration ran there",
                hint=hint,
            )
        found = (context.version_table_schema or "public", context.version_table)
        if found != self.version_table:
            name = ".".join(found)
            raise HarnessError(
                f"{self._env_py()} keeps Alembic's version table in {name}, "
                f"not in {'.'.join(self.version_table)}",
                hint=f'set version_table = "{name}" in [tool.harness]',
            )
        return self.shares_connection

    def _env_error(self, error: BaseException | None) -> HarnessError:
        """The env.py failure that stops the whole run, with the setting that would avoid it."""
        if error is None:
            return HarnessError(_NO_RUN.format(env_py=self._env_py()), hint=_BUILTIN_HINT)
        location = source_location(error, self.graph.script.dir)
        where = f" ({location})" if location else ""
        summary, _ = describe(error)
        return HarnessError(
            f"{self._env_py()} cannot run in the harness{where}: {summary}",
            hint=self._env_hint(error),
        )

    def _env_hint(self, error: BaseException) -> str:
        """Which setting makes an env.py that failed before any migration work, by the error."""
        text = str(error)
        if isinstance(error, KeyError) and raised_in(error, "os"):
            name = error.args[0]
            return (f'env.py reads the variable {name}: set env_var = "{name}" in '
                    f"[tool.harness] if it holds the database URL, or {_BUILTIN_HINT}")
        if "requires an async driver" in text:
            return 'env.py builds an async engine: set driver = "asyncpg" in [tool.harness]'
        if isinstance(error, AttributeError) and "'connect'" in text:
            return ('env.py expects an Engine in config.attributes["connection"]: set '
                    'connection_attribute = "engine" in [tool.harness]')
        if isinstance(error, CommandError) and "Connection instance" in text:
            return ('env.py expects a Connection in config.attributes["connection"]: set '
                    'connection_attribute = "connection" in [tool.harness]')
        return _BUILTIN_HINT

    @contextlib.contextmanager
    def _environment(self, conn: Connection) -> Iterator[None]:
        """Point env.py at the scratch database, whichever way it looks for one."""
        self.config.attributes["connection"] = (
            self._engine if self.connection_attribute == "engine" else conn
        )
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

    def _terminate(self, pid: int) -> None:
        """End the backend of a step cut off mid-statement, so that its locks go with it."""
        with contextlib.suppress(Exception), self._engine.connect() as conn:
            conn.exec_driver_sql(f"SELECT pg_terminate_backend({int(pid)})")

    def _heads_after(self, read_roles: bool = False) -> tuple[frozenset[str] | None, Roles | None]:
        try:
            return self._read_heads(self._connection(), read_roles)
        except Exception:
            self._discard_connection()
            return None, None

    def _read_heads(self, conn: Connection, read_roles: bool = False) -> tuple[frozenset[str], Roles | None]:
        """The rows of the version table; with ``read_roles``, the cluster's roles in the same
        round trip where it can be had (else None)."""
        quote = conn.dialect.identifier_preparer.quote
        name = ".".join(quote(part) for part in self.version_table)
        # One round trip where the version table exists, as it does after the first upgrade.
        query = f"SELECT NULL, version_num FROM {name}"
        try:
            rows = in_autocommit(conn, f"{query} UNION ALL {ROLE_OPTIONS}" if read_roles else query)
        except Exception:  # noqa: BLE001 - the driver's own error; asked again below, by name
            rows = None
        if rows is not None:
            # A role's row has its name first, a version's NULL.
            roles = {role: options for role, options in rows if role is not None}
            return frozenset(version for role, version in rows if role is None), roles if read_roles else None
        with ended(conn):
            if conn.execute(sa.text("SELECT to_regclass(:name)"), {"name": name}).scalar() is None:
                return frozenset(), None
            return frozenset(conn.exec_driver_sql(f"SELECT version_num FROM {name}").scalars()), None

    def _failure(self, error: BaseException, tracker: Tracker, common: dict) -> StepOutcome:
        location = source_location(error, self.graph.script.dir)
        where = f" ({location})" if location else ""
        step = tracker.current
        message = f"{step}{where}" if step is not None else f"env.py failed{where}"
        summary, detail = describe(error)
        sqlstate = sqlstate_of(error)
        return StepOutcome(
            ok=False,
            failed_step=step,
            error=f"{message}: {summary}",
            detail=detail,
            location=location,
            timed_out=isinstance(error, StepHang) or sqlstate == QUERY_CANCELED,
            sqlstate=sqlstate,
            **common,
        )

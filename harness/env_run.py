"""One env.py run from the inside: the work function Alembic asks for steps, and env.py itself.

The harness hands Alembic exactly the steps it chose through the work function ``fn`` of an
:class:`EnvironmentContext` (:class:`Tracker`), which also remembers how far a run got, so a
failure belongs to the step that raised it, and can read the database between steps on the
migration's own connection. env.py is compiled once per process and executed afresh per run,
as Alembic executes it (:func:`run_env_py`).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import CodeType
from typing import TYPE_CHECKING, Callable, Iterable, Iterator, Sequence

import psycopg
from alembic.runtime.environment import EnvironmentContext
from alembic.runtime.migration import MigrationStep

from .connection import driver_of
from .errors import HarnessError
from .graph import RevisionGraph, Step

if TYPE_CHECKING:
    from alembic.runtime.migration import MigrationContext, RevisionStep
    from alembic.script import ScriptDirectory

Between = Callable[[Step, psycopg.Connection], None]
"""A read made between the steps of one run: see :meth:`harness.runner.Runner.run`."""


class Tracker:
    """The work function handed to Alembic; remembers how far the run got.

    Alembic calls it once per ``context.run_migrations()`` with the heads it read, and runs
    each step it yields before asking for the next, so the last step yielded is the one any
    exception belongs to -- including one raised when its transaction commits.
    """

    def __init__(
        self,
        graph: RevisionGraph,
        plan: Callable[[frozenset[str]], Sequence[Step]],
        check: Callable[[MigrationContext], bool],
        between: Between | None = None,
    ):
        self.graph = graph
        self.plan = plan
        self.check = check
        self.between = between
        self.called = False
        self.heads_before: frozenset[str] | None = None
        self.steps: tuple[Step, ...] | None = None
        self.current: Step | None = None
        self.harness_error: Exception | None = None
        """What the harness itself raised during the run (raised again after it)."""

    def __call__(self, heads: Iterable[str], context: MigrationContext) -> Iterator[RevisionStep]:
        if self.called:
            raise self._harness_error(HarnessError(
                "env.py called context.run_migrations() more than once",
                hint="the harness migrates one database; use a single-database env.py",
            ))
        self.called = True
        self.heads_before = frozenset(heads)
        try:
            # ``check`` also says whether the migration's connection can be read between steps.
            if not self.check(context) and self.between is not None:
                raise HarnessError("env.py migrates on a connection of its own: nothing can be read "
                                   "between its steps", hint="a harness bug: callers ask Runner.shares_connection first")
            self.steps = tuple(self.plan(self.heads_before))
        except HarnessError as exc:
            raise self._harness_error(exc) from None
        return self._walk(self.steps, context)

    def _walk(self, steps: tuple[Step, ...], context: MigrationContext) -> Iterator[RevisionStep]:
        revision_map = self.graph.script.revision_map
        for step in steps:
            self.current = step
            make = (MigrationStep.upgrade_from_script if step.op == "upgrade"
                    else MigrationStep.downgrade_from_script)
            yield make(revision_map, self.graph.revision(step.revision))
            # Alembic asks for the next step once this one ran (and, with a transaction per
            # migration, committed).
            if self.between is not None:
                self._read_between(step, context)

    def _read_between(self, step: Step, context: MigrationContext) -> None:
        driver = driver_of(context.connection)
        assert isinstance(driver, psycopg.Connection)  # checked before the first step
        try:
            with driver.transaction(force_rollback=True):
                self.between(step, driver)  # type: ignore[misc]
        except Exception as exc:
            raise self._harness_error(exc) from None

    def _harness_error(self, exc: Exception) -> Exception:
        self.harness_error = exc
        return exc


def tell_heads(environment: EnvironmentContext, heads: frozenset[str] | None) -> None:
    """Have ``environment``'s run start from ``heads`` (read by the harness when the last run
    on its database ended) instead of reading them again.

    Before its first migration Alembic asks whether the version table exists (a catalog query)
    and reads its rows: two round trips, 2.0 of the 7.5 ms a one-step run of the sweep takes.
    Nothing writes a scratch database's version table between runs, so the heads read after a
    run are the next one's. Only the run's first reading is told; an empty version table is
    left to Alembic, which may have to create it. Should Alembic stop proxying ``configure``
    through the environment's attribute or stop reading heads this way, the run reads them as
    before: nothing but the speed depends on it.
    """
    if not heads:
        return
    configure = environment.configure

    def configured(*args, **kwargs) -> None:
        configure(*args, **kwargs)
        context = environment.get_context()

        def told() -> tuple[str, ...]:
            del context.get_current_heads
            return tuple(sorted(heads))

        context.get_current_heads = told  # type: ignore[method-assign]

    # alembic.context's functions are the environment's attributes, looked up when it is entered.
    environment.configure = configured  # type: ignore[method-assign]


_ENV_CODE: dict[tuple[str, int, int], CodeType] = {}
"""env.py compiled once per process (by path, modification time and size), run many times."""


def run_env_py(script: ScriptDirectory) -> None:
    """What ``script.run_env()`` does, without reading and compiling env.py on every run.

    Each run still executes env.py in a fresh module, as Alembic does; a sourceless env.py
    (only a .pyc) is left to Alembic.
    """
    path = Path(script.dir) / "env.py"
    try:
        stat = path.stat()
    except FileNotFoundError:
        script.run_env()
        return
    key = (str(path), stat.st_mtime_ns, stat.st_size)
    if key not in _ENV_CODE:
        _ENV_CODE[key] = compile(path.read_bytes(), str(path), "exec")
    spec = importlib.util.spec_from_file_location("env_py", path)
    module = importlib.util.module_from_spec(spec)
    exec(_ENV_CODE[key], module.__dict__)  # noqa: S102 - the project's own env.py, as Alembic runs it

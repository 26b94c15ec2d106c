"""One migration step run and checked: what Alembic did, the state it left, the schema it left.

Every step of a trial starts with this check (then the trial checks its rows, sequences and
isolation), and so does each of the report's moves on a seeded database (then the report
measures what the step dropped): one place decides how a step is run, which revision it is
blamed on, which state it reached and whether its schema equals that state's reference.
"""

from __future__ import annotations

import contextlib
import dataclasses
import threading
from typing import Callable, Iterator, Mapping

import psycopg

from .graph import State
from .invariants.migration import check_outcome
from .project import Project
from .references import Unreachable
from .runner import StepOutcome
from .schema_watch import SchemaWatch
from .violations import Violation


@dataclasses.dataclass(frozen=True)
class CheckedStep:
    """A step as it ran, and what broke."""

    outcome: StepOutcome
    revision: str | None
    """The revision the step is blamed on: the one it names, else the one that failed, else,
    for a jump, the one Alembic ran when it ran exactly one."""
    state: State
    """The state the database is at afterwards: what Alembic committed, also after a failure."""
    violations: tuple[Violation, ...]
    """The step's failure (``migration_error``) or, once it succeeded, its schema's differences
    from the reference of :attr:`state`."""
    unreachable: Unreachable | None = None
    """Why the schema was not checked although the step succeeded: :attr:`state` has no
    reference (it cannot be reached from an empty database)."""

    @property
    def ran(self) -> tuple[str, ...]:
        """Every revision Alembic ran (or planned to, for a jump that failed)."""
        return tuple(step.revision for step in self.outcome.steps)

    @property
    def schema_checked(self) -> bool:
        return self.outcome.ok and self.unreachable is None


def check_step(
    project: Project, conn: psycopg.Connection, watch: SchemaWatch, run: Callable[[], StepOutcome], *,
    command: str, revision: str | None, rows: Mapping[str, int], canonical: bool = False,
    alongside: Callable[[], object] | None = None,
) -> CheckedStep:
    """Run a step with ``run`` on the database of ``conn``, then check it.

    ``command`` is what a person types for the step, ``revision`` the one it names (None for a
    jump), ``rows`` the row counts before it (a failure names them), ``canonical`` as in
    :meth:`SchemaWatch.check`. ``alongside``, called once the step succeeded, while the schema
    is checked, reads the database on a connection other than the watch's (a trial's rows):
    its error is raised after the check, unless the state had no reference to check against.
    """
    outcome = run()
    ran = outcome.steps
    blamed = revision or outcome.revision or (ran[0].revision if len(ran) == 1 else None)
    failed = check_outcome(outcome, command=command, revision=blamed, rows=rows)
    if outcome.heads is not None:
        state = project.graph.state_of(outcome.heads)
    else:
        state = project.read_state(conn)
    if not outcome.ok:
        return CheckedStep(outcome, blamed, state, tuple(failed))
    try:
        with _meanwhile(alongside) as reading:
            schema = watch.check(state, revision=blamed, after=command, canonical=canonical)
    except Unreachable as unreachable:
        return CheckedStep(outcome, blamed, state, (), unreachable)
    if reading.error is not None:
        raise reading.error
    return CheckedStep(outcome, blamed, state, tuple(schema))


@dataclasses.dataclass
class _Reading:
    error: BaseException | None = None


@contextlib.contextmanager
def _meanwhile(read: Callable[[], object] | None) -> Iterator[_Reading]:
    """``read()`` in a thread while the block runs; the error it raised, if any.

    The schema's snapshot and the rows are read on two connections, so the server reads both at
    once, on two cores: one after the other, they were a quarter of a walk's time and two fifths
    of a sweep's.
    """
    reading = _Reading()
    if read is None:
        yield reading
        return

    def target() -> None:
        try:
            read()
        except BaseException as exc:  # noqa: BLE001 - handed to the caller, raised there
            reading.error = exc

    thread = threading.Thread(target=target, name="harness rows", daemon=True)
    thread.start()
    try:
        yield reading
    finally:
        thread.join()

"""Each revision run on a seeded database, once, for every check that needs executed evidence.

For each revision, from a clone of the seeded database of the state just before it
(:meth:`Context.seeded`; one broken revision never hides the next), filled to the report's size:

1. upgrade, timed, with the locks and timeouts of its transaction read at commit
   (:mod:`.lockwatch`), the data it lost per column, and its schema against the reference;
2. on the seeded database of the state after it (its new tables filled too), tenant isolation
   checked as the application roles;
3. there, downgrade, timed, with the data it drops and its schema against the earlier
   reference;
4. then upgrade again, timed, with its schema against the reference.

When the upgrade locked pre-existing tables in a mode that stops reads or writes, the lock
probe (:mod:`.lockprobe`) runs the upgrade once more on another clone of the same seeded
database while a second session holds a conflicting lock.

Rollback, destructive operations, lock safety, statement time and tenant isolation are all read
from these runs: each migration runs a handful of times in total, not once per check.
"""

from __future__ import annotations

import contextlib
import dataclasses
from typing import TYPE_CHECKING, Any, Iterator, NamedTuple

import psycopg

from ..graph import State, Step
from ..invariants import data, isolation
from ..invariants.row_reader import capture_rows
from ..references import Unreachable
from ..runner import Runner
from ..schema_watch import SchemaWatch
from ..seeding.filling import Filled
from ..server import Database
from ..step_check import check_step
from ..violations import Violation
from . import dataloss, lockprobe
from .lockwatch import Commit, watch_commits

if TYPE_CHECKING:
    from .context import Context

# An index is reported with the table it belongs to.
_RELATIONS = """
SELECT c.oid::bigint, n.nspname, c.relname, c.relkind, t.relname
  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
  LEFT JOIN pg_index i ON i.indexrelid = c.oid
  LEFT JOIN pg_class t ON t.oid = coalesce(i.indrelid, c.oid)
 WHERE n.nspname <> 'information_schema' AND n.nspname !~ '^pg_'
"""
_KINDS = {"r": "table", "p": "table", "m": "materialized view", "v": "view", "f": "foreign table",
          "i": "index", "I": "index", "S": "sequence", "c": "type"}


MOVES = ("upgrade", "downgrade", "upgrade again")
"""What :attr:`RevisionRun.moves` holds, in order."""


@dataclasses.dataclass(frozen=True)
class Move:
    """One migration step on the seeded database and what it did."""

    step: Step
    command: str
    """The ``alembic`` command a person types for it."""
    ok: bool
    duration_s: float
    error: str | None = None
    location: str | None = None
    timed_out: bool = False
    schema: tuple[Violation, ...] = ()
    """Differences from the reference of the state it reached."""
    losses: tuple[dataloss.Loss, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {
            "step": str(self.step), "command": self.command, "ok": self.ok,
            "duration_s": round(self.duration_s, 4), "error": self.error,
            "location": self.location, "timed_out": self.timed_out,
            "schema": [v.to_json() for v in self.schema],
            "losses": [loss.to_json() for loss in self.losses],
        }


@dataclasses.dataclass(frozen=True)
class LockTaken:
    """A lock the upgrade held on a relation that existed before it."""

    relation: str
    kind: str
    mode: str
    """The strongest mode, SQL name."""
    modes: tuple[str, ...]

    @property
    def blocks(self) -> str | None:
        return lockprobe.BLOCKS.get(self.mode)


@dataclasses.dataclass
class RevisionRun:
    """Everything observed about one revision on seeded databases."""

    revision: str
    before: State
    not_reached: str | None = None
    """Why the runs stopped short for lack of a database: the state before or after the
    revision cannot be reached or seeded."""
    seeded: Filled | None = None
    """Rows of the seeded database the upgrade started from."""
    irreversible: str | None = None
    """Why the project declares the revision irreversible (``irreversible`` setting): then it
    is never downgraded."""
    upgrade: Move | None = None
    downgrade: Move | None = None
    reupgrade: Move | None = None
    locks: tuple[LockTaken, ...] = ()
    lock_timeout: str | None = None
    """As the upgrade's session had it when committing (PostgreSQL's text: "0", "5s")."""
    statement_timeout: str | None = None
    probe: lockprobe.Probe | None = None
    isolation: tuple[Violation, ...] = ()
    reachable: dict[str, tuple[str, ...]] = dataclasses.field(default_factory=dict)
    """Application role -> tenant relations it is granted at the state after the upgrade."""
    tenants: int = 0
    """Distinct tenants holding rows at the state after the upgrade."""

    @property
    def moves(self) -> tuple[Move, ...]:
        return tuple(m for m in (self.upgrade, self.downgrade, self.reupgrade) if m is not None)


def unfinished(runs: dict[str, RevisionRun]) -> dict[str, str]:
    """Revisions whose upgrade did not complete on a seeded database, with the reason.

    Checks built on these runs cannot vouch for them, and say so instead of passing them.
    """
    reasons = {}
    for revision, run in runs.items():
        if run.not_reached:
            reasons[revision] = run.not_reached
        elif run.upgrade is not None and not run.upgrade.ok:
            reasons[revision] = f"upgrade fails on the seeded database: {run.upgrade.error}"
    return reasons


def seeded_runs(ctx: Context) -> dict[str, RevisionRun]:
    """The runs of every revision of ``ctx``'s project, in topological order: made by the first
    check that asks, kept in ``ctx`` for the others."""
    return ctx.kept("runs", lambda: {revision: _run_revision(ctx, revision) for revision in ctx.graph.revisions})


def _run_revision(ctx: Context, revision: str) -> RevisionRun:
    graph = ctx.graph
    before = graph.state_of(graph.parents(revision))
    after = graph.after_upgrade(before, revision)
    run = RevisionRun(revision, before, irreversible=ctx.settings.irreversible.get(revision))
    try:
        seeded, run.seeded = ctx.seeded(before)
    except Unreachable as unreachable:
        run.not_reached = f"not reached: {unreachable}"
        return run
    relations = _relations(seeded.dsn)
    with ctx.server.scratch(template=seeded.name) as database:
        _upgrade(ctx, run, database, relations)
    if not run.upgrade.ok:
        return run
    # run.locks is sorted by relation, so the probe holds its locks in a stable order.
    blocking = [lock for lock in run.locks if lock.blocks and lock.kind != "index"]
    if blocking:
        run.probe = lockprobe.probe(
            ctx.server, ctx.project, seeded.name, Step("upgrade", revision),
            {tuple(lock.relation.split(".", 1)): lock.mode for lock in blocking},
            _bound(ctx, run.lock_timeout),
        )
    # The seeded database after the upgrade, its new tables filled: the next revision's start.
    try:
        seeded_after, _ = ctx.seeded(after)
    except Unreachable as unreachable:
        run.not_reached = f"the state after it cannot be seeded: {unreachable}"
        return run
    with ctx.server.scratch(template=seeded_after.name) as database:
        _rollback(ctx, run, database, after)
    return run


def _bound(ctx: Context, lock_timeout: str | None) -> float:
    """How long the probe holds its locks: long enough for a lock_timeout set to fire."""
    configured = lockprobe.duration_ms(lock_timeout or "0") / 1000
    return min(max(ctx.options.lock_wait_s, configured + 1.0), ctx.options.lock_wait_max_s)


def _upgrade(ctx: Context, run: RevisionRun, database: Database, relations: dict[int, Relation]) -> None:
    """The upgrade, watched: time, locks, timeouts, data lost, schema."""
    with _open(ctx, database) as (conn, runner):
        rows = capture_rows(conn, exclude=(ctx.project.version_table,))
        with watch_commits() as commits:
            run.upgrade, _ = _move(ctx, conn, runner, Step("upgrade", run.revision), run.before, rows)
    # Alembic's own version table is locked by every migration and by nothing else.
    _read_locks(run, commits, {oid: r for oid, r in relations.items()
                               if (r.schema, r.table) != ctx.project.version_table})


def _rollback(ctx: Context, run: RevisionRun, database: Database, after: State) -> None:
    """Isolation at the state after the revision, then downgrade and upgrade again."""
    with _open(ctx, database) as (conn, runner):
        _check_isolation(ctx, conn, run)
        if run.irreversible is not None:
            return
        rows = capture_rows(conn, exclude=(ctx.project.version_table,))
        run.downgrade, rows = _move(ctx, conn, runner, Step("downgrade", run.revision), after, rows)
        if run.downgrade.ok:
            run.reupgrade, _ = _move(ctx, conn, runner, Step("upgrade", run.revision), run.before, rows)


@contextlib.contextmanager
def _open(ctx: Context, database: Database) -> Iterator[tuple[psycopg.Connection, Runner]]:
    runner = ctx.project.runner(database)
    try:
        with psycopg.connect(database.dsn, autocommit=True) as conn:
            yield conn, runner
    finally:
        runner.close()


def _move(
    ctx: Context, conn: psycopg.Connection, runner: Runner, step: Step, start: State,
    rows_before: data.RowsSnapshot,
) -> tuple[Move, data.RowsSnapshot]:
    """Run ``step`` and check it as a trial checks its steps (:mod:`harness.step_check`), its
    schema against the reference of the state it reached; measure the data it lost."""
    command = ctx.graph.command(step, start)
    watch = SchemaWatch(ctx.session, conn, start, scoped=False)
    checked = check_step(ctx.project, conn, watch, lambda: runner.run([step]), command=command,
                         revision=step.revision, rows=rows_before.counts())
    outcome = checked.outcome
    if not outcome.ok:
        move = Move(step, command, False, outcome.duration_s, outcome.error, outcome.location,
                    outcome.timed_out)
        return move, rows_before
    schema = checked.violations
    if checked.unreachable is not None:
        # It works on the seeded database but not from an empty one: nothing to compare with.
        schema = (Violation("schema", step.revision, f"after {command}, no reference: {checked.unreachable}"),)
    rows_after = capture_rows(conn, exclude=(ctx.project.version_table,))
    move = Move(step, command, True, outcome.duration_s, schema=schema,
                losses=tuple(dataloss.losses(rows_before, rows_after)))
    return move, rows_after


class Relation(NamedTuple):
    schema: str
    name: str
    kind: str
    table: str
    """The table an index belongs to; the relation's own name otherwise."""


def _relations(dsn: str) -> dict[int, Relation]:
    with psycopg.connect(dsn, autocommit=True) as conn:
        return {oid: Relation(schema, name, _KINDS.get(kind, kind), table)
                for oid, schema, name, kind, table in conn.execute(_RELATIONS)}


def _read_locks(run: RevisionRun, commits: list[Commit], relations) -> None:
    """Locks on relations that existed before, and the timeouts the migration ran under."""
    taken: dict[int, set[str]] = {}
    relevant = [c for c in commits if any(oid in relations for oid in c.locks)] or commits[-1:]
    for commit in relevant:
        for oid, modes in commit.locks.items():
            if oid in relations:
                taken.setdefault(oid, set()).update(modes)
    run.locks = tuple(sorted(
        (LockTaken(f"{relations[oid].schema}.{relations[oid].name}", relations[oid].kind,
                   lockprobe.strongest(frozenset(modes)),
                   tuple(lockprobe.MODES[m] for m in lockprobe.MODES if m in modes))
         for oid, modes in taken.items()),
        key=lambda lock: lock.relation,
    ))
    if relevant:
        run.lock_timeout = relevant[-1].lock_timeout
        run.statement_timeout = relevant[-1].statement_timeout


def _check_isolation(ctx: Context, conn: psycopg.Connection, run: RevisionRun) -> None:
    setup = ctx.isolation_setup
    if setup is None:
        return
    run.isolation = tuple(isolation.check_isolation(conn, setup, revision=run.revision))
    run.reachable, run.tenants = isolation.tenant_reach(conn, setup)

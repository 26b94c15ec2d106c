"""Lock modes, what they block, and what a migration does when it has to wait for one.

PostgreSQL's table lock conflicts (documentation, "Explicit Locking", table 13.2): a plain
SELECT takes ACCESS SHARE, which only ACCESS EXCLUSIVE conflicts with; INSERT/UPDATE/DELETE take
ROW EXCLUSIVE, which SHARE, SHARE ROW EXCLUSIVE, EXCLUSIVE and ACCESS EXCLUSIVE conflict with.
So a migration holding ACCESS EXCLUSIVE stops readers and writers, one holding SHARE (CREATE
INDEX), SHARE ROW EXCLUSIVE (a foreign key to the table) or EXCLUSIVE stops writers.

The damage is not the lock itself but the wait for it: a migration queued behind one long
transaction makes every later query on the table queue behind the migration. ``lock_timeout``
turns that wait into a quick failure. :func:`probe` shows which of the two a migration does: a
second session holds the weakest conflicting lock (a reader's or a writer's) on the tables the
migration locks, the migration runs, and the holder lets go after a bounded time.
"""

from __future__ import annotations

import dataclasses
import re
import threading
import time
from typing import Any, Literal

import psycopg
from psycopg import sql

from ..graph import Step
from ..project import Project
from ..server import Server

MODES = {
    "AccessShareLock": "ACCESS SHARE",
    "RowShareLock": "ROW SHARE",
    "RowExclusiveLock": "ROW EXCLUSIVE",
    "ShareUpdateExclusiveLock": "SHARE UPDATE EXCLUSIVE",
    "ShareLock": "SHARE",
    "ShareRowExclusiveLock": "SHARE ROW EXCLUSIVE",
    "ExclusiveLock": "EXCLUSIVE",
    "AccessExclusiveLock": "ACCESS EXCLUSIVE",
}
"""pg_locks' names -> the SQL names, weakest first."""

BLOCKS = {
    "ACCESS EXCLUSIVE": "reads and writes",
    "EXCLUSIVE": "writes",
    "SHARE ROW EXCLUSIVE": "writes",
    "SHARE": "writes",
}
"""The modes that stop ordinary application queries, and which ones."""

ProbeOutcome = Literal["fails fast", "waits", "not blocked", "fails"]

_LOCK_NOT_AVAILABLE = re.compile(r"LockNotAvailable|lock timeout", re.IGNORECASE)
_DURATION = re.compile(r"^(\d+)\s*(ms|s|min|h|d)?$")
_UNIT_MS = {"ms": 1, "s": 1000, "min": 60_000, "h": 3_600_000, "d": 86_400_000, None: 1}


def strongest(modes: frozenset[str]) -> str:
    """The strongest of pg_locks mode names, as its SQL name."""
    order = list(MODES)
    return MODES[max(modes, key=order.index)]


def holder_mode(mode: str) -> str:
    """The lock an ordinary concurrent transaction holds that ``mode`` must wait for."""
    return "ACCESS SHARE" if mode == "ACCESS EXCLUSIVE" else "ROW EXCLUSIVE"


def duration_ms(setting: str) -> int:
    """``lock_timeout``/``statement_timeout`` as PostgreSQL shows them ("5s", "1min") in ms."""
    match = _DURATION.match(setting.strip())
    if not match:
        return 0
    return int(match.group(1)) * _UNIT_MS[match.group(2)]


@dataclasses.dataclass(frozen=True)
class Probe:
    """What the migration did while another session held conflicting locks."""

    held: dict[str, str]
    """``schema.name`` -> the mode the other session held on it."""
    outcome: ProbeOutcome
    waited_s: float
    bound_s: float
    """How long the other session held its locks before letting go."""
    error: str | None = None

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def describe(self) -> str:
        if self.outcome == "fails fast":
            return f"fails fast after {self.waited_s:.2f}s ({self.error})"
        if self.outcome == "waits":
            return (f"waits: still blocked when the other session let go after {self.bound_s:.1f}s "
                    "(no lock_timeout; in production it waits as long as that transaction lasts, "
                    "and every query on the table queues behind it)")
        if self.outcome == "not blocked":
            return f"not blocked: finished in {self.waited_s:.2f}s"
        return f"fails for another reason after {self.waited_s:.2f}s: {self.error}"


def probe(
    server: Server, project: Project, template: str, step: Step,
    targets: dict[tuple[str, str], str], bound_s: float,
) -> Probe:
    """Run ``step`` on a clone of ``template`` while another session holds ``targets``.

    ``targets`` maps ``(schema, name)`` to the mode the migration takes there; the other
    session holds :func:`holder_mode` of it, and lets go after ``bound_s`` seconds so that a
    migration without ``lock_timeout`` still ends.
    """
    held = {f"{schema}.{name}": holder_mode(mode) for (schema, name), mode in targets.items()}
    with server.scratch(template=template) as database:
        holder = psycopg.connect(database.dsn)
        try:
            for (schema, name), mode in targets.items():
                holder.execute(_hold(schema, name, holder_mode(mode)))
            release = _Release(holder, bound_s)
            # The harness's own statement timeout must not end the wait before the bound does.
            timeout_ms = max(project.settings.statement_timeout_ms, int(bound_s * 1000) + 10_000)
            runner = project.runner(database, statement_timeout_ms=timeout_ms)
            try:
                release.start()
                started = time.perf_counter()
                outcome = runner.run([step])
                waited = time.perf_counter() - started
            finally:
                # A release under way must end before the holder's connection closes.
                release.finish()
                runner.close()
        finally:
            holder.close()
    if not outcome.ok and outcome.error and _LOCK_NOT_AVAILABLE.search(outcome.error):
        return Probe(held, "fails fast", waited, bound_s, outcome.error)
    if release.outlasted:
        return Probe(held, "waits", waited, bound_s, outcome.error)
    if outcome.ok:
        return Probe(held, "not blocked", waited, bound_s)
    kind: ProbeOutcome = "fails fast" if outcome.timed_out else "fails"
    return Probe(held, kind, waited, bound_s, outcome.error)


class _Release(threading.Thread):
    """Lets the holder's locks go ``bound_s`` after the migration starts waiting for them.

    The bound is counted from the moment the server shows the migration waiting, not from a
    clock started beside it: under load, starting Alembic can take a good part of the bound,
    and a migration that waited would then look as if it never had. ``outlasted`` says the
    migration was still waiting when the bound ran out.
    """

    _POLL_S = 0.005

    def __init__(self, holder: psycopg.Connection, bound_s: float) -> None:
        super().__init__(daemon=True)
        self._holder = holder
        self._bound_s = bound_s
        self._done = threading.Event()
        self.outlasted = False

    def run(self) -> None:
        try:
            while not self._done.is_set() and not self._waiting():
                self._done.wait(self._POLL_S)
            if not self._done.wait(self._bound_s):
                self.outlasted = self._waiting()
        finally:
            self._holder.rollback()

    def finish(self) -> None:
        self._done.set()
        self.join()

    def _waiting(self) -> bool:
        """Whether another session waits for a lock the holder holds."""
        return self._holder.execute(_WAITING).fetchone()[0]


# pg_locks, not pg_stat_activity: the holder polls inside its open transaction, where
# pg_stat_activity would show the snapshot taken at its first read.
_WAITING = """
    SELECT EXISTS (
        SELECT FROM pg_locks WHERE NOT granted AND pg_backend_pid() = ANY (pg_blocking_pids(pid)))
"""


def _hold(schema: str, name: str, mode: str) -> sql.Composed:
    relation = sql.Identifier(schema, name)
    if mode == "ACCESS SHARE":
        # What a reader holds; unlike LOCK TABLE it works on materialized views too.
        return sql.SQL("SELECT FROM {} LIMIT 0").format(relation)
    return sql.SQL("LOCK TABLE {} IN {} MODE").format(relation, sql.SQL(mode))

"""The schema check of one trial, reading after each step only what the step could have changed.

The database is compared with its state's reference after every step. With scoping on (the
``scoped_snapshots`` setting) the scratch database logs its own changes (event triggers, see
:mod:`harness.snapshot.tracking`), and a step's snapshot reads only the relations changed since
the database last matched a reference, those whose references differ between that state and
this one, and every object that belongs to no relation. Everything else is unchanged since that
match and equal in both references, so it still matches: a scoped comparison finds what a whole
one finds, for every change an event trigger sees.

What none sees (a direct catalog update, an extension's own objects changing) is found by a whole
snapshot, taken the first time each state is reached in the run and once more at the end of
every trial (:meth:`SchemaWatch.final_check`).
"""

from __future__ import annotations

from typing import Iterable

import psycopg

from .checkpoints import Resumable
from .graph import State
from .invariants.schema import check_schema
from .session import Session
from .snapshot import ScopedRead, Snapshot, install_tracking, take_scoped_snapshot, take_snapshot
from .snapshot.reader import WHOLE, plan_snapshot
from .snapshot.tracking import SCOPED
from .violations import Violation

_FINAL = ("the steps since the last whole snapshot (found by the whole snapshot at the end of the "
          "run: a change no event trigger sees, such as a direct catalog update or objects of an "
          "extension)")


class SchemaWatch(Resumable):
    """Schema snapshots of one scratch database, whole or scoped, and what they were compared with."""

    HANDLES = frozenset({"_references", "_settings", "_version_table", "_conn"})

    def __init__(self, session: Session, conn: psycopg.Connection, start: State, *,
                 scoped: bool | None = None) -> None:
        """``scoped`` (default: the ``scoped_snapshots`` setting) False takes a whole snapshot
        after every step and leaves the database without a change log: for a database whose
        steps are timed and whose locks are read."""
        self._references = session.references
        self._settings = session.settings
        self._version_table = session.project.version_table
        self._conn = conn
        if scoped is None:
            scoped = session.settings.scoped_snapshots
        self._tracking = scoped and install_tracking(conn)
        self._matched = start
        """The state whose reference the database last matched (a clone of its template at first)."""
        self._since = 0
        """The change log's last entry at that match."""
        self._scoped = False
        """Whether a scoped comparison passed since the last whole one."""
        self._clean = True

    def plan_ahead(self) -> None:
        """Have the watch's session, new to its database, plan the snapshot statement while the
        trial's first step runs on another (see :func:`harness.prepared.warm`)."""
        plan_snapshot(self._conn, SCOPED if self._tracking else WHOLE)

    @property
    def tracking(self) -> bool:
        """Whether the database logs its changes (so a reading of rows may be scoped too)."""
        return self._tracking

    def check(self, state: State, *, revision: str | None, after: str, canonical: bool) -> list[Violation]:
        """Violations of the schema property at ``state``, reached by ``after``.

        ``canonical``: see :meth:`harness.trial.Trial.upgrade`; a whole snapshot may become the
        reference of a state that has none. Raises :class:`~harness.references.Unreachable`
        when the reference cannot be built.
        """
        references = self._references
        if canonical and self._tracking and self._clean and not references.has_snapshot(state):
            references.first_visit(state)
            read = self._read(whole=False, roots=(), versions=True)
            if read.scope is not None:
                # The database matched the last state's reference and changed only what the log
                # says: that reference with the changed part read again is this state's.
                patched = read.scope.patch(references.snapshot(self._matched), read.snapshot)
                references.adopt(state, patched, patched=True)
                self._matched, self._since, self._scoped = state, read.last, True
                return []
        else:
            # Without a change log every snapshot is whole, and the state's first visit is left
            # to a trial that has one.
            whole = not self._tracking or references.first_visit(state) or not references.has_snapshot(state)
            read = self._read(whole=whole, roots=() if whole else references.roots_between(self._matched, state))
        if canonical and read.scope is None:
            references.adopt(state, read.snapshot)
        return self._compare(state, read, revision=revision, after=after)

    @property
    def final_check_due(self) -> bool:
        """Whether scoped snapshots were trusted since the last whole one and the last
        comparison passed (a failed one was reported already)."""
        return self._scoped and self._clean

    def final_check(self, state: State) -> list[Violation]:
        """A whole snapshot compared with ``state``'s reference, if one is due.

        The watch is left as the steps left it: a checkpoint kept of the trial after its end
        goes on from there as a replay of the same steps would, with no end in between.
        """
        if not self.final_check_due:
            return []
        before = self.saved()
        try:
            return self._compare(state, self._read(whole=True, roots=()), revision=None, after=_FINAL)
        finally:
            self.restore(before)

    def _compare(self, state: State, read: ScopedRead, *, revision: str | None, after: str) -> list[Violation]:
        reference = self._reference(state, read)
        self._clean = read.snapshot.objects == reference.objects
        if not self._clean and self._references.unpatch():
            # A patched reference misses what no event trigger saw: differences are judged
            # against the references built whole from templates, on a whole snapshot.
            read = self._read(whole=True, roots=())
            reference = self._reference(state, read)
            self._clean = read.snapshot.objects == reference.objects
        if self._clean:
            self._matched, self._since = state, read.last
        self._scoped = self._clean and read.scope is not None
        return check_schema(read.snapshot, reference, revision=revision, after=after,
                            accept_column_order=self._settings.accept_column_order)

    def _reference(self, state: State, read: ScopedRead) -> Snapshot:
        reference = self._references.snapshot(state)
        return reference if read.scope is None else read.scope.restrict(reference)

    def _read(self, *, whole: bool, roots: Iterable[str], versions: bool = False) -> ScopedRead:
        if not self._tracking:
            return ScopedRead(take_snapshot(self._conn, version_table=self._version_table), None, 0)
        return take_scoped_snapshot(self._conn, self._version_table, since=None if whole else self._since,
                                    roots=roots, versions=versions)

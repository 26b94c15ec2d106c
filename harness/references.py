"""The reference of each revision state: what the schema must be, and a database to start from.

A state's reference is reached by the canonical path from an empty database, one revision at a
time. A run compares most states it reaches with their references, so it needs the snapshots
of most states, but databases (templates) of only the few it starts from:

- snapshots come from one database walked up the canonical path, each revision its own env.py
  run on sessions kept between them. That database logs its changes (the event triggers of
  :mod:`harness.snapshot.tracking`), so each state's snapshot is the previous one with what the
  revision changed read again: patched, trusted to say two schemas are equal, never that they
  differ, as a trial's whole snapshot at each state's first visit then checks (see
  :meth:`References.adopt`). Without the log, a whole snapshot at every state;
- a template is a clone of the nearest one on its path advanced by the remaining revisions in
  one env.py run, as one ``alembic upgrade`` would (or one revision at a time, each state
  cloned from its predecessor's, where that run fails). It is not read when made: the walk
  gives its snapshot for less, and the template is read only where the walk has gone past.

Every walk example and sweep edge then starts from a clone (about 10 ms) instead of replaying DDL.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable, Generic, Iterable, TypeVar

import psycopg

from .graph import State, Step
from .project import Project
from .runner import StepOutcome
from .server import Database, Server
from .snapshot import (
    ScopedRead, Snapshot, diff_snapshots, family_of, install_tracking, take_scoped_snapshot, take_snapshot,
)
from .snapshot.queries import TRACKING_SCHEMA

T = TypeVar("T")


@dataclasses.dataclass
class Unreachable(Exception):
    """The canonical path to a state, from base with no rows, fails at ``step``."""

    step: Step
    outcome: StepOutcome

    def __str__(self) -> str:
        return f"{self.step.as_command()} fails on the way from base, with no rows: {self.outcome.error}"


class StateChain(Generic[T]):
    """Databases of revision states, each cloned from the one before it on the canonical path
    and advanced by one revision: every state of an n-revision history costs n migration
    steps, not n^2.

    What a state keeps is the caller's: ``start`` makes the empty state's, ``advanced`` turns a
    database one step further into it (a template with its snapshot; a seeded database topped
    up), ``failed`` says what a failing step gives (raise, or something to go on with), and
    ``database`` names the database of a kept value, for the next state's clone.
    """

    def __init__(
        self, server: Server, project: Project, *, start: Callable[[], T],
        advanced: Callable[[State, Database], T], failed: Callable[[State, Step, StepOutcome], T],
        database: Callable[[T], str],
    ) -> None:
        self._server = server
        self._project = project
        self._start, self._advanced, self._failed, self._database = start, advanced, failed, database
        self.kept: dict[State, T] = {}

    def get(self, state: State) -> T:
        """The value of ``state``, made from the last state on its path that has one (some are
        made without the states before them: :meth:`References.template`)."""
        graph = self._project.graph
        states: list[State] = [frozenset()]
        path = graph.canonical_path(state)
        for step in path:
            states.append(graph.after_upgrade(states[-1], step.revision))
        first = max((i for i, reached in enumerate(states) if reached in self.kept), default=None)
        if first is None:
            self.kept[states[0]] = self._start()
            first = 0
        for index in range(first, len(path)):
            self.kept[states[index + 1]] = self._advance(states[index + 1], path[index], self.kept[states[index]])
        return self.kept[state]

    def _advance(self, following: State, step: Step, previous: T) -> T:
        database = self._server.create_database(template=self._database(previous))
        runner = self._project.runner(database)
        try:
            outcome = runner.run([step])
        finally:
            runner.close()
        if not outcome.ok:
            self._server.drop_database(database.name)
            return self._failed(following, step, outcome)
        return self._advanced(following, database)


class References:
    """Template databases and schema snapshots of revision states, built on first use."""

    def __init__(self, server: Server, project: Project, *, scoped: bool = True) -> None:
        """``scoped``: the reference walk may patch snapshots from its change log (the
        ``scoped_snapshots`` setting)."""
        self._server = server
        self._project = project
        self._scoped = scoped
        self._snapshots: dict[State, Snapshot] = {}
        self._unreachable: dict[State, Unreachable] = {}
        self._chain: StateChain[str] = StateChain(
            server, project, start=lambda: server.create_database().name,
            advanced=lambda state, database: database.name, failed=self._fail, database=lambda name: name,
        )
        self._visited: set[State] = set()
        self._roots_between: dict[frozenset[State], frozenset[str]] = {}
        self._tables_changed: dict[tuple[State, State], tuple[frozenset[str], frozenset[str]]] = {}
        self._derived: dict[tuple[str, State], tuple[str, Any]] = {}
        self._patched: set[State] = set()
        """States whose reference was patched from another's (see :meth:`adopt`)."""
        self._walk: _Walk | None = None
        self._lent: set[str] = set()
        """Templates of another's, used here and never dropped (see :meth:`lend`)."""

    def template(self, state: State) -> str:
        """The name of a database at ``state``; clone it, never connect to it for long.

        Made from the nearest template on the canonical path by one env.py run; step by step
        should that run fail (a revision that needs the previous one committed). The roles the
        failed run committed go with its database (see the server's role ledger).
        """
        if state in self._unreachable:
            raise self._unreachable[state]
        if state not in self._chain.kept:
            start, steps = self._nearest(state)
            if len(steps) > 1:
                found = self._shortcut(start, steps)
                if found is not None:
                    self._chain.kept[state] = found.name
        return self._chain.get(state)

    def lend(self, state: State, name: str) -> None:
        """Take ``name``, another's template of ``state``, as this one's: cloned like those
        made here, dropped by its owner, never here."""
        if state not in self._chain.kept:
            self._chain.kept[state] = name
            self._lent.add(name)

    def has_template(self, state: State) -> bool:
        """Whether ``state`` has a template already."""
        return state in self._chain.kept

    def forget(self, states: Iterable[State]) -> None:
        """Drop the templates of ``states`` made here, for a caller that will not clone them
        again (their snapshots stay): a template is a database, and a long run can pass many."""
        for state in states:
            name = self._chain.kept.get(state)
            if name is not None and name not in self._lent:
                del self._chain.kept[state]
                self._server.drop_database(name)

    def snapshot(self, state: State) -> Snapshot:
        """The schema every path to ``state`` must produce.

        From the reference walk where it can go on up to ``state`` (a step and a read on warm
        sessions), else from the state's template if it has one (a new session's whole
        snapshot, about three times the cost: templates are not read when made), else from a
        walk started again at the nearest template.
        """
        if state not in self._snapshots:
            walk = self._walk
            ahead = walk is not None and walk.goes_on_to(state)
            if state in self._chain.kept and not ahead:
                _read(self._server.dsn(self._chain.kept[state]), lambda conn: self._take(state, conn))
            else:
                self._walk_up_to(state)
        return self._snapshots[state]

    def _walk_up_to(self, state: State) -> None:
        """Walk the reference database up to ``state``, snapshotting the states it passes."""
        if state in self._unreachable:
            raise self._unreachable[state]
        graph = self._project.graph
        path = graph.canonical_path(state)
        walk = self._walk
        if walk is None or not walk.goes_on_to(state):
            walk = self._walk_from_nearest(state)
        together = True
        while len(walk.path) < len(path):
            rest = path[len(walk.path):]
            # The first run of a walk tells whether the rest can go in one (and be read between).
            if together and len(rest) > 1 and walk.runner.shares_connection:
                together = False
                if self._walk_together(walk, rest):
                    return
                walk = self._walk_from_nearest(state)
                continue
            before = walk.state
            outcome = walk.advance(rest[0])
            if not outcome.ok:
                walk.close()
                self._walk = None
                self._fail(graph.after_upgrade(walk.state, rest[0].revision), rest[0], outcome)
            self._record(walk, before, walk.conn)

    def _walk_from_nearest(self, state: State) -> _Walk:
        """A new reference walk, from the nearest template on the path to ``state``."""
        if self._walk is not None:
            self._walk.close()
            self._walk = None
        start, _ = self._nearest(state)
        self._walk = _Walk(self._server, self._project, self.template(start), start, scoped=self._scoped)
        return self._walk

    def _walk_together(self, walk: _Walk, steps: list[Step]) -> bool:
        """Advance ``walk`` by ``steps`` in one env.py run, reading each state between its steps
        on the migration's own connection; False, with the walk closed and what the run read
        forgotten, if that run failed (the caller goes again one run a step: a revision may
        need the one before it committed, and a failure is reported as a run of its own would
        report it)."""
        recorded: list[State] = []

        def between(step: Step, conn: psycopg.Connection) -> None:
            before = walk.state
            walk.state = self._project.graph.after_upgrade(before, step.revision)
            walk.path = [*walk.path, step]
            if walk.state not in self._snapshots:
                recorded.append(walk.state)
            self._record(walk, before, conn)

        try:
            if walk.runner.run(steps, between=between).ok:
                return True
        except BaseException:
            walk.close()
            self._walk = None
            raise
        for state in recorded:
            self._snapshots.pop(state, None)
            self._patched.discard(state)
        walk.close()
        self._walk = None
        return False

    def _record(self, walk: _Walk, before: State, conn: psycopg.Connection) -> None:
        """Take the snapshot of the state ``walk`` just reached from ``before``, read on ``conn``."""
        if walk.state in self._snapshots:
            walk.matched(conn)
        elif walk.since is not None and before in self._snapshots:
            read = walk.read(conn)
            if read.scope is None:
                self._snapshots[walk.state] = read.snapshot
            else:
                self.adopt(walk.state, read.scope.patch(self._snapshots[before], read.snapshot), patched=True)
        else:
            self._take(walk.state, conn)
            walk.matched(conn)

    def read_at(self, state: State, read: Callable[[psycopg.Connection], T]) -> T:
        """What ``read`` finds in a database at ``state``.

        Not a reference: where ``state`` has no template yet, the nearest template on its
        canonical path is cloned and the remaining steps run in one env.py run, as
        :meth:`template` does, but nothing is kept. The isolation setup is read this way at the
        heads before the first step of a run. Should that one run fail (a revision that needs
        the previous one committed), the read is of the template, built step by step.

        That database is dropped once read, and with it the roles only its run made (see the
        server's role ledger): the templates' runs of the same revisions make them again.

        Where the reference walk stands at ``state`` (the first jump to the heads took it
        there), ``read`` runs on its session instead: no clone, no migration run.
        """
        walk = self._walk
        if walk is not None and walk.state == state:
            return read(walk.conn)
        if state not in self._chain.kept:
            start, steps = self._nearest(state)
            if steps:
                found = self._read_shortcut(start, steps, read)
                if found is not None:
                    return found[0]
        return _read(self._server.dsn(self.template(state)), read)

    def _read_shortcut(
        self, start: State, steps: list[Step], read: Callable[[psycopg.Connection], T],
    ) -> tuple[T] | None:
        """``read`` of a clone of ``start``'s template advanced by ``steps`` in one run, or
        None if that run fails; the clone is dropped."""
        database = self._shortcut(start, steps)
        if database is None:
            return None
        try:
            return (_read(database.dsn, read),)
        finally:
            self._server.drop_database(database.name)

    def _shortcut(self, start: State, steps: list[Step]) -> Database | None:
        """A clone of ``start``'s template advanced by ``steps`` in one env.py run; None (the
        clone dropped) if that run fails."""
        database = self._server.create_database(template=self.template(start))
        try:
            with self._project.runner(database) as runner:
                outcome = runner.run(steps)
        except BaseException:
            self._server.drop_database(database.name)
            raise
        if outcome.ok:
            return database
        self._server.drop_database(database.name)
        return None

    def _nearest(self, state: State) -> tuple[State, list[Step]]:
        """The last state with a template on the canonical path to ``state``, and the rest."""
        graph = self._project.graph
        path = graph.canonical_path(state)
        current: State = frozenset()
        start, rest = current, path
        for index, step in enumerate(path):
            current = graph.after_upgrade(current, step.revision)
            if current in self._chain.kept:
                start, rest = current, path[index + 1:]
        return start, rest

    def has_snapshot(self, state: State) -> bool:
        """Whether the reference of ``state`` is known without building anything."""
        return state in self._snapshots

    def first_visit(self, state: State) -> bool:
        """True the first time a trial of this run reaches ``state``, False afterwards."""
        first = state not in self._visited
        self._visited.add(state)
        return first

    def roots_between(self, a: State, b: State) -> frozenset[str]:
        """The relations (``schema.table``) whose objects differ between two references.

        A database that matched ``a``'s reference and then changed only what its change log
        says needs, to be compared with ``b``'s, those relations read too; and the families of
        objects that belong to no relation (``"@functions"``, see :func:`~harness.snapshot.family_of`).
        """
        key = frozenset((a, b))
        if key not in self._roots_between:
            first, second = self.snapshot(a), self.snapshot(b)
            differing = {obj for snapshot, other in ((first, second), (second, first))
                         for obj, attrs in snapshot.objects.items() if attrs is not other.objects.get(obj)
                         and attrs != other.objects.get(obj)}
            tables = {**first.tables, **second.tables}
            self._roots_between[key] = frozenset(
                tables[obj] if obj in tables else f"@{family_of(obj)}"
                for obj in differing if obj in tables or family_of(obj) is not None
            )
        return self._roots_between[key]

    def tables_changed(self, a: State, b: State) -> tuple[frozenset[str], frozenset[str]]:
        """The tables (``schema.table``) whose structure differs between the references of a step
        from ``a`` to ``b``, and those of them the step creates: the tables it may rewrite and
        those a filler must give rows. Computed once per step."""
        key = (a, b)
        if key not in self._tables_changed:
            differences = diff_snapshots(self.snapshot(a), self.snapshot(b))
            structural = frozenset(d.table for d in differences if d.table is not None)

            def made(change: str) -> frozenset[str]:
                return frozenset(d.table for d in differences if d.change == change and d.object.startswith("table "))

            # The step back changes the same tables and creates those this one drops.
            self._tables_changed[key] = (structural, made("added"))
            self._tables_changed[(b, a)] = (structural, made("removed"))
        return self._tables_changed[key]

    def adopt(self, state: State, snapshot: Snapshot, *, patched: bool = False) -> None:
        """Take ``snapshot`` as the reference of ``state`` without building its template.

        For a caller that reached ``state`` by its canonical last step from a database already
        verified equal to the previous state's reference: the schema is the reference's by
        construction, and the clone, step and snapshot of building it would be spent twice.
        The template is still built if someone asks for it.

        ``patched`` says ``snapshot`` is the previous reference with what the step's change log
        names read again (see :meth:`~harness.snapshot.Scope.patch`): it misses a change no event
        trigger sees, so it is trusted to say two schemas are equal, never that they differ
        (see :meth:`unpatch`).
        """
        if state not in self._snapshots:
            self._snapshots[state] = snapshot
            if patched:
                self._patched.add(state)

    def unpatch(self) -> bool:
        """Forget every patched reference, to build it whole from its template when next asked;
        False if there was none. For a comparison that found differences against one."""
        if not self._patched:
            return False
        # What the log missed once it misses again: the walk takes whole snapshots from now on.
        self._scoped = False
        if self._walk is not None:
            self._walk.close()
            self._walk = None
        for state in self._patched:
            del self._snapshots[state]
        self._patched.clear()
        self._roots_between.clear()
        self._tables_changed.clear()
        return True

    def derived(self, kind: str, state: State, build: Callable[[psycopg.Connection], Any]) -> tuple[str, Any]:
        """A clone of ``state``'s template changed by ``build`` (say, filled with rows), made
        once per ``kind`` and state: its name (clone it, never connect to it for long) and what
        ``build`` returned."""
        key = (kind, state)
        if key not in self._derived:
            database = self._server.create_database(template=self.template(state))
            try:
                with psycopg.connect(database.dsn, autocommit=True) as conn:
                    built = build(conn)
            except BaseException:
                self._server.drop_database(database.name)
                raise
            self._derived[key] = (database.name, built)
        return self._derived[key]

    def close(self) -> None:
        if self._walk is not None:
            self._walk.close()
            self._walk = None
        for name in [*self._chain.kept.values(), *(name for name, _ in self._derived.values())]:
            if name not in self._lent:
                self._server.drop_database(name)
        self._chain.kept.clear()
        self._derived.clear()

    def _fail(self, state: State, step: Step, outcome: StepOutcome) -> str:
        self._unreachable[state] = Unreachable(step, outcome)
        raise self._unreachable[state]

    def _take(self, state: State, conn: psycopg.Connection) -> None:
        self._snapshots[state] = take_snapshot(conn, version_table=self._project.version_table)
        self._patched.discard(state)


class _Walk:
    """The reference database: a clone of a template advanced up a canonical path (by
    :meth:`References._walk_up_to`: a revision a run, or many in one run read between its
    steps), on sessions kept between its runs; with ``scoped``, logging its changes (where the
    server allows event triggers)."""

    def __init__(self, server: Server, project: Project, template: str, state: State, *,
                 scoped: bool) -> None:
        self._server, self._graph = server, project.graph
        self._version_table = project.version_table
        self.state = state
        self.path = self._graph.canonical_path(state)
        self.database = server.create_database(template=template)
        try:
            self.runner = project.runner(self.database)
            self.conn = psycopg.connect(self.database.dsn, autocommit=True)
            self.since: int | None = None
            """The log's last entry when the database last matched a known snapshot; None
            without a log."""
            if scoped and install_tracking(self.conn):
                self.since = 0
                self.matched(self.conn)
        except BaseException:
            server.drop_database(self.database.name)
            raise

    def goes_on_to(self, state: State) -> bool:
        """Whether advancing this walk reaches ``state`` (which it has not reached yet)."""
        path = self._graph.canonical_path(state)
        return len(self.path) < len(path) and path[:len(self.path)] == self.path

    def matched(self, conn: psycopg.Connection) -> None:
        """The database now matches its state's known snapshot: later reads start here.
        ``conn`` sees what the steps did: this walk's session, or the migration's own during
        its run."""
        if self.since is not None:
            self.since = conn.execute(f"SELECT coalesce(max(id), 0) FROM {TRACKING_SCHEMA}.changes").fetchone()[0]

    def read(self, conn: psycopg.Connection) -> ScopedRead:
        """What changed since the last match (whole, where the log cannot place a change)."""
        assert self.since is not None
        read = take_scoped_snapshot(conn, self._version_table, since=self.since, versions=True)
        self.since = read.last
        return read

    def advance(self, step: Step) -> StepOutcome:
        outcome = self.runner.run([step])
        if outcome.ok:
            self.state = self._graph.after_upgrade(self.state, step.revision)
            self.path = [*self.path, step]
        return outcome

    def close(self) -> None:
        self.conn.close()
        self.runner.close()
        self._server.drop_database(self.database.name)


def _read(dsn: str, read: Callable[[psycopg.Connection], T]) -> T:
    with psycopg.connect(dsn, autocommit=True) as conn:
        return read(conn)

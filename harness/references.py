"""The reference of each revision state: what the schema must be, and a database to start from.

A state's reference is reached by the canonical path from an empty database, one revision at a
time, each state cloned from its predecessor's template: building the references of every state
of an n-revision history costs n migration steps, not n^2. Every walk example and sweep edge
then starts from a clone (about 10 ms) instead of replaying DDL.
"""

from __future__ import annotations

import dataclasses
from typing import Callable, Generic, TypeVar

import psycopg

from .graph import State, Step
from .project import Project
from .runner import StepOutcome
from .server import Database, Server
from .snapshot import Snapshot, take_snapshot

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
        current: State = frozenset()
        if current not in self.kept:
            self.kept[current] = self._start()
        for step in self._project.graph.canonical_path(state):
            following = self._project.graph.after_upgrade(current, step.revision)
            if following not in self.kept:
                self.kept[following] = self._advance(following, step, self.kept[current])
            current = following
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

    def __init__(self, server: Server, project: Project) -> None:
        self._server = server
        self._project = project
        self._snapshots: dict[State, Snapshot] = {}
        self._unreachable: dict[State, Unreachable] = {}
        self._chain: StateChain[str] = StateChain(
            server, project, start=lambda: self._store(frozenset(), server.create_database()),
            advanced=self._store, failed=self._fail, database=lambda name: name,
        )

    def template(self, state: State) -> str:
        """The name of a database at ``state``; clone it, never connect to it for long."""
        if state in self._unreachable:
            raise self._unreachable[state]
        return self._chain.get(state)

    def snapshot(self, state: State) -> Snapshot:
        """The schema every path to ``state`` must produce."""
        if state not in self._snapshots:
            self.template(state)
        return self._snapshots[state]

    def adopt(self, state: State, snapshot: Snapshot) -> None:
        """Take ``snapshot`` as the reference of ``state`` without building its template.

        For a caller that reached ``state`` by its canonical last step from a database already
        verified equal to the previous state's reference: the schema is the reference's by
        construction, and the clone, step and snapshot of building it would be spent twice.
        The template is still built if someone asks for it.
        """
        self._snapshots.setdefault(state, snapshot)

    def close(self) -> None:
        for name in self._chain.kept.values():
            self._server.drop_database(name)
        self._chain.kept.clear()

    def _fail(self, state: State, step: Step, outcome: StepOutcome) -> str:
        self._unreachable[state] = Unreachable(step, outcome)
        raise self._unreachable[state]

    def _store(self, state: State, database: Database) -> str:
        with psycopg.connect(database.dsn, autocommit=True) as conn:
            self._snapshots[state] = take_snapshot(conn, version_table=self._project.version_table)
        return database.name

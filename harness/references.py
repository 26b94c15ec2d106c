"""The reference of each revision state: what the schema must be, and a database to start from.

A state's reference is reached by the canonical path from an empty database, one revision at a
time, each state cloned from its predecessor's template: building the references of every state
of an n-revision history costs n migration steps, not n^2. Every walk example and sweep edge
then starts from a clone (about 10 ms) instead of replaying DDL.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable

import psycopg

from .graph import State, Step
from .project import Project
from .runner import StepOutcome
from .server import Server
from .snapshot import Snapshot, take_snapshot


@dataclasses.dataclass
class Unreachable(Exception):
    """The canonical path to a state fails on an empty database, at ``step``."""

    step: Step
    outcome: StepOutcome

    def __str__(self) -> str:
        return f"{self.step.as_command()} fails on an empty database: {self.outcome.error}"


class References:
    """Template databases and schema snapshots of revision states, built on first use."""

    def __init__(self, server: Server, project: Project) -> None:
        self._server = server
        self._project = project
        self._templates: dict[State, str] = {}
        self._snapshots: dict[State, Snapshot] = {}
        self._unreachable: dict[State, Unreachable] = {}
        self._derived: dict[tuple[str, State], tuple[str, Any]] = {}

    def template(self, state: State) -> str:
        """The name of a database at ``state``; clone it, never connect to it for long."""
        self._build(state)
        return self._templates[state]

    def snapshot(self, state: State) -> Snapshot:
        """The schema every path to ``state`` must produce."""
        if state not in self._snapshots:
            self._build(state)
        return self._snapshots[state]

    def adopt(self, state: State, snapshot: Snapshot) -> None:
        """Take ``snapshot`` as the reference of ``state`` without building its template.

        For a caller that reached ``state`` by its canonical last step from a database already
        verified equal to the previous state's reference: the schema is the reference's by
        construction, and the clone, step and snapshot of building it would be spent twice.
        The template is still built if someone asks for it.
        """
        self._snapshots.setdefault(state, snapshot)

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
        for name in [*self._templates.values(), *(name for name, _ in self._derived.values())]:
            self._server.drop_database(name)
        self._templates.clear()
        self._derived.clear()

    def _build(self, state: State) -> None:
        if state in self._templates:
            return
        if state in self._unreachable:
            raise self._unreachable[state]
        graph = self._project.graph
        current: State = frozenset()
        if current not in self._templates:
            self._store(current, self._server.create_database().name)
        for step in graph.canonical_path(state):
            following = graph.after_upgrade(current, step.revision)
            if following not in self._templates:
                self._advance(current, following, step)
            current = following

    def _advance(self, current: State, following: State, step: Step) -> None:
        database = self._server.create_database(template=self._templates[current])
        runner = self._project.runner(database)
        try:
            outcome = runner.run([step])
        finally:
            runner.close()
        if not outcome.ok:
            self._server.drop_database(database.name)
            self._unreachable[following] = Unreachable(step, outcome)
            raise self._unreachable[following]
        self._store(following, database.name)

    def _store(self, state: State, name: str) -> None:
        with psycopg.connect(self._server.dsn(name), autocommit=True) as conn:
            self._snapshots[state] = take_snapshot(conn, version_table=self._project.version_table)
        self._templates[state] = name

"""What the checks of one report share: the session, the options, and evidence gathered once.

Checks read from the context and never run each other. Evidence several checks need (the
seeded runs of every revision, the isolation setup) is computed on first use and kept.
"""

from __future__ import annotations

import dataclasses
import functools
import os
import shlex
from pathlib import Path

import psycopg

from ..graph import BASE, RevisionGraph, State, Step
from ..invariants import isolation
from ..references import Unreachable
from ..server import Database
from ..session import Session
from ..seeding.filling import Filled, fill
from .runs import RevisionRun, gather


@dataclasses.dataclass(frozen=True)
class Options:
    """How much the report does; every figure it prints depends on these."""

    rows_per_table: int = 200
    """Rows each table holds in the seeded databases."""
    seed: int = 0
    """Seed of the row generator and of the walk."""
    lock_wait_s: float = 2.0
    """How long the lock probe's concurrent transaction holds its lock before letting go."""
    lock_wait_max_s: float = 30.0
    """Upper bound of that hold when the migration sets a longer lock_timeout."""
    walk_examples: int = 10
    """Examples of the tenant isolation walk (0 skips it)."""
    walk_steps: int = 10
    """Steps per example of that walk."""
    expected_objects: tuple[str, ...] = ()
    """Snapshot keys that must exist at head (``table public.tenants``)."""


class Context:
    """One report's shared state over one session."""

    def __init__(self, session: Session, options: Options) -> None:
        self.session = session
        self.options = options
        self.settings = session.settings
        self.server = session.server
        self.project = session.project
        self.references = session.references
        self.graph: RevisionGraph = session.project.graph
        self.ini = _shown_path(Path(self.settings.alembic_ini))
        self._seeded: dict[State, tuple[Database, Filled]] = {}

    @functools.cached_property
    def runs(self) -> dict[str, RevisionRun]:
        """Every revision run on seeded databases (:mod:`.runs`)."""
        return gather(self)

    @functools.cached_property
    def isolation_setup(self) -> isolation.IsolationSetup | None:
        """Tenant setting, column and application roles, read where they are complete: at head."""
        try:
            template = self.references.template(self.graph.heads)
        except Unreachable:
            return None
        with self.server.scratch(template=template) as database:
            with psycopg.connect(database.dsn, autocommit=True) as conn:
                return isolation.detect(conn, self.settings)

    def seeded(self, state: State) -> tuple[Database, Filled]:
        """A database at ``state`` holding seeded rows, and its row counts: clone it, never
        change it (raises :class:`Unreachable` like the references).

        Built once per state along the canonical path: the previous state's seeded database,
        cloned, upgraded by one revision, then topped up for the tables that revision created.
        So each table is filled once, and the rows a revision meets have lived through the
        revisions before it, as in production. Where that upgrade fails, the state's reference
        is filled instead, so that one failing revision does not take the next ones' evidence.
        """
        current = BASE
        if current not in self._seeded:
            self._seeded[current] = self._filled(self.references.template(current))
        for step in self.graph.canonical_path(state):
            following = self.graph.after_upgrade(current, step.revision)
            if following not in self._seeded:
                self._seeded[following] = self._advance(current, following, step)
            current = following
        return self._seeded[state]

    def _advance(self, current: State, following: State, step: Step) -> tuple[Database, Filled]:
        database = self.server.create_database(template=self._seeded[current][0].name)
        runner = self.project.runner(database)
        try:
            outcome = runner.run([step])
        finally:
            runner.close()
        if not outcome.ok:
            self.server.drop_database(database.name)
            return self._filled(self.references.template(following))
        return database, self._top_up(database)

    def _filled(self, template: str) -> tuple[Database, Filled]:
        database = self.server.create_database(template=template)
        return database, self._top_up(database)

    def _top_up(self, database: Database) -> Filled:
        with psycopg.connect(database.dsn, autocommit=True) as conn:
            return self.fill(conn)

    def shortfalls(self) -> dict[str, str]:
        """Tables the seeded databases hold fewer rows in than asked, and why, for the reader:
        figures measured on an empty table say little."""
        found: dict[str, str] = {}
        for _, filled in self._seeded.values():
            found.update(filled.unseedable)
            for table, rows in filled.rows.items():
                if rows < self.options.rows_per_table and table not in found:
                    found[table] = f"{rows} rows: the database refused the others"
        return dict(sorted(found.items()))

    def close(self) -> None:
        """Drop the seeded databases."""
        for database, _ in self._seeded.values():
            self.server.drop_database(database.name)
        self._seeded.clear()

    def fill(self, conn: psycopg.Connection) -> Filled:
        return fill(conn, self.options.rows_per_table, seed=self.options.seed,
                    exclude=(self.project.version_table,))

    def harness(self, command: str, *args: str) -> str:
        """A ``harness`` command line on this project."""
        return " ".join(["harness", command, "-c", shlex.quote(self.ini), *args])

    def shown(self, path: str | os.PathLike[str]) -> str:
        """A file's path as the report prints it."""
        return _shown_path(Path(path))


def _shown_path(path: Path) -> str:
    """The path relative to the working directory when it is below it, as people type it."""
    try:
        return str(path.resolve().relative_to(Path(os.getcwd()).resolve()))
    except ValueError:
        return str(path)

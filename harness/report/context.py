"""What the checks of one report share: the session, the options, and evidence gathered once.

Checks read from the context and never run each other. Evidence several checks need (the
seeded runs of every revision, the isolation setup) is computed on first use and kept.
"""

from __future__ import annotations

import dataclasses
import os
import shlex
from pathlib import Path
from typing import Any, Callable, TypeVar

import psycopg

from ..graph import BASE, RevisionGraph, State
from ..invariants import isolation
from ..references import StateChain
from ..server import Database
from ..session import Session
from ..seeding.filling import Filled, fill

T = TypeVar("T")


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
        self._kept: dict[str, Any] = {}
        self._seeded: StateChain[tuple[Database, Filled]] = StateChain(
            self.server, self.project,
            start=lambda: self._filled(self.references.template(BASE)),
            advanced=lambda state, database: (database, self._top_up(database)),
            failed=lambda state, step, outcome: self._filled(self.references.template(state)),
            database=lambda kept: kept[0].name,
        )

    def kept(self, key: str, gather: Callable[[], T]) -> T:
        """Evidence several checks need (the seeded runs of :mod:`.runs`), gathered by the
        first check that asks and kept for the others."""
        if key not in self._kept:
            self._kept[key] = gather()
        return self._kept[key]

    @property
    def isolation_setup(self) -> isolation.IsolationSetup | None:
        """Tenant setting, column and application roles, as the session detects them at head."""
        return self.session.isolation_setup()

    def seeded(self, state: State) -> tuple[Database, Filled]:
        """A database at ``state`` holding seeded rows, and its row counts: clone it, never
        change it (raises :class:`~harness.references.Unreachable` like the references).

        Built once per state along the canonical path (a :class:`StateChain`): the previous
        state's seeded database, cloned, upgraded by one revision, then topped up for the
        tables that revision created. So each table is filled once, and the rows a revision
        meets have lived through the revisions before it, as in production. Where that upgrade
        fails, the state's reference is filled instead, so that one failing revision does not
        take the next ones' evidence.
        """
        return self._seeded.get(state)

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
        for _, filled in self._seeded.kept.values():
            found.update(filled.unseedable)
            for table, rows in filled.rows.items():
                if rows < self.options.rows_per_table and table not in found:
                    found[table] = f"{rows} rows: the database refused the others"
        return dict(sorted(found.items()))

    def close(self) -> None:
        """Drop the seeded databases."""
        for database, _ in self._seeded.kept.values():
            self.server.drop_database(database.name)
        self._seeded.kept.clear()

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

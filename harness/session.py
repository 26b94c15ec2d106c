"""Everything one run shares: the server, the project, the references, and what was covered."""

from __future__ import annotations

import collections
import contextlib
import dataclasses
from typing import Any, Callable, Iterator, TypeVar


from .checkpoints import Checkpoints
from .graph import State
from .invariants import isolation
from .invariants.isolation import IsolationSetup
from .project import Project
from .references import References, Unreachable
from .server import Server, open_server
from .settings import Settings

T = TypeVar("T")


@dataclasses.dataclass
class Coverage:
    """How often each revision was upgraded and downgraded, and each state reached."""

    steps: collections.Counter[tuple[str, str]] = dataclasses.field(default_factory=collections.Counter)
    with_data: collections.Counter[tuple[str, str]] = dataclasses.field(default_factory=collections.Counter)
    """Of ``steps``, those run while a table the step changes held rows (any table, for a step
    that changes no table's structure): the runs that could lose or corrupt data."""
    states: collections.Counter[State] = dataclasses.field(default_factory=collections.Counter)
    seeded_rows: int = 0
    seed_attempts: int = 0
    """Inserts the walk's seeding sent, accepted or not."""
    seed_refused: int = 0
    """Of those, the ones the database refused: rows the walk wanted and never tested."""

    def add(self, other: Coverage) -> None:
        """Count ``other``'s steps, states and rows too (a part of the run done elsewhere)."""
        self.steps.update(other.steps)
        self.with_data.update(other.with_data)
        self.states.update(other.states)
        self.seeded_rows += other.seeded_rows
        self.seed_attempts += other.seed_attempts
        self.seed_refused += other.seed_refused

    def to_json(self, revisions: list[str], irreversible: dict[str, str]) -> dict[str, Any]:
        return {
            "irreversible": dict(irreversible),
            "revisions": {
                rev: {"upgrade": self.steps[("upgrade", rev)], "downgrade": self.steps[("downgrade", rev)]}
                for rev in revisions
            },
            "with_data": {
                rev: {op: self.with_data[(op, rev)] for op in ("upgrade", "downgrade")}
                for rev in revisions
            },
            "states": len(self.states),
            "steps": sum(self.steps.values()),
            "seeded_rows": self.seeded_rows,
            "seed_attempts": self.seed_attempts,
            "seed_refused": self.seed_refused,
            "unvisited": [
                f"{op} {rev}" for rev in revisions for op in ("upgrade", "downgrade")
                if not self.steps[(op, rev)] and not (op == "downgrade" and rev in irreversible)
            ],
        }


class Session:
    """One run of the harness on one project and one server."""

    def __init__(self, settings: Settings, server: Server, project: Project | None = None) -> None:
        self.settings = settings
        self.server = server
        self.project = project or Project(settings)
        self.references = References(server, self.project, scoped=settings.scoped_snapshots)
        self.coverage = Coverage()
        self.checkpoints = Checkpoints(server, settings.checkpoints)
        self._cache: dict[tuple[str, State], Any] = {}
        self._isolation: IsolationSetup | None = None
        self._isolation_detected = False

    def per_state(self, name: str, state: State, compute: Callable[[], T]) -> T:
        """A value computed once per revision state (catalogs, isolation setups)."""
        key = (name, state)
        if key not in self._cache:
            self._cache[key] = compute()
        return self._cache[key]

    def isolation_setup(self) -> IsolationSetup | None:
        """The tenant setting, column and application roles, as detected at the heads.

        Detected once where the history means them to hold, then checked at every state: a
        state where a downgrade removed the policies but left the grants must still be checked,
        and detection there would find nothing to check.
        """
        if not self._isolation_detected:
            self._isolation_detected = True
            heads = self.project.graph.heads
            try:
                self._isolation = self.references.read_at(
                    heads, lambda conn: isolation.detect(conn, self.settings))
            except Unreachable:
                return None
        return self._isolation

    def fresh(self) -> Session:
        """A session on the same server and project with nothing built or counted yet, but
        what holds for the whole history: the isolation setup, once detected."""
        fresh = Session(self.settings, self.server, self.project)
        if self._isolation_detected:
            fresh.known_isolation(self._isolation)
        return fresh

    def known_isolation(self, setup: IsolationSetup | None) -> None:
        """Take ``setup`` as the history's isolation setup, detected by another session."""
        self._isolation, self._isolation_detected = setup, True

    def close(self) -> None:
        self.checkpoints.close()
        self.references.close()


@contextlib.contextmanager
def open_session(settings: Settings, server: Server | None = None) -> Iterator[Session]:
    """A session on ``server``, or on a server started for it and stopped afterwards."""
    with contextlib.ExitStack() as stack:
        if server is None:
            server = stack.enter_context(open_server(settings))
        session = Session(settings, server)
        stack.callback(session.close)
        yield session

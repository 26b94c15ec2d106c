"""One trial: a scratch database walked step by step, every invariant checked after each step.

The walk's state machine and the deterministic sweep both drive trials; neither knows how a step
is run or checked, and this module knows nothing of how steps are chosen (nor of Hypothesis).
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable, Collection, Mapping

import psycopg
from psycopg import sql
from psycopg.types.json import Jsonb

from .graph import State, Step
from .invariants import data, isolation
from .invariants.migration import check_outcome
from .invariants.schema import check_schema
from .references import Unreachable
from .runner import StepOutcome
from .seeding import read_catalog
from .seeding.filling import Tenancy, fill
from .session import Session
from .snapshot import diff_snapshots, take_snapshot
from .violations import Violation


@dataclasses.dataclass(frozen=True)
class LoggedStep:
    """A step as it happened, for failure files and the commands a person types."""

    op: str
    revision: str | None = None
    target: str | None = None
    rows: Mapping[str, list[dict[str, Any]]] | None = None
    """For a seed step: the rows that went in, per table, as PostgreSQL's to_jsonb gave them."""

    def to_json(self) -> dict[str, Any]:
        return {k: v for k, v in dataclasses.asdict(self).items() if v is not None}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> LoggedStep:
        return cls(**data)

    def as_command(self) -> str:
        if self.op == "seed":
            counts = ", ".join(f"{len(r)} into {t}" for t, r in sorted((self.rows or {}).items()) if r)
            return f"# insert rows: {counts or 'none accepted'}"
        if self.target is not None:
            return f"alembic {self.op} {self.target}"
        return Step(self.op, self.revision).as_command()


class Trial:
    """A scratch database cloned at a revision state, with its own connections."""

    def __init__(self, session: Session, start: State = frozenset(), *, filled: bool = False) -> None:
        """A clone of ``start``'s reference, or with ``filled`` of its filled template (every
        table holding the filler's rows; ``start`` then has one head). A filled trial's log
        begins with the steps that make that template, so that it replays from an empty
        database."""
        self.session = session
        self.state = start
        self.log: list[LoggedStep] = []
        project = session.project
        self._exclude = (project.version_table,)
        if filled:
            template, records = session.references.derived("filled", start, self._fill_all)
            self.log += [LoggedStep("upgrade", target=head) for head in start]
            self.log += [LoggedStep("seed", rows=records)] if records else []
        else:
            template = session.references.template(start)
        self.database = session.server.create_database(template=template)
        try:
            self.conn = psycopg.connect(self.database.dsn, autocommit=True)
            self.runner = project.runner(self.database)
        except BaseException:
            session.server.drop_database(self.database.name)
            raise
        # Rows as they were just before each revision was last upgraded, keyed by revision and
        # the state the upgrade started from, for the round-trip data check.
        self._before_upgrade: dict[tuple[str, State], data.RowsSnapshot] = {}
        self._rows: data.RowsCache = {}
        # Tables (schema.table) created or restructured since the last fill; None: every table.
        self._unfilled: set[str] | None = set() if filled else None
        self._created: set[str] = set()
        session.coverage.states[start] += 1

    def upgrade(self, revision: str, *, canonical: bool = False) -> list[Violation]:
        """Upgrade one revision.

        ``canonical`` says the database was verified equal to its state's reference and this is
        the canonical next step: the result then becomes the new state's reference if it has
        none yet (see :meth:`References.adopt`).
        """
        return self._move(
            LoggedStep("upgrade", revision), lambda: self.runner.run([Step("upgrade", revision)]),
            canonical=canonical,
        )

    def downgrade(self, revision: str) -> list[Violation]:
        """Downgrade one revision, unless it is marked irreversible (then nothing happens)."""
        if revision in self.session.settings.irreversible:
            return []
        return self._move(LoggedStep("downgrade", revision), lambda: self.runner.run([Step("downgrade", revision)]))

    def jump(self, direction: str, target: str) -> list[Violation]:
        """Alembic's own multi-step path to ``target`` (a revision, ``heads`` or ``base``).

        A downward path through a revision marked irreversible is not taken.
        """
        if direction == "downgrade":
            plan = self.session.project.graph.plan("downgrade", target, self.state)
            if any(step.revision in self.session.settings.irreversible for step in plan):
                return []
        return self._move(LoggedStep(direction, target=target), lambda: self.runner.jump(direction, target))

    def seed(self, insert: Callable[[psycopg.Connection], Mapping[str, list[dict[str, Any]]]]) -> list[Violation]:
        """Insert rows with ``insert`` (which returns the rows that went in), check isolation."""
        self._log_rows(insert(self.conn))
        return self._check_isolation(self.state, revision=None)

    def fill(self, *, created_only: bool = False, check: str | None = None) -> list[Violation]:
        """Give the deterministic filler's rows to every table created or restructured since
        the last fill (every table, the first time); with ``check``, check isolation and blame
        that revision. Nothing to fill, nothing logged.

        ``created_only`` leaves the tables a step only changed for later: before a downgrade,
        rows in them may be valid under the new schema alone (a relaxed CHECK, a column made
        nullable), and a downgrade restoring the old schema rightly refuses them.
        """
        if self._unfilled is None or not created_only:
            tables, self._unfilled = self._unfilled, set()
        else:
            tables = self._unfilled & self._created
            self._unfilled -= tables
        self._created -= tables or set()
        if tables is not None and not tables:
            return []
        inserted = self._fill_all(self.conn, tables)
        if inserted:
            self._log_rows(inserted)
        return self._check_isolation(self.state, revision=check) if check else []

    def _log_rows(self, rows: Mapping[str, list[dict[str, Any]]]) -> None:
        inserted = {table: table_rows for table, table_rows in rows.items() if table_rows}
        self.log.append(LoggedStep("seed", rows=inserted))
        self.session.coverage.seeded_rows += sum(len(r) for r in inserted.values())

    def _fill_all(self, conn: psycopg.Connection, tables: Collection[str] | None = None,
                  ) -> Mapping[str, list[dict[str, Any]]]:
        setup = self.session.isolation_setup()
        tenancy = setup and Tenancy(setup.tenant_setting, setup.tenant_column)
        catalog = self.session.per_state(
            "catalog", self.state, lambda: read_catalog(conn, exclude=self._exclude))
        return fill(conn, tables=tables, tenancy=tenancy, catalog=catalog).records

    def rows(self) -> data.RowsSnapshot:
        """Every row now, read through this database's cache (cheap when little changed)."""
        return data.capture_rows(self.conn, exclude=self._exclude, cache=self._rows)

    def replay(self, step: LoggedStep) -> list[Violation]:
        """Run a logged step again: migrations through Alembic, rows inserted verbatim."""
        if step.op == "seed":
            return self.seed(lambda conn: insert_rows(conn, step.rows or {}))
        if step.target is not None:
            return self.jump(step.op, step.target)
        return self.upgrade(step.revision) if step.op == "upgrade" else self.downgrade(step.revision)

    def close(self) -> None:
        self.runner.close()
        self.conn.close()
        self.session.server.drop_database(self.database.name)

    def _move(self, logged: LoggedStep, run: Callable[[], StepOutcome], *, canonical: bool = False) -> list[Violation]:
        before_state = self.state
        rows_before = self.rows()
        outcome = run()
        self.log.append(logged)
        command = logged.as_command()
        # A jump names no revision; when Alembic ran exactly one, that one is the step's.
        ran = tuple(step.revision for step in outcome.steps)
        revision = logged.revision or outcome.revision or (ran[0] if len(ran) == 1 else None)
        violations = check_outcome(outcome, command=command, revision=revision, rows=rows_before.counts())
        if outcome.heads is not None:
            self.state = self.session.project.graph.state_of(outcome.heads)
        else:
            self.state = self.session.project.read_state(self.conn)
        if not outcome.ok:
            self._unfilled = None
            return violations
        self._cover(before_state, logged)
        actual = take_snapshot(self.conn, version_table=self.session.project.version_table)
        if canonical:
            self.session.references.adopt(self.state, actual)
        try:
            reference = self.session.references.snapshot(self.state)
            before_reference = self.session.references.snapshot(before_state)
        except Unreachable:
            self._unfilled = None
            return violations
        differences = diff_snapshots(before_reference, reference)
        structural = frozenset(d.table for d in differences if d.table is not None)
        if self._unfilled is not None:
            self._unfilled |= structural
            self._created |= {d.table for d in differences
                              if d.change == "added" and d.object.startswith("table ")}
        violations += check_schema(
            actual, reference, revision=revision, after=command,
            accept_column_order=self.session.settings.accept_column_order,
        )
        rows_after = self.rows()
        violations += self._check_data(logged.op, revision, ran, before_state, rows_before, rows_after,
                                       structural=structural)
        violations += self._check_isolation(self.state, revision=revision)
        return violations

    def _check_data(self, op: str, revision: str | None, ran: tuple[str, ...], before_state: State,
                    rows_before, rows_after, structural: frozenset[str]) -> list[Violation]:
        """``revision`` is the step's (None for a jump of several), ``ran`` every revision run.

        A jump through a declared data migration is exempt as a whole: its rows cannot be told
        apart from those of the other revisions of the jump.
        """
        before_up = None
        if op == "downgrade":
            if revision is not None:
                before_up = self._before_upgrade.pop((revision, self.state), None)
            # A downgrade ends every round trip through what it ran, jumps included: a record
            # kept past it would later be compared with rows of tables dropped and re-created.
            for key in [key for key in self._before_upgrade if key[0] in ran]:
                del self._before_upgrade[key]
        exempt = self.session.settings.data_migrations
        if any(rev in exempt for rev in (revision, *ran) if rev is not None):
            return []
        violations = data.check_step(
            rows_before, rows_after, revision=revision, direction=op,
            structural_tables=structural,
        )
        if op == "upgrade" and revision is not None:
            self._before_upgrade[(revision, before_state)] = rows_before
        if before_up is not None:
            violations += data.check_round_trip(before_up, rows_after, revision=revision)
        return violations

    def _check_isolation(self, state: State, *, revision: str | None) -> list[Violation]:
        setup = self.session.isolation_setup() or self.session.per_state(
            "isolation", state, lambda: isolation.detect(self.conn, self.session.settings)
        )
        if setup is None:
            return []
        return isolation.check_isolation(self.conn, setup, revision=revision)

    def _cover(self, before_state: State, logged: LoggedStep) -> None:
        coverage = self.session.coverage
        coverage.states[self.state] += 1
        if logged.revision is not None:
            coverage.steps[(logged.op, logged.revision)] += 1
            return
        graph = self.session.project.graph
        applied_before, applied_after = graph.applied(before_state), graph.applied(self.state)
        for rev in applied_after - applied_before:
            coverage.steps[("upgrade", rev)] += 1
        for rev in applied_before - applied_after:
            coverage.steps[("downgrade", rev)] += 1


def insert_rows(conn: psycopg.Connection, rows: Mapping[str, list[dict[str, Any]]]) -> dict[str, list[dict[str, Any]]]:
    """Insert recorded rows as they were, so a replay needs no generator.

    ``jsonb_populate_record`` turns each recorded row back into the table's own types;
    generated columns are left to the database, identity columns take the recorded value.
    """
    inserted: dict[str, list[dict[str, Any]]] = {}
    for table, table_rows in rows.items():
        schema, name = table.split(".", 1)
        generated = {
            r[0] for r in conn.execute(
                "SELECT attname FROM pg_attribute WHERE attrelid = to_regclass(%s) "
                "AND attgenerated <> ''", (f'"{schema}"."{name}"',),
            )
        }
        ident = sql.Identifier(schema, name)
        for row in table_rows:
            columns = [c for c in row if c not in generated]
            statement = sql.SQL(
                "INSERT INTO {t} ({cols}) OVERRIDING SYSTEM VALUE "
                "SELECT {cols} FROM jsonb_populate_record(NULL::{t}, %s)"
            ).format(t=ident, cols=sql.SQL(", ").join(map(sql.Identifier, columns)))
            conn.execute(statement, (Jsonb(row),))
            inserted.setdefault(table, []).append(row)
    return inserted

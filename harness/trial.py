"""One trial: a scratch database walked step by step, every invariant checked after each step.

The walk's state machine and the deterministic sweep both drive trials; neither knows how a step
is run or checked, and this module knows nothing of how steps are chosen (nor of Hypothesis).
"""

from __future__ import annotations

import contextlib
import dataclasses
from typing import Any, Callable, Collection, Hashable, Iterator, Mapping, Sequence

import psycopg
from psycopg import sql
from psycopg.types.json import Jsonb

from .blame import opened_by
from .checkpoints import Checkpoint, Key, Resumable
from .graph import State, Step
from .invariants import data, isolation, sequences
from .invariants.row_reader import capture_rows
from .pasteable import insert_statement
from .prepared import settle
from .references import Unreachable
from .runner import StepOutcome
from .schema_watch import SchemaWatch
from .server import Database
from .seeding import read_catalog
from .seeding.catalog import Catalog, CatalogRead, read_tables
from .seeding.catalog_changes import changed_tables
from .seeding.filling import Tenancy, fill
from .session import Session
from .snapshot import install_tracking
from .step_check import check_step
from .step_reads import StepReads
from .violations import Violation


@dataclasses.dataclass(frozen=True)
class LoggedStep:
    """A step as it happened, for failure files and the commands a person types."""

    op: str
    revision: str | None = None
    target: str | None = None
    rows: tuple[tuple[str, Mapping[str, Any]], ...] | None = None
    """For a seed step: ``("schema.table", record)`` for each row that went in, in the order it
    went in (see :attr:`harness.seeding.SeedResult.sequence`)."""

    def to_json(self) -> dict[str, Any]:
        found = {k: v for k, v in dataclasses.asdict(self).items() if v is not None and k != "rows"}
        if self.rows is not None:
            found["rows"] = [{"table": table, "values": dict(record)} for table, record in self.rows]
        return found

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> LoggedStep:
        rows = data.get("rows")
        if isinstance(rows, Mapping):  # harness-failure/1: rows per table, parents first
            rows = [{"table": table, "values": record} for table, records in rows.items() for record in records]
        return cls(**{**data, "rows": None if rows is None else tuple(
            (row["table"], row["values"]) for row in rows
        )})

    def as_command(self) -> str:
        """What a person types: an ``alembic`` command, or the rows as ``INSERT`` statements
        (one a line) for psql."""
        if self.op == "seed":
            inserts = [insert_statement(table, record) for table, record in self.rows or ()]
            return "\n".join(inserts) or "-- no row went in"
        if self.target is not None:
            return f"alembic {self.op} {self.target}"
        return Step(self.op, self.revision).as_command()


def _step_key(step: LoggedStep) -> tuple[str, str | None, str | None, str | None]:
    """A step in a checkpoint's key; rows by their ``repr``, which a replay of them repeats."""
    return step.op, step.revision, step.target, None if step.rows is None else repr(step.rows)


class Trial(Resumable):
    """A scratch database cloned at a revision state, with its own connections.

    Once the run keeps checkpoints (see :mod:`harness.checkpoints`), a step whose checkpoint
    exists is not run: the trial takes that checkpoint's state and findings, and clones its
    database only when a later step needs one.
    """

    HANDLES = frozenset({"session", "database", "conn", "_watching", "runner", "_schema", "_reads", "_checkpoints",
                         "_key", "_stands_for", "_template", "_resumed"})

    def __init__(self, session: Session, start: State = frozenset(), *, filled: bool = False) -> None:
        """A clone of ``start``'s reference, or with ``filled`` of its filled template (every
        table holding the filler's rows; ``start`` then has one head). A filled trial's log
        begins with the steps that make that template, so that it replays from an empty
        database."""
        self.session = session
        self.start = frozenset() if filled else start
        """Where :attr:`log` replays from."""
        self.state = start
        self.log: list[LoggedStep] = []
        self.path: list[State] = []
        """The state each step of :attr:`log` was taken from."""
        project = session.project
        self._exclude = (project.version_table,)
        if filled:
            template, (reference, records) = session.references.derived("filled", start, self._fill_template)
            reached: State = frozenset()
            for head in sorted(start):
                self.log.append(LoggedStep("upgrade", target=head))
                self.path.append(reached)
                for step in project.graph.plan("upgrade", head, reached):
                    reached = project.graph.after(reached, step)
            if records:
                self.log.append(LoggedStep("seed", rows=records))
                self.path.append(start)
        else:
            template = session.references.template(start)
        self._checkpoints = session.checkpoints
        self._key: Key = ("filled" if filled else "start", tuple(sorted(start)))
        """Where the trial started and every step since: the key of its checkpoints."""
        self._stands_for: Checkpoint | None = None
        """The checkpoint the trial took last, while it has no database of its own."""
        self._template = template
        """What the trial's database is a clone of, until it takes a checkpoint."""
        # The database is cloned when a step first needs it: an example whose first steps are
        # those of a checkpoint never needs the template's.
        self.database: Database | None = None
        self._schema: SchemaWatch | None = None
        self._reads: StepReads | None = None
        self._found: list[Violation] = []
        """What the checks of the last step found: a checkpoint kept here gives them back."""
        self._settled = True
        """Whether the database is where the trial's steps left it (no step was cut short)."""
        self._resumed: dict[str, Any] | None = None
        """What the schema watch and the step reads take back when the trial next has a
        database: the state of the checkpoint it took."""
        # Rows just before and just after each revision was last upgraded, keyed by revision
        # and the state the upgrade started from, for the round-trip data check.
        self._round_trips: dict[tuple[str, State], tuple[data.RowsSnapshot, data.RowsSnapshot]] = {}
        self._added = data.AddedRows()
        if filled:
            # The upgrades that made the template ran before this trial: every row they left
            # (the reference rows, not the filler's) is theirs, and a downgrade may remove it.
            self._added.add(data.RowsSnapshot({}), reference)
        # Tables (schema.table) created or restructured since the last fill; None: every table.
        self._unfilled: set[str] | None = set() if filled else None
        self._created: set[str] = set()
        self._catalog_read: tuple[CatalogRead, int] | None = None
        """The last seeding catalog read on this database, and the change log's entry then."""
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
        plan = self.session.project.graph.plan(direction, target, self.state)
        if direction == "downgrade" and any(step.revision in self.session.settings.irreversible for step in plan):
            return []
        before = list(self.log)
        violations = self._move(LoggedStep(direction, target=target), lambda: self.runner.jump(direction, target))
        if len(plan) > 1 and any(v.revision is None for v in violations):
            narrowed = self._narrow(before, plan)
            if narrowed is not None:
                violations, self.log, self.path = narrowed
        return violations

    def _narrow(self, before: list[LoggedStep], plan: list[Step]) -> tuple[list[Violation], list[LoggedStep], list[State]] | None:
        """The jump's steps run one at a time from the same state and rows, on a new trial
        that replays ``before``: the first step's violations, naming its revision, and the
        log that shows them; None when no single step breaks a property (the violation needs
        the whole jump, as when two branches interact)."""
        trial = Trial(self.session, self.start)
        try:
            for step in before:
                trial.replay(step)
            for step in plan:
                found = trial.upgrade(step.revision) if step.op == "upgrade" else trial.downgrade(step.revision)
                if found:
                    return found, trial.log, trial.path
        finally:
            trial.close()
        return None

    def seed(self, insert: Callable[[psycopg.Connection], Sequence[tuple[str, Mapping[str, Any]]]]) -> list[Violation]:
        """Insert rows with ``insert`` (which returns ``(table, record)`` for each row that went
        in, in order), check isolation. A hole seen only now was there before the rows: the
        revision that opened it is blamed (see :mod:`harness.blame`)."""
        with self._changing():
            self._reads.inserted()
            self._log_rows(tuple(insert(self.conn)))
            found = self._check_isolation(self.state, revision=None)
            column = found and self._isolation_setup(self.state).tenant_column
            self._found = [dataclasses.replace(
                v, revision=opened_by(self.session, self.state, v.evidence["relation"], column)) for v in found]
        return self._found

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
        with self._changing():
            self._reads.inserted()
            inserted = self._fill_all(self.conn, self._read_catalog, tables)
            if inserted:
                self._log_rows(inserted)
            return self._check_isolation(self.state, revision=check) if check else []

    def _log_rows(self, inserted: tuple[tuple[str, Mapping[str, Any]], ...]) -> None:
        self._reads.inserted({tuple(table.split(".", 1)) for table, _ in inserted})
        self._logged(LoggedStep("seed", rows=inserted))
        self.session.coverage.seeded_rows += len(inserted)

    def _fill_template(self, conn: psycopg.Connection,
                       ) -> tuple[data.RowsSnapshot, tuple[tuple[str, Mapping[str, Any]], ...]]:
        """The rows the upgrades left in a template, then the filler's rows it was given.

        The template gets the change log first, when snapshots are scoped: every example of a
        walk starts from a copy of it, and installing the log costs about as much as the copy.
        """
        if self.session.settings.scoped_snapshots:
            install_tracking(conn)
        return capture_rows(conn, exclude=self._exclude), self._fill_all(
            conn, lambda: read_catalog(conn, exclude=self._exclude))

    def _fill_all(self, conn: psycopg.Connection, read_catalog: Callable[[], Catalog],
                  tables: Collection[str] | None = None) -> tuple[tuple[str, Mapping[str, Any]], ...]:
        """The filler's rows for ``tables`` (every table: None), as ``(table, record)`` in the
        order they went in (parents first); ``read_catalog`` reads the state's catalog if no
        trial has yet."""
        setup = self.session.isolation_setup()
        tenancy = setup and Tenancy(setup.tenant_setting, setup.tenant_column)
        catalog = self.session.per_state("catalog", self.state, read_catalog)
        records = fill(conn, tables=tables, tenancy=tenancy, catalog=catalog).records
        return tuple((table, record) for table, rows in records.items() for record in rows)

    def _read_catalog(self) -> Catalog:
        """The seeding catalog of the trial's database now. Where its change log says what
        changed since the trial last read one, only the tables that did are read again."""
        if not self._schema.tracking:
            return read_catalog(self.conn, exclude=self._exclude)
        kept, since = self._catalog_read or (None, None)
        changed, last = changed_tables(self.conn, since)
        read = read_tables(self.conn, self._exclude, kept=kept if changed is not None else None,
                           changed=changed or ())
        self._catalog_read = read, last
        return read.catalog

    def rows(self) -> data.RowsSnapshot:
        """Every row now (no round trip when the harness wrote nothing since the last read)."""
        self._live()
        return self._reads.now().rows

    def replay(self, step: LoggedStep) -> list[Violation]:
        """Run a logged step again: migrations through Alembic, rows inserted verbatim in the
        order they first went in."""
        if step.op == "seed":
            found = self._checkpoints.get((*self._key, _step_key(step)))
            if found is not None:
                return self._take(_step_key(step), found)
            return self.seed(lambda conn: insert_rows(conn, step.rows or ()))
        if step.target is not None:
            return self.jump(step.op, step.target)
        return self.upgrade(step.revision) if step.op == "upgrade" else self.downgrade(step.revision)

    def finish(self) -> list[Violation]:
        """The end of the trial's run: what only a whole snapshot can still find (see
        :meth:`SchemaWatch.final_check`)."""
        found = self._checkpoints.finished(self._key)
        if found is not None:
            return list(found)
        resumed = self._resumed
        due = self._schema is not None and self._schema.final_check_due if resumed is None else resumed["due"]
        if not due:
            return []
        self._live()
        violations = self._schema.final_check(self.state)
        self._checkpoints.finish(self._key, violations)
        return violations

    def close(self) -> None:
        """Drop the trial's database, or keep it as the checkpoint of the steps it took (no copy
        needed: nothing goes on on it)."""
        if self.database is not None and self._settled and len(self._key) > 2 and self._checkpoints.wants(self._key):
            self._hand_over()
        self._release()
        if self._stands_for is not None:
            self._checkpoints.release(self._stands_for)
            self._stands_for = None

    def reconnect(self, conn: psycopg.Connection, watching: psycopg.Connection) -> None:
        """The trial and its reads go on on ``conn``, its watch on ``watching``."""
        self.conn, self._watching = conn, watching
        self._schema.reconnect(watching)
        self._reads.reconnect(conn)

    def saved(self) -> dict[str, Any]:
        """The trial's own state with its watch's and its reads'."""
        return {"trial": super().saved(), "schema": self._schema.saved(), "reads": self._reads.saved(),
                "due": self._schema.final_check_due}

    def _open(self, template: str) -> None:
        """A clone of ``template`` as the trial's database, with the trial's connections to it,
        the watch and the reads where the trial stands."""
        session = self.session
        with contextlib.ExitStack() as undo:
            database = session.server.create_database(template=template)
            undo.callback(session.server.drop_database, database.name)
            conn = psycopg.connect(database.dsn, autocommit=True)
            undo.callback(conn.close)
            # The watch's own: a step's schema is read on it while its rows are on the other.
            watching = psycopg.connect(database.dsn, autocommit=True)
            undo.callback(watching.close)
            runner = session.project.runner(database)
            undo.callback(runner.close)
            runner.open_ahead()
            if self._schema is None:
                self._schema = SchemaWatch(session, watching, self.state)
                self._reads = StepReads(conn, self._exclude, logged=self._schema.tracking)
            undo.pop_all()
        self.database, self.runner = database, runner
        self.reconnect(conn, watching)
        self._schema.plan_ahead()
        if self._resumed is not None:
            self._schema.restore(self._resumed["schema"])
            self._reads.restore(self._resumed["reads"])
            self._resumed = None

    def _release(self) -> None:
        """Close the trial's connections and drop its database, if it has one."""
        if self.database is not None:
            self._disconnect()
            self.session.server.drop_database(self.database.name)
            self.database = None

    def _disconnect(self) -> None:
        self.runner.close()
        self.conn.close()
        settle(self._watching)
        self._watching.close()

    def _live(self) -> None:
        """A database of the trial's own: a clone of its template, or of the checkpoint it took."""
        if self.database is None:
            standing = self._stands_for
            self._open(self._template if standing is None else standing.database)
            if standing is not None:
                self._checkpoints.release(standing)
                self._stands_for = None

    @contextlib.contextmanager
    def _changing(self) -> Iterator[None]:
        """A step that changes the trial's database: should it not end (an error, Hypothesis
        stopping the example in a seed's draws), the database stands for no key and is kept as
        no checkpoint."""
        self._live()
        self._settled = False
        yield
        self._settled = True

    def _take(self, step: Hashable, checkpoint: Checkpoint) -> list[Violation]:
        """Take ``step`` as ``checkpoint`` stands for it: its state and findings, and no
        database until a later step needs one."""
        self.close()
        self._key = self._took(step)
        super().restore(checkpoint.saved["trial"])
        self._resumed, self._stands_for = checkpoint.saved, checkpoint
        return list(checkpoint.violations)

    def _keep(self) -> None:
        """Keep a checkpoint where the trial stands and go on on a clone of it."""
        self._open(self._hand_over())

    def _hand_over(self) -> str:
        """Make the trial's database the checkpoint of where it stands; its name. The trial
        is left without a database."""
        saved, name = self.saved(), self.database.name
        self._disconnect()
        self.database = None
        self._checkpoints.keep(self._key, name, saved, self._found)
        return name

    def _logged(self, step: LoggedStep) -> None:
        self.log.append(step)
        self.path.append(self.state)
        self._key = self._took(_step_key(step))

    def _took(self, step: Hashable) -> Key:
        """The key of the trial after ``step``, counted as taken from where it stands."""
        self._checkpoints.took(self._key, step)
        return (*self._key, step)

    def _move(self, logged: LoggedStep, run: Callable[[], StepOutcome], *, canonical: bool = False) -> list[Violation]:
        step = _step_key(logged)
        found = self._checkpoints.get((*self._key, step))
        if found is not None:
            return self._take(step, found)
        self._live()
        if len(self._key) > 2 and self._checkpoints.wants(self._key) and self._checkpoints.parting(self._key, step):
            self._keep()
        with self._changing():
            self._found = self._step(logged, run, canonical=canonical)
        return self._found

    def _step(self, logged: LoggedStep, run: Callable[[], StepOutcome], *, canonical: bool) -> list[Violation]:
        before_state = self.state
        # Foreign keys are read before the step, which may drop them: a round trip with rows
        # added in between forgives the rows they refer to (see data.check_round_trip).
        before = self._reads.now(foreign_keys=logged.op == "downgrade" and bool(self._round_trips))
        rows_before = before.rows
        self._reads.migrated()
        checked = check_step(self.session.project, self.conn, self._schema, run, command=logged.as_command(),
                             alongside=self._reads.now,
                             revision=logged.revision, rows=rows_before.counts(), canonical=canonical)
        self._logged(logged)
        self.state, revision, violations = checked.state, checked.revision, list(checked.violations)
        if checked.outcome.ok:
            self._cover(before_state, logged, rows_before)
        if not checked.schema_checked:
            self._unfilled = None
            return violations
        if self._unfilled is not None:
            structural, created = self.session.references.tables_changed(before_state, self.state)
            self._unfilled |= structural
            self._created |= created
        after = self._reads.now()
        violations += self._check_data(logged.op, revision, checked.ran, before_state, rows_before, after.rows,
                                       before.foreign_keys or ())
        violations += sequences.check_sequences(
            before.sequences, after.sequences, after.rows, revision=revision, direction=logged.op)
        violations += self._check_isolation(self.state, revision=revision)
        return violations

    def _check_data(self, op: str, revision: str | None, ran: tuple[str, ...], before_state: State,
                    rows_before: data.RowsSnapshot, rows_after: data.RowsSnapshot,
                    keys: tuple[data.ForeignKey, ...]) -> list[Violation]:
        """``revision`` is the step's (None for a jump of several), ``ran`` every revision run.

        A jump through a declared data migration is exempt as a whole: its rows cannot be told
        apart from those of the other revisions of the jump.
        """
        round_trip = None
        if op == "downgrade":
            if revision is not None:
                round_trip = self._round_trips.pop((revision, self.state), None)
            # A downgrade ends every round trip through what it ran, jumps included: a record
            # kept past it would later be compared with rows of tables dropped and re-created.
            for key in [key for key in self._round_trips if key[0] in ran]:
                del self._round_trips[key]
        exempt = self.session.settings.data_migrations
        if any(rev in exempt for rev in (revision, *ran) if rev is not None):
            return []
        violations = data.check_step(
            rows_before, rows_after, revision=revision, direction=op,
            removable=self._added if op == "downgrade" else None,
        )
        if op == "upgrade":
            self._added.add(rows_before, rows_after)
            if revision is not None:
                self._round_trips[(revision, before_state)] = (rows_before, rows_after)
        # Rows added in between (seeded) may rightly come back through the downgrade; rows
        # rewritten in between (a declared data migration on another branch) leave nothing
        # that this revision's round trip could be judged on.
        added = data.rows_added(round_trip[1], rows_before) if round_trip is not None else None
        if round_trip is not None and added is not None:
            violations += data.check_round_trip(round_trip[0], rows_after, revision=revision,
                                                added=added, foreign_keys=keys)
        return violations

    def _isolation_setup(self, state: State) -> isolation.IsolationSetup | None:
        return self.session.isolation_setup() or self.session.per_state(
            "isolation", state, lambda: isolation.detect(self.conn, self.session.settings)
        )

    def _check_isolation(self, state: State, *, revision: str | None) -> list[Violation]:
        setup = self._isolation_setup(state)
        if setup is None:
            return []
        self._reads.drew()
        return isolation.check_isolation(self.conn, setup, revision=revision)

    def _cover(self, before_state: State, logged: LoggedStep, rows_before: data.RowsSnapshot) -> None:
        coverage = self.session.coverage
        coverage.states[self.state] += 1
        edges = self._edges(before_state, logged)
        coverage.steps.update(edges)
        if self._on_rows(before_state, rows_before):
            coverage.with_data.update(edges)

    def _edges(self, before_state: State, logged: LoggedStep) -> list[tuple[str, str]]:
        """``(op, revision)`` of each migration the step ran."""
        if logged.revision is not None:
            return [(logged.op, logged.revision)]
        graph = self.session.project.graph
        applied_before, applied_after = graph.applied(before_state), graph.applied(self.state)
        return ([("upgrade", rev) for rev in sorted(applied_after - applied_before)]
                + [("downgrade", rev) for rev in sorted(applied_before - applied_after)])

    def _on_rows(self, before_state: State, rows_before: data.RowsSnapshot) -> bool:
        """Whether a table the step changes held rows when it ran; for a step that changes no
        table already there (it creates tables, migrates data, adds a function), whether any
        table did."""
        counts = rows_before.counts()
        try:
            changed, created = self.session.references.tables_changed(before_state, self.state)
        except Unreachable:
            changed = created = frozenset()
        touched = changed - created
        return any(counts.get(table) for table in touched) if touched else any(counts.values())


def insert_rows(
    conn: psycopg.Connection, rows: Sequence[tuple[str, Mapping[str, Any]]]
) -> list[tuple[str, Mapping[str, Any]]]:
    """Insert recorded rows as they were and in their order (across cycles of foreign keys),
    so a replay needs no generator.

    ``jsonb_populate_record`` turns each recorded row back into the table's own types;
    generated columns are left to the database, identity columns take the recorded value.
    """
    generated: dict[str, set[str]] = {}
    for table, row in rows:
        schema, name = table.split(".", 1)
        if table not in generated:
            generated[table] = {
                r[0] for r in conn.execute(
                    "SELECT attname FROM pg_attribute WHERE attrelid = to_regclass(%s) "
                    "AND attgenerated <> ''", (f'"{schema}"."{name}"',),
                )
            }
        ident = sql.Identifier(schema, name)
        columns = [c for c in row if c not in generated[table]]
        statement = sql.SQL(
            "INSERT INTO {t} ({cols}) OVERRIDING SYSTEM VALUE "
            "SELECT {cols} FROM jsonb_populate_record(NULL::{t}, %s)"
        ).format(t=ident, cols=sql.SQL(", ").join(map(sql.Identifier, columns)))
        conn.execute(statement, (Jsonb(dict(row)),))
    return list(rows)

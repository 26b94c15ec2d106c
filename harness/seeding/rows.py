"""Rows for the live schema, drawn by Hypothesis and judged by PostgreSQL.

Migrations break on data, not on empty tables: a NOT NULL added over existing NULLs, a varchar
shortened under long strings, a unique index over duplicates, a cast that meets an edge value.
So the machine fills the database between steps with rows built from the catalog *as it is at
that moment* (:func:`~.catalog.read_catalog` after every migration) and :func:`seed_rows`
inserts them.

The database stays the only judge of validity. Every insert runs on its own (its own
transaction, or a savepoint inside the caller's), so a row the database refuses is counted and
discarded, never an error. What the catalog says about valid rows -- literals and patterns in
CHECK constraints, partition bounds, foreign keys -- is read only to make acceptance likely
enough that every table gets rows; it is a hint, not a solver.

Everything is drawn through the caller's ``data.draw``, one draw per row labelled with its
table, so a failing walk shrinks to few, simple rows and prints them readably. Replays are
deterministic: parent rows are chosen by position in physical order, never by random key.
"""

from __future__ import annotations

import collections
import dataclasses
import functools
import re
import time
from typing import Any, Callable, Iterable, Mapping, Sequence

import psycopg
from hypothesis import strategies as st
from hypothesis.strategies import SearchStrategy
from psycopg import sql

from ..errors import HarnessError
from .catalog import Catalog, Column, ForeignKey, Table
from .checks import Env
from .expressions import Node, parse_check
from .insert import DEFAULT, PHYSICAL_ORDER, Inserter, Refused, as_text
from .hints import Hints, tighter
from .overrides import NO_OVERRIDES, Overrides
from .repair import Repair
from .strategies import column_values, weighted

__all__ = ["TENANT_ROWS", "SeedResult", "seed_rows"]


@dataclasses.dataclass
class SeedResult:
    """What one :func:`seed_rows` call did."""

    records: dict[str, list[dict[str, Any]]] = dataclasses.field(default_factory=dict)
    """``"schema.table"`` -> the records of :attr:`sequence`, tables parents first (in the
    catalog's order): inserting them table after table makes the same rows, except across a
    cycle of foreign keys, which only :attr:`sequence` replays."""
    sequence: list[tuple[str, dict[str, Any]]] = dataclasses.field(default_factory=list)
    """``("schema.table", record)`` for every row that went in, in the order it went in. A
    record is the row as the database stored it (defaults, identities and generated columns
    included): JSON columns as JSON values, every other column as its text form, which
    ``jsonb_populate_record`` reads back exactly (JSON numbers would come back as floats).
    Inserted again in this order, they make the same rows, cycles of foreign keys included."""
    rejected: int = 0
    """Inserts the database refused (constraint, range, ...), discarded."""
    skipped: int = 0
    """Rows never attempted because no parent row could be found or made for them."""
    reasons: collections.Counter[str] = dataclasses.field(default_factory=collections.Counter)
    """``"schema.table: why"`` -> count, for rejected and skipped rows."""
    unseedable: dict[str, str] = dataclasses.field(default_factory=dict)
    """Tables left alone and why (a required column of a type no strategy exists for)."""
    seconds: float = 0.0

    @property
    def inserted(self) -> dict[str, int]:
        """``"schema.table"`` -> rows that went in (tables without rows are absent)."""
        return {key: len(rows) for key, rows in self.records.items()}

    @property
    def rows(self) -> int:
        return len(self.sequence)


TENANT_ROWS = 3
"""Rows a table referenced by several others (tenants, organisations) gets before its
children, so that child rows spread over several of them and isolation means something."""
_EXISTING_ROWS = 4
"""Rows already in a table whose values new rows may repeat."""
_UNIQUE_REDRAWS = 2
"""Draws a column alone under a unique key gets to differ from the values seen."""
_VARIANT_CHARACTERS = "0123456789abcdefghijklmnopqrstuvwxyz"


@dataclasses.dataclass(frozen=True)
class _Plan:
    """How to draw one table's rows in this call."""

    table: Table
    strategies: Mapping[str, SearchStrategy[Any] | None]
    """Every insertable column's strategy, in table order; None where none exists."""
    filled: Mapping[str, SearchStrategy[Any]]
    """Strategies without NULL, for the drawn nullable columns that have values."""
    row_override: SearchStrategy[Mapping[str, Any]] | None
    drawn: tuple[str, ...]
    """Columns drawn directly; foreign-key columns come from parent rows unless overridden."""
    nullable: frozenset[str]
    overridden: frozenset[str]
    repeatable: frozenset[str]
    """Columns that may repeat a value: not alone under a unique constraint. The others are
    redrawn (:data:`_UNIQUE_REDRAWS` times at most) rather than repeat a value already seen."""
    textual: frozenset[str]
    """Columns of a text kind, whose repeats may change case."""
    foreign_keys: tuple[ForeignKey, ...]
    """Widest first, so that a composite key fixes the tenant before the tenant's own key."""
    checks: tuple[Node, ...]
    """The CHECK constraints :mod:`.checks` can read, which drawn rows are repaired against."""
    kinds: Mapping[str, tuple[str | None, str | None]]
    """Column -> (kind, default expression), for judging rows against :attr:`checks`."""
    repairable: frozenset[str]
    """Drawn columns a repair may set: not overridden, not filled from a sequence."""

    def __repr__(self) -> str:
        return f"<plan for {self.table.key}>"


class _Row:
    """A drawn row. Not a dataclass: Hypothesis prints dataclasses field by field in failure
    reports, and the row's values alone read better."""

    def __init__(self, values: dict[str, Any], missing: list[ForeignKey]) -> None:
        self.values = values
        self.missing = missing
        """Foreign keys no existing parent row matched: a parent is made for each."""

    def __repr__(self) -> str:
        suffix = f" + new {', '.join(fk.parent for fk in self.missing)}" if self.missing else ""
        return f"{self.values!r}{suffix}"


def seed_rows(
    conn: psycopg.Connection,
    draw: Callable[..., Any],
    catalog: Catalog,
    overrides: Overrides | None = None,
    max_rows: int = 10,
    attempts: int = 3,
) -> SeedResult:
    """Insert up to ``max_rows`` drawn rows into tables of ``catalog``, parents first.

    ``draw`` is Hypothesis' ``data.draw`` (called as ``draw(strategy, label)``). Each planned
    row gets ``attempts`` drawn candidates until one is accepted. Rows a child needs from a
    parent that has none, and the first :data:`TENANT_ROWS` rows of tenant-like tables, come
    on top of ``max_rows``. ``conn`` may be idle in autocommit mode (each row its own
    transaction) or inside a transaction (each row its own savepoint).

    A call attempts at most ``attempts * max_rows`` inserts, parents included: everything
    drawn counts against the one choice budget Hypothesis gives a whole test case (8 KiB,
    about 30 per attempted row on simple tables, 110 on wide ones with JSON), and a stateful
    machine spends that budget over all its steps.
    """
    started = time.perf_counter()
    with conn.cursor() as cursor:
        seeder = _Seeder(cursor, draw, catalog, overrides or NO_OVERRIDES, attempts,
                         budget=attempts * max_rows)
        keys = [key for key in catalog.keys() if key in seeder.plans]
        # Each row its own draw after its own "another row?" (as st.lists draws elements), so
        # that shrinking can leave out any single row; at least one row: the caller asked for
        # rows, and an empty draw is a wasted step. Parents a row needs are made for it.
        for n in range(max_rows if keys else 0):
            if n and not draw(_ANOTHER, "another row"):
                break
            key = keys[draw(_index(len(keys)), "table")]
            seeder.fill_tenants([key])
            seeder.insert(key)
    result = seeder.result
    for key in catalog.keys():
        rows = [record for table, record in result.sequence if table == key]
        if rows:
            result.records[key] = rows
    result.seconds = time.perf_counter() - started
    return result


class _Seeder:
    """The state of one :func:`seed_rows` call: plans, parent key pools, values inserted."""

    def __init__(
        self, cursor: psycopg.Cursor, draw: Callable[..., Any], catalog: Catalog,
        overrides: Overrides, attempts: int, budget: int,
    ) -> None:
        self.inserter = Inserter(cursor)
        self.tenants_filled: set[str] = set()
        """Tenant-like parents already given their rows in this call."""
        self.draw = draw
        self.catalog = catalog
        self.attempts = attempts
        self.budget = budget
        """Insert attempts left in this call."""
        self.result = SeedResult()
        self.plans: dict[str, _Plan] = {}
        for table in catalog:
            plan = _plan(table, overrides)
            if isinstance(plan, str):
                self.result.unseedable[table.key] = plan
            else:
                self.plans[table.key] = plan
        self.seen: dict[str, dict[str, list[Any]]] = collections.defaultdict(
            lambda: collections.defaultdict(list)
        )

    def fill_tenants(self, picked: Sequence[str]) -> None:
        """Give each tenant-like parent of a picked table :data:`TENANT_ROWS` rows first."""
        children: dict[str, set[str]] = collections.defaultdict(set)
        for table in self.catalog:
            for fk in table.foreign_keys:
                if fk.parent != table.key:
                    children[fk.parent].add(table.key)
        done = self.tenants_filled
        for key in dict.fromkeys(picked):
            for fk in self.catalog[key].foreign_keys:
                if fk.parent in done or len(children[fk.parent]) < 2 or fk.parent not in self.plans:
                    continue
                done.add(fk.parent)
                for _ in range(TENANT_ROWS * 2):
                    if len(self.inserter.pool(fk)) >= TENANT_ROWS:
                        break
                    self.insert(fk.parent)

    def insert(
        self, key: str, fixed: Mapping[str, Any] | None = None, stack: tuple[str, ...] = ()
    ) -> dict[str, Any] | None:
        """Insert one row into ``key`` with the ``fixed`` values; its record (see
        :attr:`SeedResult.records`), or None if no row went in.

        ``stack`` holds the tables waiting for this row, so that a cycle of required foreign
        keys ends in a skipped row instead of endless recursion.
        """
        plan = self.plans.get(key)
        if plan is None:
            return None
        if key not in self.seen:
            self._load_existing(plan)
        stack = (*stack, key)
        for fk in plan.foreign_keys:
            if fk.parent not in stack and not self.inserter.pool(fk):
                self.insert(fk.parent, stack=stack)
        for _ in range(self.attempts):
            if self.budget <= 0:
                self.result.skipped += 1
                self.result.reasons[f"{key}: attempts of this call spent"] += 1
                return None
            self.budget -= 1
            pools = {fk: tuple(self.inserter.pool(fk)) for fk in plan.foreign_keys}
            row = self.draw(_rows(plan, fixed or {}, pools, self.seen[key]), key)
            blocked = self._make_parents(row, stack)
            if blocked is not None:
                self.result.skipped += 1
                self.result.reasons[f"{key}: no row in {blocked}"] += 1
                return None
            try:
                record = self.inserter.insert(plan.table, row.values)
            except Refused as refused:
                self.result.rejected += 1
                self.result.reasons[f"{key}: {refused}"] += 1
                continue
            self._record(plan, row.values, record)
            return record
        return None

    def _load_existing(self, plan: _Plan) -> None:
        """Values of the first rows already in the table, as text (which every type's input
        reads back), so that repeats reach rows of earlier calls and of migrations."""
        seen = self.seen[plan.table.key]
        columns = sorted(plan.repeatable)
        if not columns:
            return
        query = sql.SQL("SELECT {} FROM {} ORDER BY {} LIMIT {}").format(
            as_text(columns),
            sql.Identifier(plan.table.schema, plan.table.name),
            PHYSICAL_ORDER,
            sql.Literal(_EXISTING_ROWS),
        )
        for row in self.inserter.run(query, ()).fetchall():
            for column, value in zip(columns, row):
                if value is not None:
                    seen[column].append(value)

    def _make_parents(self, row: _Row, stack: tuple[str, ...]) -> str | None:
        """Insert the parents the row asked for and take their keys; the parent that could
        not be made, if any."""
        for fk in row.missing:
            wanted = {p: row.values[c] for c, p in zip(fk.columns, fk.parent_columns)
                      if c in row.values}
            made = None if fk.parent in stack else self.insert(fk.parent, wanted, stack)
            if made is None:
                return fk.parent
            for column, parent_column in zip(fk.columns, fk.parent_columns):
                row.values.setdefault(column, made[parent_column])
        return None

    def _record(self, plan: _Plan, values: Mapping[str, Any], record: dict[str, Any]) -> None:
        key = plan.table.key
        self.result.sequence.append((key, record))
        seen = self.seen[key]
        for column in plan.strategies:
            value = values.get(column)
            if value is not None and value is not DEFAULT:
                seen[column].append(value)


@functools.lru_cache(maxsize=1024)
def _plan(table: Table, overrides: Overrides) -> _Plan | str:
    """The table's plan, or why it cannot be seeded; cached, as the catalog rarely changes
    between calls."""
    insertable = tuple(c.name for c in table.columns if c.insertable)
    in_foreign_key = {c for fk in table.foreign_keys for c in fk.columns}
    # The tenant a row-level security policy checks must be known before the insert, to set
    # the tenant setting to it: never left to a default.
    tenant_column = table.tenant.column if table.tenant else None
    strategies = {
        name: column_values(table.column(name), overrides.column(table.key, name),
                            explicit=name == tenant_column)
        for name in insertable
    }
    filled = {
        name: column_values(table.column(name), overrides.column(table.key, name), nulls=False,
                            explicit=name == tenant_column)
        for name in insertable if table.column(name).nullable
    }
    row_override = overrides.row(table.key)
    if row_override is None:
        needy = [n for n in insertable if strategies[n] is None and n not in in_foreign_key]
        if needy:
            column = table.column(needy[0])
            return (f"no strategy for {column.name} ({column.cast}); "
                    "give one with harness.Overrides")
    alone_unique = {next(iter(u)) for u in table.unique if len(u) == 1}
    return _Plan(
        table=table,
        strategies=strategies,
        filled={name: strategy for name, strategy in filled.items() if strategy is not None},
        row_override=row_override,
        drawn=() if row_override is not None else tuple(
            n for n in insertable
            if n not in in_foreign_key or overrides.column(table.key, n) is not None
        ),
        nullable=frozenset(c.name for c in table.columns if c.nullable),
        overridden=frozenset(n for n in insertable if overrides.column(table.key, n) is not None),
        repeatable=frozenset(insertable) - alone_unique,
        textual=frozenset(n for n in insertable if table.column(n).type.kind == "text"),
        foreign_keys=tuple(sorted(table.foreign_keys, key=lambda fk: -len(fk.columns))),
        checks=tuple(node for node in map(parse_check, table.checks) if node is not None),
        kinds={c.name: (c.type.kind, c.default) for c in table.columns},
        repairable=frozenset(
            n for n in insertable
            if n not in in_foreign_key and overrides.column(table.key, n) is None
            and not table.column(n).counted and strategies[n] is not None
        ) if row_override is None else frozenset(),
    )


_CASE_CHANGES = (lambda v: v, str.upper, str.lower, str.swapcase)
_REPEAT = weighted((st.just(False), 7), (st.just(True), 1))
_ANOTHER = weighted((st.just(False), 1), (st.just(True), 3))
"""Whether a seed step draws one more row: about four rows a step; shrinks to fewer."""
# Constraints such as (a IS NULL) = (b IS NULL) or "finished_at IS NULL OR started_at IS NOT
# NULL" tie columns' NULLs together; rows with no NULLs or all NULLs pass them.
_NULLS_EACH, _NULLS_NONE, _NULLS_ALL = "each", "none", "all"
_NULL_MODE = weighted(
    (st.just(_NULLS_EACH), 2), (st.just(_NULLS_NONE), 1), (st.just(_NULLS_ALL), 1)
)
_NULL_KEY = weighted((st.just(False), 4), (st.just(True), 1))


@functools.lru_cache(maxsize=1024)
def _index(size: int) -> SearchStrategy[int]:
    """Positions in a sequence of ``size``: cached, since building and validating a fresh
    ``sampled_from`` for every row costs more than the insert."""
    return st.integers(0, size - 1)


@st.composite
def _rows(
    draw: Callable[..., Any],
    plan: _Plan,
    fixed: Mapping[str, Any],
    pools: Mapping[ForeignKey, Sequence[tuple[Any, ...]]],
    seen: Mapping[str, Sequence[Any]],
) -> _Row:
    """One row for ``plan``: drawn columns, then foreign keys from parent rows, consistent
    where keys share columns (the tenant of a composite key)."""
    values = dict(fixed)
    if plan.row_override is not None:
        drawn = draw(plan.row_override)
        if not isinstance(drawn, Mapping):
            raise HarnessError(
                f"the row override for {plan.table.key} drew {type(drawn).__name__}, not a mapping"
            )
        for column, value in drawn.items():
            if column in plan.strategies:
                values.setdefault(column, value)
    mode = draw(_NULL_MODE) if len(plan.filled) > 1 else _NULLS_EACH
    for column in plan.drawn:
        if column in values:
            continue
        previous = seen.get(column) if column in plan.repeatable else None
        if column in plan.overridden:
            values[column] = draw(plan.strategies[column])
        elif mode == _NULLS_ALL and column in plan.filled:
            values[column] = None
        elif previous and draw(_REPEAT):
            values[column] = _again(draw, previous, column in plan.textual)
        else:
            strategy = plan.strategies[column]
            if mode == _NULLS_NONE:
                strategy = plan.filled.get(column, strategy)
            value = draw(strategy)
            for _ in range(0 if column in plan.repeatable else _UNIQUE_REDRAWS):
                if value not in seen.get(column, ()):
                    break
                value = draw(strategy)
            values[column] = value

    missing = []
    for fk in plan.foreign_keys:
        given = {c: values[c] for c in fk.columns if c in values}
        if any(v is None or v is DEFAULT for v in given.values()) or len(given) == len(fk.columns):
            # MATCH SIMPLE: a NULL column switches the check off; a default is unknowable here.
            continue
        open_nullable = [c for c in fk.columns if c not in given and c in plan.nullable]
        matching = [
            parent for parent in pools.get(fk, ())
            if all(_same(parent[i], given[c]) for i, c in enumerate(fk.columns) if c in given)
        ]
        if open_nullable and (not matching or draw(_NULL_KEY)):
            values.update(dict.fromkeys(open_nullable))
        elif matching:
            chosen = matching[draw(_index(len(matching)))]
            for column, value in zip(fk.columns, chosen):
                values.setdefault(column, value)
        else:
            missing.append(fk)
    waiting = {c for fk in missing for c in fk.columns}
    for column in plan.strategies:
        if column not in values and column not in waiting and plan.row_override is None:
            # Left over by a foreign key switched off by another column's NULL.
            strategy = plan.strategies[column]
            values[column] = None if column in plan.nullable or strategy is None else draw(strategy)
    if plan.checks:
        Repair(
            Env(values, plan.kinds), plan.repairable - fixed.keys(), plan.nullable,
            fill=lambda column: draw(plan.filled.get(column, plan.strategies[column])),
            choose=lambda n: draw(_index(n)),
        ).run(plan.checks)
    for column in plan.drawn:
        if column not in plan.repeatable and column not in plan.overridden \
                and values.get(column) in seen.get(column, ()):
            values[column] = _unseen(values[column], seen[column], plan.table.column(column))
    return _Row(values, missing)


def _again(draw: Callable[..., Any], previous: Sequence[Any], textual: bool) -> Any:
    """A value already in this column, as is or (for text) in another case: the duplicates a
    new unique index, or one on lower(column), trips over."""
    value = previous[draw(_index(len(previous)))]
    if textual and isinstance(value, str):
        return _CASE_CHANGES[draw(_index(len(_CASE_CHANGES)))](value)
    return value


def _unseen(value: Any, seen: Sequence[Any], column: Column) -> Any:
    """A near variant of a value already in a unique column, within the column's hints; the
    value itself if none is found.

    Redrawing is not enough: a strategy's simplest value (``from_regex``'s ``'00'``, the 0 of
    integers) comes back draw after draw in Hypothesis' first, simplest example, and every
    repeat under a unique key is a refused row.
    """
    hints = column.hints.merge(column.type.hints)
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        return value
    if isinstance(value, int):
        candidates: Iterable[Any] = (value + step for step in range(1, 20))
    else:
        longest = tighter(hints.max_length, column.type.length, min)
        candidates = [value[:-1] + c for c in _VARIANT_CHARACTERS] + \
            [value + c for c in _VARIANT_CHARACTERS if longest is None or len(value) < longest]
    for candidate in candidates:
        if candidate not in seen and _within_hints(candidate, hints):
            return candidate
    return value


def _within_hints(value: Any, hints: Hints) -> bool:
    if isinstance(value, str):
        return all(re.search(p, value) for p in hints.patterns) \
            and len(value) >= (hints.min_length or 0) \
            and (hints.max_length is None or len(value) <= hints.max_length)
    low_ok = hints.lower is None or value > hints.lower[0] or (hints.lower[1] and value == hints.lower[0])
    high_ok = hints.upper is None or value < hints.upper[0] or (hints.upper[1] and value == hints.upper[0])
    return low_ok and high_ok


def _same(parent_text: Any, value: Any) -> bool:
    return parent_text == (value if isinstance(value, str) else str(value))

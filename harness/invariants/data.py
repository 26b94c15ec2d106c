"""Data preservation: a migration keeps every row it has no reason to change.

The property, in the three forms the machine and the sweep check:

* across a step, every table the step did not restructure holds exactly the rows it held;
* across a step, every table it did restructure still holds every row, projected onto the
  columns present before and after (a column added or dropped is the schema invariant's
  business, a lossy type change or deleted rows are this one's);
* after an upgrade and its downgrade, every row of every column that existed before is back.

Rows are compared as multisets of text values, one per column, read in one fixed session
setup. Text rather than ``to_jsonb``: a widening type change (integer to bigint, varchar to
text) keeps the text of every value, whereas JSON would turn ``1`` into ``"1"`` on a change
to text and report a loss that is not there. Where a column's type changed between two
numeric types the values are compared as numbers, so ``12.5`` kept as ``12.50`` is no loss
while ``12.50`` rounded to ``13`` is.

Revisions listed in the ``data_migrations`` setting change rows on purpose and are exempt.
"""

from __future__ import annotations

import collections
import dataclasses
import heapq
import json
from decimal import Decimal, InvalidOperation
from typing import Any, Callable, Collection, Literal, Mapping

import psycopg
from psycopg import sql

from ..errors import HarnessError
from ..violations import Violation

TableName = tuple[str, str]
Value = str | None
Row = tuple[Value, ...]
Direction = Literal["upgrade", "downgrade"]

EXAMPLES = 5
"""Rows lost and rows new kept as evidence, each: enough to see the pattern, short to read."""

# The text form of dates, intervals, floats and bytea depends on session settings; fixing them
# makes two captures comparable whatever the connection's defaults are. row_security=off makes
# a role that RLS would filter fail loudly instead of silently capturing a subset of the rows.
_SESSION = (
    "SELECT set_config('TimeZone', 'UTC', true), set_config('DateStyle', 'ISO, YMD', true),"
    " set_config('IntervalStyle', 'postgres', true), set_config('extra_float_digits', '1', true),"
    " set_config('bytea_output', 'hex', true), set_config('row_security', 'off', true)"
)

# Partitions are read through their partitioned table (moving rows between partitions is no
# change to the data the application sees); tables owned by extensions are not the migrations'.
_TABLES = """
SELECT n.nspname, c.relname, c.relkind,
       coalesce(array_agg(a.attname ORDER BY a.attnum) FILTER (WHERE a.attnum IS NOT NULL), '{}'),
       coalesce(array_agg(format_type(a.atttypid, a.atttypmod) ORDER BY a.attnum)
                FILTER (WHERE a.attnum IS NOT NULL), '{}'),
       coalesce(array_agg(t.typcategory::text ORDER BY a.attnum)
                FILTER (WHERE a.attnum IS NOT NULL), '{}')
  FROM pg_class c
  JOIN pg_namespace n ON n.oid = c.relnamespace
  LEFT JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
  LEFT JOIN pg_type t ON t.oid = a.atttypid
 WHERE c.relkind IN ('r', 'p') AND NOT c.relispartition AND c.relpersistence <> 't'
   AND n.nspname <> 'information_schema' AND n.nspname !~ '^pg_'
   AND NOT EXISTS (SELECT FROM pg_depend d
                    WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid AND d.deptype = 'e')
 GROUP BY n.nspname, c.relname, c.relkind
 ORDER BY n.nspname, c.relname
"""


@dataclasses.dataclass(frozen=True)
class ComparedColumn:
    """A column as data comparison needs it: name, declared type, type category."""

    name: str
    type: str
    category: str
    """``pg_type.typcategory``: N numeric, B boolean, S string, D date/time, ..."""


@dataclasses.dataclass(frozen=True)
class TableRows:
    """Every row of one table, each as the text of its values in column order."""

    columns: tuple[ComparedColumn, ...]
    rows: tuple[Row, ...]


@dataclasses.dataclass(frozen=True)
class RowsSnapshot:
    """Every row of every table at one moment, keyed by (schema, table)."""

    tables: Mapping[TableName, TableRows]

    def counts(self) -> dict[str, int]:
        """Rows per ``schema.table``: what a failed step's report says was there."""
        return {_qualified(name): len(table.rows) for name, table in self.tables.items()}


RowsCache = dict[TableName, tuple[tuple[Any, ...], TableRows]]
"""Tables already read, each under the server's digest of its rows: see :func:`capture_rows`."""


def capture_rows(
    conn: psycopg.Connection, exclude: Collection[TableName] = (("public", "alembic_version"),),
    *, cache: RowsCache | None = None,
) -> RowsSnapshot:
    """Read every row of every table outside the system schemas.

    All tables are read by one ``UNION ALL`` of text arrays, so the cost is one round trip
    whatever the number of tables. With a ``cache`` (one per database, kept by the caller), the
    server first digests each table (row count and md5 of its sorted rows' text) and only the
    tables whose digest is not the cached one are read again: a run that keeps rows across many
    steps then moves only the rows a step or a fill touched, not every row at every step.
    Runs in its own transaction (a savepoint when ``conn`` is already in one), changes nothing.
    """
    excluded = set(exclude)
    with conn.transaction():
        conn.execute(_SESSION)
        tables = [
            ((schema, name), kind, tuple(map(ComparedColumn, names, types, categories)))
            for schema, name, kind, names, types, categories in conn.execute(_TABLES)
            if (schema, name) not in excluded
        ]
        if not tables:
            return RowsSnapshot({})
        keys = [(columns, None) for _, _, columns in tables]
        if cache is not None:
            digests = dict(_query(conn, [_digest_as_text(i, name, kind, columns)
                                         for i, (name, kind, columns) in enumerate(tables)]))
            keys = [(columns, digests[i]) for i, (_, _, columns) in enumerate(tables)]
        stale = [i for i, (name, _, _) in enumerate(tables)
                 if cache is None or cache.get(name, (None,))[0] != keys[i]]
        result = _query(conn, [_select_as_text(i, *tables[i]) for i in stale]) if stale else []
    rows: dict[int, list[Row]] = {i: [] for i in stale}
    for index, values in result:
        rows[index].append(tuple(values))
    snapshot = {}
    for i, (name, _, columns) in enumerate(tables):
        if i in rows:
            snapshot[name] = TableRows(columns, tuple(rows[i]))
            if cache is not None:
                cache[name] = (keys[i], snapshot[name])
        else:
            snapshot[name] = cache[name][1]
    return RowsSnapshot(snapshot)


def _query(conn: psycopg.Connection, selects: list[sql.Composed]) -> list[tuple[Any, ...]]:
    try:
        return conn.execute(sql.SQL(" UNION ALL ").join(selects)).fetchall()
    except psycopg.errors.InsufficientPrivilege as exc:
        raise HarnessError(
            f"cannot read every row to check data preservation: {exc.diag.message_primary}",
            hint="connect as a superuser or a role with BYPASSRLS",
        ) from None


def _digest_as_text(
    index: int, name: TableName, kind: str, columns: tuple[Column, ...]
) -> sql.Composed:
    rows = _select_as_text(index, name, kind, columns)
    return sql.SQL(
        "SELECT {index}, ARRAY[count(*)::text, md5(string_agg(r::text, ',' ORDER BY r::text))] "
        "FROM ({rows}) AS s(i, r)"
    ).format(index=sql.Literal(index), rows=rows)


def _select_as_text(
    index: int, name: TableName, kind: str, columns: tuple[ComparedColumn, ...]
) -> sql.Composed:
    # ONLY keeps rows of an inheritance child from being counted in its parent too; a
    # partitioned table must be read with its partitions, which is the point of reading it.
    values = sql.SQL(", ").join(sql.SQL("{}::text").format(sql.Identifier(c.name)) for c in columns)
    return sql.SQL("SELECT {index}, ARRAY[{values}]::text[] FROM {only}{table}").format(
        index=sql.Literal(index), values=values, table=sql.Identifier(*name),
        only=sql.SQL("ONLY " if kind == "r" else ""),
    )


def check_step(
    before: RowsSnapshot,
    after: RowsSnapshot,
    *,
    revision: str | None,
    direction: Direction,
    structural_tables: Collection[str] = frozenset(),
    data_migrations: Collection[str] = (),
) -> list[Violation]:
    """Rows changed by one migration step of ``revision``, one violation per table.

    ``structural_tables`` (``schema.table``, as ``Difference.table`` names them) are the
    tables whose columns or constraints the step changed: they must keep every row on the
    columns they kept, and may gain rows. Every other table present before and after must hold
    exactly the same rows. Tables created or dropped by the step are not compared. A step of
    several revisions (a jump) has no single ``revision``; pass None.
    """
    if revision in data_migrations:
        return []
    structural = set(structural_tables)
    action = f"changed by {direction}" + (f" of {revision}" if revision else "")
    return _compare(before, after, revision=revision, action=action,
                    strict=lambda name: _qualified(name) not in structural)


def check_round_trip(
    before_up: RowsSnapshot,
    after_down: RowsSnapshot,
    *,
    revision: str,
    data_migrations: Collection[str] = (),
) -> list[Violation]:
    """Rows that an upgrade of ``revision`` followed by its downgrade did not give back.

    Only losses count: rows the round trip added are the step checks' business, and rows
    seeded between the two steps must not be mistaken for a defect.
    """
    if revision in data_migrations:
        return []
    return _compare(
        before_up, after_down, revision=revision,
        action=f"not given back by upgrade and downgrade of {revision}", strict=lambda name: False,
    )


def _compare(
    before: RowsSnapshot, after: RowsSnapshot, *, revision: str | None, action: str,
    strict: Callable[[TableName], bool],
) -> list[Violation]:
    violations = []
    for name in sorted(before.tables.keys() & after.tables.keys()):
        old, new = before.tables[name], after.tables[name]
        kept = {c.name for c in new.columns}
        columns = [c for c in old.columns if c.name in kept]
        lost, appeared = _difference(old, new, columns)
        if lost or (appeared and strict(name)):
            violations.append(_violation(name, columns, lost, appeared, revision, action))
    return violations


def _difference(
    old: TableRows, new: TableRows, columns: list[ComparedColumn]
) -> tuple[list[Row], list[Row]]:
    """Rows of ``old`` missing from ``new`` and the reverse, projected on ``columns``.

    A multiset difference: a row held twice and kept once is one row lost. The rows returned
    are as each side holds them, so evidence shows ``12.50`` even where it compared as 12.5.
    """
    new_types = {c.name: c.type for c in new.columns}
    normalizers = [_as_number if c.category == "N" and c.type != new_types[c.name] else None
                   for c in columns]
    old_rows = _by_key(old, columns, normalizers)
    new_rows = _by_key(new, columns, normalizers)
    return _surplus(old_rows, new_rows), _surplus(new_rows, old_rows)


def _by_key(
    table: TableRows, columns: list[ComparedColumn], normalizers: list[Callable[[str], str] | None]
) -> dict[Row, list[Row]]:
    positions = [[c.name for c in table.columns].index(c.name) for c in columns]
    normalizing = any(normalizers)
    grouped: dict[Row, list[Row]] = collections.defaultdict(list)
    for row in table.rows:
        projected = tuple(row[p] for p in positions)
        key = tuple(v if f is None or v is None else f(v) for v, f in zip(projected, normalizers)) \
            if normalizing else projected
        grouped[key].append(projected)
    return grouped


def surplus(table: TableRows, other: TableRows | None) -> list[Row]:
    """Rows of ``table`` beyond those ``other`` holds (a multiset difference); every row when
    ``other`` is missing or has other columns."""
    if other is None or other.columns != table.columns:
        return list(table.rows)
    return list((collections.Counter(table.rows) - collections.Counter(other.rows)).elements())


def _surplus(these: dict[Row, list[Row]], those: dict[Row, list[Row]]) -> list[Row]:
    return [row for key, rows in these.items() for row in rows[len(those.get(key, ())):]]


def _as_number(text: str) -> str:
    """The canonical text of a number, so 12.5 and 12.50 compare equal across a type change."""
    try:
        number = Decimal(text)
    except InvalidOperation:
        return text
    return text if not number.is_finite() else format(number.normalize(), "f")


def _violation(
    name: TableName, columns: list[ComparedColumn], lost: list[Row], appeared: list[Row],
    revision: str | None, action: str,
) -> Violation:
    lost_rows = _examples(columns, lost)
    new_rows = _examples(columns, appeared)
    table = _qualified(name)
    lost_count, new_count = len(lost), len(appeared)
    samples = [f"{label} {json.dumps(rows[0])}" for label, rows in
               (("lost", lost_rows), ("new", new_rows)) if rows]
    return Violation(
        property="data",
        revision=revision,
        message=f"rows of {table} {action}: {lost_count} lost, {new_count} new; "
                f"e.g. {', '.join(samples)}",
        evidence={
            "table": table,
            "columns": [c.name for c in columns],
            "lost_count": lost_count,
            "new_count": new_count,
            "lost": lost_rows,
            "new": new_rows,
        },
    )


def _qualified(name: TableName) -> str:
    return ".".join(name)


def _examples(columns: list[ComparedColumn], rows: list[Row]) -> list[dict[str, Any]]:
    """A few rows as JSON objects, in a stable order so lost and new rows of one key line up."""
    shown = ({c.name: _json_value(c, v) for c, v in zip(columns, row)} for row in rows)
    return heapq.nsmallest(EXAMPLES, shown, key=json.dumps)


def _json_value(column: ComparedColumn, value: Value) -> Any:
    """Integers and booleans as JSON ones, everything else as PostgreSQL's text for it."""
    if value is not None and column.category == "N" and value.lstrip("-").isdigit():
        return int(value)
    if value is not None and column.category == "B":
        return value == "true"
    return value

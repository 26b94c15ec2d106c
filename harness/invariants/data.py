"""Data preservation: a migration keeps every row it has no reason to change.

The property, in the forms the machine and the sweep check:

* across a step, every table still holds every row it held, projected onto the columns present
  before and after (a column added or dropped is the schema invariant's business, a lossy type
  change, a rewritten value or a deleted row are this one's). Rows added are no loss: a revision
  may insert reference rows. A downgrade may remove rows an earlier upgrade added
  (:class:`AddedRows`): that is giving them back;
* after an upgrade and its downgrade, the rows are exactly those before the upgrade: every row
  of every column that existed before is back, and the rows the upgrade added are gone. Only
  when nothing changed the rows in between: rows added meanwhile (seeded, or by a declared data
  migration) may rightly change what a downgrade folds back into the old tables.

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

from ..violations import Violation

TableName = tuple[str, str]
Value = str | None
Row = tuple[Value, ...]
Direction = Literal["upgrade", "downgrade"]

EXAMPLES = 5
"""Rows lost and rows new kept as evidence, each: enough to see the pattern, short to read."""

_FOREIGN_KEYS = """
SELECT sn.nspname, s.relname,
       ARRAY(SELECT a.attname FROM unnest(k.conkey) WITH ORDINALITY u(num, i)
               JOIN pg_attribute a ON a.attrelid = k.conrelid AND a.attnum = u.num ORDER BY u.i),
       tn.nspname, t.relname,
       ARRAY(SELECT a.attname FROM unnest(k.confkey) WITH ORDINALITY u(num, i)
               JOIN pg_attribute a ON a.attrelid = k.confrelid AND a.attnum = u.num ORDER BY u.i)
  FROM pg_constraint k
  JOIN pg_class s ON s.oid = k.conrelid
  JOIN pg_namespace sn ON sn.oid = s.relnamespace
  JOIN pg_class t ON t.oid = k.confrelid
  JOIN pg_namespace tn ON tn.oid = t.relnamespace
 WHERE k.contype = 'f' AND k.conparentid = 0
   AND sn.nspname <> 'information_schema' AND sn.nspname !~ '^pg_'
 ORDER BY 1, 2, k.conname
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




def check_step(
    before: RowsSnapshot,
    after: RowsSnapshot,
    *,
    revision: str | None,
    direction: Direction,
    data_migrations: Collection[str] = (),
    removable: AddedRows | None = None,
) -> list[Violation]:
    """Rows lost or rewritten by one migration step of ``revision``, one violation per table.

    Tables present before and after must keep every row on the columns they kept; rows added
    are no loss. Rows in ``removable`` (added by earlier upgrades) may go. Tables created or
    dropped by the step are not compared. A step of several revisions (a jump) has no single
    ``revision``; pass None.
    """
    if revision in data_migrations:
        return []
    action = f"changed by {direction}" + (f" of {revision}" if revision else "")
    forgive = removable.remove_from if removable is not None else _forgive_nothing
    return _compare(before, after, revision=revision, action=action, strict=False,
                    forgive=forgive)


def check_round_trip(
    before_up: RowsSnapshot,
    after_down: RowsSnapshot,
    *,
    revision: str,
    data_migrations: Collection[str] = (),
    added: Mapping[TableName, TableRows] | None = None,
    foreign_keys: Collection[ForeignKey] = (),
) -> list[Violation]:
    """Rows that an upgrade of ``revision`` followed by its downgrade did not restore.

    ``added`` are the rows added between the two (:func:`rows_added`). With none, the round
    trip must restore exactly the rows it started from: lost rows and rows left behind both
    count. With some, the downgrade may rightly carry them back (new rows in the old tables)
    or fold them into the rows they refer to by ``foreign_keys`` (lines summed back into their
    invoice): then only rows lost count, and not those an added row refers to.
    """
    if revision in data_migrations:
        return []
    forgive = _forgive_referenced(added, foreign_keys) if added else _forgive_nothing
    return _compare(
        before_up, after_down, revision=revision,
        action=f"not restored by upgrade and downgrade of {revision}", strict=not added,
        forgive=forgive,
    )


def rows_added(
    earlier: RowsSnapshot, later: RowsSnapshot
) -> dict[TableName, TableRows] | None:
    """The rows added between two captures, per table (a table created meanwhile: all its rows).

    None when any row was lost or rewritten in between, or a table dropped or restructured: a
    round trip across such changes (a declared data migration ran meanwhile) cannot be judged.
    """
    if earlier.tables.keys() - later.tables.keys():
        return None
    added = {}
    for name, new in later.tables.items():
        old = earlier.tables.get(name)
        if old is None:
            added[name] = new
            continue
        if old.columns != new.columns:
            return None
        lost, appeared = _difference(old, new, list(old.columns))
        if lost:
            return None
        if appeared:
            added[name] = TableRows(new.columns, tuple(appeared))
    return added


FOREIGN_KEYS = ("harness_foreign_keys", _FOREIGN_KEYS)
"""The statement :func:`foreign_keys` runs, under the name it is prepared as."""


@dataclasses.dataclass(frozen=True)
class ForeignKey:
    """A foreign key by names: ``source(columns)`` references ``target(target_columns)``."""

    source: TableName
    columns: tuple[str, ...]
    target: TableName
    target_columns: tuple[str, ...]


def foreign_keys(conn: psycopg.Connection) -> tuple[ForeignKey, ...]:
    """Every foreign key outside the system schemas, as declared (not per partition)."""
    return foreign_keys_of(conn.execute(_FOREIGN_KEYS).fetchall())


def foreign_keys_of(rows: Collection[tuple[Any, ...]]) -> tuple[ForeignKey, ...]:
    """The foreign keys in the rows :data:`FOREIGN_KEYS` read."""
    return tuple(
        ForeignKey((source_schema, source), tuple(columns), (target_schema, target),
                   tuple(target_columns))
        for source_schema, source, columns, target_schema, target, target_columns in rows
    )


class AddedRows:
    """Rows that upgrades added (reference rows), which a later downgrade may remove.

    A revision inserting reference rows has a downgrade deleting them: that gives back, it
    does not lose. Kept as a set per table, with the columns of the time they were added; a
    downgrade's lost row matches on the columns both have. A set, not a multiset: an added
    row identical to one held before could hide that one's loss, a price paid for not
    tracking which downgrade removes which insert.
    """

    def __init__(self) -> None:
        self._tables: dict[TableName, tuple[tuple[str, ...], set[Row]]] = {}

    def add(self, before: RowsSnapshot, after: RowsSnapshot) -> None:
        """Record the rows a step added, also those of the tables it created."""
        for name, new in after.tables.items():
            old = before.tables.get(name)
            if old is None:  # created by the step: every row in it is the step's
                common, appeared = list(new.columns), list(new.rows)
            else:
                kept = {c.name for c in old.columns}
                common = [c for c in new.columns if c.name in kept]
                appeared = _difference(old, new, common)[1]
            if appeared:
                columns = tuple(c.name for c in common)
                known_columns, rows = self._tables.get(name, (columns, set()))
                if known_columns != columns:
                    rows = set()
                self._tables[name] = (columns, rows | set(appeared))

    def remove_from(self, name: TableName, columns: list[ComparedColumn], lost: list[Row]) -> list[Row]:
        """``lost`` (rows on ``columns``) without the rows this set holds, matched on the
        columns both have."""
        known = self._tables.get(name)
        if known is None:
            return lost
        return _without(lost, columns, known[0], known[1])


Forgive = Callable[[TableName, list[ComparedColumn], list[Row]], list[Row]]
"""Given a table, the compared columns and its lost rows: the lost rows that still count."""


def _forgive_nothing(name: TableName, columns: list[ComparedColumn], lost: list[Row]) -> list[Row]:
    return lost


def _forgive_referenced(
    added: Mapping[TableName, TableRows], keys: Collection[ForeignKey]
) -> Forgive:
    """Forgive lost rows that an added row refers to: the downgrade folded it into them."""
    referenced: dict[TableName, list[tuple[tuple[str, ...], set[Row]]]] = \
        collections.defaultdict(list)
    for key in keys:
        table = added.get(key.source)
        names = [c.name for c in table.columns] if table is not None else []
        if table is None or not set(key.columns) <= set(names):
            continue
        positions = [names.index(c) for c in key.columns]
        values = {v for row in table.rows if None not in (v := tuple(row[p] for p in positions))}
        referenced[key.target].append((key.target_columns, values))

    def forgive(name: TableName, columns: list[ComparedColumn], lost: list[Row]) -> list[Row]:
        for target_columns, values in referenced.get(name, ()):
            lost = _without(lost, columns, target_columns, values)
        return lost

    return forgive


def _without(lost: list[Row], columns: list[ComparedColumn], names: tuple[str, ...],
             rows: set[Row]) -> list[Row]:
    """``lost`` (on ``columns``) without those matching one of ``rows`` (on ``names``) on the
    columns both have; all of ``lost`` when they have none in common."""
    shared = [(i, names.index(c.name)) for i, c in enumerate(columns) if c.name in names]
    if not shared:
        return lost
    matched = {tuple(row[k] for _, k in shared) for row in rows}
    return [row for row in lost if tuple(row[i] for i, _ in shared) not in matched]


def _compare(
    before: RowsSnapshot, after: RowsSnapshot, *, revision: str | None, action: str,
    strict: bool, forgive: Forgive,
) -> list[Violation]:
    violations = []
    for name in sorted(before.tables.keys() & after.tables.keys()):
        old, new = before.tables[name], after.tables[name]
        kept = {c.name for c in new.columns}
        columns = [c for c in old.columns if c.name in kept]
        lost, appeared = _difference(old, new, columns)
        lost = forgive(name, columns, lost)
        if lost or (appeared and strict):
            violations.append(_violation(name, columns, lost, appeared, revision, action))
    return violations


def _difference(
    old: TableRows, new: TableRows, columns: list[ComparedColumn]
) -> tuple[list[Row], list[Row]]:
    """Rows of ``old`` missing from ``new`` and the reverse, projected on ``columns``.

    A multiset difference: a row held twice and kept once is one row lost. The rows returned
    are as each side holds them, so evidence shows ``12.50`` even where it compared as 12.5.
    """
    if old == new:  # a table a step left alone: a reader hands back the very rows it read
        return [], []
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
    whole = positions == list(range(len(table.columns)))
    normalizing = any(normalizers)
    grouped: dict[Row, list[Row]] = collections.defaultdict(list)
    for row in table.rows:
        projected = row if whole else tuple(row[p] for p in positions)
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

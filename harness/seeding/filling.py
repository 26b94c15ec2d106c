"""A seeded database of a chosen size, deterministic and without Hypothesis.

The report needs non-empty tables, not edge cases: migrations that rewrite a table, copy it into
a materialized view, take its locks or dump it behave differently on rows than on nothing.
Hypothesis' seeding (:mod:`.rows`) is built to find edge cases and needs a ``draw``; the
report is not a search and never loads Hypothesis, so this module fills tables with plain values
from ``random.Random``, driven by the same catalog model (:func:`.catalog.read_catalog`: types,
CHECK hints, foreign keys, unique keys).

As in seeding, the database is the judge: every row goes in inside its own savepoint, a row it
refuses is tried again with other values a few times and otherwise counted as rejected. The
counts of what went in are part of the report's evidence.
"""

from __future__ import annotations

import dataclasses
import datetime
import json
import random
import re
import string
import uuid
from decimal import Decimal
from typing import Any, Callable, Iterable, Sequence

import psycopg
from psycopg import sql

from .catalog import Column, ForeignKey, Table, TypeInfo, read_catalog
from .hints import Hints

ATTEMPTS = 30
"""Candidates per row: CHECKs that tie columns together accept a fraction of random rows."""
POOL_LIMIT = 2000
"""Parent rows a foreign key chooses from."""

Maker = Callable[[int, bool, random.Random], str]
"""Makes a column's value as text from the row's index, whether it must be unique, and the rng."""

_OMIT = object()
"""Leave the column out of the INSERT, so its default applies."""

_EPOCH = datetime.datetime(2025, 1, 1, tzinfo=datetime.timezone.utc)
_ALPHABETS = (
    string.ascii_lowercase + string.digits,
    string.ascii_uppercase,
    string.digits,
    string.ascii_lowercase,
    string.ascii_letters + string.digits,
)


@dataclasses.dataclass
class Filled:
    """What :func:`fill` did: rows per table now, rows it added, rows the database refused."""

    rows: dict[str, int] = dataclasses.field(default_factory=dict)
    added: dict[str, int] = dataclasses.field(default_factory=dict)
    rejected: int = 0
    unseedable: dict[str, str] = dataclasses.field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def fill(
    conn: psycopg.Connection,
    rows_per_table: int,
    *,
    seed: int = 0,
    exclude: Iterable[tuple[str, str]] = (),
) -> Filled:
    """Top every table up to ``rows_per_table`` rows, parents before children.

    Tables that already hold that many rows are left alone, so filling again after a migration
    only gives rows to the tables it created. ``conn`` must be in autocommit mode.
    """
    catalog = read_catalog(conn, exclude=exclude)
    result = Filled()
    for table in catalog:
        present = _count(conn, table)
        wanted = max(rows_per_table - present, 0)
        rng = random.Random(f"{seed}:{table.key}")
        added = _fill_table(conn, table, wanted, present, rng, result) if wanted else 0
        result.rows[table.key] = present + added
        if added:
            result.added[table.key] = added
    return result


def _count(conn: psycopg.Connection, table: Table) -> int:
    query = sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(table.schema, table.name))
    return conn.execute(query).fetchone()[0]


def _fill_table(
    conn: psycopg.Connection, table: Table, wanted: int, offset: int, rng: random.Random,
    result: Filled,
) -> int:
    missing = [c.name for c in table.columns
               if c.insertable and not c.nullable and c.default is None
               and _values_of(c) is None and not _in_foreign_key(table, c.name)]
    if missing:
        result.unseedable[table.key] = f"no values for {', '.join(missing)}"
        return 0
    pools = {fk.name: _pool(conn, fk) for fk in _widest_first(table.foreign_keys)}
    added = 0
    with conn.transaction():
        for index in range(offset, offset + wanted):
            for _ in range(ATTEMPTS):
                values = _row(table, pools, index, rng)
                if values is not None and _insert(conn, table, values):
                    added += 1
                    break
                result.rejected += 1
    return added


def _widest_first(keys: Sequence[ForeignKey]) -> list[ForeignKey]:
    # A composite key (tenant_id, event_id) fixes the tenant before the tenant's own key does.
    return sorted(keys, key=lambda fk: (-len(fk.columns), fk.name))


def _in_foreign_key(table: Table, column: str) -> bool:
    return any(column in fk.columns for fk in table.foreign_keys)


def _pool(conn: psycopg.Connection, fk: ForeignKey) -> list[tuple[str, ...]]:
    """Parent key values as text, in physical order so the same clone gives the same pool."""
    columns = sql.SQL(", ").join(sql.SQL("{}::text").format(sql.Identifier(c)) for c in fk.parent_columns)
    not_null = sql.SQL(" AND ").join(sql.SQL("{} IS NOT NULL").format(sql.Identifier(c))
                                     for c in fk.parent_columns)
    query = sql.SQL("SELECT {} FROM {} WHERE {} ORDER BY ctid LIMIT {}").format(
        columns, sql.Identifier(fk.parent_schema, fk.parent_name), not_null, sql.Literal(POOL_LIMIT)
    )
    return [tuple(row) for row in conn.execute(query)]


def _row(
    table: Table, pools: dict[str, list[tuple[str, ...]]], index: int, rng: random.Random,
) -> dict[str, Any] | None:
    """One candidate row, or None when a required parent row does not exist."""
    values: dict[str, Any] = {}
    for fk in _widest_first(table.foreign_keys):
        if not _choose_parent(table, fk, pools[fk.name], values, rng):
            return None
    unique = {name for key in table.unique if len(key) == 1 for name in key}
    for column in table.columns:
        if column.name in values or not column.insertable:
            continue
        values[column.name] = _value(column, index, column.name in unique, rng)
    for lower, higher in table.ordered:
        pair = (values.get(lower), values.get(higher))
        if all(isinstance(v, str) for v in pair):
            values[lower], values[higher] = sorted(pair, key=_ordering)
    return {name: value for name, value in values.items() if value is not _OMIT}


def _ordering(text: str) -> tuple[Decimal, str]:
    # Numbers compare as numbers, everything else this module makes (ISO timestamps) as text.
    try:
        return Decimal(text), ""
    except ArithmeticError:
        return Decimal(0), text


def _choose_parent(
    table: Table, fk: ForeignKey, pool: list[tuple[str, ...]], values: dict[str, Any],
    rng: random.Random,
) -> bool:
    """Set ``fk``'s columns from a parent row agreeing with the columns already set."""
    fixed = {i: values[c] for i, c in enumerate(fk.columns) if c in values}
    matching = [row for row in pool if all(row[i] == v for i, v in fixed.items())]
    nullable = all(table.column(c).nullable for c in fk.columns if c not in values)
    if matching and not (nullable and rng.random() < 0.2):
        chosen = rng.choice(matching)
        values.update({c: chosen[i] for i, c in enumerate(fk.columns)})
        return True
    if nullable:
        values.update({c: None for c in fk.columns if c not in values})
        return True
    return False


def _value(column: Column, index: int, unique: bool, rng: random.Random) -> Any:
    if column.counted or (column.default is not None and rng.random() < 0.6):
        return _OMIT
    if column.nullable and rng.random() < 0.25:
        return None
    make = _values_of(column)
    if make is None:
        return _OMIT if column.default is not None else None
    return make(index, unique, rng)


def _values_of(column: Column) -> Maker | None:
    """A maker of text values for the column, or None when its type has none."""
    hints = column.hints.merge(column.type.hints)
    if hints.values:
        return lambda index, unique, rng: rng.choice(hints.values)
    return _type_values(column.type, hints)


def _type_values(t: TypeInfo, hints: Hints) -> Maker | None:
    kind = t.kind
    if t.labels:
        return lambda index, unique, rng: rng.choice(t.labels)
    if kind == "array" and t.element is not None:
        element = _type_values(t.element, t.element.hints)
        if element is None:
            return None
        return lambda index, unique, rng: "{" + json.dumps(str(element(index, unique, rng))) + "}"
    if kind in ("int2", "int4", "int8", "numeric", "money", "float4", "float8"):
        return _numbers(t, hints)
    if kind == "text":
        return _texts(t, hints)
    return _SIMPLE.get(kind)


def _numbers(t: TypeInfo, hints: Hints) -> Maker:
    lo = int(hints.lower[0]) + (0 if hints.lower[1] else 1) if hints.lower else 1
    hi = int(hints.upper[0]) - (0 if hints.upper[1] else 1) if hints.upper else 10_000
    if t.precision is not None and t.scale is not None:
        hi = min(hi, 10 ** max(t.precision - t.scale, 0) - 1)
    fractional = t.kind in ("numeric", "money", "float4", "float8")

    def make(index: int, unique: bool, rng: random.Random) -> str:
        if unique:
            return str(lo + index)
        if fractional and hi <= lo + 1:
            # A bound like (0, 1]: only fractions fit.
            low = Decimal(hints.lower[0]) if hints.lower else Decimal(lo)
            return str(low + Decimal(rng.randint(1, 999_999)) / Decimal(1_000_000) * (Decimal(hi) - low or 1))
        number = rng.randint(lo, max(lo, hi))
        return str(number) if not fractional or t.scale == 0 else f"{number}.{rng.randint(0, 99):02d}"

    return make


def _texts(t: TypeInfo, hints: Hints) -> Maker:
    longest = min(x for x in (t.length, hints.max_length, 24) if x is not None)
    shortest = min(max(hints.min_length or 1, 1), longest)
    patterns = [re.compile(p) for p in hints.patterns]
    fixed = t.name == "bpchar" and t.length is not None

    def candidates(index: int, unique: bool, rng: random.Random) -> Iterable[str]:
        for alphabet in _ALPHABETS:
            size = longest if fixed else rng.randint(shortest, longest)
            text = "".join(rng.choice(alphabet) for _ in range(size))
            # The row's index keeps values apart under unique keys, composite ones included.
            if any(ch.isdigit() for ch in alphabet) and (unique or not fixed):
                suffix = str(index)
                text = (text[: max(size - len(suffix), 1)] + suffix)[:longest]
            yield text

    def make(index: int, unique: bool, rng: random.Random) -> str:
        options = list(candidates(index, unique, rng))
        for text in options:
            if all(p.search(text) for p in patterns):
                return text
        return options[0]

    return make


def _timestamp(index: int, unique: bool, rng: random.Random) -> str:
    return (_EPOCH + datetime.timedelta(seconds=rng.randint(0, 365 * 86400))).isoformat()


_SIMPLE = {
    "uuid": lambda index, unique, rng: str(uuid.UUID(int=rng.getrandbits(128), version=4)),
    "bool": lambda index, unique, rng: rng.choice(("true", "false")),
    "timestamptz": _timestamp,
    "timestamp": lambda index, unique, rng: _timestamp(index, unique, rng)[:19],
    "date": lambda index, unique, rng: _timestamp(index, unique, rng)[:10],
    "time": lambda index, unique, rng: f"{rng.randint(0, 23):02d}:{rng.randint(0, 59):02d}:00",
    "timetz": lambda index, unique, rng: f"{rng.randint(0, 23):02d}:{rng.randint(0, 59):02d}:00+00",
    "interval": lambda index, unique, rng: f"{rng.randint(1, 1000)} minutes",
    "json": lambda index, unique, rng: json.dumps({"n": index, "k": rng.randint(0, 9)}),
    "jsonb": lambda index, unique, rng: json.dumps({"n": index, "k": rng.randint(0, 9)}),
    "bytea": lambda index, unique, rng: "\\x" + rng.randbytes(8).hex(),
    "inet": lambda index, unique, rng: f"10.{rng.randint(0, 255)}.{rng.randint(0, 255)}.{rng.randint(1, 254)}",
    "cidr": lambda index, unique, rng: f"10.{rng.randint(0, 255)}.{rng.randint(0, 255)}.0/24",
}


def _insert(conn: psycopg.Connection, table: Table, values: dict[str, Any]) -> bool:
    casts = {c.name: c.cast for c in table.columns}
    names = list(values)
    target = sql.Identifier(table.schema, table.name)
    if names:
        statement = sql.SQL("INSERT INTO {} ({}) VALUES ({})").format(
            target, sql.SQL(", ").join(map(sql.Identifier, names)),
            sql.SQL(", ").join(sql.SQL("%s::" + casts[n]) for n in names),
        )
    else:  # every column left to its default (a serial key alone)
        statement = sql.SQL("INSERT INTO {} DEFAULT VALUES").format(target)
    try:
        with conn.transaction():
            conn.execute(statement, [values[n] for n in names])
    except psycopg.Error:
        return False
    return True

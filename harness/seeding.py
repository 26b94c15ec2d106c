"""Rows for the live schema, drawn by Hypothesis and judged by PostgreSQL.

Migrations break on data, not on empty tables: a NOT NULL added over existing NULLs, a varchar
shortened under long strings, a unique index over duplicates, a cast that meets an edge value.
So the machine fills the database between steps with rows built from the catalog *as it is at
that moment* (:func:`read_catalog` after every migration) and :func:`seed_rows` inserts them.

The database stays the only judge of validity. Rows aim at the edges (NULLs, ``''``, long
strings, mixed case, unicode, zero and boundary numbers, repeated values) and every insert runs
on its own (its own transaction, or a savepoint inside the caller's), so a row the database
refuses is counted and discarded, never an error. What the catalog says about valid rows --
literals and patterns in CHECK constraints, partition bounds, foreign keys -- is read only to
make acceptance likely enough that every table gets rows; it is a hint, not a solver.

Everything is drawn through the caller's ``data.draw``, one draw per row labelled with its
table, so a failing walk shrinks to few, simple rows and prints them readably. Replays are
deterministic: parent rows are chosen by position in physical order, never by random key.
"""

from __future__ import annotations

import bisect
import collections
import dataclasses
import datetime
import functools
import ipaddress
import itertools
import math
import re
import string
import time
import uuid
import weakref
from decimal import Decimal, InvalidOperation
from fractions import Fraction
from typing import Any, Callable, Iterable, Iterator, Mapping, Sequence

import psycopg
from hypothesis import strategies as st
from hypothesis.strategies import SearchStrategy
from psycopg import sql
from psycopg.pq import TransactionStatus
from psycopg.types.json import Json, Jsonb

from .errors import HarnessError

__all__ = [
    "DEFAULT",
    "Catalog",
    "Column",
    "ForeignKey",
    "Hints",
    "Overrides",
    "SeedResult",
    "Table",
    "TypeInfo",
    "read_catalog",
    "seed_rows",
]


class _Default:
    """Leave the column out of the INSERT so that its default (or identity) applies."""

    def __repr__(self) -> str:
        return "DEFAULT"


DEFAULT: Any = _Default()
"""A column value meaning "omit the column", also in overrides (``st.just(DEFAULT)``)."""

# ---------------------------------------------------------------------------------------------
# The catalog, as plain frozen values
# ---------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Hints:
    """What CHECK constraints and partition bounds say valid values look like.

    Read loosely from the deparsed expressions, so a bound inside an ``OR`` is taken as if it
    always held: that only makes some drawn rows fail, which the database reports anyway.
    """

    values: tuple[str, ...] = ()
    """Literals the column is compared with (``=``, ``IN``), and partition bounds, as text."""
    patterns: tuple[str, ...] = ()
    """Python regular expressions translated from ``~``, ``~*``, ``LIKE`` and ``ILIKE``."""
    lower: tuple[Decimal, bool] | None = None
    """Numeric lower bound and whether it is inclusive."""
    upper: tuple[Decimal, bool] | None = None
    min_length: int | None = None
    max_length: int | None = None

    def __bool__(self) -> bool:
        return self != _NO_HINTS

    def merge(self, other: Hints) -> Hints:
        """Both sets of hints; of two bounds on one side the tighter wins."""
        if not other:
            return self
        if not self:
            return other
        return Hints(
            values=_unique(self.values + other.values),
            patterns=_unique(self.patterns + other.patterns),
            lower=_tighter(self.lower, other.lower, max),
            upper=_tighter(self.upper, other.upper, min),
            min_length=_tighter(self.min_length, other.min_length, max),
            max_length=_tighter(self.max_length, other.max_length, min),
        )


_NO_HINTS = Hints()


@dataclasses.dataclass(frozen=True)
class TypeInfo:
    """A column type reduced to what generation needs: domains resolved to their base type.

    ``kind`` is None for types no strategy exists for (ranges, geometry, tsvector, ...): such a
    column is left to its default or NULL, and a table needing a value there is not seeded
    unless an override provides one.
    """

    name: str
    """The base type's name in pg_type (``varchar``, ``mood``, ``_int4``)."""
    kind: str | None
    length: int | None = None
    """Maximum characters for varchar(n), char(n) and name."""
    precision: int | None = None
    scale: int | None = None
    labels: tuple[str, ...] = ()
    """An enum's labels in sort order."""
    element: TypeInfo | None = None
    """An array's element type."""
    hints: Hints = _NO_HINTS
    """From the CHECK constraints of the domains along the way."""
    not_null: bool = False
    """A domain along the way is NOT NULL."""


@dataclasses.dataclass(frozen=True)
class Column:
    name: str
    cast: str
    """``format_type`` of the declared type (domain, enum, typmod included): every value is
    sent as ``%s::<cast>`` so that text reaches enums, intervals and domains unchanged."""
    type: TypeInfo
    not_null: bool
    default: str | None
    """The default expression (``pg_get_expr``), or None."""
    identity: str
    """``""``, ``"always"`` or ``"by default"``."""
    generated: bool
    hints: Hints = _NO_HINTS

    @property
    def insertable(self) -> bool:
        """Generated and GENERATED ALWAYS identity columns refuse explicit values."""
        return not self.generated and self.identity != "always"

    @property
    def nullable(self) -> bool:
        return not (self.not_null or self.type.not_null)

    @property
    def counted(self) -> bool:
        """Filled from a sequence (identity or serial), which explicit values collide with."""
        return bool(self.identity) or (self.default or "").startswith("nextval(")


@dataclasses.dataclass(frozen=True)
class ForeignKey:
    name: str
    columns: tuple[str, ...]
    parent_schema: str
    parent_name: str
    parent_columns: tuple[str, ...]

    @property
    def parent(self) -> str:
        return f"{self.parent_schema}.{self.parent_name}"


@dataclasses.dataclass(frozen=True)
class Table:
    schema: str
    name: str
    columns: tuple[Column, ...]
    foreign_keys: tuple[ForeignKey, ...] = ()
    unique: tuple[frozenset[str], ...] = ()
    """Column sets of the primary key, unique constraints and unique indexes (partial too)."""
    partitioned: bool = False
    ordered: tuple[tuple[str, str], ...] = ()
    """(lower, higher) column pairs from CHECKs such as ``period_end > period_start``."""

    @property
    def key(self) -> str:
        return f"{self.schema}.{self.name}"

    def column(self, name: str) -> Column:
        return self._by_name[name]

    @functools.cached_property
    def _by_name(self) -> dict[str, Column]:
        return {c.name: c for c in self.columns}


@dataclasses.dataclass(frozen=True)
class Catalog:
    """The seedable tables, parents before children (foreign keys in cycles broken by name)."""

    tables: tuple[Table, ...]

    def __iter__(self) -> Iterator[Table]:
        return iter(self.tables)

    def __len__(self) -> int:
        return len(self.tables)

    def __contains__(self, key: object) -> bool:
        return key in self._by_key

    def __getitem__(self, key: str) -> Table:
        return self._by_key[key]

    def keys(self) -> tuple[str, ...]:
        return tuple(t.key for t in self.tables)

    @functools.cached_property
    def _by_key(self) -> dict[str, Table]:
        return {t.key: t for t in self.tables}


# ---------------------------------------------------------------------------------------------
# Reading the catalog
# ---------------------------------------------------------------------------------------------

# Partitions are reached through their parent; extension members (PostGIS' spatial_ref_sys,
# ...) belong to the extension, not to the migrations.
_TABLES = """
SELECT c.oid, n.nspname, c.relname, c.relkind = 'p'
  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE c.relkind IN ('r', 'p') AND NOT c.relispartition
   AND n.nspname <> 'information_schema' AND n.nspname !~ '^pg_'
   AND NOT EXISTS (SELECT FROM pg_depend d
                    WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid AND d.deptype = 'e')
 ORDER BY n.nspname, c.relname
"""

_COLUMNS = """
SELECT a.attrelid, a.attnum, a.attname, a.atttypid, a.atttypmod,
       format_type(a.atttypid, a.atttypmod), a.attnotnull,
       pg_get_expr(d.adbin, d.adrelid), a.attidentity, a.attgenerated
  FROM pg_attribute a
  LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
 WHERE a.attrelid = ANY(%s::oid[]) AND a.attnum > 0 AND NOT a.attisdropped
 ORDER BY a.attrelid, a.attnum
"""

# Every type the columns reach through domains and array elements, in one round trip.
_TYPES = """
WITH RECURSIVE reached(oid) AS (
    SELECT unnest(%s::oid[])
    UNION
    SELECT next.oid
      FROM reached JOIN pg_type t ON t.oid = reached.oid,
           LATERAL (VALUES (t.typbasetype),
                           (CASE WHEN t.typcategory = 'A' THEN t.typelem ELSE 0 END)) AS next(oid)
     WHERE next.oid <> 0
)
SELECT t.oid, n.nspname, t.typname, t.typtype, t.typcategory, t.typbasetype, t.typtypmod,
       t.typnotnull, t.typelem,
       ARRAY(SELECT e.enumlabel FROM pg_enum e WHERE e.enumtypid = t.oid ORDER BY e.enumsortorder),
       ARRAY(SELECT pg_get_constraintdef(k.oid) FROM pg_constraint k
              WHERE k.contypid = t.oid AND k.contype = 'c' ORDER BY k.conname)
  FROM reached JOIN pg_type t ON t.oid = reached.oid JOIN pg_namespace n ON n.oid = t.typnamespace
"""

# conparentid <> 0 are the copies PostgreSQL makes for each partition of a referenced table.
# Column names are resolved here because a referenced table may be excluded from the catalog.
_CONSTRAINTS = """
SELECT k.conrelid, k.conname, k.contype,
       ARRAY(SELECT a.attname::text FROM unnest(k.conkey) WITH ORDINALITY AS u(n, i)
               JOIN pg_attribute a ON a.attrelid = k.conrelid AND a.attnum = u.n ORDER BY u.i),
       ARRAY(SELECT a.attname::text FROM unnest(k.confkey) WITH ORDINALITY AS u(n, i)
               JOIN pg_attribute a ON a.attrelid = k.confrelid AND a.attnum = u.n ORDER BY u.i),
       fn.nspname, fc.relname, pg_get_constraintdef(k.oid)
  FROM pg_constraint k
  LEFT JOIN pg_class fc ON fc.oid = k.confrelid
  LEFT JOIN pg_namespace fn ON fn.oid = fc.relnamespace
 WHERE k.conrelid = ANY(%s::oid[]) AND k.contype IN ('c', 'f') AND k.conparentid = 0
 ORDER BY k.conrelid, k.conname
"""

_UNIQUE = """
SELECT i.indrelid, (i.indkey::int2[])[0:i.indnkeyatts - 1]
  FROM pg_index i
 WHERE i.indrelid = ANY(%s::oid[]) AND i.indisunique
"""

_PARTITIONS = """
SELECT p.partrelid, p.partattrs::int2[], pg_get_expr(c.relpartbound, c.oid)
  FROM pg_partitioned_table p
  JOIN pg_inherits i ON i.inhparent = p.partrelid
  JOIN pg_class c ON c.oid = i.inhrelid
 WHERE p.partrelid = ANY(%s::oid[])
 ORDER BY c.relname
"""

_KINDS = {
    "int2": "int2", "int4": "int4", "int8": "int8", "numeric": "numeric", "money": "money",
    "float4": "float4", "float8": "float8", "text": "text", "varchar": "text", "bpchar": "text",
    "name": "text", "uuid": "uuid", "bool": "bool", "date": "date", "time": "time",
    "timetz": "timetz", "timestamp": "timestamp", "timestamptz": "timestamptz",
    "interval": "interval", "json": "json", "jsonb": "jsonb", "bytea": "bytea", "inet": "inet",
    "cidr": "cidr",
}
_IDENTITY = {"a": "always", "d": "by default", "": ""}


def read_catalog(
    conn: psycopg.Connection, exclude: Iterable[tuple[str, str]] = ()
) -> Catalog:
    """The tables of every user schema at the database's current state, ready for seeding.

    Six catalog queries whatever the schema's size. ``exclude`` names ``(schema, table)`` pairs
    never to seed, such as ``("public", "alembic_version")``; foreign keys into them still draw
    on their existing rows.
    """
    excluded = {tuple(pair) for pair in exclude}
    with conn.cursor() as cur:
        tables = [row for row in cur.execute(_TABLES) if (row[1], row[2]) not in excluded]
        oids = [row[0] for row in tables]
        columns = collections.defaultdict(list)
        for row in cur.execute(_COLUMNS, (oids,)):
            columns[row[0]].append(row[1:])
        type_oids = [row[2] for rows in columns.values() for row in rows]
        type_rows = {row[0]: row for row in cur.execute(_TYPES, (type_oids,))}
        constraints = collections.defaultdict(list)
        for row in cur.execute(_CONSTRAINTS, (oids,)):
            constraints[row[0]].append(row[1:])
        unique = collections.defaultdict(list)
        for relid, keys in cur.execute(_UNIQUE, (oids,)):
            unique[relid].append(keys)
        partitions = collections.defaultdict(list)
        for relid, keys, bound in cur.execute(_PARTITIONS, (oids,)):
            partitions[relid].append((keys, bound))

    types = _TypeReader(type_rows)
    built = [
        _build_table(schema, name, partitioned, columns[oid], constraints[oid], unique[oid],
                     partitions[oid], types)
        for oid, schema, name, partitioned in tables
    ]
    return Catalog(_parents_first(built))


def _build_table(
    schema: str, name: str, partitioned: bool, column_rows: list[tuple],
    constraint_rows: list[tuple], unique_rows: list[list[int]],
    partition_rows: list[tuple[list[int], str]], types: _TypeReader,
) -> Table:
    by_attnum = {row[0]: row[1] for row in column_rows}
    names = set(by_attnum.values())
    hints: dict[str, Hints] = collections.defaultdict(Hints)
    ordered: list[tuple[str, str]] = []
    foreign_keys = []
    for conname, contype, columns, parent_columns, parent_schema, parent_name, definition in (
        constraint_rows
    ):
        if contype == "c":
            for column, found in _check_hints(definition, names).items():
                hints[column] = hints[column].merge(found)
            ordered.extend(_orderings(definition, names))
        else:
            foreign_keys.append(ForeignKey(
                name=conname,
                columns=tuple(columns),
                parent_schema=parent_schema,
                parent_name=parent_name,
                parent_columns=tuple(parent_columns),
            ))
    for keys, bound in partition_rows:
        for column, found in _partition_hints(bound, [by_attnum.get(k) for k in keys]).items():
            hints[column] = hints[column].merge(found)
    columns = tuple(
        Column(
            name=attname,
            cast=cast,
            type=types.info(typid, typmod),
            not_null=notnull,
            default=default,
            identity=_IDENTITY.get(identity, ""),
            generated=bool(generated),
            hints=hints.get(attname, _NO_HINTS),
        )
        for _, attname, typid, typmod, cast, notnull, default, identity, generated in column_rows
    )
    return Table(
        schema=schema,
        name=name,
        columns=columns,
        foreign_keys=tuple(foreign_keys),
        unique=tuple(
            frozenset(by_attnum[k] for k in keys) for keys in unique_rows if keys and 0 not in keys
        ),
        partitioned=partitioned,
        ordered=tuple(dict.fromkeys(ordered)),
    )


class _TypeReader:
    """Turns pg_type rows into :class:`TypeInfo`, each (type, typmod) once."""

    def __init__(self, rows: Mapping[int, tuple]) -> None:
        self.rows = rows
        self.memo: dict[tuple[int, int], TypeInfo] = {}

    def info(self, oid: int, typmod: int) -> TypeInfo:
        if (oid, typmod) not in self.memo:
            self.memo[(oid, typmod)] = self._read(oid, typmod)
        return self.memo[(oid, typmod)]

    def _read(self, oid: int, typmod: int) -> TypeInfo:
        (_, nspname, typname, typtype, category, basetype, typtypmod, notnull, elem, labels,
         checks) = self.rows[oid]
        if typtype == "d":
            base = self.info(basetype, typmod if typmod >= 0 else typtypmod)
            own = functools.reduce(Hints.merge, _check_hints_all(checks, "VALUE"), _NO_HINTS)
            return dataclasses.replace(
                base, hints=base.hints.merge(own), not_null=base.not_null or notnull
            )
        if category == "A" and elem:
            return TypeInfo(name=typname, kind="array", element=self.info(elem, typmod))
        if typtype == "e":
            return TypeInfo(name=typname, kind="enum" if labels else None, labels=tuple(labels))
        if nspname == "pg_catalog":
            kind = _KINDS.get(typname)
        else:
            # Extension types that behave like text (citext) take text values.
            kind = "text" if category == "S" else None
        info = TypeInfo(name=typname, kind=kind)
        if typname in ("varchar", "bpchar") and typmod >= 4:
            return dataclasses.replace(info, length=typmod - 4)
        if typname == "name":
            return dataclasses.replace(info, length=63)
        if typname == "numeric" and typmod >= 4:
            packed = typmod - 4
            # The scale is an 11-bit signed field since PostgreSQL 15 (numeric(3, -2)).
            return dataclasses.replace(
                info, precision=(packed >> 16) & 0xFFFF, scale=((packed & 0x7FF) ^ 1024) - 1024
            )
        return info


def _parents_first(tables: list[Table]) -> tuple[Table, ...]:
    """Kahn's order over foreign keys, by name among equals; a cycle is entered at its first
    table by name (its foreign keys then take NULL, or the row is skipped)."""
    by_key = {t.key: t for t in tables}
    parents = {t.key: {fk.parent for fk in t.foreign_keys if fk.parent in by_key} - {t.key}
               for t in tables}
    ordered: list[Table] = []
    done: set[str] = set()
    while len(done) < len(tables):
        ready = [k for k in sorted(by_key) if k not in done and parents[k] <= done]
        if not ready:
            ready = [min(k for k in by_key if k not in done)]
        for key in ready:
            done.add(key)
            ordered.append(by_key[key])
    return tuple(ordered)


# ---------------------------------------------------------------------------------------------
# Hints from CHECK constraints and partition bounds
# ---------------------------------------------------------------------------------------------

_IDENT = r'"(?:[^"]|"")+"|[a-z_][a-z0-9_$]*|VALUE'
_TYPE_NAME = r'(?:"(?:[^"]|"")+"|[a-z_][a-z0-9_ ]*)'
_CAST = rf'(?:::{_TYPE_NAME}(?:\.{_TYPE_NAME})?(?:\(\d+(?:,\s*\d+)?\))?(?:\[\])?)?'
_STRING = r"(?P<e{n}>E?)'(?P<s{n}>(?:[^']|'')*)'" + _CAST
_NUMBER = r"\(*'?(?P<num{n}>-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?)'?\)*" + _CAST
# A column operand, possibly parenthesised and cast, ``((status)::text``; never a function's
# argument (``length(x)``), whose value is not the column's.
_OPERAND = rf'(?<![\w$(])\(*(?P<col{{n}}>{_IDENT})\)*\s*{_CAST}\)*'
_COMPARE = r"(?P<op{n}>>=|<=|>|<|=)"


def _pattern(template: str) -> re.Pattern[str]:
    return re.compile(template.format(
        col=_OPERAND.format(n=0), str=_STRING.format(n=0), num=_NUMBER.format(n=0),
        cmp=_COMPARE.format(n=0),
    ))


_IN_LIST = _pattern(r"{col}\s*=\s*ANY\s*\(+ARRAY\[(?P<items>(?:'(?:[^']|'')*'|[^\]'])*)\]")
_EQUALS_STRING = _pattern(r"{col}\s*=\s*{str}")
_MATCHES = _pattern(r"{col}\s*(?P<match>~~\*|~~|~\*|~)\s*{str}")
_NUMERIC = _pattern(r"{col}\s*{cmp}\s*{num}")
_NUMERIC_REVERSED = _pattern(r"(?<![\w$'])(?:{num})\s*{cmp}\s*{col}")
_LENGTH = re.compile(
    rf"(?:char_length|character_length|length)\(\s*\(*(?P<col0>{_IDENT})\)*\s*{_CAST}\s*\)"
    rf"\s*{_COMPARE.format(n=0)}\s*{_NUMBER.format(n=0)}"
)
_COLUMNS_COMPARED = re.compile(
    rf"{_OPERAND.format(n=0)}\s*(?P<op>>=|<=|>|<)\s*{_OPERAND.format(n=1)}"
)
_NOT_EMPTY = re.compile(
    rf"(?:(?:b|l|r)?trim\(\s*)?\(*(?P<col0>{_IDENT})\)*\s*{_CAST}\s*\)?\s*<>\s*''"
)
_LITERAL = re.compile(
    r"(?P<e>E?)'(?P<s>(?:[^']|'')*)'|(?P<num>-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?)"
)
_FLIPPED = {">": "<", ">=": "<=", "<": ">", "<=": ">=", "=": "="}


def _check_hints(definition: str, columns: set[str]) -> dict[str, Hints]:
    """Hints per column from one ``pg_get_constraintdef`` text; unknown names are ignored."""
    found: dict[str, Hints] = {}

    def add(match: re.Match[str], hints: Hints) -> None:
        name = _identifier(match["col0"])
        if name in columns:
            found[name] = found.get(name, _NO_HINTS).merge(hints)

    for m in _IN_LIST.finditer(definition):
        add(m, Hints(values=tuple(_literals(m["items"]))))
    for m in _EQUALS_STRING.finditer(definition):
        add(m, Hints(values=(_string(m["e0"], m["s0"]),)))
    for m in _MATCHES.finditer(definition):
        regex = _python_regex(_string(m["e0"], m["s0"]), m["match"])
        if regex is not None:
            add(m, Hints(patterns=(regex,)))
    for m in _NUMERIC.finditer(definition):
        add(m, _bound(m["op0"], m["num0"]))
    for m in _NUMERIC_REVERSED.finditer(definition):
        add(m, _bound(_FLIPPED[m["op0"]], m["num0"]))
    for m in _LENGTH.finditer(definition):
        add(m, _length(m["op0"], int(Decimal(m["num0"]))))
    for m in _NOT_EMPTY.finditer(definition):
        add(m, Hints(min_length=1))
    return found


def _orderings(definition: str, columns: set[str]) -> Iterator[tuple[str, str]]:
    """(lower, higher) pairs of columns compared with each other."""
    for m in _COLUMNS_COMPARED.finditer(definition):
        left, right = _identifier(m["col0"]), _identifier(m["col1"])
        if left in columns and right in columns and left != right:
            yield (right, left) if m["op"].startswith(">") else (left, right)


def _check_hints_all(definitions: Iterable[str], column: str) -> Iterator[Hints]:
    for definition in definitions:
        hints = _check_hints(definition, {column}).get(column)
        if hints:
            yield hints


def _partition_hints(bound: str, keys: Sequence[str | None]) -> dict[str, Hints]:
    """A partition's lower bound, or its list values, lands a row in that partition."""
    found: dict[str, Hints] = {}
    lower = re.match(r"FOR VALUES FROM \((.*?)\) TO \(", bound)
    listed = re.match(r"FOR VALUES IN \((.*)\)$", bound)
    if lower:
        values = re.findall(r"'(?:[^']|'')*'|[^,\s]+", lower.group(1))
        for key, value in zip(keys, values):
            if key is not None and value not in ("MINVALUE", "MAXVALUE"):
                found[key] = Hints(values=tuple(_literals(value)))
    elif listed and keys and keys[0] is not None:
        found[keys[0]] = Hints(values=tuple(_literals(listed.group(1))))
    return found


def _identifier(text: str) -> str:
    return text[1:-1].replace('""', '"') if text.startswith('"') else text


def _string(escape: str, body: str) -> str:
    text = body.replace("''", "'")
    # pg_get_constraintdef writes E'' strings when a literal holds backslashes.
    return re.sub(r"\\(.)", r"\1", text) if escape else text


def _literals(text: str) -> Iterator[str]:
    for m in _LITERAL.finditer(text):
        yield m["num"] if m["num"] is not None else _string(m["e"], m["s"])


def _bound(op: str, number: str) -> Hints:
    try:
        value = Decimal(number)
    except InvalidOperation:
        return _NO_HINTS
    if op == "=":
        return Hints(values=(number,))
    if op in (">", ">="):
        return Hints(lower=(value, op == ">="))
    return Hints(upper=(value, op == "<="))


def _length(op: str, n: int) -> Hints:
    return {
        ">": Hints(min_length=n + 1), ">=": Hints(min_length=n),
        "<": Hints(max_length=max(n - 1, 0)), "<=": Hints(max_length=n),
        "=": Hints(min_length=n, max_length=n),
    }[op]


def _python_regex(pattern: str, operator: str) -> str | None:
    """The PostgreSQL pattern as a Python regex, or None where the dialects differ.

    POSIX classes (``[[:alpha:]]``) and word boundaries (``\\m``, ``\\y``) exist only in
    PostgreSQL; a trailing ``$`` becomes ``\\Z`` because Python's ``$`` also matches before a
    final newline, which PostgreSQL would then refuse.
    """
    if operator.startswith("~~"):
        parts = re.split(r"(\\.|%|_)", pattern)
        regex = "".join(
            ".*" if p == "%" else "." if p == "_" else re.escape(p.removeprefix("\\"))
            for p in parts
        )
        regex = rf"\A{regex}\Z"
    else:
        if "[:" in pattern:
            return None
        anchored = pattern.endswith("$") and not pattern.endswith(r"\$")
        regex = pattern[:-1] + r"\Z" if anchored else pattern
    if operator.endswith("*"):
        regex = "(?i)" + regex
    try:
        re.compile(regex)
    except re.error:
        return None
    return regex


def _unique(items: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(items))


def _tighter(a: Any, b: Any, pick: Callable[..., Any]) -> Any:
    if a is None or b is None:
        return b if a is None else a
    return pick(a, b)


# ---------------------------------------------------------------------------------------------
# Value strategies
# ---------------------------------------------------------------------------------------------


_Leaves = tuple[tuple[SearchStrategy[Any], Fraction], ...]
_BRANCHES: weakref.WeakKeyDictionary[SearchStrategy[Any], _Leaves] = weakref.WeakKeyDictionary()
"""The leaves and their probabilities of each strategy :func:`_weighted` made."""


def _weighted(*branches: tuple[SearchStrategy[Any], int]) -> SearchStrategy[Any]:
    """One branch, chosen with the given weights; shrinks toward the first branch.

    Branches that are themselves weighted are flattened into one choice among all leaves:
    each level of choice costs Hypothesis a draw, and the draws (not the inserts) are what
    seeding spends most of its time on. ``st.one_of`` cannot weight: it drops repeated
    branches.
    """
    total = sum(weight for _, weight in branches)
    leaves: list[tuple[SearchStrategy[Any], Fraction]] = []
    for strategy, weight in branches:
        share = Fraction(weight, total)
        inner = _BRANCHES.get(strategy)
        if inner:
            leaves.extend((leaf, share * p) for leaf, p in inner)
        else:
            leaves.append((strategy, share))
    if len(leaves) == 1:
        return leaves[0][0]
    scale = math.lcm(*(p.denominator for _, p in leaves))
    bounds = list(itertools.accumulate(int(p * scale) for _, p in leaves))
    strategies = [leaf for leaf, _ in leaves]
    chosen = st.integers(0, bounds[-1] - 1).flatmap(
        lambda i: strategies[bisect.bisect_right(bounds, i)]
    )
    _BRANCHES[chosen] = tuple(leaves)
    return chosen


# PostgreSQL refuses NUL in text and json; surrogates are not UTF-8.
_CHARS = st.characters(codec="utf-8", exclude_characters="\x00")
_MIXED_CASE = string.ascii_letters + string.digits + " -_."
_SHORT = 12
_LONG_TEXT = (256, 1000, 4000)
"""Past varchar(255), and past the 2 kB where values start to be TOASTed."""
_EDGE_TEXT = (
    "", " ", "  padded  ", "a", "A", "ab", "Ab", "AB", "NULL", "null", "0", "-1", "'", '"', "\\",
    "%_", "\t\n", "ß", "İ", "é", "e\u0301", "😀", "中文", "עברית",
)
"""Blank, case pairs, SQL-looking words, quoting characters, and unicode whose case mapping or
normalisation changes length or bytes."""


def _stretch(seed: str, size: int) -> str:
    return (seed * size)[:size]


def _text(min_size: int = 0, max_size: int | None = None) -> SearchStrategy[str] | None:
    """Short mixed-case and unicode strings, known troublemakers, and very long strings;
    None when no length fits.

    Long strings repeat a short seed so they cost a handful of choices, not thousands.
    """
    cap = max_size if max_size is not None else max(_LONG_TEXT)
    if cap < min_size:
        return None
    short = max(min_size, min(cap, _SHORT))
    branches = [
        (st.text(_MIXED_CASE, min_size=min_size, max_size=short), 3),
        (st.text(_CHARS, min_size=min_size, max_size=short), 3),
    ]
    edges = [s for s in _EDGE_TEXT if min_size <= len(s) <= cap]
    if edges:
        branches.append((st.sampled_from(edges), 2))
    if cap > short:
        sizes = (cap,) if max_size is not None else _LONG_TEXT
        branches.append((st.builds(_stretch, st.text(_CHARS, min_size=1, max_size=3),
                                   st.sampled_from(sizes)), 2))
    return _weighted(*branches)


_INT_RANGES = {"int2": (-(2**15), 2**15 - 1), "int4": (-(2**31), 2**31 - 1),
               "int8": (-(2**63), 2**63 - 1)}
_UNBOUNDED_NUMERIC = 10**30
_MONEY_UNITS = 10**17


def _scaled(lo: int, hi: int, scale: int, as_int: bool) -> SearchStrategy[Any] | None:
    """Numbers ``units * 10**-scale`` for units in [lo, hi], weighted toward the edges; None
    for an empty range.

    Never ``st.nothing()``: inside a choice it would make Hypothesis discard whole examples.
    """
    if lo > hi:
        return None
    edges = sorted({u for u in (0, 1, -1, lo, hi, lo + 1, hi - 1) if lo <= u <= hi})
    units = _weighted((st.integers(lo, hi), 3), (st.sampled_from(edges), 1))
    if as_int:
        return units
    return units.map(lambda u: Decimal(u).scaleb(-scale))


def _numeric_range(t: TypeInfo) -> tuple[int, int, int, bool]:
    """(lowest units, highest units, scale, values are ints) for a numeric kind."""
    if t.kind in _INT_RANGES:
        return (*_INT_RANGES[t.kind], 0, True)
    if t.kind == "money":
        return (-_MONEY_UNITS, _MONEY_UNITS, 2, False)
    if t.precision is not None:
        top = 10 ** t.precision - 1
        return (-top, top, t.scale or 0, False)
    return (-_UNBOUNDED_NUMERIC, _UNBOUNDED_NUMERIC, 6, False)


_TIMEZONES = _weighted(
    (st.just(datetime.timezone.utc), 1),
    (st.integers(-14 * 60, 14 * 60).map(lambda m: datetime.timezone(datetime.timedelta(minutes=m))),
     2),
)
_INSTANT_EDGES = (
    datetime.datetime(1970, 1, 1), datetime.datetime(2000, 1, 1), datetime.datetime(1900, 1, 1),
    datetime.datetime(2038, 1, 19, 3, 14, 8), datetime.datetime(1, 1, 1),
    datetime.datetime(9999, 12, 31, 23, 59, 59, 999999),
)
# Aware values stay within years 2..9998 so that reading them back in any session time zone
# still fits Python's datetime.
_AWARE_MIN = datetime.datetime(2, 1, 1)
_AWARE_MAX = datetime.datetime(9998, 12, 31)


def _json_documents() -> SearchStrategy[Any]:
    scalars = (st.none() | st.booleans() | st.integers(-(2**63), 2**63)
               | st.floats(allow_nan=False, allow_infinity=False) | st.text(_CHARS, max_size=8))
    keys = st.text(_CHARS, max_size=6)
    values = st.recursive(
        scalars, lambda kids: st.lists(kids, max_size=3) | st.dictionaries(keys, kids, max_size=3),
        max_leaves=5,
    )
    # Documents are objects in nearly every schema (and CHECKs often insist on it).
    return _weighted(
        (st.dictionaries(keys, values, max_size=4), 6), (st.lists(values, max_size=3), 1),
        (scalars, 1),
    )


@functools.lru_cache(maxsize=4096)
def _generic(t: TypeInfo) -> SearchStrategy[Any] | None:
    """Values of the type itself, edges included; None when no strategy exists for it."""
    kind = t.kind
    if kind in _INT_RANGES or kind == "money":
        lo, hi, scale, as_int = _numeric_range(t)
        return _scaled(lo, hi, scale, as_int)
    if kind == "numeric":
        nan = st.just(Decimal("NaN"))
        if t.precision is not None:
            return _weighted((_scaled(*_numeric_range(t)), 8), (nan, 1))
        free = st.builds(lambda u, s: Decimal(u).scaleb(-s),
                         st.integers(-_UNBOUNDED_NUMERIC, _UNBOUNDED_NUMERIC),
                         st.sampled_from((0, 2, 6, 20)))
        return _weighted((free, 6), (_scaled(-10, 10, 0, False), 2), (nan, 1))
    if kind in ("float4", "float8"):
        return _weighted((st.floats(width=32 if kind == "float4" else 64), 3),
                         (st.sampled_from((0.0, -0.0, 1.0, -1.0)), 1))
    if kind == "text":
        return _text(0, t.length)
    if kind == "bool":
        return st.booleans()
    if kind == "uuid":
        edges = (uuid.UUID(int=0), uuid.UUID(int=2**128 - 1))
        return _weighted((st.uuids(), 3), (st.sampled_from(edges), 1))
    if kind == "date":
        return _weighted((st.dates(), 3),
                         (st.sampled_from([d.date() for d in _INSTANT_EDGES]), 1))
    if kind == "timestamp":
        return _weighted((st.datetimes(), 3), (st.sampled_from(_INSTANT_EDGES), 1))
    if kind == "timestamptz":
        edges = [d.replace(tzinfo=datetime.timezone.utc) for d in _INSTANT_EDGES
                 if _AWARE_MIN <= d <= _AWARE_MAX]
        return _weighted(
            (st.datetimes(min_value=_AWARE_MIN, max_value=_AWARE_MAX, timezones=_TIMEZONES), 3),
            (st.sampled_from(edges), 1),
        )
    if kind == "time":
        return _weighted((st.times(), 3),
                         (st.sampled_from((datetime.time(0), datetime.time.max)), 1))
    if kind == "timetz":
        return st.times(timezones=_TIMEZONES)
    if kind == "interval":
        # Months are not a fixed number of days: '1 mon' and '30 days' differ, and only
        # text can say it (Python's timedelta has no months).
        days = datetime.timedelta(days=10**6)
        return _weighted(
            (st.timedeltas(min_value=-days, max_value=days), 3),
            (st.sampled_from((datetime.timedelta(0), datetime.timedelta(microseconds=1), "1 mon",
                              "-1 years", "1 mon -30 days", "P1Y2M3DT4H5M6S")), 1),
        )
    if kind in ("json", "jsonb"):
        return _json_documents().map(Jsonb if kind == "jsonb" else Json)
    if kind == "bytea":
        return _weighted((st.binary(max_size=16), 3),
                         (st.sampled_from((b"", b"\x00", b"\xff" * 3000)), 1))
    if kind == "inet":
        return st.ip_addresses()
    if kind == "cidr":
        return st.ip_addresses().map(ipaddress.ip_network)
    if kind == "enum":
        return st.sampled_from(t.labels)
    if kind == "array" and t.element is not None:
        element = _values(t.element, _NO_HINTS)
        if element is None:
            return None
        return st.lists(_weighted((element, 5), (st.none(), 1)), max_size=4)
    return None


def _hinted(t: TypeInfo, hints: Hints) -> SearchStrategy[Any] | None:
    """Values the constraints suggest will pass: their literals, patterns, ranges, lengths."""
    branches: list[SearchStrategy[Any] | None] = []
    if hints.values:
        branches.append(st.sampled_from(hints.values))
    if t.kind == "text":
        branches.extend(st.from_regex(p, alphabet=_CHARS) for p in hints.patterns)
        if hints.min_length is not None or hints.max_length is not None:
            branches.append(_text(hints.min_length or 0, _tighter(hints.max_length, t.length, min)))
    if hints.lower or hints.upper:
        branches.append(_within(t, hints.lower, hints.upper))
    found = [b for b in branches if b is not None]
    return _weighted(*((b, 1) for b in found)) if found else None


def _within(
    t: TypeInfo, lower: tuple[Decimal, bool] | None, upper: tuple[Decimal, bool] | None
) -> SearchStrategy[Any] | None:
    """Numbers of the type between the bounds (and at them, when inclusive)."""
    if t.kind in ("float4", "float8"):
        low = float(lower[0]) if lower else None
        high = float(upper[0]) if upper else None
        if low is not None and high is not None and low > high:
            return None
        return st.floats(min_value=low, max_value=high,
                         exclude_min=bool(lower) and not lower[1],
                         exclude_max=bool(upper) and not upper[1],
                         width=32 if t.kind == "float4" else 64)
    if not (t.kind in _INT_RANGES or t.kind in ("numeric", "money")):
        return None
    lo, hi, scale, as_int = _numeric_range(t)
    if lower:
        lo = max(lo, _units(lower, scale, math.ceil, +1))
    if upper:
        hi = min(hi, _units(upper, scale, math.floor, -1))
    return _scaled(lo, hi, scale, as_int)


def _units(
    bound: tuple[Decimal, bool], scale: int, to_int: Callable[[Decimal], int], step: int
) -> int:
    """The first unit of 10**-scale inside a bound, moving by ``step`` off an exclusive one."""
    value, inclusive = bound
    units = value.scaleb(scale)
    exact = units == units.to_integral_value()
    return to_int(units) + (step if exact and not inclusive else 0)


@functools.lru_cache(maxsize=4096)
def _values(t: TypeInfo, hints: Hints) -> SearchStrategy[Any] | None:
    """Mostly values the hints suggest, some of the type's own values: those exercise the
    edges, and those the constraints refuse are simply discarded.

    Most values outside an ``IN`` list or a pattern are refused, and a row has to pass every
    constraint at once, hence the strong lean toward hints.
    """
    hints = t.hints.merge(hints)
    generic = _generic(t)
    hinted = _hinted(t, hints) if hints else None
    if hinted is None or generic is None:
        return hinted if generic is None else generic
    return _weighted((hinted, 7), (generic, 1))


def _column_values(
    column: Column, override: SearchStrategy[Any] | None, nulls: bool = True
) -> SearchStrategy[Any] | None:
    """A column's values: an override as given, else values, NULL when nullable (and
    ``nulls``), DEFAULT when there is one. None when no strategy can give a value."""
    if override is not None:
        return override
    values = _values(column.type, column.hints)
    branches: list[tuple[SearchStrategy[Any], int]] = []
    if column.counted:
        # Explicit values collide with the sequence's later ones: rarer, and shrinking leads
        # back to the sequence.
        branches.append((st.just(DEFAULT), 3))
    if values is not None:
        branches.append((values, 1 if column.counted else 6))
    if column.nullable and nulls:
        branches.append((st.none(), 2))
    if column.default is not None and not column.counted:
        branches.append((st.just(DEFAULT), 2))
    return _weighted(*branches) if branches else None


# ---------------------------------------------------------------------------------------------
# Overrides
# ---------------------------------------------------------------------------------------------


class Overrides:
    """User strategies for tables or columns, keyed by ``"schema.table"``.

    A mapping value maps column names to strategies for those columns (used exactly as given:
    include ``st.none()`` or ``st.just(DEFAULT)`` to keep NULLs or defaults). A strategy value
    draws whole rows as mappings ``column -> value``: columns it leaves out are omitted (their
    default applies) except foreign-key columns, which are still drawn from parent rows.
    Names that match nothing at the current revision are ignored, since a column may exist
    only at some revisions; :meth:`unmatched` lists them for a warning.
    """

    def __init__(
        self,
        mapping: Mapping[str, Mapping[str, SearchStrategy[Any]] | SearchStrategy[Any]]
        | None = None,
    ) -> None:
        self._rows: dict[str, SearchStrategy[Mapping[str, Any]]] = {}
        self._columns: dict[str, dict[str, SearchStrategy[Any]]] = {}
        for key, value in (mapping or {}).items():
            if not isinstance(key, str) or "." not in key:
                raise HarnessError(f"override key {key!r} is not a \"schema.table\" name")
            if isinstance(value, SearchStrategy):
                self._rows[key] = value
            elif isinstance(value, Mapping) and all(
                isinstance(s, SearchStrategy) for s in value.values()
            ):
                self._columns[key] = dict(value)
            else:
                raise HarnessError(
                    f"override for {key} must be a strategy for whole rows or a mapping of "
                    "column names to strategies"
                )

    def row(self, key: str) -> SearchStrategy[Mapping[str, Any]] | None:
        return self._rows.get(key)

    def column(self, key: str, column: str) -> SearchStrategy[Any] | None:
        return self._columns.get(key, {}).get(column)

    def unmatched(self, catalog: Catalog) -> list[str]:
        """Override names with no table or column in ``catalog``."""
        missing = [key for key in [*self._rows, *self._columns] if key not in catalog]
        for key, columns in self._columns.items():
            if key in catalog:
                names = {c.name for c in catalog[key].columns}
                missing.extend(f"{key}.{c}" for c in columns if c not in names)
        return missing


_NO_OVERRIDES = Overrides()

# ---------------------------------------------------------------------------------------------
# Seeding
# ---------------------------------------------------------------------------------------------


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
_POOL_LIMIT = 500
"""Parent rows a foreign key chooses among: the first ones, in physical order."""
_EXISTING_ROWS = 4
"""Rows already in a table whose values new rows may repeat."""
# Refusals about the row's values: data exceptions (22), integrity violations (23, which
# include "no partition for row"), program limits (54: index row too large) and a trigger's
# RAISE (P0). Anything else is the harness's or the server's problem and propagates.
_REJECTED_CLASSES = ("22", "23", "54", "P0")


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
    redrawn (twice at most) rather than repeat a value this call inserted."""
    textual: frozenset[str]
    """Columns of a text kind, whose repeats may change case."""
    foreign_keys: tuple[ForeignKey, ...]
    """Widest first, so that a composite key fixes the tenant before the tenant's own key."""

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
        seeder = _Seeder(cursor, draw, catalog, overrides or _NO_OVERRIDES, attempts,
                         budget=attempts * max_rows)
        keys = [key for key in catalog.keys() if key in seeder.plans]
        picked = []
        if keys:
            # At least one row: the caller asked for rows, and an empty draw is a wasted step.
            picked = draw(st.lists(st.sampled_from(keys), min_size=1, max_size=max_rows), "tables to seed")
        picked.sort(key=keys.index)
        seeder.fill_tenants(picked)
        for key in picked:
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
        self.conn = cursor.connection
        self.cursor = cursor
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
        self.pools: dict[tuple[str, tuple[str, ...]], list[tuple[Any, ...]]] = {}
        self.seen: dict[str, dict[str, list[Any]]] = collections.defaultdict(
            lambda: collections.defaultdict(list)
        )
        self.statements: dict[tuple[str, tuple[str, ...]], str] = {}

    def fill_tenants(self, picked: Sequence[str]) -> None:
        """Give each tenant-like parent of a picked table :data:`TENANT_ROWS` rows first."""
        children: dict[str, set[str]] = collections.defaultdict(set)
        for table in self.catalog:
            for fk in table.foreign_keys:
                if fk.parent != table.key:
                    children[fk.parent].add(table.key)
        done: set[str] = set()
        for key in dict.fromkeys(picked):
            for fk in self.catalog[key].foreign_keys:
                if fk.parent in done or len(children[fk.parent]) < 2 or fk.parent not in self.plans:
                    continue
                done.add(fk.parent)
                for _ in range(TENANT_ROWS * 2):
                    if len(self.pool(fk)) >= TENANT_ROWS:
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
            if fk.parent not in stack and not self.pool(fk):
                self.insert(fk.parent, stack=stack)
        for _ in range(self.attempts):
            if self.budget <= 0:
                self.result.skipped += 1
                self.result.reasons[f"{key}: attempts of this call spent"] += 1
                return None
            self.budget -= 1
            pools = {fk: tuple(self.pool(fk)) for fk in plan.foreign_keys}
            row = self.draw(_rows(plan, fixed or {}, pools, self.seen[key]), key)
            blocked = self._make_parents(row, stack)
            if blocked is not None:
                self.result.skipped += 1
                self.result.reasons[f"{key}: no row in {blocked}"] += 1
                return None
            record = self._execute(plan, row.values)
            if record is not None:
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
            _as_text(columns),
            sql.Identifier(plan.table.schema, plan.table.name),
            _PHYSICAL_ORDER,
            sql.Literal(_EXISTING_ROWS),
        )
        for row in self._run(query, ()).fetchall():
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

    def pool(self, fk: ForeignKey) -> list[tuple[Any, ...]]:
        """Key values of existing parent rows, as text, in physical order.

        Physical order (not key order) keeps replays identical when keys are random defaults
        such as gen_random_uuid(): the n-th row is the same row each time.
        """
        pool_key = (fk.parent, fk.parent_columns)
        if pool_key not in self.pools:
            query = sql.SQL("SELECT {} FROM {} WHERE {} ORDER BY {} LIMIT {}").format(
                _as_text(fk.parent_columns),
                sql.Identifier(fk.parent_schema, fk.parent_name),
                sql.SQL(" AND ").join(
                    sql.SQL("{} IS NOT NULL").format(sql.Identifier(c)) for c in fk.parent_columns
                ),
                _PHYSICAL_ORDER,
                sql.Literal(_POOL_LIMIT),
            )
            self.pools[pool_key] = self._run(query, ()).fetchall()
        return self.pools[pool_key]

    def _execute(self, plan: _Plan, values: Mapping[str, Any]) -> dict[str, Any] | None:
        columns = tuple(c for c in plan.strategies if c in values and values[c] is not DEFAULT)
        statement = self._statement(plan.table, columns)
        params = [_adapt(plan.table.column(c), values[c]) for c in columns]
        try:
            cursor = self._run(statement, params)
        except psycopg.Error as exc:
            if not (exc.sqlstate or "").startswith(_REJECTED_CLASSES):
                raise
            self.result.rejected += 1
            why = f"{type(exc).__name__} {exc.diag.constraint_name or ''}".rstrip()
            self.result.reasons[f"{plan.table.key}: {why}"] += 1
            return None
        return dict(zip((c.name for c in plan.table.columns), cursor.fetchone()))

    def _run(self, query: sql.Composable | str, params: Sequence[Any]) -> psycopg.Cursor:
        """Run one statement so that its failure undoes only itself.

        Never as a server-side prepared statement: a prepared ``%s::status`` keeps the oid
        of the type it was prepared with, and migrations drop and re-create types on another
        connection, unseen by psycopg ("cache lookup failed for type" ever after).
        """
        if self.conn.autocommit and self.conn.info.transaction_status == TransactionStatus.IDLE:
            return self.cursor.execute(query, params, prepare=False)
        with self.conn.transaction():
            return self.cursor.execute(query, params, prepare=False)

    def _statement(self, table: Table, columns: tuple[str, ...]) -> str:
        """The INSERT for these columns, rendered once: psycopg would otherwise compose the
        identifiers again on every execution."""
        cache_key = (table.key, columns)
        if cache_key not in self.statements:
            target = sql.Identifier(table.schema, table.name)
            if columns:
                # Casts come from format_type, which quotes as SQL needs; '%' would be read
                # as a placeholder.
                body = sql.SQL("({}) VALUES ({})").format(
                    sql.SQL(", ").join(sql.Identifier(c) for c in columns),
                    sql.SQL(", ").join(
                        sql.SQL("%s::" + table.column(c).cast.replace("%", "%%")) for c in columns
                    ),
                )
            else:
                body = sql.SQL("DEFAULT VALUES")
            # The whole row, for the record and the parent key pools.
            returned = sql.SQL(", ").join(
                sql.SQL("{}::jsonb" if c.type.kind in ("json", "jsonb") else "{}::text").format(
                    sql.Identifier(c.name)
                )
                for c in table.columns
            )
            statement = sql.SQL("INSERT INTO {} {} RETURNING {}").format(target, body, returned)
            self.statements[cache_key] = statement.as_string(self.conn)
        return self.statements[cache_key]

    def _record(self, plan: _Plan, values: Mapping[str, Any], record: dict[str, Any]) -> None:
        key = plan.table.key
        self.result.sequence.append((key, record))
        for (parent, columns), pool in self.pools.items():
            if parent == key and all(record.get(c) is not None for c in columns):
                pool.append(tuple(record[c] for c in columns))
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
    strategies = {
        name: _column_values(table.column(name), overrides.column(table.key, name))
        for name in insertable
    }
    filled = {
        name: _column_values(table.column(name), overrides.column(table.key, name), nulls=False)
        for name in insertable if table.column(name).nullable
    }
    row_override = overrides.row(table.key)
    if row_override is None:
        needy = [n for n in insertable if strategies[n] is None and n not in in_foreign_key]
        if needy:
            column = table.column(needy[0])
            return (f"no strategy for {column.name} ({column.cast}); "
                    "give one with Overrides")
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
    )


_CASE_CHANGES = (lambda v: v, str.upper, str.lower, str.swapcase)
_REPEAT = _weighted((st.just(False), 7), (st.just(True), 1))
# Constraints such as (a IS NULL) = (b IS NULL) or "finished_at IS NULL OR started_at IS NOT
# NULL" tie columns' NULLs together; rows with no NULLs or all NULLs pass them.
_NULLS_EACH, _NULLS_NONE, _NULLS_ALL = "each", "none", "all"
_NULL_MODE = _weighted(
    (st.just(_NULLS_EACH), 2), (st.just(_NULLS_NONE), 1), (st.just(_NULLS_ALL), 1)
)
_NULL_KEY = _weighted((st.just(False), 4), (st.just(True), 1))


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
            for _ in range(0 if column in plan.repeatable else 2):
                if value not in seen.get(column, ()):
                    break
                value = draw(strategy)
            values[column] = value

    for lower, higher in plan.table.ordered:
        low, high = values.get(lower), values.get(higher)
        if _out_of_order(low, high) and not {lower, higher} & plan.overridden:
            values[lower], values[higher] = high, low

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
    return _Row(values, missing)


def _again(draw: Callable[..., Any], previous: Sequence[Any], textual: bool) -> Any:
    """A value already in this column, as is or (for text) in another case: the duplicates a
    new unique index, or one on lower(column), trips over."""
    value = previous[draw(_index(len(previous)))]
    if textual and isinstance(value, str):
        return _CASE_CHANGES[draw(_index(len(_CASE_CHANGES)))](value)
    return value


def _out_of_order(low: Any, high: Any) -> bool:
    """Whether two drawn values compare and are the wrong way round; NULL, DEFAULT, a text
    hint against a date, NaN: none of them compare."""
    if low is None or high is None or type(low) is not type(high) or low is DEFAULT:
        return False
    try:
        return bool(low > high)
    except (TypeError, ArithmeticError):
        return False


# Rows in the order they were written: the same on every replay of an example.
_PHYSICAL_ORDER = sql.SQL("tableoid::regclass::text, ctid")


def _as_text(columns: Iterable[str]) -> sql.Composed:
    return sql.SQL(", ").join(sql.SQL("{}::text").format(sql.Identifier(c)) for c in columns)


def _same(parent_text: Any, value: Any) -> bool:
    return parent_text == (value if isinstance(value, str) else str(value))


def _adapt(column: Column, value: Any) -> Any:
    """Plain dicts and lists from overrides become JSON for json columns."""
    if column.type.kind in ("json", "jsonb") and isinstance(value, (dict, list, int, float, bool)):
        return (Jsonb if column.type.kind == "jsonb" else Json)(value)
    return value

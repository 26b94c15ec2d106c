"""The live catalog as plain frozen values: the tables a seeder can fill, parents first.

:func:`read_catalog` reads every user schema at the database's current state in two round trips
(after every migration: the catalog is the schema *as it is now*); types are reduced to what
value generation needs, and CHECK constraints and partition bounds become :class:`Hints`.
psycopg only: both the Hypothesis seeder and the report's deterministic filler read it.
"""

from __future__ import annotations

import collections
import dataclasses
import functools
import re
from typing import Iterable, Iterator, Mapping, NamedTuple

import psycopg
from psycopg import sql

from ..prepared import fetch_prepared
from .hints import NO_HINTS, Hints, check_hints, domain_hints, orderings, partition_hints

__all__ = ["Catalog", "CatalogRead", "Column", "ForeignKey", "Table", "Tenancy", "TypeInfo",
           "read_catalog", "read_tables"]


class Tenancy(NamedTuple):
    """Where a row's tenant is, and the setting that says which tenant a session acts for."""

    setting: str
    column: str


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
    hints: Hints = NO_HINTS
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
    hints: Hints = NO_HINTS

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
    checks: tuple[str, ...] = ()
    """The CHECK constraints' definitions, as ``pg_get_constraintdef`` gives them."""
    tenant: Tenancy | None = None
    """The setting and column when a row-level security policy checks inserted rows against a
    setting, as ``tenant_id = current_setting('app.tenant')::uuid`` does, and binds the
    connected role: each row goes in with the setting at its own tenant."""

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
 WHERE a.attrelid = ANY($1::oid[]) AND a.attnum > 0 AND NOT a.attisdropped
 ORDER BY a.attrelid, a.attnum
"""

# Every type the tables' columns reach through domains and array elements.
_TYPES = """
WITH RECURSIVE reached(oid) AS (
    SELECT a.atttypid FROM pg_attribute a
     WHERE a.attrelid = ANY($1::oid[]) AND a.attnum > 0 AND NOT a.attisdropped
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
# A foreign key needs its columns, a CHECK its text: deparsing every key cost as much again.
_CONSTRAINTS = """
SELECT k.conrelid, k.conname, k.contype,
       CASE WHEN k.contype = 'f' THEN
         ARRAY(SELECT a.attname::text FROM unnest(k.conkey) WITH ORDINALITY AS u(n, i)
                 JOIN pg_attribute a ON a.attrelid = k.conrelid AND a.attnum = u.n ORDER BY u.i) END,
       CASE WHEN k.contype = 'f' THEN
         ARRAY(SELECT a.attname::text FROM unnest(k.confkey) WITH ORDINALITY AS u(n, i)
                 JOIN pg_attribute a ON a.attrelid = k.confrelid AND a.attnum = u.n ORDER BY u.i) END,
       fn.nspname, fc.relname, CASE WHEN k.contype = 'c' THEN pg_get_constraintdef(k.oid) END
  FROM pg_constraint k
  LEFT JOIN pg_class fc ON fc.oid = k.confrelid
  LEFT JOIN pg_namespace fn ON fn.oid = fc.relnamespace
 WHERE k.conrelid = ANY($1::oid[]) AND k.contype IN ('c', 'f') AND k.conparentid = 0
 ORDER BY k.conrelid, k.conname
"""

# In name order: the order of a table's unique sets reaches what is drawn for it, and a plan's
# row order changes with the catalogs' statistics (autovacuum on a server given by URL).
_UNIQUE = """
SELECT i.indrelid, (i.indkey::int2[])[0:i.indnkeyatts - 1]
  FROM pg_index i
 WHERE i.indrelid = ANY($1::oid[]) AND i.indisunique
 ORDER BY i.indrelid, i.indexrelid::regclass::text
"""

_PARTITIONS = """
SELECT p.partrelid, p.partattrs::int2[], pg_get_expr(c.relpartbound, c.oid)
  FROM pg_partitioned_table p
  JOIN pg_inherits i ON i.inhparent = p.partrelid
  JOIN pg_class c ON c.oid = i.inhrelid
 WHERE p.partrelid = ANY($1::oid[])
 ORDER BY c.relname
"""

# Policies that check the rows the connected role inserts: row-level security enabled, the
# role neither superuser nor BYPASSRLS, and the table FORCEd or not the role's own. With the
# columns each policy reads, as pg_depend records them.
_TENANT_POLICIES = """
SELECT p.polrelid, pg_get_expr(coalesce(p.polwithcheck, p.polqual), p.polrelid),
       ARRAY(SELECT a.attname::text
               FROM pg_depend d
               JOIN pg_attribute a ON a.attrelid = d.refobjid AND a.attnum = d.refobjsubid
              WHERE d.classid = 'pg_policy'::regclass AND d.objid = p.oid
                AND d.refobjid = p.polrelid AND d.refobjsubid > 0)
  FROM pg_policy p
  JOIN pg_class c ON c.oid = p.polrelid
 WHERE p.polrelid = ANY($1::oid[]) AND c.relrowsecurity AND p.polcmd IN ('*', 'a')
   AND (c.relforcerowsecurity OR NOT pg_has_role(c.relowner, 'USAGE'))
   AND NOT EXISTS (SELECT FROM pg_roles r
                    WHERE r.rolname = current_user AND (r.rolsuper OR r.rolbypassrls))
 ORDER BY p.polrelid, p.polname
"""
_DETAILS = {"columns": _COLUMNS, "types": _TYPES, "constraints": _CONSTRAINTS, "unique": _UNIQUE,
            "partitions": _PARTITIONS, "policies": _TENANT_POLICIES}
"""What is read of each table, in this order, each prepared once per connection."""

# Generic plans: the statements run at every state of a sweep, planning them cost as much as
# running them. Merge joins off for the reason snapshots have them off (harness.snapshot.reader).
READ_SETTINGS = ("SELECT set_config('plan_cache_mode', 'force_generic_plan', true),"
                 " set_config('enable_mergejoin', 'off', true), set_config('jit', 'off', true)")

_SETTING_CALL = re.compile(r"current_setting\('((?:[^']|'')+)'")

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

    Seven catalog queries whatever the schema's size, in two round trips. ``exclude`` names
    ``(schema, table)`` pairs never to seed, such as ``("public", "alembic_version")``; foreign
    keys into them still draw on their existing rows.
    """
    return read_tables(conn, exclude).catalog


@dataclasses.dataclass(frozen=True)
class CatalogRead:
    """A catalog and its tables by oid: what a later reading of the same database can keep."""

    catalog: Catalog
    by_oid: Mapping[int, Table]


def read_tables(
    conn: psycopg.Connection, exclude: Iterable[tuple[str, str]] = (), *,
    kept: CatalogRead | None = None, changed: Iterable[int] = (),
) -> CatalogRead:
    """:func:`read_catalog`, reading again of ``kept`` only the tables of ``changed`` oids and
    those it does not have: the others are known unchanged since ``kept`` was read (see
    :mod:`.catalog_changes`)."""
    excluded = {tuple(pair) for pair in exclude}
    [listed] = fetch_prepared(conn, [("harness_catalog_tables", _TABLES, ())], READ_SETTINGS)
    tables = [row for row in listed if (row[1], row[2]) not in excluded]
    known = {} if kept is None else kept.by_oid
    changed = set(changed)
    # A partitioned table is read again every time: its partitions' bounds are part of it,
    # and a partition created or dropped names only itself to the log.
    stale = [row for row in tables
             if row[0] in changed or row[3] or known.get(row[0]) is None
             or (known[row[0]].schema, known[row[0]].name) != (row[1], row[2])]
    built = _read_details(conn, stale) if stale else {}
    by_oid = {oid: built[oid] if oid in built else known[oid] for oid, *_ in tables}
    return CatalogRead(Catalog(_parents_first(list(by_oid.values()))), by_oid)


def _read_details(conn: psycopg.Connection, tables: list[tuple]) -> dict[int, Table]:
    """The tables of ``tables`` (rows of ``_TABLES``) built from their catalog rows."""
    oids = sql.Literal([row[0] for row in tables])
    column_rows, type_rows, constraint_rows, unique_rows, partition_rows, policy_rows = fetch_prepared(
        conn, [(f"harness_catalog_{name}", statement, (oids,)) for name, statement in _DETAILS.items()],
        READ_SETTINGS)
    columns = collections.defaultdict(list)
    for row in column_rows:
        columns[row[0]].append(row[1:])
    types_by_oid = {row[0]: row for row in type_rows}
    constraints = collections.defaultdict(list)
    for row in constraint_rows:
        constraints[row[0]].append(row[1:])
    unique = collections.defaultdict(list)
    for relid, keys in unique_rows:
        unique[relid].append(keys)
    partitions = collections.defaultdict(list)
    for relid, keys, bound in partition_rows:
        partitions[relid].append((keys, bound))
    tenants: dict[int, Tenancy] = {}
    for relid, expression, read in policy_rows:
        setting = _SETTING_CALL.search(expression or "")
        if setting and len(read) == 1:
            tenants.setdefault(relid, Tenancy(setting.group(1).replace("''", "'"), read[0]))
    types = _TypeReader(types_by_oid)
    return {
        oid: _build_table(
            schema, name, partitioned, tuple(columns[oid]), _frozen(constraints[oid]),
            tuple(map(tuple, unique[oid])), _frozen(partitions[oid]),
            tuple(types.info(row[2], row[3]) for row in columns[oid]),
            tenants.get(oid),
        )
        for oid, schema, name, partitioned in tables
    }


def _frozen(rows: list) -> tuple:
    """Catalog rows with their arrays (lists) as tuples, so that they can key a cache."""
    return tuple(tuple(tuple(v) if isinstance(v, list) else v for v in row) for row in rows)


@functools.lru_cache(maxsize=8192)
def _build_table(
    schema: str, name: str, partitioned: bool, column_rows: tuple[tuple, ...],
    constraint_rows: tuple[tuple, ...], unique_rows: tuple[tuple[int, ...], ...],
    partition_rows: tuple[tuple[tuple[int, ...], str], ...], infos: tuple[TypeInfo, ...],
    tenant: Tenancy | None,
) -> Table:
    """One table from its catalog rows and its columns' types, built once per process for each
    distinct input: a sweep reads the catalog at every state, most tables are as they were at
    the last one, and building them was half of a read's time (the queries the other half)."""
    by_attnum = {row[0]: row[1] for row in column_rows}
    names = set(by_attnum.values())
    hints: dict[str, Hints] = collections.defaultdict(Hints)
    ordered: list[tuple[str, str]] = []
    checks: list[str] = []
    foreign_keys = []
    for conname, contype, columns, parent_columns, parent_schema, parent_name, definition in (
        constraint_rows
    ):
        if contype == "c":
            for column, found in check_hints(definition, names).items():
                hints[column] = hints[column].merge(found)
            ordered.extend(orderings(definition, names))
            checks.append(definition)
        else:
            foreign_keys.append(ForeignKey(
                name=conname,
                columns=tuple(columns),
                parent_schema=parent_schema,
                parent_name=parent_name,
                parent_columns=tuple(parent_columns),
            ))
    for keys, bound in partition_rows:
        for column, found in partition_hints(bound, [by_attnum.get(k) for k in keys]).items():
            hints[column] = hints[column].merge(found)
    columns = tuple(
        Column(
            name=attname,
            cast=cast,
            type=info,
            not_null=notnull,
            default=default,
            identity=_IDENTITY.get(identity, ""),
            generated=bool(generated),
            hints=hints.get(attname, NO_HINTS),
        )
        for (_, attname, _, _, cast, notnull, default, identity, generated), info in zip(column_rows, infos)
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
        checks=tuple(checks),
        tenant=tenant,
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
            own = functools.reduce(Hints.merge, domain_hints(checks, "VALUE"), NO_HINTS)
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


"""Reading every row of a scratch database, again and again, at the cost of what changed.

The data invariants (:mod:`.data`) compare rows as multisets of text values; this module reads
them: every table outside the system schemas, each row as the text of its values in column
order, under fixed session settings.
"""

from __future__ import annotations

from typing import Any, Collection, Sequence

import psycopg
from psycopg import sql

from ..errors import HarnessError
from ..prepared import INDEX_PLANS, fetch_prepared, set_local
from ..snapshot.queries import scope
from .data import ComparedColumn, Row, RowsSnapshot, TableName, TableRows

# The text form of dates, intervals, floats and bytea depends on session settings; fixing them
# makes two captures comparable whatever the connection's defaults are. row_security=off makes
# a role that RLS would filter fail loudly instead of silently capturing a subset of the rows.
# Merge joins are off as in a snapshot (see harness.prepared.INDEX_PLANS): the log's few
# changed objects would be joined with the whole of pg_depend.
_SESSION = (
    "SELECT set_config('TimeZone', 'UTC', true), set_config('DateStyle', 'ISO, YMD', true),"
    " set_config('IntervalStyle', 'postgres', true), set_config('extra_float_digits', '1', true),"
    " set_config('bytea_output', 'hex', true), set_config('row_security', 'off', true), set_config('jit', 'off', true),"
    " set_config('enable_mergejoin', 'off', true)"
)

_BY_INDEX = set_local(INDEX_PLANS)
"""For the catalog statements a logged read starts with, which follow the log's few changes."""

# A table's columns as the data checks compare them: names, types and type categories, in
# order. An aggregate per table, looked up by index: as a join, a generic plan hashed the whole
# of pg_attribute and pg_type to describe the few tables the log names.
_COLUMNS = """
  CROSS JOIN LATERAL (
    SELECT coalesce(array_agg(a.attname ORDER BY a.attnum), '{}') AS names,
           coalesce(array_agg(format_type(a.atttypid, a.atttypmod) ORDER BY a.attnum), '{}') AS types,
           coalesce(array_agg((SELECT t.typcategory::text FROM pg_type t WHERE t.oid = a.atttypid)
                              ORDER BY a.attnum), '{}') AS categories
    FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
  ) col"""

# Partitions are read through their partitioned table (moving rows between partitions is no
# change to the data the application sees); tables owned by extensions are not the migrations'
# (looked up per table: OFFSET 0 keeps the lookup from becoming a scan of all of pg_depend).
_READ = """c.relkind IN ('r', 'p') AND NOT c.relispartition AND c.relpersistence <> 't'
   AND n.nspname <> 'information_schema' AND n.nspname !~ '^pg_'
   AND NOT EXISTS (SELECT FROM pg_depend d
                    WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid AND d.deptype = 'e' OFFSET 0)"""

_TABLES = f"""
SELECT n.nspname, c.relname, c.relkind, col.names, col.types, col.categories
  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace{_COLUMNS}
 WHERE {_READ}
 ORDER BY n.nspname, c.relname
"""

ROWS_SINCE_SETTING = "harness.rows_since"
"""``<changes id> <rows_written id>``: the log entries a reading of rows has already seen."""

_ROWS_CHANGED = f"""
WITH RECURSIVE since AS (
    SELECT split_part(current_setting('{ROWS_SINCE_SETTING}'), ' ', 1)::bigint AS changes,
           split_part(current_setting('{ROWS_SINCE_SETTING}'), ' ', 2)::bigint AS written
), logged AS (
    SELECT l.* FROM {scope.TRACKING_SCHEMA}.changes l, since s WHERE l.id > s.changes
), {scope.TOUCHED}, changed (oid) AS (
    {scope.CHANGED_RELATIONS}
  UNION
    SELECT w.relid FROM {scope.TRACKING_SCHEMA}.rows_written w, since s WHERE w.id > s.written
)
SELECT 'end', NULL::name, NULL::name, NULL::"char", NULL::name[], NULL::text[], NULL::text[], NULL::boolean,
       {scope.UNPLACED_NOT_A_GRANT} OR {scope.TRACKING_OFF},
       (SELECT coalesce(max(id), 0) FROM {scope.TRACKING_SCHEMA}.changes) || ' '
       || (SELECT coalesce(max(id), 0) FROM {scope.TRACKING_SCHEMA}.rows_written)
UNION ALL
SELECT 'dropped', names[1]::name, names[2]::name, NULL, NULL, NULL, NULL, NULL, NULL, NULL
FROM logged WHERE dropped AND object_type = 'table'
UNION ALL
SELECT 'changed', n.nspname, c.relname, c.relkind, col.names, col.types, col.categories, {_READ},
       NOT EXISTS (SELECT FROM (SELECT c.oid AS relid UNION SELECT relid FROM pg_partition_tree(c.oid)) member
                   WHERE NOT EXISTS (SELECT FROM pg_trigger t WHERE t.tgrelid = member.relid
                                     AND t.tgname = '{scope.ROWS_TRIGGER}' AND t.tgenabled = 'A')), NULL
  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace{_COLUMNS}
 WHERE c.oid IN (SELECT coalesce(pg_partition_root(oid), oid) FROM changed)
"""
"""What changed since the log entries of :data:`ROWS_SINCE_SETTING`, one row each:

* ``end``: whether the log cannot tell (a command it cannot place that may change rows: a
  renamed schema, a partition attached or detached; or its event triggers gone), and where it
  ends now;
* ``dropped``: a table dropped, or renamed away from this name;
* ``changed``: a table whose rows may have changed, with its columns, whether it is read at
  all, and whether the harness's statement triggers on it and its partitions are all there and
  enabled (a migration may drop or disable them; its writes are not logged then): a command
  touched it or an object of it was dropped (as a scoped snapshot's scope, through
  ``pg_depend``), or a statement wrote to it (a partition counts as its partitioned table)."""

RowsCache = dict[TableName, tuple[tuple[Any, ...], TableRows]]
"""Tables already read, each under its columns and the server's digest of its rows."""

Listed = tuple[TableName, str, tuple[ComparedColumn, ...]]
"""A table as the catalog lists it: name, ``relkind``, columns."""

Named = tuple[str, str]
"""A statement the harness runs after every step, under the name it is prepared as."""

TABLES: Named = ("harness_rows_tables", _TABLES)
ROWS_CHANGED: Named = ("harness_rows_changed", _ROWS_CHANGED)

_LOG_START = "9223372036854775807 9223372036854775807"
"""Log ends before a first read: past every entry, so the log adds nothing to what it reads."""

def capture_rows(
    conn: psycopg.Connection, exclude: Collection[TableName] = (("public", "alembic_version"),),
) -> RowsSnapshot:
    """Read every row of every table outside the system schemas, once (see :class:`RowReader`
    for a database read again and again)."""
    return RowReader(exclude, cached=False).read(conn)[0]


class RowReader:
    """Every row of every table of one database, read again only where it changed.

    All tables are read by one ``UNION ALL`` of text arrays, so the cost is a round trip or two
    whatever the number of tables. Kept by the caller for one database (``cached``), a reader
    reads again only the tables whose rows may have changed since its last read:

    * in a database with the harness's change log (``logged``, see
      :mod:`harness.snapshot.tracking`), those the log names: a command touched them or a
      statement wrote to them. No table is scanned to learn that, so a read costs what changed,
      not what the database holds;
    * otherwise, or when the log cannot tell, those whose digest (:data:`_DIGEST`, one scan of
      every table) differs from the last read's.

    A read takes two round trips (the table list, with the log's answer or the digests; then the
    rows), one when only the harness inserted rows since the last read of a database without a
    log (``rows_only``), one more for tables whose digest changed. Each runs in its own
    transaction: nothing else writes to a scratch database while the harness reads it.
    """

    def __init__(self, exclude: Collection[TableName] = (("public", "alembic_version"),), *,
                 cached: bool = True, logged: bool = False) -> None:
        self._excluded = set(exclude)
        self._cache: RowsCache | None = {} if cached else None
        self._sources: dict[Listed, str] = {}  # each table's _row_source, rendered once
        self._tables: list[Listed] | None = None  # the tables as the last read listed them
        self._logged = logged and cached
        self._since = _LOG_START
        """The change log's ends at the last read (see ``ROWS_SINCE_SETTING``)."""
        self._unwatched: set[TableName] = set()
        """Tables a step left without the statement trigger that logs writes: read every time."""

    def read(
        self, conn: psycopg.Connection, *, touched: Collection[TableName] = (),
        also: Sequence[Named] = (), rows_only: bool = False,
    ) -> tuple[RowsSnapshot, list[list[tuple[Any, ...]]]]:
        """The rows now, and the rows of each statement of ``also``, run in the first round trip
        (each prepared once on ``conn``).

        ``touched`` names tables known to have changed rows (a fill's): they are read without
        waiting for their digest. ``rows_only`` says that only rows may have changed since the
        last read, no table (the harness inserted rows): without a log, the digests and the
        touched tables' rows then go in the first round trip, with the table list that confirms it.
        """
        tables = self._tables
        if rows_only and not self._logged and self._cache is not None and tables is not None:
            fresh = [i for i, table in enumerate(tables) if table[0] in touched]
            digest = [*(i for i in range(len(tables)) if i not in fresh), *fresh]
            try:
                [listed, *results] = read_pipelined(
                    conn, [TABLES, *also, *self._queries(conn, tables, fresh, digest)])
            except psycopg.Error:  # a table gone or altered after all: read as after any step
                listed = None
            if listed is not None and self._listed(listed) == tables:
                rows, digests = self._results(results[len(also):], tables, fresh, digest)
                return self._update(conn, tables, rows, digests, digest[:len(digest) - len(fresh)]), \
                    results[:len(also)]
        since, changed = self._since, None
        if self._logged:
            first = self._tables is None
            [_, *found, log] = read_pipelined(conn, [
                f"SELECT set_config('{ROWS_SINCE_SETTING}', '{self._since}', true), {_BY_INDEX}",
                *([TABLES] if first else []), *also, ROWS_CHANGED])
            [(_, _, _, _, _, _, _, _, unknown, since), *entries] = log
            self._watch(entries)
            if first or unknown:
                tables = self._listed(found.pop(0) if first else read_pipelined(conn, [TABLES])[0])
            else:
                tables, changed = self._relisted(entries)
        else:
            [listed, *found] = read_pipelined(conn, [TABLES, *also])
            tables = self._listed(listed)
        cache = self._cache
        if cache is None:
            everything = range(len(tables))
            rows, _ = self._results(read_pipelined(conn, self._queries(conn, tables, everything, ())),
                                    tables, everything, ())
            return RowsSnapshot({name: rows[i] for i, (name, _, _) in enumerate(tables)}), found
        if changed is not None:
            # The log names every table whose columns or rows may have changed.
            fresh = [i for i, (name, _, _) in enumerate(tables) if name in changed or name in touched or name not in cache]
            digested: list[int] = []
        else:
            known = {i for i, (name, _, columns) in enumerate(tables)
                     if name in cache and cache[name][0][0] == columns}
            fresh = sorted(i for i in range(len(tables)) if i not in known or tables[i][0] in touched)
            digested = sorted(known - set(fresh))
        digest = [*digested, *fresh] if changed is None else []  # the log needs no digests
        rows, digests = self._results(read_pipelined(conn, self._queries(conn, tables, fresh, digest)),
                                      tables, fresh, digest)
        snapshot = self._update(conn, tables, rows, digests, digested)
        self._since = since
        return snapshot, found

    def _relisted(self, entries: list[tuple[Any, ...]]) -> tuple[list[Listed], set[TableName]]:
        """The tables after what the log says (see :data:`_ROWS_CHANGED`), from the last listing;
        and those whose rows may have changed."""
        assert self._tables is not None
        listing = {table[0]: table for table in self._tables}
        for kind, schema, name, *_ in entries:
            if kind == "dropped":
                listing.pop((schema, name), None)
        changed = set()
        for kind, schema, name, relkind, names, types, categories, read, _, _ in entries:
            if kind == "changed":
                changed.add((schema, name))
                listing.pop((schema, name), None)
                if read:
                    listing.update((table[0], table) for table in self._listed([(schema, name, relkind, names, types, categories)]))
        return [listing[name] for name in sorted(listing)], changed | self._unwatched

    def _watch(self, entries: list[tuple[Any, ...]]) -> None:
        """Keep the tables whose writes the log no longer sees (:attr:`_unwatched`)."""
        for kind, schema, name, *_, read, watched, _ in entries:
            if kind == "changed":
                if watched or not read:
                    self._unwatched.discard((schema, name))
                else:
                    self._unwatched.add((schema, name))

    def _listed(self, listed: list[tuple[Any, ...]]) -> list[Listed]:
        return [((schema, name), kind, tuple(map(ComparedColumn, names, types, categories))) for schema,
                name, kind, names, types, categories in listed if (schema, name) not in self._excluded]

    def _update(self, conn: psycopg.Connection, tables: list[Listed], rows: dict[int, TableRows],
                digests: dict[int, tuple[Any, ...]], digested: list[int]) -> RowsSnapshot:
        """The snapshot, once the tables whose digest changed are read again; the cache
        brought up to date."""
        cache = self._cache
        assert cache is not None
        stale = [i for i in digested if cache[tables[i][0]][0][1] != digests[i]]
        if stale:
            rows.update(self._results(read_pipelined(conn, self._queries(conn, tables, stale, ())),
                                      tables, stale, ())[0])
        snapshot = {}
        for i, (name, _, columns) in enumerate(tables):
            if i in rows:
                cache[name] = ((columns, digests.get(i)), rows[i])
            snapshot[name] = cache[name][1]
        for name in cache.keys() - snapshot.keys():
            del cache[name]
        if len(self._sources) > 2 * len(tables):
            # Now and then, not with every read: at 400 tables, hashing every listing (its
            # columns included) to keep the sources of the tables still there was 2 % of the
            # sweep's time in Python.
            listed = set(tables)
            self._sources = {table: text for table, text in self._sources.items() if table in listed}
        self._tables = tables
        return RowsSnapshot(snapshot)

    def _source(self, conn: psycopg.Connection, table: Listed) -> str:
        if table not in self._sources:
            self._sources[table] = _row_source(*table).as_string(conn)
        return self._sources[table]

    def _queries(self, conn: psycopg.Connection, tables: list[Listed], read: Sequence[int],
                 digest: Sequence[int]) -> list[str]:
        """The digests of the tables at positions ``digest``, then the rows of those at
        ``read``: one statement each, none for an empty list."""
        return [" UNION ALL ".join(parts) for parts in (
            [_DIGEST.format(index=i, source=self._source(conn, tables[i])) for i in digest],
            [f"SELECT {i}, {self._source(conn, tables[i])}" for i in read],
        ) if parts]

    @staticmethod
    def _results(
        results: list[list[tuple[Any, ...]]], tables: list[Listed], read: Sequence[int],
        digest: Sequence[int],
    ) -> tuple[dict[int, TableRows], dict[int, tuple[Any, ...]]]:
        """What :meth:`_queries` read: rows and digests by position."""
        found = iter(results)
        digests = {i: tuple(value) for i, value in next(found)} if digest else {}
        rows: dict[int, list[Row]] = {i: [] for i in read}
        for index, values in next(found, ()) if read else ():
            rows[index].append(tuple(values))
        return {i: TableRows(tables[i][2], tuple(values)) for i, values in rows.items()}, digests


def read_pipelined(
    conn: psycopg.Connection, queries: Sequence[Named | str],
) -> list[list[tuple[Any, ...]]]:
    """The rows of each query (named ones prepared once), run in one transaction under
    :data:`_SESSION`'s settings, in one round trip."""
    if not queries:
        return []
    try:
        return fetch_prepared(conn, queries, _SESSION)
    except psycopg.errors.InsufficientPrivilege as exc:
        raise HarnessError(
            f"cannot read every row to check data preservation: {exc.diag.message_primary}",
            hint="connect as a superuser or a role with BYPASSRLS",
        ) from None


_DIGEST = ("SELECT {index}, ARRAY[count(*), sum(hashtextextended(r::text, 0)),"
           " sum(hashtextextended(r::text, 1))]::text[] FROM (SELECT {source}) AS s(r)")
"""A table's digest: its row count and two sums of 64-bit hashes of its rows' text, a multiset
digest that needs no sort (md5 of the sorted rows cost ten times as much), 128 bits against
collisions."""


def _row_source(name: TableName, kind: str, columns: tuple[ComparedColumn, ...]) -> sql.Composed:
    """``ARRAY[<each column as text>]::text[] FROM <table>``: a table's rows as text arrays."""
    # ONLY keeps rows of an inheritance child from being counted in its parent too; a
    # partitioned table must be read with its partitions, which is the point of reading it.
    values = sql.SQL(", ").join(sql.SQL("{}::text").format(sql.Identifier(c.name)) for c in columns)
    return sql.SQL("ARRAY[{values}]::text[] FROM {only}{table}").format(
        values=values, table=sql.Identifier(*name), only=sql.SQL("ONLY " if kind == "r" else ""),
    )

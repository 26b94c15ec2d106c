"""Scoped snapshots: event triggers log what migrations change, so a check reads only that.

:func:`install_tracking` puts a change log and two event triggers into a scratch database, as
superuser, before any migration runs there: ``ddl_command_end`` logs every object a command
created or altered (GRANT, REVOKE, COMMENT and ALTER DEFAULT PRIVILEGES fire it too) and
``sql_drop`` every object dropped, by name. Both are ``ENABLE ALWAYS`` (a migration that sets
``session_replication_role = replica`` is still seen) and ``SECURITY DEFINER`` (a migration that
switched to a role of its own still writes the log). They live in the ``pg_harness`` schema,
which snapshots, row captures, seeding and isolation checks all skip as a system schema.

:func:`take_scoped_snapshot` then reads only the relations the log names since a given entry,
what depends on them, and the relations the caller adds, plus every object that stands on its
own (see :mod:`.queries.scope`). What no event trigger sees (a direct catalog update, objects
an extension's script changes, a renamed role, ``REASSIGN OWNED``) escapes a scoped snapshot:
callers take a whole one the first time a state is reached and at the end of a run.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Iterable

import psycopg

from .reader import read_snapshot
from .model import Snapshot
from .queries import ROWS_TRIGGER, SCOPED_STATEMENT, TRACKING_SCHEMA
from .queries.scope import FAMILIES

_WATCHING = "harness.watching_rows"
"""Set while the log puts its statement trigger on a new table (see ``watch_rows``)."""

_INSTALL = f"""
BEGIN;
SET LOCAL allow_system_table_mods = on;
CREATE SCHEMA {TRACKING_SCHEMA};
CREATE TABLE {TRACKING_SCHEMA}.changes (
    id bigserial PRIMARY KEY, dropped boolean NOT NULL, tag text, classid oid, objid oid,
    object_type text, names text[]
);
CREATE TABLE {TRACKING_SCHEMA}.names (oid oid PRIMARY KEY, nspname name, relname name);
CREATE TABLE {TRACKING_SCHEMA}.rows_written (id bigserial PRIMARY KEY, relid oid);
CREATE FUNCTION {TRACKING_SCHEMA}.log_rows() RETURNS trigger LANGUAGE plpgsql
SECURITY DEFINER SET search_path = pg_catalog AS $$
BEGIN
    INSERT INTO {TRACKING_SCHEMA}.rows_written (relid) VALUES (tg_relid);
    RETURN NULL;
END $$;
CREATE FUNCTION {TRACKING_SCHEMA}.watch_rows(rel oid) RETURNS void LANGUAGE plpgsql
SECURITY DEFINER SET search_path = pg_catalog AS $$
BEGIN
    -- The two commands below are the log's own, on a table it already logged as created: the
    -- event trigger would otherwise log both, twice over what it does for the CREATE TABLE.
    PERFORM set_config('{_WATCHING}', 'on', true);
    EXECUTE format('CREATE TRIGGER {ROWS_TRIGGER} AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON %s '
                   'FOR EACH STATEMENT EXECUTE FUNCTION {TRACKING_SCHEMA}.log_rows()', rel::regclass);
    EXECUTE format('ALTER TABLE %s ENABLE ALWAYS TRIGGER {ROWS_TRIGGER}', rel::regclass);
    PERFORM set_config('{_WATCHING}', '', true);
END $$;
SELECT {TRACKING_SCHEMA}.watch_rows(c.oid) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind IN ('r', 'p') AND c.relpersistence <> 't'
  AND n.nspname <> 'information_schema' AND n.nspname NOT LIKE 'pg\\_%'
  AND NOT EXISTS (SELECT FROM pg_depend x WHERE x.classid = 'pg_class'::regclass AND x.objid = c.oid
                  AND x.deptype = 'e');
INSERT INTO {TRACKING_SCHEMA}.names
SELECT c.oid, n.nspname, c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname <> 'information_schema' AND n.nspname NOT LIKE 'pg\\_%';
CREATE TYPE {TRACKING_SCHEMA}.command AS (
    classid oid, objid oid, command_tag text, object_type text, in_extension boolean
);
CREATE FUNCTION {TRACKING_SCHEMA}.log_command() RETURNS event_trigger LANGUAGE plpgsql
SECURITY DEFINER SET search_path = pg_catalog AS $$
DECLARE
    commands {TRACKING_SCHEMA}.command[];
BEGIN
    IF current_setting('{_WATCHING}', true) = 'on' THEN
        RETURN;
    END IF;
    -- Read once: each call of pg_event_trigger_ddl_commands() describes every object again.
    commands := ARRAY(
        SELECT ROW(classid, objid, command_tag, object_type, in_extension)::{TRACKING_SCHEMA}.command
        FROM pg_event_trigger_ddl_commands());
    INSERT INTO {TRACKING_SCHEMA}.changes (dropped, tag, classid, objid, object_type)
    SELECT false, command_tag, classid, objid, object_type FROM unnest(commands);
    -- A command that names no object (DROP OWNED) still says something changed; other drops
    -- name theirs to sql_drop. (REASSIGN OWNED fires no event trigger at all.)
    IF NOT FOUND AND (tg_tag NOT LIKE 'DROP %' OR tg_tag = 'DROP OWNED') THEN
        INSERT INTO {TRACKING_SCHEMA}.changes (dropped, tag) VALUES (false, tg_tag);
    END IF;
    -- A relation renamed or moved to another schema is gone under its old name, as if dropped.
    INSERT INTO {TRACKING_SCHEMA}.changes (dropped, tag, object_type, names)
    SELECT DISTINCT true, tg_tag, CASE WHEN c.relkind IN ('i', 'I') THEN 'index' ELSE 'table' END,
           ARRAY[o.nspname::text, o.relname::text]
    FROM unnest(commands) d
    JOIN pg_class c ON c.oid = d.objid JOIN pg_namespace n ON n.oid = c.relnamespace
    JOIN {TRACKING_SCHEMA}.names o ON o.oid = c.oid
    WHERE d.classid = 'pg_class'::regclass AND (o.nspname, o.relname) <> (n.nspname, c.relname);
    INSERT INTO {TRACKING_SCHEMA}.names
    SELECT DISTINCT c.oid, n.nspname, c.relname
    FROM unnest(commands) d
    JOIN pg_class c ON c.oid = d.objid JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE d.classid = 'pg_class'::regclass
    ON CONFLICT (oid) DO UPDATE SET nspname = excluded.nspname, relname = excluded.relname
    WHERE (names.nspname, names.relname) <> (excluded.nspname, excluded.relname);
    -- What the log cannot place: a renamed schema renames every relation in it; attaching
    -- or detaching a partition changes a relation the command does not name.
    INSERT INTO {TRACKING_SCHEMA}.changes (dropped, tag)
    SELECT DISTINCT false, tg_tag FROM unnest(commands) d
    LEFT JOIN pg_class c ON d.classid = 'pg_class'::regclass AND c.oid = d.objid
    WHERE d.classid = 'pg_namespace'::regclass AND d.command_tag = 'ALTER SCHEMA'
       OR c.relkind = 'p' AND d.command_tag = 'ALTER TABLE';
    -- Every table created gets a statement trigger logging the statements that write its rows.
    PERFORM {TRACKING_SCHEMA}.watch_rows(c.oid) FROM unnest(commands) d
    JOIN pg_class c ON c.oid = d.objid
    WHERE d.classid = 'pg_class'::regclass AND NOT d.in_extension AND c.relkind IN ('r', 'p')
      AND c.relpersistence <> 't' AND d.command_tag IN ('CREATE TABLE', 'CREATE TABLE AS', 'SELECT INTO');
END $$;
CREATE FUNCTION {TRACKING_SCHEMA}.log_drop() RETURNS event_trigger LANGUAGE plpgsql
SECURITY DEFINER SET search_path = pg_catalog AS $$
BEGIN
    INSERT INTO {TRACKING_SCHEMA}.changes (dropped, tag, classid, objid, object_type, names)
    SELECT true, tg_tag, classid, objid, object_type, address_names
    FROM pg_event_trigger_dropped_objects();
END $$;
CREATE EVENT TRIGGER harness_log_command ON ddl_command_end EXECUTE FUNCTION {TRACKING_SCHEMA}.log_command();
CREATE EVENT TRIGGER harness_log_drop ON sql_drop EXECUTE FUNCTION {TRACKING_SCHEMA}.log_drop();
ALTER EVENT TRIGGER harness_log_command ENABLE ALWAYS;
ALTER EVENT TRIGGER harness_log_drop ENABLE ALWAYS;
COMMIT;
"""


def install_tracking(conn: psycopg.Connection) -> bool:
    """Log changes in the database ``conn`` (autocommit, superuser) is on; False if not allowed.

    Event triggers need a superuser; on a server where the harness is not one, snapshots stay
    whole. A copy of a database that has the log (a template given it before its rows) keeps
    it: nothing is installed again.
    """
    if conn.info.parameter_status("is_superuser") != "on":
        return False
    if conn.execute(f"SELECT to_regnamespace('{TRACKING_SCHEMA}') IS NULL").fetchone()[0]:
        conn.execute(_INSTALL, prepare=False)
    return True


@dataclasses.dataclass(frozen=True)
class Scope:
    """What a scoped snapshot covers: objects of these relations, these keys, the objects of
    these families (see ``FAMILIES``; with ``privileges``, the grants on every relation) and
    every other object that belongs to no relation."""

    roots: frozenset[str]
    """Relations as snapshots name them in ``Snapshot.tables`` (``schema.table``, unquoted)."""
    keys: frozenset[str] = frozenset()
    """Objects of a relation dropped without it (an index, extended statistics), by key."""
    families: frozenset[str] = frozenset(FAMILIES)

    def covered(self, snapshot: Snapshot) -> set[str]:
        """The keys of ``snapshot``'s objects in this scope: those of its relations, its keys,
        the grants on every relation with ``privileges``, and the objects that belong to no
        relation, of no family or of one of its families. Found through the relations' keys
        (:attr:`Snapshot.by_table`), not by testing every object: a step's scope is a few
        relations of a schema that may hold thousands."""
        by_table, tables = snapshot.by_table, snapshot.tables
        keys = {key for root in self.roots for key in by_table.get(root, ())}
        keys.update(key for key in self.keys if key in tables)
        if "privileges" in self.families:
            keys.update(key for key in tables if key.startswith(_PRIVILEGE_PREFIXES))
        keys.update(key for key in by_table[None]
                    if (family := family_of(key)) is None or family in self.families)
        return keys

    def restrict(self, snapshot: Snapshot) -> Snapshot:
        """``snapshot`` cut down to this scope, to compare with a scoped snapshot."""
        kept = {key: snapshot.objects[key] for key in sorted(self.covered(snapshot))}
        return dataclasses.replace(
            snapshot, objects=kept, tables={k: snapshot.tables[k] for k in kept if k in snapshot.tables},
        )

    def patch(self, snapshot: Snapshot, scoped: Snapshot) -> Snapshot:
        """``snapshot`` with this scope's part replaced by ``scoped``, a snapshot of this scope:
        the whole schema of a database that matched ``snapshot`` and then changed only what the
        change log says (what no event trigger sees is not in it)."""
        covered = self.covered(snapshot)
        outside = {key: attrs for key, attrs in snapshot.objects.items() if key not in covered}
        objects = {**outside, **scoped.objects}
        tables = {**{k: t for k, t in snapshot.tables.items() if k in outside}, **scoped.tables}
        return Snapshot(objects=dict(sorted(objects.items())), versions=scoped.versions,
                        roles=snapshot.roles | scoped.roles, tables=dict(sorted(tables.items())))


_FAMILY_PREFIXES = {"type ": "types", "function ": "functions", "procedure ": "functions", "aggregate ": "functions"}


_PRIVILEGE_PREFIXES = ("grant ", "revoke ")


def family_of(key: str) -> str | None:
    """The family (see ``FAMILIES``) of an object that belongs to no relation, if it has one:
    functions and types, their grants, and domains' constraints."""
    if key.startswith(_PRIVILEGE_PREFIXES):
        key = key.split(" on ", 1)[-1]
    elif key.startswith("constraint ") and " on domain " in key:
        return "types"
    return next((family for prefix, family in _FAMILY_PREFIXES.items() if key.startswith(prefix)), None)


@dataclasses.dataclass(frozen=True)
class ScopedRead:
    snapshot: Snapshot
    scope: Scope | None
    """None when the snapshot is whole."""
    last: int
    """The log's last entry when the snapshot was read: where the next scope starts."""


SCOPED = ("harness_scoped_snapshot", SCOPED_STATEMENT)
"""The scoped snapshot's statement and the name it is prepared as (whole reads use it too, on a
database that logs its changes)."""


def take_scoped_snapshot(
    conn: psycopg.Connection, version_table: tuple[str, str] | None, *,
    since: int | None, roots: Iterable[str] = (), versions: bool = False,
) -> ScopedRead:
    """The objects changed after log entry ``since``, or the whole schema when ``since`` is None.

    ``roots`` are relations (``schema.table``) to read whatever the log says. The version
    table's rows are read with the whole schema, or if asked for (``versions``).
    """
    request = "" if since is None else json.dumps({"since": since, "roots": sorted(roots)})
    snapshot, summary = read_snapshot(conn, version_table, *SCOPED, request, versions=versions or since is None)
    assert summary is not None, "the scoped statement always ends with its summary row"
    scope = None if summary["whole"] else Scope(
        frozenset(summary["roots"]), frozenset(summary["keys"]), frozenset(summary["families"]))
    return ScopedRead(snapshot, scope, summary["last"])

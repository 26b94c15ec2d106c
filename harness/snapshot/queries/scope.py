"""The scoped statement's extra CTEs: which relations a step touched, read from the change log.

The log (:mod:`..tracking`) holds what the event triggers saw since the scratch database was
cloned: objects created or altered (by oid) and objects dropped (by name). The scope is every
relation those objects are or belong to, and every relation whose definition depends on one of
them, recursively through ``pg_depend`` (a view on a renamed column, a foreign key to a renamed
table, a trigger calling a renamed function), plus the relations the caller names (those whose
reference differs between the two states compared). A sequence is a relation here too (an owned
one depends on its table). Of the objects that belong to no relation, functions and types are
read when the log names one of their kind (:data:`FAMILIES`), the others (schemas, default
privileges, extensions...) always: they are few.

``GRANT`` and ``REVOKE`` name no object to event triggers, only the kind of object they granted
on (``TABLE`` for a table, a view or their columns, one or ``ALL TABLES IN SCHEMA``): the scope
then takes every object of that kind's privileges (:data:`GRANTED_KINDS`), the grants on every
relation (the ``privileges`` family), or every function or type. That is one catalog scan, not
the whole schema: a history that grants in most revisions keeps its snapshots narrow.

A command the log cannot place otherwise (``DROP OWNED`` may name nothing, a ``GRANT`` on a kind
the snapshot has no family for) or missing event triggers (dropped or disabled by a migration)
make the scope whole: the snapshot is then complete, as if unscoped.
"""

from __future__ import annotations

TRACKING_SCHEMA = "pg_harness"
"""Where the change log and its trigger functions live: the ``pg_`` prefix is reserved, so no
migration's schema can clash with it, and every part of the harness already skips such schemas."""

ROWS_TRIGGER = "harness_rows_written"
"""The statement trigger on every table of a tracked database that logs the statements writing
its rows; snapshots leave it out."""

SCOPE_SETTING = "harness.snapshot_scope"
"""``{"since": <log id>, "roots": ["schema.table", ...]}``, or empty for a whole snapshot."""

# Catalogs whose rows belong to one relation, with the column naming it.
_OWNED_BY_RELATION = {
    "pg_constraint": "conrelid",
    "pg_trigger": "tgrelid",
    "pg_policy": "polrelid",
    "pg_rewrite": "ev_class",
    "pg_attrdef": "adrelid",
    "pg_statistic_ext": "stxrelid",
}

_RELATION_OF_TOUCHED = "\n    UNION ".join(
    [
        # An index or a TOAST table stands for its table; any other relation for itself. No
        # index of pg_class leads from a TOAST table to its table: its internal dependency does.
        "SELECT coalesce(i.indrelid, CASE WHEN c.relkind = 't' THEN (SELECT d.refobjid FROM pg_depend d "
        "WHERE d.classid = 'pg_class'::regclass AND d.objid = t.objid AND d.deptype = 'i') END, t.objid) "
        "FROM touched t "
        "LEFT JOIN pg_index i ON i.indexrelid = t.objid "
        "LEFT JOIN pg_class c ON c.oid = t.objid "
        "WHERE t.classid = 'pg_class'::regclass"
    ]
    + [
        f"SELECT x.{column} FROM touched t JOIN {catalog} x ON x.oid = t.objid "
        f"WHERE t.classid = '{catalog}'::regclass"
        for catalog, column in _OWNED_BY_RELATION.items()
    ]
)

TOUCHED = f"""touched (classid, objid) AS (
    SELECT classid, objid FROM logged WHERE NOT dropped AND objid IS NOT NULL
  UNION
    SELECT d.classid, d.objid FROM pg_depend d JOIN touched t
      ON d.refclassid = t.classid AND d.refobjid = t.objid
), touched_relation (oid) AS (
    {_RELATION_OF_TOUCHED}
)"""
"""Every relation an object the log names (``logged``) is, belongs to, or depends on."""

DROPPED_FROM_A_RELATION = "'table column', 'table constraint', 'trigger', 'policy', 'rule', 'default value'"
"""The ``object_type`` of a dropped object that belongs to a relation still there: the log names
it by ``schema, table, name``, so the relation is its first two names."""

UNPLACED = "NOT dropped AND classid IS NULL"
"""A logged command that names no object."""

CHANGED_RELATIONS = f"""SELECT oid FROM touched_relation
  UNION
    SELECT to_regclass(format('%I.%I', names[1], names[2]))::oid FROM logged
    WHERE dropped AND object_type IN ({DROPPED_FROM_A_RELATION})"""
"""Relations (by oid) the log's commands touched (:data:`TOUCHED`) or dropped an object of: what
a step may have changed in a table's shape, for readers of rows and of the seeding catalog."""

UNPLACED_NOT_A_GRANT = (f"EXISTS (SELECT FROM logged WHERE {UNPLACED}"
                        " AND tag NOT IN ('GRANT', 'REVOKE', 'ALTER DEFAULT PRIVILEGES'))")
"""A logged command that names no object and is not a grant: what may have changed any table."""

GRANTED_KINDS = {
    "privileges": ("TABLE", "SEQUENCE", "COLUMN"),
    "functions": ("FUNCTION", "PROCEDURE", "ROUTINE"),
    "types": ("TYPE", "DOMAIN"),
    None: ("SCHEMA", "FOREIGN DATA WRAPPER", "FOREIGN SERVER"),
}
"""The ``object_type`` a ``GRANT`` or ``REVOKE`` is logged with, by the family whose reading
covers its privileges; None: privileges on objects that are always read."""


def _granted(kinds: tuple[str, ...]) -> str:
    """A logged ``GRANT`` or ``REVOKE`` on one of ``kinds``."""
    listed = ", ".join(f"'{kind}'" for kind in kinds)
    return f"{UNPLACED} AND tag IN ('GRANT', 'REVOKE') AND object_type IN ({listed})"


def _granted_on(family: str) -> str:
    return f"EXISTS (SELECT FROM logged WHERE {_granted(GRANTED_KINDS[family])})"


TRACKING_OFF = f"""(SELECT count(*) FROM pg_event_trigger e JOIN pg_proc p ON p.oid = e.evtfoid
            JOIN pg_namespace n ON n.oid = p.pronamespace
            WHERE n.nspname = '{TRACKING_SCHEMA}' AND e.evtenabled = 'A') < 2"""
"""The event triggers were dropped or disabled: the log may miss anything."""

ROOT_CLASSES = "scope_class"
"""The relations among the scope's roots, by oid: a CTE (for :func:`relations`)."""

CTES = f"""
RECURSIVE scope_request AS (
    SELECT nullif(current_setting('{SCOPE_SETTING}'), '')::jsonb AS request
), logged AS (
    SELECT l.* FROM {TRACKING_SCHEMA}.changes l, scope_request s
    WHERE s.request IS NOT NULL AND l.id > (s.request->>'since')::bigint
), {TOUCHED}, scope_whole AS (
    SELECT
        s.request IS NULL
        OR EXISTS (SELECT FROM logged WHERE {UNPLACED}
                   AND NOT ({_granted(tuple(kind for kinds in GRANTED_KINDS.values() for kind in kinds))}))
        OR {TRACKING_OFF} AS whole
    FROM scope_request s
), scope AS (
    SELECT
        w.whole,
        ARRAY(
            SELECT jsonb_array_elements_text(s.request->'roots')
          UNION
            SELECT n.nspname || '.' || c.relname FROM touched_relation r
            JOIN pg_class c ON c.oid = r.oid JOIN pg_namespace n ON n.oid = c.relnamespace
          UNION
            SELECT names[1] || '.' || names[2] FROM logged
            WHERE dropped AND object_type IN ('table', 'view', 'materialized view', 'foreign table',
                  'sequence', {DROPPED_FROM_A_RELATION})
        ) AS roots,
        ARRAY(
            SELECT format('%s %I.%I', CASE object_type WHEN 'index' THEN 'index' ELSE 'statistics' END,
                          names[1], names[2])
            FROM logged WHERE dropped AND object_type IN ('index', 'statistics object')
        ) AS keys,
        ARRAY(
            SELECT 'functions' WHERE s.request->'roots' ? '@functions'
                OR EXISTS (SELECT FROM touched WHERE classid = 'pg_proc'::regclass)
                OR EXISTS (SELECT FROM logged WHERE dropped AND object_type IN ('function', 'procedure', 'aggregate'))
                OR {_granted_on('functions')}
          UNION ALL
            SELECT 'types' WHERE s.request->'roots' ? '@types'
                OR EXISTS (SELECT FROM touched t WHERE t.classid = 'pg_type'::regclass AND NOT EXISTS (
                    SELECT FROM pg_depend x WHERE x.classid = 'pg_type'::regclass AND x.objid = t.objid
                    AND x.deptype IN ('e', 'i')))
                OR EXISTS (SELECT FROM touched t JOIN pg_constraint c ON c.oid = t.objid
                           WHERE t.classid = 'pg_constraint'::regclass AND c.contypid <> 0)
                OR EXISTS (SELECT FROM touched t JOIN pg_class c ON c.oid = t.objid
                           WHERE t.classid = 'pg_class'::regclass AND c.relkind = 'c')
                OR EXISTS (SELECT FROM logged WHERE dropped AND object_type IN ('type', 'domain', 'domain constraint'))
                OR {_granted_on('types')}
          UNION ALL
            SELECT 'privileges' WHERE {_granted_on('privileges')}
        ) AS families,
        (SELECT coalesce(max(id), 0) FROM {TRACKING_SCHEMA}.changes) AS last
    FROM scope_request s CROSS JOIN scope_whole w
), {ROOT_CLASSES} (oid) AS (
    -- A root names its relation as schema.table, unquoted: a name may hold a dot, so each dot
    -- is tried as the separator, and both names are looked up by index.
    SELECT c.oid FROM scope CROSS JOIN unnest(scope.roots) root CROSS JOIN generate_series(1, length(root)) i
    JOIN pg_namespace n ON n.nspname = left(root, i - 1)::name
    JOIN pg_class c ON c.relnamespace = n.oid AND c.relname = substr(root, i + 1)::name
    WHERE substr(root, i, 1) = '.' AND NOT scope.whole
),
"""
"""Prepended to the snapshot's own CTEs (``WITH`` then these, then ``ns AS ...``)."""


def relations(rooted: str) -> str:
    """The scoped ``rel`` and ``acl_rel`` CTEs (see :mod:`.common`); ``rooted`` is a query of
    the relations in :data:`ROOT_CLASSES`.

    A sequence is a relation here: the log names it when a command changes it, and
    ``pg_depend`` when a command changes the table owning it. The relations in scope are found
    from its roots by index rather than by listing every relation and keeping the few, and a
    whole scope reads them all: the choice is a condition naming no column (evaluated once, it
    skips the arm it rules out), not an ``OR`` in a join, which a generic plan must assume keeps
    most rows (it joined every family's catalog whole to keep a few relations). The grants of
    every relation are read when the ``privileges`` family is in scope."""
    every_grant = "(SELECT whole OR 'privileges' = ANY(families) FROM scope)"
    return f"""rel AS (
    SELECT r.* FROM any_rel r WHERE (SELECT whole FROM scope)
  UNION ALL
    SELECT r.* FROM ({rooted}) r WHERE NOT (SELECT whole FROM scope)
), acl_rel AS (
    SELECT r.* FROM any_rel r WHERE {every_grant}
  UNION ALL
    SELECT r.* FROM rel r WHERE NOT {every_grant}
)"""


FAMILIES = ("functions", "types", "privileges")
"""Objects read only when the log names one of their kind (a function, procedure or aggregate; a
type, or a domain's constraint; a grant on a relation, see :data:`GRANTED_KINDS`), or when the
caller asks for the family (``"@functions"`` among the roots). Functions and types belong to no
relation and their catalogs are the largest a schema has (every function of every extension, a
row type and an array type per table); the privileges of a relation are otherwise read with it."""

READ_WHEN_NAMED = ("functions", "types")
"""The families with a CTE of their own (``fn``, ``typ``), filtered by :func:`family_filter`."""


def family_filter(family: str) -> str:
    """The condition that reads the objects of ``family`` (one of :data:`READ_WHEN_NAMED`): a
    subquery that names no column of the catalog read, which PostgreSQL evaluates once and,
    false, skips the catalog."""
    return f"AND (SELECT whole OR '{family}' = ANY(families) FROM scope)"


SUMMARY = """
SELECT NULL, NULL, jsonb_build_object('whole', whole, 'roots', to_jsonb(roots), 'keys', to_jsonb(keys),
                                      'families', to_jsonb(families), 'last', last), ARRAY[]::text[]
FROM scope
"""
"""One row with a NULL key: what the snapshot covers, and the log's last id it saw."""

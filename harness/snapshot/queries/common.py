"""SQL shared by every family: which objects are the project's own, and small expression helpers.

The snapshot's statement starts with :func:`prefix`, whose CTEs decide once, for every family,
what is in scope: user schemas (not ``information_schema`` nor any ``pg_*`` schema: the system's,
TOAST and temporary ones, and the harness's change log), and in them the relations, types, routines, wrappers and servers that no extension
owns (``pg_depend`` deptype ``e``). The version table is left out here, so none of its columns,
constraints, indexes or grants reach a snapshot; its oid comes from the transaction-local setting
``harness.snapshot_version_table``, which keeps the statement free of parameters (its ``%`` signs
are SQL, not placeholders).

Names are read with ``search_path = pg_catalog`` (set by :mod:`..reader`), so every object
outside ``pg_catalog`` comes back schema-qualified from ``format_type``, ``regprocedure`` and the
``pg_get_*def`` functions, whatever the caller's search path was.
"""

from __future__ import annotations

from . import scope

VERSION_TABLE_SETTING = "harness.snapshot_version_table"


def not_part_of_another(catalog: str, oid: str, *, implicit: bool = False) -> str:
    """True unless the object belongs to another one and is listed with it.

    Extension members (deptype ``e``) belong to their extension. With ``implicit``, so do objects
    created along with another (deptype ``i``): array, multirange and table row types, range
    constructors. Not for relations: an identity sequence depends on its column that way, and it
    is listed on its own, with its name.
    """
    deptypes = "('e', 'i')" if implicit else "('e')"
    return (
        f"NOT EXISTS (SELECT FROM pg_depend x WHERE x.classid = '{catalog}'::regclass "
        f"AND x.objid = {oid} AND x.deptype IN {deptypes})"
    )


def comment(catalog: str, oid: str, subid: str = "0") -> str:
    """The object's comment; a correlated lookup on pg_description's unique index."""
    return (
        f"(SELECT description FROM pg_description WHERE objoid = {oid} "
        f"AND classoid = '{catalog}'::regclass AND objsubid = {subid})"
    )


def sorted_array(array: str) -> str:
    """A text array as a JSON array in byte order.

    Option lists (reloptions, proconfig, ...) keep the order statements gave them in, which says
    nothing about the schema; ``COLLATE "C"`` keeps the order independent of the database's locale.
    """
    return f'(SELECT jsonb_agg(e ORDER BY e COLLATE "C") FROM unnest({array}) e)'


def role(oid: str) -> str:
    """A role's name; 0 stands for PUBLIC in ACLs and policies."""
    return f"CASE WHEN {oid} = 0 THEN 'PUBLIC' ELSE pg_get_userbyid({oid})::text END"


def qualified(schema: str, name: str) -> str:
    return f"format('%I.%I', {schema}, {name})"


# The schema holding a version table outside public survives `downgrade base` with the table
# (it cannot be dropped under it), so the schema itself is as much Alembic's as the table is.
NOT_VERSION_SCHEMA = f"""n.oid IS DISTINCT FROM (
    SELECT c.relnamespace FROM pg_class c JOIN pg_namespace vn ON vn.oid = c.relnamespace
    WHERE c.oid = current_setting('{VERSION_TABLE_SETTING}')::oid AND vn.nspname <> 'public')"""

def _relations(classes: str) -> str:
    """The project's relations among ``classes``, a FROM item whose rows of pg_class are ``c``."""
    return f"""SELECT c.oid, c.relkind, c.relowner, c.relacl, ns.nspname, c.relname,
           {qualified('ns.nspname', 'c.relname')} AS qname,
           ns.nspname || '.' || c.relname AS tbl,
           CASE c.relkind WHEN 'v' THEN 'view ' WHEN 'm' THEN 'materialized view '
                          WHEN 'f' THEN 'foreign table ' WHEN 'S' THEN 'sequence ' ELSE 'table ' END
           || {qualified('ns.nspname', 'c.relname')} AS key
    FROM {classes} JOIN ns ON ns.oid = c.relnamespace
    WHERE c.relkind IN ('r', 'p', 'v', 'm', 'f', 'S')
      AND c.oid <> current_setting('{VERSION_TABLE_SETTING}')::oid
      AND {not_part_of_another('pg_class', 'c.oid')}"""


_PREFIX = f"""
WITH @scope_ctes@ ns AS (
    SELECT n.oid, n.nspname, n.nspowner, n.nspacl
    FROM pg_namespace n
    WHERE n.nspname <> 'information_schema' AND n.nspname NOT LIKE 'pg\\_%'
      AND {not_part_of_another('pg_namespace', 'n.oid')}
), any_rel AS (
    {_relations('pg_class c')}
), @relations@, typ AS (
    SELECT t.oid, t.typowner, t.typacl, {qualified('ns.nspname', 't.typname')} AS qname,
           'type ' || {qualified('ns.nspname', 't.typname')} AS key
    FROM pg_type t JOIN ns ON ns.oid = t.typnamespace @scope_join@
    WHERE {not_part_of_another('pg_type', 't.oid', implicit=True)} @scope_types@
), fn AS (
    SELECT p.oid, p.proowner, p.proacl,
           format('%s %I.%I(%s)',
                  CASE p.prokind WHEN 'p' THEN 'procedure' WHEN 'a' THEN 'aggregate' ELSE 'function' END,
                  ns.nspname, p.proname, pg_get_function_identity_arguments(p.oid)) AS key
    FROM pg_proc p JOIN ns ON ns.oid = p.pronamespace @scope_join@
    WHERE {not_part_of_another('pg_proc', 'p.oid', implicit=True)} @scope_functions@
), fdw AS (
    SELECT w.oid, w.fdwowner, w.fdwacl, format('foreign-data wrapper %I', w.fdwname) AS key
    FROM pg_foreign_data_wrapper w
    WHERE {not_part_of_another('pg_foreign_data_wrapper', 'w.oid')}
), srv AS (
    SELECT s.oid, s.srvowner, s.srvacl, format('server %I', s.srvname) AS key
    FROM pg_foreign_server s
    WHERE {not_part_of_another('pg_foreign_server', 's.oid')}
)
"""

_WHOLE_RELATIONS = "rel AS (SELECT * FROM any_rel), acl_rel AS (SELECT * FROM any_rel)"
"""``rel``: the relations whose objects are read; ``acl_rel``: those whose grants are."""


def prefix(*, scoped: bool) -> str:
    """The CTEs every family reads; ``scoped`` limits the relations to :mod:`.scope`'s."""
    parts = {
        "@scope_ctes@": scope.CTES, "@scope_join@": "CROSS JOIN scope",
        "@relations@": scope.relations(_relations(f"{scope.ROOT_CLASSES} s JOIN pg_class c ON c.oid = s.oid")),
        **{f"@scope_{family}@": scope.family_filter(family) for family in scope.READ_WHEN_NAMED},
    } if scoped else {"@relations@": _WHOLE_RELATIONS}
    text = _PREFIX
    for marker in ("@scope_ctes@", "@scope_join@", "@relations@", *(f"@scope_{f}@" for f in scope.READ_WHEN_NAMED)):
        text = text.replace(marker, parts.get(marker, ""))
    return text

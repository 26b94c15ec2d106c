"""Reading a snapshot: the catalog statement runs in one transaction under fixed output settings.

The deparsers' output depends on session settings: ``search_path`` decides which names come back
qualified, ``DateStyle``, ``IntervalStyle`` and ``TimeZone`` how constants in defaults and checks
print, ``quote_all_identifiers`` how names are quoted. They are pinned, like ``jit``, with
``SET LOCAL`` for the snapshot's transaction, so two databases with the same schema read the same
whatever the session or server configuration, and the caller's session is left as it was.
"""

from __future__ import annotations

import psycopg
from psycopg import sql

from ..errors import HarnessError
from ..prepared import INDEX_PLANS, fetch_prepared, settle, warm
from .model import Snapshot
from .queries import SCOPE_SETTING, STATEMENT, VERSION_TABLE_SETTING

_SETTINGS = {
    "search_path": "pg_catalog",
    "DateStyle": "ISO, YMD",
    "IntervalStyle": "postgres",
    "TimeZone": "UTC",
    "extra_float_digits": "1",
    "bytea_output": "hex",
    "standard_conforming_strings": "on",
    "quote_all_identifiers": "off",
    # The statement's cost estimate crosses jit_above_cost on larger schemas; compiling it takes
    # longer (about 450 ms) than running it.
    "jit": "off",
    # Its plan is generic and cannot know how few objects a scope has.
    **INDEX_PLANS,
}

_VERSION_OID = f"SELECT current_setting('{VERSION_TABLE_SETTING}')"
"""The oid of the version table the snapshot leaves out, as text ('0' for none)."""

_SETUP = sql.SQL("SELECT {settings}, set_config({scope}, %(scope)s, true), "
                 "set_config({name}, coalesce(({oid})::text, '0'), true)").format(
    settings=sql.SQL(", ").join(
        sql.SQL("set_config({}, {}, true)").format(sql.Literal(k), sql.Literal(v)) for k, v in _SETTINGS.items()
    ),
    scope=sql.Literal(SCOPE_SETTING),
    name=sql.Literal(VERSION_TABLE_SETTING),
    # Looked up by its name's regclass: the message is plain text, planned with every read, and
    # a join by names made its planning 0.22 ms of the server's a read (0.12 ms now).
    oid=sql.SQL(
        "SELECT c.oid FROM pg_catalog.pg_class c WHERE c.relkind IN ('r', 'p') AND c.oid = "
        "CASE WHEN %(table)s <> '' THEN pg_catalog.to_regclass(pg_catalog.format('%%I.%%I', %(schema)s, %(table)s)) END"
    ),
)


_SETUP_TEXT = _SETUP.as_string(None)
"""``_SETUP`` rendered once: its literals are constants, and rendering them with every read took
56 microseconds of its Python time (6 to fill in the rendered text)."""


WHOLE = ("harness_snapshot", STATEMENT)
"""The whole snapshot's statement and the name it is prepared as."""


class SnapshotError(HarnessError):
    """Two catalog objects read as the same key: a gap in how keys are built, never ignored."""


def take_snapshot(
    conn: psycopg.Connection,
    version_table: tuple[str, str] | None = ("public", "alembic_version"),
) -> Snapshot:
    """The schema of the database ``conn`` is connected to, and its version table's rows.

    ``conn`` should be in autocommit mode or idle: the snapshot runs in its own transaction. (Inside
    one, the pinned settings would last to that transaction's end.)
    ``version_table`` is ``(schema, table)``, or None when there is none to set apart.
    """
    snapshot, _ = read_snapshot(conn, version_table, *WHOLE)
    return snapshot


def plan_snapshot(conn: psycopg.Connection, version_table: tuple[str, str] | None,
                  statement: tuple[str, str]) -> None:
    """Prepare and plan a snapshot ``statement`` (``(name, text)``) on ``conn``'s new session
    in the background, under the settings it reads with (see :func:`harness.prepared.warm`)."""
    warm(conn, *statement, _setup(conn, version_table, ""))


def _setup(conn: psycopg.Connection, version_table: tuple[str, str] | None, scope: str) -> str:
    # Rendering reads the session's parameters, which a planning under way may be changing.
    settle(conn)
    schema, table = version_table or ("", "")
    return psycopg.ClientCursor(conn).mogrify(_SETUP_TEXT, {"schema": schema, "table": table, "scope": scope})


def read_snapshot(
    conn: psycopg.Connection, version_table: tuple[str, str] | None, name: str, statement: str,
    scope: str = "", *, versions: bool = True,
) -> tuple[Snapshot, dict | None]:
    """Run a snapshot statement prepared as ``name``; the attributes of its NULL-keyed row, if any.

    ``scope`` is the value of the scope setting the scoped statement reads. Without
    ``versions`` the version table's rows are not read (a round trip less).
    """
    schema, table = version_table or ("", "")
    objects: dict[str, dict] = {}
    tables: dict[str, str] = {}
    roles: set[str] = set()
    summary = None
    [[(version_oid,)], rows] = fetch_prepared(conn, [_VERSION_OID, (name, statement)], _setup(conn, version_table, scope))
    for key, owner_table, attributes, referenced in rows:
        if key is None:
            summary = attributes
            continue
        if key in objects:
            raise SnapshotError(f"two catalog objects read as {key!r}",
                                hint="a harness bug: please report it with the DDL of that object")
        objects[key] = dict(sorted(attributes.items()))
        if owner_table is not None:
            tables[key] = owner_table
        roles.update(referenced)
    rows_of_versions = _versions(conn, schema, table) if versions and version_oid != "0" else ()
    snapshot = Snapshot(
        objects=dict(sorted(objects.items())),
        versions=rows_of_versions,
        roles=frozenset(roles),
        tables=dict(sorted(tables.items())),
    )
    return snapshot, summary


def _versions(conn: psycopg.Connection, schema: str, table: str) -> tuple[tuple[str | None, ...], ...]:
    rows = conn.execute(sql.SQL("SELECT * FROM {}").format(sql.Identifier(schema, table))).fetchall()
    as_text = [tuple(None if value is None else str(value) for value in row) for row in rows]
    return tuple(sorted(as_text, key=lambda row: [(value is None, value or "") for value in row]))

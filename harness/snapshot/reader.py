"""Reading a snapshot: the catalog statement runs in one transaction under fixed output settings.

The deparsers' output depends on session settings: ``search_path`` decides which names come back
qualified, ``DateStyle``, ``IntervalStyle`` and ``TimeZone`` how constants in defaults and checks
print, ``quote_all_identifiers`` how names are quoted. They are pinned, like ``jit``, with
``SET LOCAL`` for the snapshot's transaction, so two databases with the same schema read the same
whatever the session or server configuration, and the caller's session is left as it was; or,
on a connection that reads nothing but snapshots, for its whole session (:func:`plan_snapshot`).
"""

from __future__ import annotations

import weakref

import psycopg
from psycopg import sql

from ..errors import HarnessError
from ..prepared import INDEX_PLANS, fetch_prepared, set_local, settle, warm
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

_VERSION_TABLE = ("harness_version_table", sql.SQL(
    "SELECT set_config({name}, coalesce((SELECT c.oid FROM pg_catalog.pg_class c"
    " WHERE c.relkind IN ('r', 'p') AND c.oid = pg_catalog.to_regclass($1))::text, '0'), true)"
).format(name=sql.Literal(VERSION_TABLE_SETTING)).as_string(None))
"""Sets the oid of the version table the snapshot leaves out (text, '0' for none) from its
quoted name, and returns it. Prepared: in the plain-text message, planned with every read, its
catalog lookup cost more than the rest of the message (about 0.1 ms of the server's)."""

_PINNED = f"SELECT {set_local(_SETTINGS, session=True)}"
""":data:`_SETTINGS` for the session (see :func:`plan_snapshot`)."""

_pinned: weakref.WeakSet[psycopg.Connection] = weakref.WeakSet()
"""Connections whose session holds :data:`_SETTINGS`."""

_SCOPE = f"set_config('{SCOPE_SETTING}', %(scope)s, true)"
_SETUP_TEXT = f"SELECT {set_local(_SETTINGS)}, {_SCOPE}"
_SETUP_PINNED = f"SELECT {_SCOPE}"


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


def plan_snapshot(conn: psycopg.Connection, statement: tuple[str, str]) -> None:
    """Pin the snapshot's settings for the session of ``conn``, a connection that only ever
    reads snapshots (a trial's watch), then prepare and plan ``statement`` (``(name, text)``) in
    the background (see :func:`harness.prepared.warm`).

    Set for each read, the dozen settings and their undoing at its end cost about 0.2 ms of the
    server's a read; held by the session, a read sets only its scope.
    """
    settle(conn)
    conn.execute(_PINNED, prepare=False)
    _pinned.add(conn)
    # Planning evaluates current_setting(): the version table's must be there.
    warm(conn, *statement, f"{_setup(conn, '')}, set_config('{VERSION_TABLE_SETTING}', '0', true)")


def _setup(conn: psycopg.Connection, scope: str) -> str:
    # Rendering reads the session's parameters, which a planning under way may be changing.
    settle(conn)
    return psycopg.ClientCursor(conn).mogrify(_SETUP_PINNED if conn in _pinned else _SETUP_TEXT, {"scope": scope})


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
    quoted = sql.Identifier(schema, table).as_string(conn) if table else None
    [[(version_oid,)], rows] = fetch_prepared(
        conn, [(*_VERSION_TABLE, (sql.Literal(quoted),)), (name, statement)], _setup(conn, scope))
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

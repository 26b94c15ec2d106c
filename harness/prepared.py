"""Statements the harness runs many times on one connection, prepared once per connection.

Planning a catalog statement often costs as much as running it on a small schema (the snapshot's
statement, the list of tables a row capture reads, the sequences a column owns): a connection
that runs them after every step plans each once.
"""

from __future__ import annotations

import weakref
from typing import Any, Sequence

import psycopg
from psycopg import sql

_prepared: weakref.WeakKeyDictionary[psycopg.Connection, set[str]] = weakref.WeakKeyDictionary()
"""Statements prepared on each connection."""


def execute_prepared(conn: psycopg.Connection, name: str, statement: str,
                     args: Sequence[sql.Composable] = ()) -> psycopg.Cursor:
    """Run ``statement`` as the session's prepared statement ``name``, preparing it once.

    A prepared statement of the session, not psycopg's: psycopg forgets its own after every
    ROLLBACK or DROP on the connection, and the checks that share it roll back often.
    Prepared under the settings of the transaction it is first run in (a ``search_path``
    pinned there stays the statement's). ``args`` are the values of its ``$1``, ``$2``...,
    as literals: ``EXECUTE`` takes no bound parameters.
    """
    names = _prepared.setdefault(conn, set())
    if name not in names:
        # psycopg answers a ROLLBACK or a DROP on a connection where it prepared statements of
        # its own with DEALLOCATE ALL, which would take this one too: it prepares none here.
        conn.prepare_threshold = None
        conn.execute(f"PREPARE {name} AS {statement}", prepare=False)
        names.add(name)
    if not args:
        return conn.execute(f"EXECUTE {name}", prepare=False)
    return conn.execute(sql.SQL(f"EXECUTE {name}({{}})").format(sql.SQL(", ").join(args)), prepare=False)


Query = tuple[str, str] | tuple[str, str, Sequence[sql.Composable]] | str
"""``(name, statement)`` or ``(name, statement, args)`` for :func:`execute_prepared`, or a
statement run once as it is."""


def fetch_prepared(conn: psycopg.Connection, queries: Sequence[Query], settings: str,
                   ) -> list[list[tuple[Any, ...]]]:
    """The rows of each query, in one round trip: one transaction, ``settings`` (a ``SELECT``
    of ``set_config`` calls) first."""
    with conn.pipeline(), conn.transaction():
        conn.execute(settings, prepare=False)
        cursors = [execute_prepared(conn, *query) if isinstance(query, tuple) else conn.execute(query)
                   for query in queries]
    return [cursor.fetchall() for cursor in cursors]

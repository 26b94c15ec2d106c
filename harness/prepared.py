"""Statements the harness runs many times on one connection, prepared once per connection.

Planning a catalog statement often costs as much as running it on a small schema (the snapshot's
statement, the list of tables a row capture reads, the sequences a column owns): a connection
that runs them after every step plans each once.
"""

from __future__ import annotations

import threading
import weakref
from typing import Any, Sequence

import psycopg
from psycopg import sql

_prepared: weakref.WeakKeyDictionary[psycopg.Connection, set[str]] = weakref.WeakKeyDictionary()
"""Statements prepared on each connection."""
_lock = threading.Lock()
"""For :data:`_prepared`: a trial reads its rows in a thread while its schema is read."""


Query = tuple[str, str] | tuple[str, str, Sequence[sql.Composable]] | str
"""``(name, statement)`` or ``(name, statement, args)``: ``statement`` run as the session's
prepared statement ``name`` with ``args`` as the values of its ``$1``, ``$2``... (literals:
``EXECUTE`` takes no bound parameters); or a statement run once as it is."""


def fetch_prepared(conn: psycopg.Connection, queries: Sequence[Query], settings: str,
                   ) -> list[list[tuple[Any, ...]]]:
    """The rows of each query, in one round trip: ``settings`` (a ``SELECT`` of local
    ``set_config`` calls) first, the queries after it, in one transaction.

    One message of the simple protocol: its statements are one implicit transaction, which the
    local settings last to the end of and an error ends (the session is left idle). A pipeline
    with an explicit transaction cost three times as much here (0.36 ms against 0.10 ms).

    A named statement is a prepared statement of the session, not psycopg's: psycopg forgets
    its own after every ROLLBACK or DROP on the connection, and the checks that share it roll
    back often. It is prepared once per connection, under ``settings`` (a ``search_path``
    pinned there stays the statement's).
    """
    texts = [settings]
    for query in queries:
        if isinstance(query, str):
            texts.append(query)
            continue
        name, statement, args = query if len(query) == 3 else (*query, ())
        _prepare(conn, name, statement, settings)
        texts.append(sql.SQL(f"EXECUTE {name}({{}})").format(sql.SQL(", ").join(args)).as_string(conn)
                     if args else f"EXECUTE {name}")
    # A line of its own for each semicolon: a statement may end in a comment.
    cursor = conn.execute("\n;\n".join(texts), prepare=False)
    results = []
    for _ in queries:
        cursor.nextset()
        results.append(cursor.fetchall())
    return results


def _prepare(conn: psycopg.Connection, name: str, statement: str, settings: str) -> None:
    with _lock:
        names = _prepared.setdefault(conn, set())
    if name not in names:
        # psycopg answers a ROLLBACK or a DROP on a connection where it prepared statements of
        # its own with DEALLOCATE ALL, which would take this one too: it prepares none here.
        conn.prepare_threshold = None
        # Its own message: what is recorded is what the server holds, whatever fails after.
        conn.execute(f"{settings}\n;\nPREPARE {name} AS {statement}", prepare=False)
        names.add(name)

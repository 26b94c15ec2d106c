"""Statements the harness runs many times on one connection, prepared once per connection.

Planning a catalog statement often costs as much as running it on a small schema (the snapshot's
statement, the list of tables a row capture reads, the sequences a column owns): a connection
that runs them after every step plans each once, and a new session can plan one in the
background while its first step runs elsewhere (:func:`warm`).
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


INDEX_PLANS = {
    # A generic plan cannot know how few rows a step's changes are: a merge join walked the
    # whole of pg_depend's index to follow the dependencies of a handful of changed objects (a
    # scoped snapshot of one revision's 28 objects: 4.4 ms at 400 tables, 3.2 ms without).
    "enable_mergejoin": "off",
    # For the same reason it hashed whole catalogs (every row of pg_attribute, pg_depend,
    # pg_proc) to join them with a few relations. Indexes keep a scoped snapshot proportional to
    # its scope (one revision's relations at 400 tables: 5.0 ms instead of 8.7); a whole one is
    # no slower (43 ms instead of 48).
    "enable_hashjoin": "off",
    "enable_seqscan": "off",
}
"""Planner settings for the catalog statements that follow what a step changed. A statement's
plan is made when it runs, under the settings of its message, and kept: every message that runs
one should set these. Not for reads of whole tables' rows."""


def set_local(settings: dict[str, str], *, session: bool = False) -> str:
    """``set_config`` calls for ``settings`` (constants), local to the transaction (or with
    ``session``, for the session), as the items of a select list."""
    local = "false" if session else "true"
    return ", ".join(f"set_config('{name}', '{value}', {local})" for name, value in settings.items())


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
    settle(conn)
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


_warming: weakref.WeakKeyDictionary[psycopg.Connection, threading.Thread] = weakref.WeakKeyDictionary()
"""The planning under way on each connection (see :func:`warm`)."""


def warm(conn: psycopg.Connection, name: str, statement: str, settings: str) -> None:
    """Prepare ``statement`` as ``name`` on ``conn`` and plan it, in a thread, under ``settings``.

    A new session plans a large catalog statement on its first run: the snapshot's took 25-30 ms
    of a walk example's first step, in which the session sat idle while the migration ran on
    another. Planned meanwhile, on the server's other core, it is ready when the step ends.
    ``EXPLAIN`` keeps the plan (the statement has no parameters: its plan is generic) without
    reading anything. Whatever fails here fails again where the statement is first used, with
    its caller's handling. The next :func:`fetch_prepared` on ``conn`` waits for the thread, and
    ``conn`` must not be closed before :func:`settle`.
    """
    def plan() -> None:
        try:
            _prepare(conn, name, statement, settings)
            conn.execute(f"{settings}\n;\nEXPLAIN (COSTS OFF) EXECUTE {name}", prepare=False)
        except psycopg.Error:
            pass

    settle(conn)
    thread = threading.Thread(target=plan, name="harness planning", daemon=True)
    with _lock:
        _warming[conn] = thread
    thread.start()


def settle(conn: psycopg.Connection) -> None:
    """Wait for the planning :func:`warm` started on ``conn``, if any."""
    with _lock:
        thread = _warming.pop(conn, None)
    if thread is not None:
        thread.join()

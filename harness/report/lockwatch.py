"""What a migration's transaction holds at the moment it commits: its locks and its timeouts.

Table locks are held to the end of the transaction, so ``pg_locks`` read by the migration's own
session just before COMMIT lists every relation lock it took, whatever statement took it and
whether the project's env.py or a revision file ran it. The read happens in SQLAlchemy's
``commit`` event, on the driver connection itself (plain DB-API cursor), so neither Alembic nor
SQLAlchemy sees an extra statement. The session's ``lock_timeout`` and ``statement_timeout``
are read at the same moment: what was in force while the migration ran.

Migrations that run outside a transaction (``autocommit_block()``) commit nothing and are not
seen here; their locks are released statement by statement anyway.
"""

from __future__ import annotations

import contextlib
import dataclasses
from typing import Iterator

from sqlalchemy import event
from sqlalchemy.engine import Connection, Engine

_SETTINGS = "SELECT current_setting('lock_timeout'), current_setting('statement_timeout')"
_LOCKS = """
SELECT relation::bigint, mode
  FROM pg_locks
 WHERE pid = pg_backend_pid() AND locktype = 'relation' AND granted
"""


@dataclasses.dataclass(frozen=True)
class Commit:
    """One committed transaction: relation oid -> lock modes, and the session's timeouts."""

    locks: dict[int, frozenset[str]]
    lock_timeout: str
    statement_timeout: str


@contextlib.contextmanager
def watch_commits() -> Iterator[list[Commit]]:
    """Every commit of any SQLAlchemy engine during the block, as :class:`Commit` values.

    Engines are watched at class level because env.py may build its own engine instead of
    using the connection handed to it.
    """
    seen: list[Commit] = []

    def on_commit(conn: Connection) -> None:
        cursor = conn.connection.dbapi_connection.cursor()
        try:
            cursor.execute(_SETTINGS)
            lock_timeout, statement_timeout = cursor.fetchone()
            cursor.execute(_LOCKS)
            rows = cursor.fetchall()
        except Exception:  # noqa: BLE001 - any driver's error class
            # A failed transaction cannot be read; its COMMIT fails with the real error next.
            return
        finally:
            cursor.close()
        locks: dict[int, set[str]] = {}
        for oid, mode in rows:
            locks.setdefault(oid, set()).add(mode)
        seen.append(Commit({oid: frozenset(m) for oid, m in locks.items()},
                           lock_timeout, statement_timeout))

    event.listen(Engine, "commit", on_commit)
    try:
        yield seen
    finally:
        event.remove(Engine, "commit", on_commit)

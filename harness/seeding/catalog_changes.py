"""Which tables of a seeding catalog changed since it was read, from the database's change log.

A sweep reads the catalog at every state, and a revision changes a few tables of hundreds: the
others, read again, were most of what a read cost (its queries grow with the schema). The change
log of a scratch database (:mod:`harness.snapshot.tracking`) says which relations the commands
since a given entry touched, following ``pg_depend`` as a scoped snapshot does (a foreign key to
a renamed table, a policy), and which tables lost a column, a constraint or a policy. Whatever
it cannot vouch for is read again whole: after a command it cannot place, or with its event
triggers gone.
"""

from __future__ import annotations

import psycopg
from psycopg import sql

from ..prepared import fetch_prepared
from ..snapshot.queries import scope
from .catalog import READ_SETTINGS

_CHANGED = f"""
WITH RECURSIVE logged AS (
    SELECT l.* FROM {scope.TRACKING_SCHEMA}.changes l WHERE l.id > $1::bigint
), {scope.TOUCHED}
SELECT array_remove(ARRAY({scope.CHANGED_RELATIONS}), NULL),
       {scope.UNPLACED_NOT_A_GRANT} OR {scope.TRACKING_OFF},
       (SELECT coalesce(max(id), 0) FROM {scope.TRACKING_SCHEMA}.changes)
"""
"""The relations changed after entry ``since``, whether the log cannot tell, and its last entry.

A type is not a table, but a table with a column of it depends on it: an enum value added or a
domain's CHECK changed reaches the table through ``pg_depend`` (through the array type, the
domain over it), and a type dropped took the column with it, which the log names."""


_LAST = f"SELECT coalesce(max(id), 0) FROM {scope.TRACKING_SCHEMA}.changes"


def changed_tables(conn: psycopg.Connection, since: int | None) -> tuple[frozenset[int] | None, int]:
    """The oids of the relations changed after log entry ``since`` (None: every table must be
    read again, as when ``since`` is None), and the log's last entry now."""
    if since is None:
        return None, conn.execute(_LAST).fetchone()[0]
    [[(changed, whole, last)]] = fetch_prepared(
        conn, [("harness_catalog_changed", _CHANGED, (sql.Literal(since),))], READ_SETTINGS)
    return (None if whole else frozenset(changed)), last

"""Roles are cluster-wide: on a server the harness shares, leave them as they were found.

Dropping a scratch database takes its tables, grants and policies with it, but not the roles
its migrations created: those live in the cluster and would pile up on a user's server run after
run. A URL-mode server remembers the roles present when the run began and drops, at its end, the
ones that appeared since. Roles that were there before are never touched. While another harness
run works on the same server (scratch databases not ours), new roles may be its own: they are
left, and said so.
"""

from __future__ import annotations

import sys

import psycopg
from psycopg import sql


ROLE_OPTIONS = (
    "SELECT rolname, concat_ws(' ', CASE WHEN rolsuper THEN 'SUPERUSER' END,"
    " CASE WHEN rolcreaterole THEN 'CREATEROLE' END, CASE WHEN rolcreatedb THEN 'CREATEDB' END,"
    " CASE WHEN rolcanlogin THEN 'LOGIN' ELSE 'NOLOGIN' END,"
    " CASE WHEN rolreplication THEN 'REPLICATION' END, CASE WHEN rolbypassrls THEN 'BYPASSRLS' END,"
    " CASE WHEN NOT rolinherit THEN 'NOINHERIT' END,"
    " CASE WHEN rolconnlimit <> -1 THEN 'CONNECTION LIMIT ' || rolconnlimit END)"
    " FROM pg_roles WHERE rolname !~ '^pg_'"
)
"""Each role and its options, as ``CREATE ROLE`` takes them."""


def role_names(conn: psycopg.Connection) -> set[str]:
    return {row[0] for row in conn.execute("SELECT rolname FROM pg_roles")}


def drop_new_roles(conn: psycopg.Connection, before: set[str], ours: set[str], prefix: str) -> list[str]:
    """Drop the roles that are not in ``before``; returns those dropped.

    ``ours`` are this run's scratch databases (any still present); a scratch database of
    another run means another harness may be using the new roles, so none is dropped.
    """
    new = sorted(role_names(conn) - before)
    if not new:
        return []
    if others_running(conn, ours, prefix):
        _say(f"left roles {', '.join(new)} on the server: another harness run is using it")
        return []
    return drop_roles(conn, new)


def others_running(conn: psycopg.Connection, ours: set[str], prefix: str) -> bool:
    """Whether the server has scratch databases that are not ``ours``: another harness run's."""
    return any(name not in ours for (name,) in conn.execute(
        "SELECT datname FROM pg_database WHERE datname LIKE %s", (prefix.replace("_", r"\_") + "%",)))


def drop_roles(conn: psycopg.Connection, names: list[str]) -> list[str]:
    """Drop the roles ``names``, each if it can be; returns those dropped, says the others."""
    dropped = []
    for name in names:
        try:
            conn.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(name)))
            dropped.append(name)
        except psycopg.Error as exc:  # it owns objects or holds grants in a database not ours
            _say(f"left role {name} on the server: {str(exc).strip().splitlines()[0]}")
    return dropped


def _say(message: str) -> None:
    print(f"harness: {message}", file=sys.stderr)

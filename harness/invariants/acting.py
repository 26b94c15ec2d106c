"""Acting as another role for one statement, leaving nothing behind.

The isolation checks run every attempt through :func:`attempt`: a savepoint that is always
rolled back, the tenant setting and the role set inside it, so no attempt can change a row, a
setting or the catalog for the next.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import psycopg
from psycopg import sql
from psycopg.pq import TransactionStatus

from ..violations import Violation


@dataclasses.dataclass(frozen=True)
class AttemptOutcome:
    """What one :func:`attempt` gave back: its rows and row count, or the error that stopped it."""

    rows: list[tuple[Any, ...]]
    rowcount: int
    error: psycopg.Error | None


@dataclasses.dataclass(frozen=True)
class Attempt:
    """One statement to run as :func:`attempt` runs it (see there for the fields)."""

    query: sql.Composable
    params: Any = None
    setting: tuple[str, str] | None = None
    role: str | None = None
    replica: bool = False
    prepare: sql.Composable | None = None


def attempt(
    conn: psycopg.Connection, query: sql.Composable, params: Any = None, *,
    setting: tuple[str, str] | None = None, role: str | None = None, replica: bool = False,
    prepare: sql.Composable | None = None,
) -> AttemptOutcome:
    """Run ``query`` in a savepoint that is always rolled back, as ``role`` with ``setting``.

    ``replica`` turns foreign-key triggers off, so that a DELETE's row count is not lost to a
    RESTRICT violation; it must be set before the role, which may not set it. ``prepare`` runs
    first, with the connection's own rights (a catalog change the attempt needs).

    One round trip: the savepoint, ``prepare``, the settings, the statement and the rollback
    go as one string (bound on the client: the server takes several statements in one message
    only without parameters). A statement that fails stops the string before the rollback,
    which then goes alone. Inside a transaction, as isolation checks run, the savepoint undoes
    the attempt; outside one, a transaction of its own does.
    """
    return _run(conn, [Attempt(query, params, setting, role, replica, prepare)])[0]


def attempt_all(conn: psycopg.Connection, attempts: list[Attempt]) -> list[AttemptOutcome]:
    """What :func:`attempt` gives for each of ``attempts``, in one round trip where none fails.

    For attempts that only read: their strings go as one, and should one fail (the rest of the
    string is then not run) each goes again alone. An attempt that writes must go alone, as a
    sequence it draws from would be drawn again.
    """
    if len(attempts) > 1:
        try:
            return _run(conn, attempts, alone=False)
        except psycopg.Error as exc:
            if exc.sqlstate is None:
                raise
    return [_run(conn, [one])[0] for one in attempts]


def _run(conn: psycopg.Connection, attempts: list[Attempt], *, alone: bool = True) -> list[AttemptOutcome]:
    """The attempts' strings sent as one; ``alone`` (a single attempt): a failure is its outcome,
    else it is raised, after the rollback."""
    nested = conn.info.transaction_status != TransactionStatus.IDLE
    begin, end = _IN_A_SAVEPOINT if nested else _IN_A_TRANSACTION
    statements: list[str] = []
    values: list[Any] = []
    queries: list[int] = []
    """The index of each attempt's statement among the results."""
    for one in attempts:
        configs = [pair for pair in (
            one.setting,
            ("session_replication_role", "replica") if one.replica else None,
            ("role", one.role) if one.role else None,
        ) if pair is not None]
        # Every part is bound with the one list of values: a '%' in a part without values of
        # its own is doubled, to stay a '%'.
        statements += [begin, *([_literal(one.prepare, conn)] if one.prepare is not None else [])]
        if configs:
            statements.append("SELECT " + ", ".join("set_config(%s, %s, true)" for _ in configs))
            values += [v for pair in configs for v in pair]
        queries.append(len(statements))
        statements.append(one.query.as_string(conn) if one.params is not None else _literal(one.query, conn))
        values += list(one.params or ())
        statements += end
    cursor = psycopg.ClientCursor(conn)
    ended = False
    try:
        cursor.execute("; ".join(statements), values)
        ended = True
        outcomes, position = [], 0
        for index in queries:
            for _ in range(index - position):
                cursor.nextset()
            position = index
            outcomes.append(AttemptOutcome(cursor.fetchall() if cursor.description else [], cursor.rowcount, None))
        return outcomes
    except psycopg.Error as exc:
        if exc.sqlstate is None or not alone:
            raise
        return [AttemptOutcome([], 0, exc)]
    finally:
        cursor.close()
        if not ended:
            conn.execute("; ".join(end))


_IN_A_SAVEPOINT = ("SAVEPOINT harness_attempt",
                   ["ROLLBACK TO SAVEPOINT harness_attempt", "RELEASE SAVEPOINT harness_attempt"])
_IN_A_TRANSACTION = ("BEGIN", ["ROLLBACK"])
"""How an attempt begins and ends, inside the caller's transaction or outside any."""


def _literal(statement: sql.Composable, conn: psycopg.Connection) -> str:
    return statement.as_string(conn).replace("%", "%%")


def leak(setting: str, role: str, tenant: str, relation: str, operation: str, what: str,
         revision: str | None, **evidence: Any) -> Violation:
    """A ``tenant_isolation`` violation: ``role``, acting for ``tenant``, ``what`` it did."""
    as_whom = f"with {setting}={tenant}" if tenant else f"with {setting} unset"
    return Violation(
        property="tenant_isolation",
        revision=revision,
        message=f"role {role} {as_whom} {what}",
        evidence={"role": role, "setting": setting, "tenant": tenant or None,
                  "relation": relation, "operation": operation, **evidence},
    )


def cast(type_name: str) -> sql.Composed:
    """A parameter cast to ``type_name``, as ``format_type`` renders it (valid, quoted SQL)."""
    return sql.SQL("CAST(%s AS {})").format(sql.SQL(type_name))

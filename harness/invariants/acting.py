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
    configs = [pair for pair in (
        setting,
        ("session_replication_role", "replica") if replica else None,
        ("role", role) if role else None,
    ) if pair is not None]
    nested = conn.info.transaction_status != TransactionStatus.IDLE
    begin, end = _IN_A_SAVEPOINT if nested else _IN_A_TRANSACTION
    # Every part is bound with the one list of values: a '%' in a part without values of its
    # own is doubled, to stay a '%'.
    statements = [begin, *([_literal(prepare, conn)] if prepare is not None else [])]
    values: list[Any] = []
    if configs:
        statements.append("SELECT " + ", ".join("set_config(%s, %s, true)" for _ in configs))
        values += [v for pair in configs for v in pair]
    statements.append(query.as_string(conn) if params is not None else _literal(query, conn))
    cursor = psycopg.ClientCursor(conn)
    ended = False
    try:
        cursor.execute("; ".join([*statements, end]), [*values, *(params or ())])
        ended = True
        for _ in statements[1:]:  # to the statement's own result
            cursor.nextset()
        return AttemptOutcome(cursor.fetchall() if cursor.description else [], cursor.rowcount, None)
    except psycopg.Error as exc:
        if exc.sqlstate is None:
            raise
        return AttemptOutcome([], 0, exc)
    finally:
        cursor.close()
        if not ended:
            conn.execute(end)


_IN_A_SAVEPOINT = ("SAVEPOINT harness_attempt",
                   "ROLLBACK TO SAVEPOINT harness_attempt; RELEASE SAVEPOINT harness_attempt")
_IN_A_TRANSACTION = ("BEGIN", "ROLLBACK")
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

"""One INSERT at a time, each undone alone when the database refuses it, and the parent-key pool.

Both row makers -- Hypothesis' (:mod:`.rows`) and the report's deterministic filler
(:mod:`.filling`) -- insert through an :class:`Inserter`: the database is the only judge of
validity, so a refused row is an answer (:class:`Refused`), not an error, and it must undo
nothing but itself. psycopg only.
"""

from __future__ import annotations

import contextlib
from typing import Any, Iterable, Mapping, Sequence

import psycopg
from psycopg import sql
from psycopg.pq import TransactionStatus
from psycopg.types.json import Json, Jsonb

from .catalog import Column, ForeignKey, Table, Tenancy

__all__ = ["DEFAULT", "PHYSICAL_ORDER", "POOL_LIMIT", "Inserter", "Refused", "as_text"]


class _Default:
    """Leave the column out of the INSERT so that its default (or identity) applies."""

    def __repr__(self) -> str:
        return "DEFAULT"


DEFAULT: Any = _Default()
"""A column value meaning "omit the column", also in overrides (``st.just(DEFAULT)``)."""

POOL_LIMIT = 500
"""Parent rows a foreign key chooses among, by default: the first ones, in physical order."""
PHYSICAL_ORDER = sql.SQL("tableoid::regclass::text, ctid")
"""Rows in the order they were written: the same on every replay of an example."""
_IN_A_SAVEPOINT = ("SAVEPOINT harness_row", "RELEASE SAVEPOINT harness_row",
                   "ROLLBACK TO SAVEPOINT harness_row; RELEASE SAVEPOINT harness_row")
_IN_A_TRANSACTION = ("BEGIN", "COMMIT", "ROLLBACK")
"""How a row's INSERT begins, ends, and is undone: inside the caller's transaction or outside any."""
_SET_LOCAL = "SELECT set_config(%s, %s, true)"
# Refusals about the row's values: data exceptions (22), integrity violations (23, which
# include "no partition for row"), program limits (54: index row too large) and a trigger's
# RAISE (P0). Anything else is the harness's or the server's problem and propagates.
_REJECTED_CLASSES = ("22", "23", "54", "P0")


class Refused(Exception):
    """The database refused the row; ``str()`` is the error class and constraint name."""


def as_text(columns: Iterable[str]) -> sql.Composed:
    return sql.SQL(", ").join(sql.SQL("{}::text").format(sql.Identifier(c)) for c in columns)


class Inserter:
    """Inserts rows on one cursor and keeps the pools of parent keys they draw from.

    ``cursor``'s connection may be idle in autocommit mode (each row its own transaction) or
    inside a transaction (each row its own savepoint).
    """

    def __init__(self, cursor: psycopg.Cursor, pool_limit: int = POOL_LIMIT, *,
                 tenancy: Tenancy | None = None) -> None:
        """``tenancy``: the application's tenant setting and column (the run's isolation
        setup). A row of a table with that column goes in with the setting at its tenant, as
        the application would insert it (a trigger or a default may read it), also where no
        policy binds the connected role; a policy that does (:attr:`Table.tenant`) sets its own."""
        self.conn = cursor.connection
        self.tenancy = tenancy
        self.cursor = cursor
        self.pool_limit = pool_limit
        self.pools: dict[tuple[str, tuple[str, ...]], list[tuple[Any, ...]]] = {}
        self.statements: dict[tuple[str, tuple[str, ...]], str] = {}

    def pool(self, fk: ForeignKey) -> list[tuple[Any, ...]]:
        """Key values of existing parent rows, as text, in physical order; rows this inserter
        adds to the parent join the end.

        Physical order (not key order) keeps replays identical when keys are random defaults
        such as gen_random_uuid(): the n-th row is the same row each time.
        """
        pool_key = (fk.parent, fk.parent_columns)
        if pool_key not in self.pools:
            query = sql.SQL("SELECT {} FROM {} WHERE {} ORDER BY {} LIMIT {}").format(
                as_text(fk.parent_columns),
                sql.Identifier(fk.parent_schema, fk.parent_name),
                sql.SQL(" AND ").join(
                    sql.SQL("{} IS NOT NULL").format(sql.Identifier(c)) for c in fk.parent_columns
                ),
                PHYSICAL_ORDER,
                sql.Literal(self.pool_limit),
            )
            self.pools[pool_key] = self.run(query, ()).fetchall()
        return self.pools[pool_key]

    def insert(self, table: Table, values: Mapping[str, Any]) -> dict[str, Any]:
        """Insert one row (columns absent or :data:`DEFAULT` left out) and return it as the
        database stored it: JSON columns as JSON values, every other column as text.

        Raises :class:`Refused` when the database refuses the row's values.
        """
        records, refused = self.insert_many(table, [values])
        if refused is not None:
            raise refused
        return records[0]

    def insert_many(self, table: Table, rows: Sequence[Mapping[str, Any]],
                    ) -> tuple[list[dict[str, Any]], Refused | None]:
        """Insert ``rows`` in order, in one round trip, each undone alone if refused, as
        :meth:`insert` would one after the other; the first refused row ends the batch.

        Returns the records of the rows that went in, and the refusal of the row after them
        (None when all went in). The rows after a refused one are not tried: what a caller
        makes next may depend on the refusal.
        """
        writes = []
        for values in rows:
            columns = tuple(
                c.name for c in table.columns
                if c.insertable and c.name in values and values[c.name] is not DEFAULT
            )
            params = [_adapt(table.column(c), values[c]) for c in columns]
            writes.append((self._statement(table, columns), params, self._tenant_settings(table, values)))
        cursors, error = self._write(writes)
        records = []
        for cursor in cursors:
            record = dict(zip((c.name for c in table.columns), cursor.fetchone()))
            for (parent, keys), pool in self.pools.items():
                if parent == table.key and all(record.get(c) is not None for c in keys):
                    pool.append(tuple(record[c] for c in keys))
            records.append(record)
        if error is None:
            return records, None
        if not _refusal(error):
            raise error
        return records, Refused(f"{type(error).__name__} {error.diag.constraint_name or ''}".rstrip())

    def run(self, query: sql.Composable | str, params: Sequence[Any]) -> psycopg.Cursor:
        """Run one statement so that its failure undoes only itself.

        Never as a server-side prepared statement: a prepared ``%s::status`` keeps the oid
        of the type it was prepared with, and migrations drop and re-create types on another
        connection, unseen by psycopg ("cache lookup failed for type" ever after).
        """
        if self.conn.autocommit and self.conn.info.transaction_status == TransactionStatus.IDLE:
            return self.cursor.execute(query, params, prepare=False)
        with self.conn.transaction():
            return self.cursor.execute(query, params, prepare=False)

    def _tenant_settings(self, table: Table, values: Mapping[str, Any]) -> list[tuple[str, str]]:
        """(setting, tenant) for each tenancy of ``table`` the row names a tenant of."""
        names = {c.name for c in table.columns}
        tenancies = dict.fromkeys(t for t in (self.tenancy, table.tenant) if t is not None and t.column in names)
        return [(t.setting, str(values[t.column])) for t in tenancies
                if values.get(t.column) is not None and values[t.column] is not DEFAULT]

    def _write(self, writes: Sequence[tuple[str, Sequence[Any], list[tuple[str, str]]]],
               ) -> tuple[list[psycopg.Cursor], psycopg.Error | None]:
        """Each INSERT, undone alone if refused, with the tenant settings at its row's tenant
        (so that a row-level security policy checking one lets the row in), all in one round
        trip: the cursors of the INSERTs that ran, and the error that stopped the others.

        Each row's savepoint (its transaction, on an idle connection), settings, INSERT and
        release go as one pipeline: three or four round trips a row, they were most of what
        filling a table cost. The values stay parameters bound by the server, as they were.
        After an error the server skips the rest of the pipeline, so the rows before it are in
        and the failed one is undone by one more round trip. A setting is local to the
        transaction: inside the caller's, it stays until that one ends.
        """
        idle = self.conn.autocommit and self.conn.info.transaction_status == TransactionStatus.IDLE
        if idle and len(writes) == 1 and not writes[0][2]:
            statement, params, _ = writes[0]
            try:
                return [self.cursor.execute(statement, params, prepare=False)], None
            except psycopg.Error as exc:
                return [], exc
        begin, end, undo = _IN_A_TRANSACTION if idle else _IN_A_SAVEPOINT
        error: psycopg.Error | None = None
        cursors = []
        with self.conn.pipeline() as pipeline:
            try:
                for statement, params, settings in writes:
                    self.conn.execute(begin, prepare=False)
                    for setting, tenant in settings:
                        self.conn.execute(_SET_LOCAL, (setting, tenant), prepare=False)
                    cursors.append(self.conn.cursor().execute(statement, params, prepare=False))
                    self.conn.execute(end, prepare=False)
                pipeline.sync()
            except psycopg.Error as exc:
                error = exc
                # An error read before the Sync's own result leaves the pipeline aborted,
                # which psycopg would otherwise report on leaving it.
                with contextlib.suppress(psycopg.Error):
                    pipeline.sync()
        if error is None:
            return cursors, None
        if error.sqlstate is not None:  # the server stopped at the error: undo what went before
            with contextlib.suppress(psycopg.Error):
                self.conn.execute(undo, prepare=False)
        return [cursor for cursor in cursors if cursor.pgresult is not None], error

    def _statement(self, table: Table, columns: tuple[str, ...]) -> str:
        """The INSERT for these columns, rendered once: psycopg would otherwise compose the
        identifiers again on every execution."""
        cache_key = (table.key, columns)
        if cache_key not in self.statements:
            target = sql.Identifier(table.schema, table.name)
            if columns:
                # Casts come from format_type, which quotes as SQL needs; '%' would be read
                # as a placeholder.
                body = sql.SQL("({}) VALUES ({})").format(
                    sql.SQL(", ").join(sql.Identifier(c) for c in columns),
                    sql.SQL(", ").join(
                        sql.SQL("%s::" + table.column(c).cast.replace("%", "%%")) for c in columns
                    ),
                )
            else:
                body = sql.SQL("DEFAULT VALUES")
            # The whole row, for the record and the parent key pools.
            returned = sql.SQL(", ").join(
                sql.SQL("{}::jsonb" if c.type.kind in ("json", "jsonb") else "{}::text").format(
                    sql.Identifier(c.name)
                )
                for c in table.columns
            )
            statement = sql.SQL("INSERT INTO {} {} RETURNING {}").format(target, body, returned)
            self.statements[cache_key] = statement.as_string(self.conn)
        return self.statements[cache_key]


def _refusal(exc: psycopg.Error) -> bool:
    """Whether the database refused the row's values, rather than failed."""
    if (exc.sqlstate or "").startswith(_REJECTED_CLASSES):
        return True
    # A policy's WITH CHECK: the row's tenant is not the session's (42501, as for a missing
    # privilege, which is no refusal but the harness's problem).
    return exc.sqlstate == "42501" and "row-level security" in str(exc)


def _adapt(column: Column, value: Any) -> Any:
    """Plain dicts and lists from overrides become JSON for json columns."""
    if column.type.kind in ("json", "jsonb") and isinstance(value, (dict, list, int, float, bool)):
        return (Jsonb if column.type.kind == "jsonb" else Json)(value)
    return value

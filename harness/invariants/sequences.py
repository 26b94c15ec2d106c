"""The database still takes new rows: no step leaves a column's sequence behind its rows.

Re-adding an identity column, or dropping and re-creating the sequence behind a ``serial``,
restarts it at 1: with rows present nothing fails until the next plain ``INSERT``, which takes
a key an existing row already has. A catalog comparison does not see it (the new sequence is
declared exactly as the old one was), and inserting a row after each step would be costly, so
the check compares, for each sequence a column owns (``serial`` or identity), the value its
next ``nextval`` returns with the column's largest value in the rows captured after the step.

Rows inserted with explicit keys (the walk seeds rows that way, as data imports do) leave a
sequence behind too, without any migration to blame; so a step is charged only when it
created (or re-created) the sequence behind existing rows or moved it back.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Iterable, Mapping

import psycopg

from ..violations import Violation
from .data import RowsSnapshot, TableName
from .row_reader import read_pipelined

# Sequences owned by a column: 'a' for serial (OWNED BY), 'i' for identity. Their next values
# are those :func:`next_values` reads with them.
_OWNED = """
SELECT cn.nspname, c.relname, a.attname, s.seqrelid, quote_ident(sn.nspname) || '.' || quote_ident(sc.relname),
       s.seqincrement, a.attidentity <> ''
  FROM pg_sequence s
  JOIN pg_class sc ON sc.oid = s.seqrelid
  JOIN pg_namespace sn ON sn.oid = sc.relnamespace
  -- Looked up per sequence (OFFSET 0 keeps it so): joined, the plan read every dependency on
  -- a relation to find the sequences' (0.85 ms at 100 sequences against 0.66 ms).
  CROSS JOIN LATERAL (SELECT d.refobjid, d.refobjsubid FROM pg_depend d
                       WHERE d.classid = 'pg_class'::regclass AND d.objid = s.seqrelid
                         AND d.refclassid = 'pg_class'::regclass AND d.deptype IN ('a', 'i')
                      OFFSET 0) d
  JOIN pg_class c ON c.oid = d.refobjid
  JOIN pg_namespace cn ON cn.oid = c.relnamespace
  JOIN pg_attribute a ON a.attrelid = d.refobjid AND a.attnum = d.refobjsubid
 WHERE cn.nspname <> 'information_schema' AND cn.nspname !~ '^pg_'
"""

OWNED = ("harness_owned_sequences", _OWNED)
"""The statement :func:`read_sequences` runs with :func:`next_values`, under the name it is
prepared as."""

# Every sequence's next value, by oid: two or three microseconds a sequence of the server's
# time, against fifteen to twenty for :data:`OWNED`, whose joins find the owners. What nextval()
# returns is last_value + increment once called, else last_value itself: the start value for a
# new sequence, any value after ALTER SEQUENCE ... RESTART WITH or setval(..., false).
# pg_sequence_last_value() returns NULL then; pg_get_sequence_data() (PostgreSQL 18) reads both,
# but costs a microsecond more a sequence, so it is asked only then. Before 18 such a sequence
# is named instead (third column), to be read by a statement of its own. A sequence the session
# may not read is taken to be at its start.
_NEXT = """
SELECT s.seqrelid,
       coalesce(CASE WHEN has_sequence_privilege(s.seqrelid, 'SELECT,USAGE')
                     THEN {value} END,
                s.seqstart),
       {unread}
  FROM pg_sequence s
"""
_UNREAD_BEFORE_18 = """
       CASE WHEN has_sequence_privilege(s.seqrelid, 'SELECT,USAGE')
             AND pg_sequence_last_value(s.seqrelid) IS NULL THEN s.seqrelid::regclass::text END"""


def _next(*, since_18: bool, exhausted: bool) -> tuple[str, str]:
    called = "pg_sequence_last_value(s.seqrelid)" + ("::numeric" if exhausted else "") + " + s.seqincrement"
    return ("harness_sequence_values" + ("_exhausted" if exhausted else ""), _NEXT.format(
        value=f"coalesce({called}, (pg_get_sequence_data(s.seqrelid)).last_value)" if since_18 else called,
        unread="NULL::text" if since_18 else _UNREAD_BEFORE_18))


_STATEMENTS = {(since_18, exhausted): _next(since_18=since_18, exhausted=exhausted)
               for since_18 in (False, True) for exhausted in (False, True)}


def next_values(conn: psycopg.Connection, *, exhausted: bool = False) -> tuple[str, str]:
    """The statement that reads every sequence's next value, by oid, under the name it is
    prepared as on ``conn``; its rows go to :func:`settled`.

    An exhausted sequence's value plus its increment may lie past bigint's range (where
    nextval() refuses to go): the statement then fails with ``NumericValueOutOfRange``, and the
    ``exhausted`` one adds as numeric, at a third more of the server's time and more to parse.
    """
    return _STATEMENTS[conn.info.server_version >= 180000, exhausted]


def settled(conn: psycopg.Connection, rows: Iterable[tuple[Any, ...]]) -> dict[int, int]:
    """Each sequence's next value, by oid, from the rows of :func:`next_values`: the sequences
    the catalog statement could not read are read themselves, in one more round trip."""
    rows = list(rows)
    unread = [(oid, name) for oid, _, name in rows if name is not None]
    found = {oid: int(value) for oid, value, name in rows if name is None}
    if unread:
        values = read_pipelined(conn, [f"SELECT last_value FROM {name}" for _, name in unread])
        found.update((oid, value) for (oid, _), [(value,)] in zip(unread, values))
    return found


ColumnName = tuple[str, str, str]


@dataclasses.dataclass(frozen=True)
class Sequence:
    """The sequence a column owns, and the value its next ``nextval`` returns."""

    oid: int
    """A new oid is a new sequence: the step created it, or dropped and re-created it."""
    name: str
    increment: int
    next_value: int
    identity: bool


def read_sequences(conn: psycopg.Connection) -> dict[ColumnName, Sequence]:
    """Every column-owned sequence, keyed by (schema, table, column)."""
    owned, values = read_pipelined(conn, [OWNED, next_values(conn, exhausted=True)])
    return dict(Owned.of(owned, settled(conn, values)).sequences)


@dataclasses.dataclass(frozen=True)
class Owned:
    """The column-owned sequences at one reading, and the oid of every sequence then."""

    sequences: Mapping[ColumnName, Sequence]
    every: frozenset[int]

    @classmethod
    def of(cls, owned: Iterable[tuple[Any, ...]], values: Mapping[int, int]) -> Owned:
        """From the rows :data:`OWNED` read and the values :func:`settled` gave, read in one
        transaction."""
        return cls({(schema, table, column): Sequence(oid, name, increment, values[oid], identity)
                    for schema, table, column, oid, name, increment, identity in owned},
                   frozenset(values))

    def with_values(self, found: Mapping[int, int]) -> Owned | None:
        """The same sequences with the next values :func:`settled` gave since no migration
        step ran; None when a sequence came or went all the same (a trigger's DDL): who owns
        what must be read again."""
        if found.keys() != self.every:
            return None
        return Owned({key: sequence if sequence.next_value == found[sequence.oid]
                      else dataclasses.replace(sequence, next_value=found[sequence.oid])
                      for key, sequence in self.sequences.items()}, self.every)


def check_sequences(
    before: Mapping[ColumnName, Sequence], after: Mapping[ColumnName, Sequence],
    rows: RowsSnapshot, *, revision: str | None, direction: str,
) -> list[Violation]:
    """Sequences that this step created behind, or moved back behind, their column's rows.

    Only ascending sequences are judged; ``rows`` are the rows captured after the step.
    """
    violations = []
    for key, sequence in sorted(after.items()):
        previous = before.get(key)
        kept = previous is not None and previous.oid == sequence.oid
        if sequence.increment <= 0 or (kept and sequence.next_value >= previous.next_value):
            continue
        largest = _largest(rows, key[:2], key[2])
        if largest is not None and sequence.next_value <= largest:
            violations.append(_violation(key, sequence, largest, revision, direction))
    return violations


def _largest(rows: RowsSnapshot, table: TableName, column: str) -> int | None:
    captured = rows.tables.get(table)
    if captured is None:
        return None
    names = [c.name for c in captured.columns]
    if column not in names:
        return None
    position = names.index(column)
    values = [int(row[position]) for row in captured.rows
              if row[position] is not None and row[position].lstrip("-").isdigit()]
    return max(values, default=None)


def _violation(key: ColumnName, sequence: Sequence, largest: int, revision: str | None,
               direction: str) -> Violation:
    schema, table, column = key
    qualified = f"{schema}.{table}"
    kind = "identity" if sequence.identity else "sequence"
    step = f"{direction} of {revision}" if revision else direction
    fix = (f"SELECT setval('{sequence.name}', (SELECT max({column}) FROM {qualified})) "
           f"at the end of the {direction}")
    return Violation(
        property="data",
        revision=revision,
        message=f"{kind} {sequence.name} of {qualified}.{column} left behind its rows by "
                f"{step}: the next INSERT takes {sequence.next_value}, the column already "
                f"holds up to {largest}; fix: {fix}",
        evidence={"table": qualified, "column": column, "sequence": sequence.name,
                  "identity": sequence.identity, "next_value": sequence.next_value,
                  "largest": largest, "fix": fix},
    )

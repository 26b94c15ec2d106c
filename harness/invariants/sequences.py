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

# Sequences owned by a column: 'a' for serial (OWNED BY), 'i' for identity. The next value is
# what nextval() returns: last_value + increment once called, else the start value.
_OWNED = """
SELECT cn.nspname, c.relname, a.attname, s.seqrelid, quote_ident(sn.nspname) || '.' || quote_ident(sc.relname),
       s.seqincrement,
       coalesce(last.value + s.seqincrement, s.seqstart),
       a.attidentity <> ''
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
  -- As pg_sequences reads it, without that view's joins: NULL where not readable.
  CROSS JOIN LATERAL (SELECT CASE WHEN has_sequence_privilege(s.seqrelid, 'SELECT,USAGE')
                                  THEN pg_sequence_last_value(s.seqrelid) END AS value) last
 WHERE cn.nspname <> 'information_schema' AND cn.nspname !~ '^pg_'
"""

OWNED = ("harness_owned_sequences", _OWNED)
"""The statement :func:`read_sequences` runs, under the name it is prepared as."""

# Every sequence's next value, by oid: two or three microseconds a sequence of the server's
# time, against fifteen to twenty for :data:`OWNED`, whose joins find the owners.
_NEXT = """
SELECT s.seqrelid,
       coalesce(CASE WHEN has_sequence_privilege(s.seqrelid, 'SELECT,USAGE')
                     THEN pg_sequence_last_value(s.seqrelid) END + s.seqincrement, s.seqstart)
  FROM pg_sequence s
"""

NEXT = ("harness_sequence_values", _NEXT)
"""The statement :meth:`Owned.with_values` reads, under the name it is prepared as."""

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
    """Every column-owned sequence, keyed by (schema, table, column), in one query."""
    return sequences_of(conn.execute(_OWNED).fetchall())


def sequences_of(rows: Iterable[tuple[Any, ...]]) -> dict[ColumnName, Sequence]:
    """The sequences in the rows :data:`OWNED` read."""
    return {
        (schema, table, column): Sequence(oid, name, increment, next_value, identity)
        for schema, table, column, oid, name, increment, next_value, identity in rows
    }


@dataclasses.dataclass(frozen=True)
class Owned:
    """The column-owned sequences at one reading, and the oid of every sequence then."""

    sequences: Mapping[ColumnName, Sequence]
    every: frozenset[int]

    @classmethod
    def of(cls, owned: Iterable[tuple[Any, ...]], values: Iterable[tuple[Any, ...]]) -> Owned:
        """From the rows :data:`OWNED` and :data:`NEXT` read in one transaction."""
        return cls(sequences_of(owned), frozenset(oid for oid, _ in values))

    def with_values(self, values: Iterable[tuple[Any, ...]]) -> Owned | None:
        """The same sequences with the next values :data:`NEXT` read since no migration step
        ran; None when a sequence came or went all the same (a trigger's DDL): who owns what
        must be read again."""
        found = dict(values)
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

"""Data lost by one migration step, per table and per column, from two row captures.

The data invariant (``harness.invariants.data``) answers "did this step keep every row?" per
table; the report must also say *where* the loss is, because the seed document's claims are
about operations on columns: a dropped column, a type change that rounds or truncates values.
So each column is compared on its own, as the multiset of its values before and after.
"""

from __future__ import annotations

import collections
import dataclasses
from decimal import Decimal, InvalidOperation
from typing import Any, Literal

from ..invariants.data import RowsSnapshot, TableRows

LossKind = Literal["table dropped", "column dropped", "values changed"]


@dataclasses.dataclass(frozen=True)
class Loss:
    """Values that were there before a step and are not after it."""

    table: str
    column: str | None
    """None for a dropped table."""
    kind: LossKind
    values: int
    """Non-null values lost (rows, for a dropped table)."""

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def describe(self) -> str:
        where = self.table if self.column is None else f"{self.table}.{self.column}"
        unit = "rows" if self.column is None else "values"
        return f"{where}: {self.kind}, {self.values} {unit} lost"


def losses(before: RowsSnapshot, after: RowsSnapshot) -> list[Loss]:
    """Every table and column whose values ``after`` does not hold any more."""
    found = []
    for name, old in sorted(before.tables.items()):
        table = ".".join(name)
        new = after.tables.get(name)
        if new is None:
            if old.rows:
                found.append(Loss(table, None, "table dropped", len(old.rows)))
            continue
        for position, column in enumerate(old.columns):
            kept = next((i for i, c in enumerate(new.columns) if c.name == column.name), None)
            if kept is None:
                present = sum(row[position] is not None for row in old.rows)
                if present:
                    found.append(Loss(table, column.name, "column dropped", present))
                continue
            lost = _lost_values(old, position, new, kept)
            if lost:
                found.append(Loss(table, column.name, "values changed", lost))
    return found


def _lost_values(old: TableRows, position: int, new: TableRows, kept: int) -> int:
    numeric = old.columns[position].category == new.columns[kept].category == "N"
    normalize = _as_number if numeric else (lambda text: text)
    before = collections.Counter(normalize(row[position]) for row in old.rows if row[position] is not None)
    after = collections.Counter(normalize(row[kept]) for row in new.rows if row[kept] is not None)
    return sum((before - after).values())


def _as_number(text: str) -> Any:
    # 12.5 kept as 12.50 by a widening type change is no loss; 12.50 rounded to 13 is.
    try:
        number = Decimal(text)
    except InvalidOperation:
        return text
    return number if number.is_finite() else text

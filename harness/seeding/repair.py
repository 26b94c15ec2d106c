"""Changing a drawn row until no CHECK constraint :mod:`.checks` can judge refuses it.

A constraint that ties columns together refuses most rows whose columns were drawn apart:
``(status = 'done') = (finished_at IS NOT NULL)`` passes half of them, three such constraints
an eighth. So after drawing, each constraint the row certainly fails is made true by changing
the columns it names: a NULL where ``IS NULL`` is wanted, a fresh value where ``IS NOT NULL``
is, the literal of an ``=``, an item of an ``IN`` list, one branch of an ``OR`` (chosen by a
draw, so that every branch gets rows), the columns of an ``a < b`` swapped, the right number of
NULLs for ``num_nonnulls``; anything else by drawing the columns again. Only the columns the
row drew itself change: foreign keys, overrides and values fixed by the caller never do.

Every choice goes through ``fill`` (a fresh value for a column) and ``choose`` (an index), the
caller's draws, so a repaired row replays and shrinks like any other. No Hypothesis here.
"""

from __future__ import annotations

import dataclasses
from decimal import Decimal
from typing import Any, Callable, Sequence

from .checks import UNSURE, Env, case_branch, compare, evaluate
from .expressions import Node, columns_of

__all__ = ["Repair"]

_PASSES = 4
"""Rounds over the constraints: repairing one may break another that was checked before it."""
_REDRAWS = 3
"""Fresh values tried for a column before giving up on a constraint (the database decides)."""
_NEGATION = {"=": "<>", "<>": "=", "<": ">=", ">=": "<", ">": "<=", "<=": ">"}
_MIRROR = {"=": "=", "<>": "<>", "<": ">", ">": "<", "<=": ">=", ">=": "<="}
_PREDICATES = {"and", "or", "not", "is", "distinct", "any", "all"}
_WHOLE_NUMBERS = {"int2", "int4", "int8"}


def _truth(value: Any) -> Any:
    return value if value is None or isinstance(value, bool) else UNSURE


def _is_predicate(node: Node) -> bool:
    """Whether the node is true or false (rather than a number or text)."""
    if node.kind == "op":
        return node.value in _NEGATION or "~" in node.value
    return node.kind in _PREDICATES or (node.kind == "lit" and isinstance(node.value, bool))


@dataclasses.dataclass
class Repair:
    """The row (changed in place), what may change, and the caller's draws."""

    env: Env
    free: frozenset[str]
    """Columns the repair may set."""
    nullable: frozenset[str]
    fill: Callable[[str], Any]
    """A fresh value for a free column, never NULL (it may be DEFAULT)."""
    choose: Callable[[int], int]
    """An index below its argument."""

    @property
    def row(self) -> dict[str, Any]:
        return self.env.row  # type: ignore[return-value]

    def run(self, checks: Sequence[Node]) -> None:
        for _ in range(_PASSES):
            failing = [c for c in checks if self.holds(c) is False]
            if not failing:
                return
            for check in failing:
                self.make(check, True)

    def holds(self, node: Node) -> Any:
        return _truth(evaluate(node, self.env))

    def make(self, node: Node, want: bool) -> None:
        """Change free columns so that ``node`` is ``want``, as far as this module can."""
        if self.holds(node) is want:
            return
        kind = node.kind
        if kind == "and" and want:
            for item in node.args:
                if self.holds(item) is False:
                    self.make(item, True)
        elif kind == "or" and not want:
            for item in node.args:
                if self.holds(item) is True:
                    self.make(item, False)
        elif kind in ("and", "or"):
            # One branch is enough: which one is drawn, so that every branch gets rows.
            start = self.choose(len(node.args))
            for i in range(len(node.args)):
                item = node.args[(start + i) % len(node.args)]
                self.make(item, want)
                if self.holds(item) is want:
                    return
        elif kind == "not":
            self.make(node.args[0], not want)
        elif kind == "is":
            self._make_is(node, want)
        elif kind == "op" and node.value in _NEGATION:
            self._make_comparison(node, node.value if want else _NEGATION[node.value])
        elif kind == "any" and node.value == "=" and want and self._target(node.args[0]):
            items = evaluate(node.args[1], self.env)
            if isinstance(items, list) and items:
                self.row[self._target(node.args[0])] = items[self.choose(len(items))]
        elif kind == "case":
            branch = case_branch(node, self.env)
            if branch is not None and columns_of(branch):
                self.make(branch, want)
            else:
                self._redraw(node, want)
        else:
            self._redraw(node, want)

    def _target(self, node: Node) -> str | None:
        """The free column ``node`` is (a cast of), if any."""
        while node.kind == "cast":
            node = node.args[0]
        return node.value if node.kind == "col" and node.value in self.free else None

    def _make_is(self, node: Node, want: bool) -> None:
        column = self._target(node.args[0])
        if column is None:
            return
        if node.value != "null":
            self.row[column] = (node.value == "true") == (want != node.negated)
        elif want != node.negated:
            if column in self.nullable:
                self.row[column] = None
        else:
            self._redraw(node, want, (column,))

    def _make_comparison(self, node: Node, op: str) -> None:
        """Make ``left op right`` true."""
        left, right = node.args
        wanted = dataclasses.replace(node, value=op)
        if op in ("=", "<>") and _is_predicate(left) and _is_predicate(right):
            self._make_equivalent(left, right, op == "=")
            if self.holds(wanted) is not True:
                self._redraw(wanted, True)
            return
        for counted, bound in ((left, right), (right, left)):
            if counted.kind == "func" and counted.value in ("num_nonnulls", "num_nulls") \
                    and not columns_of(bound):
                self._make_count(counted, op if counted is left else _MIRROR[op], evaluate(bound, self.env))
                return
        if not columns_of(right) or not columns_of(left):
            column_side, constant = (left, right) if columns_of(left) else (right, left)
            side_op = op if column_side is left else _MIRROR[op]
            self._make_against_constant(wanted, column_side, side_op, evaluate(constant, self.env))
            return
        self._make_between_columns(wanted, left, right)

    def _make_equivalent(self, left: Node, right: Node, same: bool) -> None:
        """``(A) = (B)``: make one side agree with the other, the second if it can."""
        for known, changed in ((left, right), (right, left)):
            value = self.holds(known)
            if isinstance(value, bool):
                self.make(changed, value if same else not value)
                if self.holds(changed) is (value if same else not value):
                    return

    def _make_count(self, counted: Node, op: str, bound: Any) -> None:
        """``num_nonnulls(a, b, ...) op n``: a number of NULLs that passes, then those NULLs."""
        columns = [self._target(a) for a in counted.args]
        if not isinstance(bound, Decimal) or any(c is None for c in columns):
            return
        counts = [n for n in range(len(columns) + 1) if compare(op, Decimal(n), bound) is True]
        if not counts:
            return
        wanted = counts[self.choose(len(counts))]
        non_null = wanted if counted.value == "num_nonnulls" else len(columns) - wanted
        # Columns that hold values keep them first: fewer changes, fewer constraints broken.
        present = self._rotated([c for c in columns if self.env.value(c) is not None])
        ordered = present + self._rotated([c for c in columns if self.env.value(c) is None])
        for i, column in enumerate(ordered):
            if i < non_null:
                if self.env.value(column) is None:
                    self._redraw(Node("is", (Node("col", value=column),), "null", True), True, (column,))
            elif column in self.nullable:
                self.row[column] = None

    def _rotated(self, columns: list[str]) -> list[str]:
        if len(columns) < 2:
            return columns
        start = self.choose(len(columns))
        return columns[start:] + columns[:start]

    def _make_against_constant(self, node: Node, side: Node, op: str, constant: Any) -> None:
        column = self._target(side)
        if column is not None and op == "=" and constant is not UNSURE and constant is not None:
            self.row[column] = constant
            return
        self._redraw(node, True)
        if self.holds(node) is True or column is None or not isinstance(constant, Decimal):
            return
        # Drawing again missed: the bound itself, or the next whole number past it.
        kind = self.env.columns.get(column, (None, None))[0]
        if op in ("<=", ">="):
            self.row[column] = constant
        elif op in ("<", ">") and kind in _WHOLE_NUMBERS:
            self.row[column] = constant.to_integral_value() + (1 if op == ">" else -1)

    def _make_between_columns(self, node: Node, left: Node, right: Node) -> None:
        a, b = self._target(left), self._target(right)
        if a is not None and b is not None:
            self.row[a], self.row[b] = self.row.get(b), self.row.get(a)
            if self.holds(node) is True:
                return
            self.row[a], self.row[b] = self.row.get(b), self.row.get(a)
        if node.value == "=" and (a or b):
            changed, kept = (a, right) if a else (b, left)
            kept_column = kept.value if kept.kind == "col" else None
            if kept_column is not None and kept_column in self.row:
                self.row[changed] = self.row[kept_column]
                return
        self._redraw(node, True)
        if self.holds(node) is True or not (a or b):
            return
        # Still the wrong way round (two draws of the same simplest value): one step apart,
        # so that ``kept op changed`` holds.
        changed, kept, op = (b, left, node.value) if b else (a, right, _MIRROR[node.value])
        base = evaluate(kept, self.env)
        if isinstance(base, Decimal) and op in (">", "<", ">=", "<=", "<>"):
            self.row[changed] = base + (-1 if op in (">", ">=") else 1)

    def _redraw(self, node: Node, want: bool, columns: Sequence[str] | None = None) -> None:
        chosen = [c for c in sorted(columns_of(node)) if c in self.free] if columns is None else columns
        if not chosen:
            return
        for _ in range(_REDRAWS):
            for column in chosen:
                self.row[column] = self.fill(column)
            if self.holds(node) is want:
                return

"""Comparing two snapshots, and saying what differs in words a person reads.

Objects are matched by key, so a difference always names one object (a column, a single grant, a
policy) and only the attributes that changed. Column positions are compared on their own: among
the columns a table has in both snapshots, the fewest that must have moved for the rest to keep
their relative order (the complement of a longest increasing subsequence) are reported as
``column_order``. A column dropped and re-added at the end is one moved column, not a shift of
every column after it, and an added or dropped column moves nothing.
"""

from __future__ import annotations

import bisect
import difflib
from collections import defaultdict
from typing import Any, Iterable, Sequence

from .model import POSITION, Difference, Snapshot

# Keys of the objects whose differences can change the rows a table holds (Difference.table).
_ROW_SHAPING = ("table ", "view ", "materialized view ", "foreign table ", "column ", "constraint ")


def diff_snapshots(before: Snapshot, after: Snapshot) -> list[Difference]:
    """Every object added, removed or changed from ``before`` to ``after``, sorted by object."""
    differences = []
    # Snapshots patched from one another share the objects they have in common: those are
    # passed over without comparing their attributes.
    differing = [key for key in before.objects.keys() | after.objects.keys()
                 if before.objects.get(key) is not after.objects.get(key)]
    for key in sorted(differing):
        old, new = before.objects.get(key), after.objects.get(key)
        table = (after.tables.get(key) or before.tables.get(key)) if key.startswith(_ROW_SHAPING) else None
        if old is None:
            differences.append(Difference(key, "added", details=_all(new, after_side=True), table=table))
        elif new is None:
            differences.append(Difference(key, "removed", details=_all(old, after_side=False), table=table))
        else:
            details = tuple(
                (attr, old.get(attr), new.get(attr))
                for attr in sorted(old.keys() | new.keys())
                if attr != POSITION and old.get(attr) != new.get(attr)
            )
            if details:
                differences.append(Difference(key, "changed", details=details, table=table))
    differences += _moved_columns(before, after, {before.tables.get(key) for key in differing})
    return sorted(differences, key=lambda d: (d.object, d.kind))


def _all(attrs: dict[str, Any], *, after_side: bool) -> tuple[tuple[str, Any, Any], ...]:
    return tuple(
        (attr, None, value) if after_side else (attr, value, None) for attr, value in sorted(attrs.items())
    )


def _moved_columns(before: Snapshot, after: Snapshot, tables: set[str | None]) -> list[Difference]:
    """Columns moved in ``tables``: the tables of the objects that differ (a column that
    moved differs in its position)."""
    columns_by_table: dict[str, list[str]] = defaultdict(list)
    for key, attrs in before.objects.items():
        if before.tables.get(key) in tables and POSITION in attrs and POSITION in after.objects.get(key, {}):
            columns_by_table[before.tables[key]].append(key)
    moved = []
    for table, keys in columns_by_table.items():
        keys.sort(key=lambda k: before.objects[k][POSITION])
        kept = _longest_increasing([after.objects[k][POSITION] for k in keys])
        moved += [
            Difference(
                key, "changed", "column_order",
                ((POSITION, before.objects[key][POSITION], after.objects[key][POSITION]),), table,
            )
            for index, key in enumerate(keys) if index not in kept
        ]
    return moved


def _longest_increasing(values: Sequence[int]) -> set[int]:
    """Indices of a longest strictly increasing subsequence (patience sorting, O(n log n)).

    Among equally long ones, the one ending latest is kept: for ``a, c, b`` (``b`` dropped and
    re-added) that is ``a, c``, so ``b`` is the column reported as moved.
    """
    tails: list[int] = []  # tails[k]: value ending the best subsequence of length k + 1
    tail_index: list[int] = []
    previous = [-1] * len(values)
    for i, value in enumerate(values):
        k = bisect.bisect_left(tails, value)
        if k == len(tails):
            tails.append(value)
            tail_index.append(i)
        else:
            tails[k] = value
            tail_index[k] = i
        previous[i] = tail_index[k - 1] if k else -1
    kept = set()
    i = tail_index[-1] if tail_index else -1
    while i != -1:
        kept.add(i)
        i = previous[i]
    return kept


def format_diff(differences: Iterable[Difference]) -> str:
    """The differences for people: one entry per object, naming what changed and how.

    ``policy p on public.t: USING changed: (a = 1) -> (a = 2)``; an object with several changed
    attributes gets one indented line each; multi-line values (bodies, view definitions) are
    shown as a line diff rather than in full.
    """
    by_object: dict[str, list[str]] = {}
    for difference in differences:
        by_object.setdefault(difference.object, []).extend(_describe(difference))
    lines = []
    for obj, changes in by_object.items():
        if len(changes) == 1 and "\n" not in changes[0]:
            lines.append(f"{obj}: {changes[0]}")
        else:
            lines.append(f"{obj}:")
            lines += ["  " + line for change in changes for line in change.splitlines()]
    return "\n".join(lines)


def _describe(difference: Difference) -> list[str]:
    if difference.change == "added":
        return ["present after, absent before"]
    if difference.change == "removed":
        return ["present before, absent after"]
    suffix = " (column order only)" if difference.kind == "column_order" else ""
    return [_describe_change(attr, old, new) + suffix for attr, old, new in difference.details]


def _describe_change(attr: str, old: Any, new: Any) -> str:
    if isinstance(old, str) and isinstance(new, str) and ("\n" in old or "\n" in new):
        lines = difflib.unified_diff(old.splitlines(), new.splitlines(), lineterm="", n=1)
        # The first two lines are the ---/+++ file headers, meaningless here.
        return f"{attr} changed:\n" + "\n".join("  " + line for line in list(lines)[2:])
    return f"{attr} changed: {_render(old)} -> {_render(new)}"


def _render(value: Any) -> str:
    if value is None:
        return "(none)"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return "[" + ", ".join(_render(item) for item in value) + "]"
    if value == "":
        return '""'
    return str(value)

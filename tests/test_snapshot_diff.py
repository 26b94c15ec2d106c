"""The diff and its rendering on hand-made snapshots: no database needed.

Column order gets the most attention: a column that only moved must be one ``column_order``
difference, not a shift reported on every column after it, and never noise beside a column that
was simply added or dropped.
"""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from harness.snapshot import Difference, Snapshot, diff_snapshots, format_diff


def table(name: str, *columns: str, **types: str) -> Snapshot:
    """A snapshot of one table whose columns are in the given order (all integer unless typed)."""
    objects = {f"table {name}": {"owner": "postgres"}}
    objects |= {
        f"column {name}.{column}": {"position": position, "type": types.get(column, "integer")}
        for position, column in enumerate(columns, start=1)
    }
    return Snapshot(objects=objects, tables={key: name for key in objects})


def moved(differences: list[Difference]) -> dict[str, tuple]:
    return {d.object: d.details for d in differences if d.kind == "column_order"}


@pytest.mark.parametrize(
    ("before", "after", "expected"),
    [
        ("abcd", "acdb", {"b": (2, 4)}),  # dropped and re-added: one move, not three
        ("abcd", "dabc", {"d": (4, 1)}),
        ("abc", "bca", {"a": (1, 3)}),
        ("abcd", "badc", {"a": (1, 2), "c": (3, 4)}),
        ("abc", "abxc", {}),  # an added column moves nothing
        ("abc", "ac", {}),  # nor does a dropped one
        ("abc", "xcb", {"b": (2, 3)}),
    ],
)
def test_only_the_columns_that_moved_are_reported(before: str, after: str, expected: dict) -> None:
    differences = diff_snapshots(table("public.t", *before), table("public.t", *after))
    assert moved(differences) == {
        f"column public.t.{column}": (("position", old, new),) for column, (old, new) in expected.items()
    }
    assert all(d.table == "public.t" for d in differences)


def _longest_increasing_length(values: list[int]) -> int:
    """Quadratic reference for the diff's O(n log n) subsequence."""
    best = [1] * len(values)
    for i in range(len(values)):
        for j in range(i):
            if values[j] < values[i]:
                best[i] = max(best[i], best[j] + 1)
    return max(best, default=0)


# A table's columns before, and the same columns in some order after.
column_orders = st.lists(st.sampled_from("abcdefghij"), unique=True, max_size=10).flatmap(
    lambda before: st.tuples(st.just(before), st.permutations(before))
)


@given(column_orders)
def test_reported_moves_are_fewest_that_explain_the_new_order(orders: tuple[list[str], list[str]]) -> None:
    before, after = orders
    reported = {obj.rsplit(".", 1)[1] for obj in moved(diff_snapshots(table("public.t", *before),
                                                                        table("public.t", *after)))}
    kept_before = [c for c in before if c not in reported]
    kept_after = [c for c in after if c not in reported]
    assert kept_before == kept_after
    new_positions = [after.index(c) for c in before]
    assert len(reported) == len(before) - _longest_increasing_length(new_positions)


def test_a_moved_column_that_also_changed_is_reported_twice() -> None:
    differences = diff_snapshots(table("public.t", "a", "b", "c"), table("public.t", "a", "c", "b", b="bigint"))
    assert [(d.object, d.kind, d.details) for d in differences] == [
        ("column public.t.b", "column_order", (("position", 2, 3),)),
        ("column public.t.b", "schema", (("type", "integer", "bigint"),)),
    ]


def test_added_and_removed_objects_carry_their_attributes() -> None:
    differences = diff_snapshots(table("public.t", "a"), table("public.t", "b"))
    assert differences == [
        Difference("column public.t.a", "removed", details=(("position", 1, None), ("type", "integer", None)),
                   table="public.t"),
        Difference("column public.t.b", "added", details=(("position", None, 1), ("type", None, "integer")),
                   table="public.t"),
    ]


def test_only_row_shaping_differences_name_their_table() -> None:
    """An index or a grant is defined on a table, but changing it cannot change the table's rows."""
    keys = ("index public.ix", "grant SELECT on table public.t to app", "constraint c on public.t")
    before = Snapshot(objects={k: {"definition": "1"} for k in keys}, tables={k: "public.t" for k in keys})
    after = Snapshot(objects={k: {"definition": "2"} for k in keys}, tables=before.tables)
    assert {d.object: d.table for d in diff_snapshots(before, after)} == {
        "index public.ix": None,
        "grant SELECT on table public.t to app": None,
        "constraint c on public.t": "public.t",
    }


def test_identical_snapshots_have_no_differences() -> None:
    snap = table("public.t", "a", "b")
    assert diff_snapshots(snap, Snapshot.from_json(snap.to_json())) == []


def test_report_groups_by_object_and_shows_only_what_changed() -> None:
    before = Snapshot(objects={
        "function public.f()": {"body": "SELECT 1;\nSELECT 2;\nSELECT 3;", "owner": "a", "strict": False},
        "policy p on public.t": {"USING": "(a = 1)", "roles": ["PUBLIC"]},
        "grant SELECT on table public.orgs to svc_app": {"grantable": False},
    })
    after = Snapshot(objects={
        "function public.f()": {"body": "SELECT 1;\nSELECT 20;\nSELECT 3;", "owner": "b", "strict": False,
                                "security definer": True},
        "policy p on public.t": {"USING": "(a = 2)", "roles": ["app", "other"]},
        "schema extra": {"owner": "a"},
    })
    assert format_diff(diff_snapshots(before, after)) == "\n".join([
        "function public.f():",
        "  body changed:",
        "    @@ -1,3 +1,3 @@",
        "     SELECT 1;",
        "    -SELECT 2;",
        "    +SELECT 20;",
        "     SELECT 3;",
        "  owner changed: a -> b",
        "  security definer changed: (none) -> true",
        "grant SELECT on table public.orgs to svc_app: present before, absent after",
        "policy p on public.t:",
        "  USING changed: (a = 1) -> (a = 2)",
        "  roles changed: [PUBLIC] -> [app, other]",
        "schema extra: present after, absent before",
    ])


def test_column_order_reads_as_such() -> None:
    differences = diff_snapshots(table("public.t", "a", "b"), table("public.t", "b", "a"))
    assert format_diff(differences) == "column public.t.a: position changed: 1 -> 2 (column order only)"


def test_difference_json_round_trip() -> None:
    difference = Difference("column public.t.a", "changed", "column_order", (("position", 1, 2),), "public.t")
    assert Difference.from_json(difference.to_json()) == difference


def test_snapshot_json_is_versioned() -> None:
    data = table("public.t", "a").to_json()
    with pytest.raises(ValueError, match="unsupported snapshot format"):
        Snapshot.from_json({**data, "format": 99})

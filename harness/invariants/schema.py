"""Property ``schema``: whatever path led to a revision state, its schema is the reference's.

One comparison covers downgrade-leaves-no-trace (the state after a downgrade is an earlier state),
re-upgrade after downgrade, and branch-order dependence (a state reached through the branches in
another order). Columns that only moved (dropped and re-added at the end of their table) are
reported apart, as ``column_order``, so a project can choose to accept them.
"""

from __future__ import annotations

from ..snapshot import Snapshot, diff_snapshots, format_diff
from ..violations import Violation


def check_schema(
    actual: Snapshot,
    reference: Snapshot,
    *,
    revision: str | None,
    after: str,
    accept_column_order: bool = False,
) -> list[Violation]:
    """Violations for every difference between ``actual`` and ``reference``.

    ``after`` says what produced ``actual`` (e.g. "downgrade of 0003"), for the message.
    """
    differences = diff_snapshots(reference, actual)
    violations = []
    for kind, prop in (("schema", "schema"), ("column_order", "column_order")):
        found = [d for d in differences if d.kind == kind]
        if not found or (prop == "column_order" and accept_column_order):
            continue
        what = "the schema differs from" if prop == "schema" else "columns are out of the order of"
        violations.append(
            Violation(
                property=prop,
                revision=revision,
                message=f"after {after}, {what} the reference "
                f"(the same revisions applied in order from an empty database):\n"
                + format_diff(found),
                evidence={"after": after, "differences": [d.to_json() for d in found]},
            )
        )
    return violations

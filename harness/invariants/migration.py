"""Property ``migration_error``: every step the graph allows succeeds on data the schema admits.

A step that raises (``sys.exit()`` included), or hangs past the statement timeout or the step's
wall-clock limit, is a violation reported with the step, the error and the rows that were
present: most such failures appear only once data is there (a
NOT NULL column without a default, a unique index over duplicates, a narrowing type change).
"""

from __future__ import annotations

from typing import Mapping

from ..runner import StepOutcome
from ..violations import Violation


def check_outcome(
    outcome: StepOutcome, *, command: str, revision: str | None, rows: Mapping[str, int]
) -> list[Violation]:
    """No violation when the step succeeded; otherwise one naming the step and the rows.

    No duration in the evidence: a violation is the same for a seed on any machine under any
    load (``timed_out`` says whether the statement timeout stopped it)."""
    if outcome.ok:
        return []
    present = {table: n for table, n in rows.items() if n}
    data = (
        "with rows present in " + ", ".join(f"{t} ({n})" for t, n in sorted(present.items()))
        if present
        else "with no rows in any table"
    )
    what = "hangs" if outcome.timed_out else "fails"
    return [
        Violation(
            property="migration_error",
            revision=outcome.revision or revision,
            message=f"`{command}` {what} {data}: {outcome.error}",
            evidence={
                "command": command,
                "error": outcome.error,
                "location": outcome.location,
                "timed_out": outcome.timed_out,
                "rows": present,
            },
        )
    ]

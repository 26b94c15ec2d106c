"""Progress while a walk runs, and the coverage summary at its end.

A walk at night runs for hours; a person at a terminal wants to see it move (examples, steps per
second, how much of the graph it has reached, time spent), a CI log wants none of that: a line
rewritten in place is noise in a file. So the live line is drawn only on a terminal, and the
summary -- which revisions and edges were exercised and how often -- is plain text for both.
"""

from __future__ import annotations

import sys
import time
from typing import Any, TextIO

from .session import Coverage

DIRECTIONS = ("upgrade", "downgrade")
_SHORT = {"upgrade": "up", "downgrade": "down"}


class Progress:
    """A status line on ``stream``, redrawn at most every ``interval`` seconds; silent off a TTY."""

    def __init__(self, revisions: list[str], stream: TextIO | None = None, interval: float = 0.5,
                 enabled: bool | None = None) -> None:
        self.stream = stream or sys.stderr
        self.enabled = self.stream.isatty() if enabled is None else enabled
        self.revisions = revisions
        self.interval = interval
        self.examples = 0
        self.started = time.perf_counter()
        self._drawn = 0.0

    def example(self, coverage: Coverage) -> None:
        """A new example (a fresh database walked from scratch) begins."""
        self.examples += 1
        self._draw(coverage)

    def step(self, coverage: Coverage) -> None:
        self._draw(coverage)

    def done(self) -> None:
        """Clear the live line so that what follows starts on a clean one."""
        if self.enabled and self._drawn:
            self.stream.write("\r\033[K")
            self.stream.flush()

    def line(self, coverage: Coverage) -> str:
        elapsed = time.perf_counter() - self.started
        steps = sum(coverage.steps.values())
        revisions = sum(1 for rev in self.revisions if any(coverage.steps[(d, rev)] for d in DIRECTIONS))
        edges = sum(1 for rev in self.revisions for d in DIRECTIONS if coverage.steps[(d, rev)])
        return (
            f"{self.examples} examples, {steps} steps ({steps / elapsed if elapsed else 0:.1f}/s), "
            f"revisions {revisions}/{len(self.revisions)}, "
            f"edges {edges}/{2 * len(self.revisions)}, {_clock(elapsed)}"
        )

    def _draw(self, coverage: Coverage) -> None:
        now = time.perf_counter()
        if not self.enabled or now - self._drawn < self.interval:
            return
        self._drawn = now
        self.stream.write("\r\033[K" + self.line(coverage))
        self.stream.flush()


def coverage_summary(coverage: dict[str, Any]) -> list[str]:
    """Lines saying how often each revision was upgraded and downgraded (and of those, how often
    with rows in the tables it changes), gaps called out; then the same over every run saved.

    An edge of the graph is a revision's migration; it is exercised in two directions, so a
    revision counts as covered only when both its upgrade and its downgrade ran.
    """
    per_revision: dict[str, dict[str, int]] = coverage.get("revisions", {})
    if not per_revision:
        return []
    with_data: dict[str, dict[str, int]] = coverage.get("with_data", {})
    width = max(len(rev) for rev in per_revision)
    lines = [f"coverage: {coverage.get('steps', 0)} steps, {coverage.get('states', 0)} states, "
             f"{coverage.get('seeded_rows', 0)} rows seeded"
             + (f" ({coverage['seed_refused']} of {coverage['seed_attempts']} inserts refused)"
                if coverage.get("seed_attempts") else "")]
    for rev, counts in per_revision.items():
        gaps = [d for d in DIRECTIONS if not counts.get(d)]
        mark = "  never " + " nor ".join(f"{d}d" for d in gaps) if gaps else ""
        on_rows = with_data.get(rev, {})
        lines.append(f"  {rev:<{width}}  " + "  ".join(
            f"{_SHORT[d]} {counts.get(d, 0):>6} ({on_rows.get(d, 0)} on rows)" for d in DIRECTIONS
        ) + mark)
    if coverage.get("merged"):
        from .coverage_history import summary

        lines += summary(coverage["merged"], list(per_revision))
    return lines


def _clock(seconds: float) -> str:
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"

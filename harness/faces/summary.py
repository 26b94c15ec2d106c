"""A run in a few lines: what pytest prints after a harness test, and what junit XML carries.

"2 passed" says nothing about what was walked; these lines say how much (examples, steps,
states, rows), how far (revisions and edges of the graph, the edges never exercised named), what
was checked, and how long it took.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..commands import RunResult


def run_lines(result: RunResult) -> list[str]:
    coverage = result.coverage
    per_revision = coverage.get("revisions", {})
    irreversible = coverage.get("irreversible", {})
    edges = sum(1 for rev, counts in per_revision.items() for op, n in counts.items()
                if n and not (op == "downgrade" and rev in irreversible))
    possible = 2 * len(per_revision) - len(set(irreversible) & set(per_revision))
    reached = sum(1 for counts in per_revision.values() if any(counts.values()))
    seed = f", seed {result.seed}" if result.seed is not None else ""
    if result.shard:
        seed += f", shard {result.shard[0]}/{result.shard[1]}"
    examples = f"{coverage['examples']} examples, " if "examples" in coverage else ""
    if result.health and result.health.get("discarded"):
        examples += f"{result.health['discarded']} discarded, "
    found = "ok" if result.ok else f"FAILED ({len(result.violations)} violations)"
    lines = [
        f"harness {result.command}{seed}: {found} in {result.duration_s:.1f}s",
        f"  {examples}{coverage.get('steps', 0)} steps over {coverage.get('states', 0)} states, "
        f"{coverage.get('seeded_rows', 0)} rows seeded",
        f"  revisions {reached}/{len(per_revision)}, edges {edges}/{possible} exercised",
    ]
    if coverage.get("unvisited"):
        lines.append("  never exercised: " + ", ".join(coverage["unvisited"]))
    if coverage.get("merged"):
        from ..coverage_history import summary

        lines += [f"  {line}" for line in summary(coverage["merged"], list(per_revision))]
    if coverage.get("properties"):
        lines.append("  properties checked: " + ", ".join(coverage["properties"]))
    if result.stopped == "duration":
        lines.append("  stopped at its duration")
    elif result.stopped == "unrepeated":
        lines.append("  ended at a failure that did not repeat")
    lines += [f"  not reached: {rev}: {why}" for rev, why in result.not_reached.items()]
    return lines

"""Check: reversibility and idempotency, as the sweep establishes them.

The sweep (:mod:`harness.sweep`) takes every revision up, down and up again from a clone of the
reference before it, checking every invariant after each step: schema equal to the reference
(the downgrade leaves no trace: reversible), the second upgrade succeeding and giving the same
schema (repeatable after a rollback: what the seed document calls idempotent), rows kept, no
migration error. This section is its result per revision; it shares the report's references.
"""

from __future__ import annotations

from ..sweep import run_sweep
from .context import Context
from .model import VERIFIED, VIOLATED, Section
from .runs import MOVES


def check(ctx: Context) -> Section:
    outcome = run_sweep(ctx.session)
    found = {finding.revision: finding for finding in outcome.findings if finding.revision is not None}
    # What only the whole snapshot at the end of a sweep's trial saw belongs to no row.
    unplaced = [v.headline() for finding in outcome.findings if finding.revision is None for v in finding.violations]
    rows = []
    for rev in ctx.graph.revisions:
        if rev in outcome.not_reached:
            rows.append((rev, ["—"] * 3, f"not reached: {outcome.not_reached[rev]}"))
            continue
        finding = found.get(rev)
        why = ctx.settings.irreversible.get(rev)
        if finding is None and why is not None:
            rows.append((rev, ["ok", "—", "—"], f"declared irreversible ({why}): upgrade only"))
            continue
        if finding is None:
            rows.append((rev, ["ok"] * 3, "reversible and repeatable"))
            continue
        done = len([s for s in finding.steps if s.op != "seed"])
        cells = ["ok"] * (done - 1) + ["**violated**"] + ["—"] * (3 - done)
        rows.append((rev, cells, "; ".join(v.headline() for v in finding.violations)))
    # Each finding's violations together: the Markdown shows them as one block per finding.
    findings = [{"revision": f.revision, "violations": [v.to_json() for v in f.violations]}
                for f in outcome.findings]
    evidence = {
        "revisions": {rev: {"steps": dict(zip(MOVES, cells)), "result": result}
                      for rev, cells, result in rows},
        "violations": [v for f in findings for v in f["violations"]],
        "findings": findings,
        "not_reached": outcome.not_reached,
    }
    bad = sorted(set(found) | set(outcome.not_reached))
    if bad or unplaced:
        status = VIOLATED
        summary = "; ".join([*(result for rev, _, result in rows if rev in bad), *unplaced])
    else:
        status = VERIFIED
        declared = [rev for rev in ctx.graph.revisions if rev in ctx.settings.irreversible]
        summary = (f"{len(rows) - len(declared)} revisions: upgrade, downgrade and upgrade again "
                   "succeed, and after each the schema and the rows equal the reference's")
        if declared:
            summary += f"; declared irreversible, upgraded only: {', '.join(declared)}"
    commands = [ctx.harness("sweep")] + [ctx.harness("sweep", "--revision", rev) for rev in bad]
    return Section("reversibility", "Reversibility and idempotency", status, summary,
                   _body(evidence), evidence, tuple(commands))


def _body(evidence: dict) -> str:
    """The table and each finding's violations as one block, from the evidence alone: the
    Markdown says what the JSON says."""
    lines = ["| revision | upgrade | downgrade | upgrade again | result |", "|---|---|---|---|---|"]
    lines += [f"| {rev} | " + " | ".join(row["steps"][move] for move in MOVES) + f" | {row['result']} |"
              for rev, row in evidence["revisions"].items()]
    for finding in evidence["findings"]:
        lines += ["", "```", *(line for v in finding["violations"] for line in v["message"].splitlines()), "```"]
    return "\n".join(lines)

"""Check: every revision downgrades and upgrades again on a seeded database, leaving no trace.

From :mod:`.runs`: after each upgrade on a seeded database, the downgrade must succeed and
leave exactly the schema of the state before (the reference), and the upgrade after it must
succeed and give the reference of the state after. Times are measured on those databases.
What a downgrade drops with its tables and columns is shown too: the seed document's
"rollback warnings", measured instead of written.

The rollback order is the graph's topological order reversed: for a branched history it is
one order Alembic accepts, each revision downgraded only once nothing applied still needs it.
"""

from __future__ import annotations

from .context import Context
from .model import VERIFIED, VIOLATED, Section
from .dataloss import Loss
from .runs import MOVES, seeded_runs, unfinished


def check(ctx: Context) -> Section:
    runs = seeded_runs(ctx)
    order = list(reversed(ctx.graph.revisions))
    problems = dict(unfinished(runs))
    irreversible = {rev: run.irreversible for rev, run in runs.items() if run.irreversible is not None}
    for revision, run in runs.items():
        for move in run.moves:
            if not move.ok and move is not run.upgrade:  # a failed upgrade is unfinished()
                problems[revision] = f"`{move.command}` fails: {move.error}"
            elif move.schema:
                problems[revision] = f"after `{move.command}`: " + move.schema[0].message.splitlines()[0]
    evidence = {
        "rollback_order": order,
        "irreversible": irreversible,
        "rows_per_table": ctx.options.rows_per_table,
        "revisions": {rev: [m.to_json() for m in runs[rev].moves] for rev in order},
        "messages": {rev: _message(ctx, rev) for rev in order},
        "problems": problems,
    }
    if problems:
        status = VIOLATED
        summary = "; ".join(f"{rev}: {why}" for rev, why in problems.items())
    else:
        status = VERIFIED
        total = sum(m.duration_s for run in runs.values() for m in run.moves[1:])
        tested = len(order) - len(irreversible)
        summary = (f"{tested} revisions downgraded and upgraded again on databases seeded "
                   f"with {ctx.options.rows_per_table} rows per table, each leaving the schema of "
                   f"the reference ({total:.2f}s of migrations)")
        if irreversible:
            summary += "; declared irreversible, never downgraded: " + ", ".join(
                f"{rev} ({why})" for rev, why in irreversible.items())
    # The alembic commands of the revisions at fault, or of the first one as an example.
    shown = [rev for rev in order if rev in problems] or order[:1]
    commands = [ctx.harness("report"), ctx.harness("sweep")]
    commands += [m.command for rev in shown for m in runs[rev].moves]
    return Section("rollback", "Rollback testing", status, summary, _body(evidence), evidence,
                   tuple(commands))


def _message(ctx: Context, rev: str) -> str:
    doc = ctx.graph.revision(rev).doc or ""
    return doc.strip().splitlines()[0] if doc.strip() else ""


def _body(evidence: dict) -> str:
    """The order, the table and the problems, from the evidence alone: the Markdown says what
    the JSON says."""
    irreversible = evidence["irreversible"]
    moves = {rev: dict(zip(MOVES, found)) for rev, found in evidence["revisions"].items()}
    lines = ["Rollback order (derived from the graph, newest first):", ""]
    for position, rev in enumerate(evidence["rollback_order"], start=1):
        effect = (f"cannot be rolled back, declared irreversible ({irreversible[rev]})"
                  if rev in irreversible else _dropped(moves[rev].get("downgrade")))
        lines.append(f"{position}. `{rev}` {evidence['messages'][rev]}: {effect}")
    lines += ["", "| revision | downgrade | schema after | upgrade again | schema after |",
              "|---|---|---|---|---|"]
    for rev in evidence["rollback_order"]:
        down, again = moves[rev].get("downgrade"), moves[rev].get("upgrade again")
        cells = ([_cell(down), _schema(down), _cell(again), _schema(again)]
                 if rev not in irreversible else ["declared irreversible", "—", "—", "—"])
        lines.append(f"| {rev} | " + " | ".join(cells) + " |")
    for rev, why in evidence["problems"].items():
        lines += ["", f"**{rev}**: {why}"]
        lines += [f"```\n{v['message']}\n```" for move in evidence["revisions"][rev] for v in move["schema"]]
    return "\n".join(lines)


def _dropped(move: dict | None) -> str:
    if move is None:
        return "not run"
    if not move["ok"]:
        return "downgrade fails"
    if not move["losses"]:
        return "drops no data"
    return "⚠️ data loss: " + "; ".join(Loss(**loss).describe() for loss in move["losses"])


def _cell(move: dict | None) -> str:
    if move is None:
        return "not run"
    if not move["ok"]:
        return f"fails after {move['duration_s']:.3f}s" + (f" (`{move['location']}`)" if move["location"] else "")
    return f"ok, {move['duration_s']:.3f}s"


def _schema(move: dict | None) -> str:
    if move is None or not move["ok"]:
        return "—"
    return "equals the reference" if not move["schema"] else f"{len(move['schema'])} difference(s)"

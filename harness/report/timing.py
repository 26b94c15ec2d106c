"""Check: how long each migration takes on a seeded database, and which timeouts it runs under.

Durations come from :mod:`.runs` (databases seeded to ``rows_per_table`` rows per table); the
timeouts are the ones the migration's own session had when it committed, so a ``SET
statement_timeout`` in env.py or in a revision counts, and the harness's safety net (the
``statement_timeout_ms`` setting) is told apart from a timeout the project sets itself.

Violated when a migration does not finish on the seeded database: it ran past the statement
timeout (a hang) or failed, so its time is unknown.
"""

from __future__ import annotations

from .context import Context
from .lockprobe import duration_ms
from .model import VERIFIED, VIOLATED, Section
from .runs import MOVES, Move, RevisionRun, seeded_runs, unfinished


def check(ctx: Context) -> Section:
    runs = seeded_runs(ctx)
    harness_ms = ctx.settings.statement_timeout_ms
    problems = dict(unfinished(runs))
    for rev, run in runs.items():
        for move in run.moves:
            if move.timed_out:
                problems[rev] = f"`{move.command}` ran past the statement timeout ({harness_ms} ms)"
    own = {rev: run.statement_timeout for rev, run in runs.items() if _own_timeout(run, harness_ms)}
    timed = [(m.duration_s, m.command) for run in runs.values() for m in run.moves if m.ok]
    evidence = {
        "rows_per_table": ctx.options.rows_per_table,
        "harness_statement_timeout_ms": harness_ms,
        "revisions": {rev: {
            "rows": run.seeded.rows if run.seeded else {},
            "seconds": {label: round(m.duration_s, 4) for label, m in zip(MOVES, run.moves)},
            "ended": {label: _ended(m) for label, m in zip(MOVES, run.moves)},
            "statement_timeout": run.statement_timeout,
            "set_by_project": rev in own,
        } for rev, run in runs.items()},
        "problems": problems,
    }
    timeouts = (f"statement_timeout set by the project in {', '.join(own)}" if own else
                f"no migration sets statement_timeout (the harness's {harness_ms} ms applied)")
    if problems:
        status, summary = VIOLATED, "; ".join(f"{rev}: {why}" for rev, why in problems.items())
    else:
        slowest = max(timed, default=(0.0, "nothing"))
        status = VERIFIED
        summary = (f"every migration finishes on a database seeded with "
                   f"{ctx.options.rows_per_table} rows per table; slowest `{slowest[1]}` "
                   f"{slowest[0]:.3f}s; {timeouts}")
    return Section("statement_time", "Statement time", status, summary, _body(evidence),
                   evidence, (ctx.harness("report", "--rows-per-table", str(ctx.options.rows_per_table)),))


def _own_timeout(run: RevisionRun, harness_ms: int) -> bool:
    return run.statement_timeout is not None and duration_ms(run.statement_timeout) != harness_ms


def _ended(move: Move) -> str:
    return "timed out" if move.timed_out else "ok" if move.ok else "fails"


def _body(evidence: dict) -> str:
    """The table, from the evidence alone: the Markdown says what the JSON says."""
    lines = ["| revision | rows present | upgrade | downgrade | upgrade again | statement_timeout |",
             "|---|---|---|---|---|---|"]
    for rev, found in evidence["revisions"].items():
        setting = found["statement_timeout"] or "—"
        if found["statement_timeout"] and not found["set_by_project"]:
            setting += " (harness)"
        cells = [_time(found["seconds"].get(label), found["ended"].get(label)) for label in MOVES]
        lines.append(f"| {rev} | {sum(found['rows'].values())} | " + " | ".join(cells) + f" | {setting} |")
    return "\n".join(lines)


def _time(seconds: float | None, ended: str | None) -> str:
    if seconds is None:
        return "—"
    if ended == "timed out":
        return f"**timed out** after {seconds:.2f}s"
    return f"{seconds:.3f}s" if ended == "ok" else f"fails after {seconds:.3f}s"

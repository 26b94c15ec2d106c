"""Check: what each upgrade locks on tables that already exist, and what it does when it waits.

From :mod:`.runs`: the locks the upgrade's transaction held at commit on relations that
existed before it (new tables are nobody else's yet), the modes among them that stop reads or
writes, the ``lock_timeout`` it ran under, and the lock probe's result: with another session
holding a conflicting lock, does the upgrade fail fast or wait?

Violated when an upgrade takes a lock that stops reads or writes of an existing table and waits
for it without limit: in production, one long transaction on that table then stalls the
migration and, behind it, every query on the table. ``SET lock_timeout`` (in env.py or at the
top of the revision) makes it fail fast instead, to be retried.
"""

from __future__ import annotations

from .context import Context
from .lockprobe import Probe
from .model import VERIFIED, VIOLATED, Section
from .runs import RevisionRun, seeded_runs, unfinished


def check(ctx: Context) -> Section:
    runs = seeded_runs(ctx)
    problems = dict(unfinished(runs))
    for rev, run in runs.items():
        if run.probe is not None and run.probe.outcome == "waits":
            problems[rev] = f"takes {_taken(run)} and waits for it without lock_timeout"
    evidence = {"revisions": {rev: _json(run) for rev, run in runs.items()}, "problems": problems}
    blockers = [rev for rev, run in runs.items() if any(lock.blocks for lock in run.locks)]
    if problems:
        status, summary = VIOLATED, "; ".join(f"{rev}: {why}" for rev, why in problems.items())
    elif blockers:
        status, summary = VERIFIED, (
            f"{', '.join(blockers)} {'locks' if len(blockers) == 1 else 'lock'} existing tables "
            "against reads or writes but fail fast (lock_timeout) when another transaction holds "
            "a conflicting lock; no other upgrade blocks reads or writes of an existing table")
    else:
        status, summary = VERIFIED, "no upgrade takes a lock that blocks reads or writes of an existing table"
    return Section("lock_safety", "Lock safety", status, summary, _body(evidence, ctx.options.lock_wait_s),
                   evidence, (ctx.harness("report"),))


def _taken(run: RevisionRun) -> str:
    """``ACCESS EXCLUSIVE on 6 existing tables (a, b, ...)``, one phrase per blocking mode."""
    by_mode: dict[str, list[str]] = {}
    for lock in run.locks:
        if lock.blocks:
            by_mode.setdefault(lock.mode, []).append(lock.relation)
    return "; ".join(
        f"{mode} on {len(names)} existing relation{'s' if len(names) > 1 else ''} ({', '.join(names)})"
        for mode, names in by_mode.items()
    )


def _json(run: RevisionRun) -> dict:
    return {
        "measured": run.upgrade is not None and run.upgrade.ok,
        "locks": [{"relation": lock.relation, "kind": lock.kind, "mode": lock.mode,
                   "modes": list(lock.modes), "blocks": lock.blocks} for lock in run.locks],
        "lock_timeout": run.lock_timeout,
        "probe": run.probe.to_json() if run.probe else None,
    }


def _body(evidence: dict, lock_wait_s: float) -> str:
    """The table, from the evidence alone: the Markdown says what the JSON says."""
    lines = ["| revision | locks on existing relations | blocks | lock_timeout | with a conflicting lock held |",
             "|---|---|---|---|---|"]
    for rev, found in evidence["revisions"].items():
        lines.append(f"| {rev} | {_locks(found)} | {_blocks(found)} | {_setting(found['lock_timeout'])} | "
                     f"{Probe(**found['probe']).describe() if found['probe'] else _no_probe(found)} |")
    lines += ["", "Lock modes read from `pg_locks` of the migration's own session just before it "
              "commits. ACCESS EXCLUSIVE blocks reads and writes; SHARE, SHARE ROW EXCLUSIVE and "
              "EXCLUSIVE block writes. The probe holds, in another session, the lock a reader "
              "(ACCESS SHARE) or a writer (ROW EXCLUSIVE) would hold, and lets go after "
              f"{lock_wait_s:.0f}s (longer when the migration's lock_timeout is)."]
    return "\n".join(lines)


def _locks(found: dict) -> str:
    if not found["measured"]:
        return "not measured (upgrade did not run)"
    # An index is locked with its table; listing both says nothing more.
    shown = [f"{lock['relation']} ({lock['kind']}): {lock['mode']}" for lock in found["locks"]
             if lock["kind"] != "index"]
    return "<br>".join(shown) or "none"


def _blocks(found: dict) -> str:
    blocked = sorted({f"{lock['blocks']} of {lock['relation']}" for lock in found["locks"] if lock["blocks"]})
    return "<br>".join(blocked) or "nothing"


def _setting(value: str | None) -> str:
    return "not set" if value in (None, "0") else value


def _no_probe(found: dict) -> str:
    return "not probed: nothing to wait for" if found["measured"] else "—"

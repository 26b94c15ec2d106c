"""Check: tenant isolation at every revision, acting as the application's roles.

Two sources, both through :mod:`harness.invariants.isolation` (the roles select, insert,
update and delete as one tenant and must never reach another's rows):

* deterministic: the state after each revision, on the report's seeded database (many tenants,
  ``rows_per_table`` rows per table), checked once;
* the walk: Hypothesis' random walk over the graph with its own edge-case rows, checking after
  every step, with the report's seed, so ``harness walk --seed`` repeats it.

The setup (tenant setting, tenant column, roles) is detected at head, where policies and grants
are complete, and used at every revision. Not applicable when there is nothing to isolate: no
policy reads a tenant setting, or no role other than owners and superusers is granted a table.
"""

from __future__ import annotations

import dataclasses

from ..machine import run_walk
from ..references import Unreachable
from ..violations import Violation
from .context import Context, Options
from .model import NOT_APPLICABLE, VERIFIED, VIOLATED, Section
from .runs import seeded_runs, unfinished


@dataclasses.dataclass
class _Walk:
    """What the walk did and found, sorted for this section."""

    ran: bool
    steps: int = 0
    states: int = 0
    visits: dict[str, tuple[int, int]] = dataclasses.field(default_factory=dict)
    """Revision -> (upgrades, downgrades) the walk made of it."""
    leaks: dict[str | None, list[Violation]] = dataclasses.field(default_factory=dict)
    """Isolation violations by revision (None: found right after rows were inserted)."""
    others: list[Violation] = dataclasses.field(default_factory=list)
    """Violations of other properties, which end an example before isolation is checked."""

    def to_json(self, options: Options) -> dict:
        return {
            "seed": options.seed, "examples": options.walk_examples, "steps": options.walk_steps,
            "ran": self.ran, "steps_taken": self.steps, "states": self.states,
            "visits": {rev: {"upgrade": up, "downgrade": down} for rev, (up, down) in self.visits.items()},
            "isolation_violations": [v.to_json() for vs in self.leaks.values() for v in vs],
            "other_violations": [v.to_json() for v in self.others],
        }


def check(ctx: Context) -> Section:
    key, title = "tenant_isolation", "Tenant isolation"
    try:
        ctx.references.template(ctx.graph.heads)
    except Unreachable as exc:
        return Section(key, title, NOT_APPLICABLE, f"head cannot be reached, so neither can the "
                       f"policies and grants that say what to isolate: {exc}")
    setup = ctx.isolation_setup
    if setup is None:
        return Section(key, title, NOT_APPLICABLE,
                       "nothing to isolate: no row-level security policy reads a tenant setting "
                       "at head, or no application role (other than owners and superusers) is "
                       "granted a table carrying the tenant column")
    runs, options = seeded_runs(ctx), ctx.options
    walk = _walk(ctx)
    leaks = [v for run in runs.values() for v in run.isolation]
    leaks += [v for vs in walk.leaks.values() for v in vs]
    missing = unfinished(runs)
    if leaks:
        status, summary = VIOLATED, "; ".join(v.headline() for v in leaks[:5])
    elif missing:
        status = VIOLATED
        summary = "isolation not checked at " + "; ".join(f"{r} ({why})" for r, why in missing.items())
    else:
        walked = (f"the walk took {walk.steps} steps over {walk.states} states without a leak"
                  if walk.ran else "the walk was not run (walk_examples = 0)")
        status, summary = VERIFIED, (
            f"as {', '.join(setup.app_roles)} with {setup.tenant_setting} set, no revision lets "
            f"one tenant read or change another's rows ({setup.tenant_column}); {walked}")
    evidence = {
        "setup": {"tenant_setting": setup.tenant_setting, "tenant_column": setup.tenant_column,
                  "app_roles": list(setup.app_roles)},
        "revisions": {rev: {"reachable": {r: list(rels) for r, rels in run.reachable.items()},
                            "tenants": run.tenants,
                            "violations": [v.to_json() for v in run.isolation]}
                      for rev, run in runs.items()},
        "walk": walk.to_json(options),
        "unfinished": missing,
    }
    commands = [ctx.harness("report")]
    if walk.ran:
        commands.append(ctx.harness("walk", "--seed", str(options.seed), "--max-examples",
                                    str(options.walk_examples), "--steps", str(options.walk_steps)))
    return Section(key, title, status, summary, _body(evidence), evidence, tuple(commands))


def _body(evidence: dict) -> str:
    """The setup, the table and the leaks, from the evidence alone: the Markdown says what the
    JSON says."""
    setup, walk = evidence["setup"], evidence["walk"]
    lines = [f"- Tenant setting `{setup['tenant_setting']}`, tenant column `{setup['tenant_column']}`, "
             f"application roles {', '.join(f'`{r}`' for r in setup['app_roles'])} (detected at head)",
             "", "| revision | relations granted to the roles | tenants with rows | seeded check | "
             "walk: upgrades / downgrades | walk |", "|---|---|---|---|---|---|"]
    for rev, found in evidence["revisions"].items():
        granted = {rel for rels in found["reachable"].values() for rel in rels}
        seeded = _verdict(found["violations"]) if granted else "nothing granted yet"
        visits = walk["visits"].get(rev, {"upgrade": 0, "downgrade": 0})
        walked = [v for v in walk["isolation_violations"] if v["revision"] == rev]
        shown = (f"{visits['upgrade']} / {visits['downgrade']} | {_verdict(walked)}" if walk["ran"]
                 else "not run | —")
        lines.append(f"| {rev} | {len(granted)} | {found['tenants']} | {seeded} | {shown} |")
    leaks = [v for found in evidence["revisions"].values() for v in found["violations"]]
    for violation in leaks + walk["isolation_violations"]:
        lines += ["", "```", *violation["message"].splitlines(), "```"]
    if walk["other_violations"]:
        lines += ["", "The walk also found violations of other properties, which end an example "
                  "before isolation is checked (see `harness walk`):",
                  *(f"- {Violation.from_json(v).headline()}" for v in walk["other_violations"])]
    return "\n".join(lines)


def _walk(ctx: Context) -> _Walk:
    """The walk on the report's session; its coverage counted apart from the sweep's.

    ``walk_examples = 0`` skips it, for a quick report; the section then says so.
    """
    if not ctx.options.walk_examples:
        return _Walk(ran=False)
    coverage = ctx.session.coverage
    steps_before, states_before = coverage.steps.copy(), coverage.states.copy()
    outcome = run_walk(ctx.session, seed_value=ctx.options.seed, profile="dev",
                       max_examples=ctx.options.walk_examples, steps=ctx.options.walk_steps)
    steps = coverage.steps - steps_before
    walk = _Walk(
        ran=True, steps=sum(steps.values()), states=len(coverage.states - states_before),
        visits={rev: (steps[("upgrade", rev)], steps[("downgrade", rev)]) for rev in ctx.graph.revisions},
    )
    for failure in outcome.failures:
        for violation in failure.violations:
            if violation.property == "tenant_isolation":
                walk.leaks.setdefault(violation.revision, []).append(violation)
            else:
                walk.others.append(violation)
    return walk


def _verdict(violations: list) -> str:
    return f"**{len(violations)} leak(s)**" if violations else "isolated"

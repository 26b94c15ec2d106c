"""Check: the schema at head, listed from the catalogs, and checked against what must be there.

The objects come from the head reference's snapshot (every revision applied in order from an
empty database), so the list is what a deployment really gets, not what the files say. Three
things make it violated:

* head cannot be reached from an empty database;
* an object named in ``expected_objects`` (snapshot keys such as ``table public.tenants``,
  ``policy tenant_isolation on public.tenants``) is missing;
* a table has policies but row-level security is not enabled on it: ``CREATE POLICY``
  alone does nothing, a mistake that looks right in every listing of policies.
"""

from __future__ import annotations

import collections

from ..references import Unreachable
from ..snapshot import Snapshot
from .context import Context
from .model import VERIFIED, VIOLATED, Section

LISTED = ("schema", "table", "view", "materialized view", "foreign table", "sequence", "type",
          "function", "procedure", "trigger", "policy", "grant", "revoke", "default privileges",
          "extension", "index")
"""Kinds listed one by one; columns and constraints are counted per table instead."""
_MULTI_WORD = ("materialized view", "foreign table", "default privileges", "event trigger",
               "foreign-data wrapper")


def kind_of(key: str) -> str:
    """The kind of a snapshot key: ``materialized view`` for ``materialized view public.mv``."""
    return next((k for k in _MULTI_WORD if key.startswith(k + " ")), key.split(" ", 1)[0])


def check(ctx: Context) -> Section:
    key, title = "schema", "Schema validation"
    expected = ctx.options.expected_objects
    command = (ctx.harness("report"),)
    try:
        snapshot = ctx.references.snapshot(ctx.graph.heads)
    except Unreachable as exc:
        return Section(key, title, VIOLATED, f"head cannot be reached from an empty database: {exc}",
                       evidence={"unreachable": str(exc)}, commands=command)
    by_kind: dict[str, list[str]] = collections.defaultdict(list)
    for name in snapshot.objects:
        by_kind[kind_of(name)].append(name)
    missing = [name for name in expected if name not in snapshot.objects]
    inert = _policies_without_rls(snapshot)
    evidence = {
        "counts": {kind: len(names) for kind, names in sorted(by_kind.items())},
        "objects": {kind: names for kind, names in sorted(by_kind.items()) if kind in LISTED},
        "tables": _tables(snapshot, by_kind),
        "expected": list(expected), "missing": missing, "policies_without_rls": inert,
        "version": [list(row) for row in snapshot.versions],
    }
    problems = [f"missing: {', '.join(missing)}"] if missing else []
    if inert:
        problems.append("policies on tables without row-level security enabled: " + ", ".join(inert))
    order = [*LISTED, *sorted(set(by_kind) - set(LISTED))]
    counts = ", ".join(_plural(len(by_kind[kind]), kind) for kind in order if kind in by_kind)
    if problems:
        status, summary = VIOLATED, "; ".join(problems)
    else:
        against = (f"all {len(expected)} expected objects present" if expected else
                   "no expected list configured (`expected_objects` in [tool.harness])")
        status, summary = VERIFIED, f"head reached from an empty database: {counts}; {against}"
    return Section(key, title, status, summary, _body(evidence), evidence, command)


def _plural(count: int, kind: str) -> str:
    if count == 1 or kind.endswith("privileges"):
        return f"{count} {kind}"
    irregular = {"index": "indexes", "policy": "policies"}
    return f"{count} {irregular.get(kind, kind + 's')}"


def _policies_without_rls(snapshot: Snapshot) -> list[str]:
    found = []
    for name in snapshot.objects:
        if kind_of(name) == "policy":
            table = name.rsplit(" on ", 1)[-1]
            if not snapshot.objects.get(f"table {table}", {}).get("row level security", True):
                found.append(name)
    return found


def _tables(snapshot: Snapshot, by_kind: dict[str, list[str]]) -> dict[str, dict]:
    """Each table at head: how many columns, constraints and indexes, row-level security, policies."""
    owned = collections.Counter((kind_of(k), snapshot.tables.get(k)) for k in snapshot.objects)
    found = {}
    for name in by_kind.get("table", []):
        qualified = name.split(" ", 1)[1]
        attrs = snapshot.objects[name]
        found[qualified] = {
            "columns": owned[("column", qualified)], "constraints": owned[("constraint", qualified)],
            "indexes": sum(1 for k in by_kind.get("index", []) if snapshot.tables.get(k) == qualified),
            "row_level_security": ("enabled, forced" if attrs.get("force row level security") else "enabled")
            if attrs.get("row level security") else "off",
            "policies": [p.split(" ")[1] for p in by_kind.get("policy", []) if p.endswith(f" on {qualified}")],
        }
    return found


def _body(evidence: dict) -> str:
    """The tables, the other objects listed and the expected ones, from the evidence alone."""
    lines = []
    if evidence["tables"]:
        lines += ["| table | columns | constraints | indexes | row-level security | policies |",
                  "|---|---|---|---|---|---|"]
        for qualified, table in evidence["tables"].items():
            lines.append(f"| {qualified} | {table['columns']} | {table['constraints']} | {table['indexes']} | "
                         f"{table['row_level_security']} | {', '.join(table['policies']) or '—'} |")
    for kind in LISTED:
        if kind in ("table", "index") or kind not in evidence["objects"]:
            continue
        names = evidence["objects"][kind]
        lines += ["", f"**{kind}** ({len(names)}):", ""] + [f"- `{n}`" for n in names]
    expected = evidence["expected"]
    if expected:
        lines += ["", f"Expected objects ({len(expected)}): "
                  + ", ".join(f"`{n}`" + (" **missing**" if n in evidence["missing"] else " ✓") for n in expected)]
    return "\n".join(lines)

"""Check: the dependency graph -- linear or not, branches, merges, heads -- drawn as text.

Branches and merges are normal in a team's history; an unmerged branch is not: with several
heads, ``alembic upgrade head`` refuses to run and every deployment must name its heads, so a
history with more than one head is reported as violated.
"""

from __future__ import annotations

from ..graph import RevisionGraph
from .context import Context
from .model import VERIFIED, VIOLATED, Section


def check(ctx: Context) -> Section:
    graph = ctx.graph
    heads = sorted(graph.heads)
    bases = sorted(graph.bases)
    branch_points = [r for r in graph.revisions if len(graph.children(r)) > 1]
    merges = [r for r in graph.revisions if len(graph.parents(r)) > 1]
    linear = not branch_points and not merges and len(bases) == 1
    shape = "linear" if linear else (
        f"branched: {len(branch_points)} branch point(s), {len(merges)} merge(s), "
        f"{len(bases)} base(s)"
    )
    evidence = {
        "linear": linear, "revisions": list(graph.revisions), "bases": bases, "heads": heads,
        "branch_points": {r: list(graph.children(r)) for r in branch_points},
        "merges": {r: list(graph.parents(r)) for r in merges},
        "drawing": draw(graph),
    }
    if len(heads) > 1:
        status, summary = VIOLATED, (
            f"{len(heads)} heads ({', '.join(heads)}): `alembic upgrade head` refuses to run; "
            "merge them (`alembic merge heads`)"
        )
    else:
        status, summary = VERIFIED, f"{len(graph.revisions)} revisions, {shape}, one head ({heads[0]})"
    body = "\n".join([
        f"- Shape: {shape}",
        f"- Bases: {', '.join(bases)}; heads: {', '.join(heads)}",
        *(f"- Branch point {r}: {', '.join(kids)}" for r, kids in evidence["branch_points"].items()),
        *(f"- Merge {r} of {', '.join(parents)}" for r, parents in evidence["merges"].items()),
        "",
        "```",
        *draw(graph),
        "```",
    ])
    return Section("dependency_graph", "Dependency graph", status, summary, body, evidence,
                   ("alembic history", "alembic heads"))


def draw(graph: RevisionGraph) -> list[str]:
    """The graph as lines of text, base at the top; a chain stays in one column.

    Each revision hangs under the parent applied last (in topological order); its other parents
    point to it with a "merged into" line, so every edge is drawn once.
    """
    order = {rev: i for i, rev in enumerate(graph.revisions)}

    def primary(rev: str) -> str:
        return max(graph.parents(rev), key=order.__getitem__)

    lines: list[str] = []

    def chain(rev: str, first: str, rest: str) -> None:
        prefix = first
        while True:
            lines.append(f"{prefix}● {_label(graph, rev)}")
            prefix = rest
            kids = [c for c in graph.children(rev) if primary(c) == rev]
            lines.extend(f"{rest}  ↳ merged into {c}" for c in graph.children(rev) if primary(c) != rev)
            if len(kids) != 1:
                break
            rev = kids[0]
        for i, kid in enumerate(kids):
            last = i == len(kids) - 1
            chain(kid, rest + ("└─" if last else "├─"), rest + ("  " if last else "│ "))

    for base in sorted(graph.bases, key=order.__getitem__):
        chain(base, "", "")
    return lines


def _label(graph: RevisionGraph, rev: str) -> str:
    script = graph.revision(rev)
    tags = []
    if not graph.parents(rev):
        tags.append("base")
    if len(graph.parents(rev)) > 1:
        tags.append("merge of " + ", ".join(graph.parents(rev)))
    if not graph.children(rev):
        tags.append("head")
    message = (script.doc or "").strip().splitlines()[0] if script.doc else ""
    return f"{rev} {message}".rstrip() + (f" ({'; '.join(tags)})" if tags else "")

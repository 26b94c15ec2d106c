"""Check: the dependency graph -- linear or not, branches, merges, heads -- drawn twice.

Branches and merges are normal in a team's history; an unmerged branch is not: with several
heads, ``alembic upgrade head`` refuses to run and every deployment must name its heads, so a
history with more than one head is reported as violated.

The graph is drawn as a Mermaid diagram, which GitHub and GitLab render in the markdown, with
the revisions other sections found violated marked; and as a text tree for terminals.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Iterable, Mapping

from ..graph import RevisionGraph
from .context import Context
from .model import VERIFIED, VIOLATED, Section

KEY = "dependency_graph"


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
        "mermaid": mermaid(graph),
    }
    if len(heads) > 1:
        status, summary = VIOLATED, (
            f"{len(heads)} heads ({', '.join(heads)}): `alembic upgrade head` refuses to run; "
            "merge them (`alembic merge heads`)"
        )
    else:
        status, summary = VERIFIED, f"{len(graph.revisions)} revisions, {shape}, one head ({heads[0]})"
    return Section(KEY, "Dependency graph", status, summary, _body(evidence, shape), evidence,
                   ("alembic history", "alembic heads"))


def mark_violations(sections: tuple[Section, ...], graph: RevisionGraph) -> tuple[Section, ...]:
    """The sections, the graph's diagram marking every revision a violated section names."""
    violated = sorted({rev for s in sections if s.status == VIOLATED
                       for rev in revisions_named(s.evidence)} & set(graph.revisions))
    if not violated:
        return sections

    def marked(section: Section) -> Section:
        if section.key != KEY:
            return section
        evidence = {**section.evidence, "violated": violated, "mermaid": mermaid(graph, violated)}
        shape = section.body.splitlines()[0].removeprefix("- Shape: ")
        return dataclasses.replace(section, evidence=evidence, body=_body(evidence, shape))

    return tuple(marked(s) for s in sections)


def revisions_named(evidence: Any) -> set[str]:
    """The revisions a section's evidence blames, however deep: those a violation or a destructive
    operation names, and the keys of its ``problems``, ``not_reached`` and ``observed``; never
    the declared data migrations, nor revisions that merely appear in the steps walked."""
    named: set[str] = set()
    if isinstance(evidence, Mapping):
        if isinstance(evidence.get("revision"), str) and ({"property", "operation"} & set(evidence)):
            named.add(evidence["revision"])
        for key, value in evidence.items():
            if key in _BLAMING and isinstance(value, Mapping):
                named |= set(value)
            elif key != "steps":
                named |= revisions_named(value)
        named -= set(evidence.get("data_migrations", ()))
    elif isinstance(evidence, (list, tuple)):
        for item in evidence:
            named |= revisions_named(item)
    return named


_BLAMING = ("problems", "not_reached", "observed")


def _body(evidence: Mapping[str, Any], shape: str) -> str:
    violated = evidence.get("violated", [])
    return "\n".join([
        f"- Shape: {shape}",
        f"- Bases: {', '.join(evidence['bases'])}; heads: {', '.join(evidence['heads'])}",
        *(f"- Branch point {r}: {', '.join(kids)}" for r, kids in evidence["branch_points"].items()),
        *(f"- Merge {r} of {', '.join(parents)}" for r, parents in evidence["merges"].items()),
        *([f"- Violated (marked red): {', '.join(violated)}"] if violated else []),
        "",
        "```mermaid",
        *evidence["mermaid"],
        "```",
        "",
        "```",
        *evidence["drawing"],
        "```",
    ])


def mermaid(graph: RevisionGraph, violated: Iterable[str] = ()) -> list[str]:
    """A Mermaid flowchart, base at the top: an arrow per parent, so merges show their parents.

    Bases and heads are drawn rounded, merges as hexagons; node names are positions, since
    revision ids may hold characters Mermaid reads as syntax.
    """
    node = {rev: f"r{i}" for i, rev in enumerate(graph.revisions)}
    lines = ["flowchart TD"]
    for rev in graph.revisions:
        label = _label(graph, rev).replace('"', "#quot;")
        opening, closing = ("{{", "}}") if len(graph.parents(rev)) > 1 else (
            ("([", "])") if not graph.parents(rev) or not graph.children(rev) else ("[", "]"))
        lines.append(f'    {node[rev]}{opening}"{label}"{closing}')
    lines += [f"    {node[parent]} --> {node[rev]}" for rev in graph.revisions for parent in graph.parents(rev)]
    marked = [node[rev] for rev in violated if rev in node]
    if marked:
        lines += ["    classDef violated fill:#fdd,stroke:#c00,stroke-width:3px",
                  f"    class {','.join(marked)} violated"]
    return lines


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

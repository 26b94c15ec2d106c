"""Check: no upgrade destroys data -- read from the code, and measured on seeded databases.

Two kinds of evidence, because each misses what the other sees:

* static: each revision's ``upgrade()`` parsed with ``ast``: ``drop_table``, ``drop_column``,
  ``alter_column(type_=...)`` (on ``op`` or a batch operation), and SQL strings (f-strings
  included) with DROP TABLE/COLUMN/SCHEMA, a column TYPE change, TRUNCATE, DELETE or UPDATE.
  It names the file and line, but cannot see SQL built elsewhere or what a type change does to
  the values actually stored.
* executed: the upgrade run on a seeded database, every column's values compared before and
  after (:mod:`.dataloss`). It shows real loss per column, but only on the rows generated.

A revision listed in ``data_migrations`` changes rows on purpose: its findings are shown and
do not violate the check. Downgrades are not scanned: dropping what the upgrade created is
their job (the rollback section reports what they drop).
"""

from __future__ import annotations

import ast
import dataclasses
import re
from pathlib import Path
from typing import Sequence

from .context import Context
from .dataloss import Loss
from .model import VERIFIED, VIOLATED, Section
from .runs import seeded_runs, unfinished

_DROPPING_CALLS = {"drop_table": "drop table", "drop_column": "drop column"}
_SQL = (
    (re.compile(r"\bDROP\s+TABLE\b", re.I), "DROP TABLE"),
    (re.compile(r"\bDROP\s+SCHEMA\b", re.I), "DROP SCHEMA"),
    (re.compile(r"\bDROP\s+COLUMN\b", re.I), "DROP COLUMN"),
    (re.compile(r"\bALTER\s+COLUMN\s+\S+\s+(?:SET\s+DATA\s+)?TYPE\b", re.I), "column type change"),
    (re.compile(r"\bTRUNCATE\b", re.I), "TRUNCATE"),
    (re.compile(r"\bDELETE\s+FROM\b", re.I), "DELETE"),
    (re.compile(r"\bUPDATE\s+(?:ONLY\s+)?[\w.\"{}]+\s+(?:AS\s+\w+\s+)?SET\b", re.I), "UPDATE"),
)


@dataclasses.dataclass(frozen=True)
class Operation:
    """A destructive operation in an upgrade's source."""

    revision: str
    path: str
    line: int
    operation: str
    code: str


def check(ctx: Context) -> Section:
    exempt = set(ctx.settings.data_migrations)
    static = [op for rev in ctx.graph.revisions
              for op in scan_upgrade(rev, Path(ctx.graph.revision(rev).path), ctx.shown)]
    runs = seeded_runs(ctx)
    observed = {rev: run.upgrade.losses for rev, run in runs.items()
                if run.upgrade is not None and run.upgrade.losses}
    missing = unfinished(runs)
    offending = sorted(({op.revision for op in static} | set(observed)) - exempt)
    evidence = {
        "static": [dataclasses.asdict(op) for op in static],
        "observed": {rev: [loss.to_json() for loss in found] for rev, found in observed.items()},
        "data_migrations": sorted(exempt),
        "unfinished": missing,
        "measured": [rev for rev, run in runs.items() if run.upgrade is not None and run.upgrade.ok],
        "rows_per_table": ctx.options.rows_per_table,
    }
    if offending:
        status = VIOLATED
        summary = f"destructive upgrade(s) in {', '.join(offending)}: " + "; ".join(
            [f"{op.operation} at {op.path}:{op.line}" for op in static if op.revision in offending]
            + [loss.describe() for rev in offending for loss in observed.get(rev, ())]
        )
    elif missing:
        status = VIOLATED
        summary = "no data evidence for " + "; ".join(f"{r} ({why})" for r, why in missing.items())
    else:
        status = VERIFIED
        summary = (f"no drop, type change, TRUNCATE, DELETE or UPDATE in any upgrade(); every "
                   f"value of every column kept by every upgrade on a database seeded with "
                   f"{ctx.options.rows_per_table} rows per table")
    body = _body(ctx.graph.revisions, evidence)
    commands = (ctx.harness("report"), ctx.harness("sweep"))
    return Section("destructive_operations", "Destructive operations", status, summary, body,
                   evidence, commands)


def _body(revisions: Sequence[str], evidence: dict) -> str:
    """The table, from the evidence alone: the Markdown says what the JSON says."""
    lines = ["| revision | static scan of upgrade() | data lost on the seeded database |",
             "|---|---|---|"]
    for rev in revisions:
        found = [f"{op['operation']} (`{op['path']}:{op['line']}`)" for op in evidence["static"]
                 if op["revision"] == rev]
        if rev not in evidence["measured"]:
            measured = "not measured: the upgrade did not run (see Rollback testing)"
        else:
            measured = "; ".join(Loss(**loss).describe() for loss in evidence["observed"].get(rev, ())) or "none"
        note = " (declared in data_migrations)" if rev in evidence["data_migrations"] else ""
        lines.append(f"| {rev}{note} | {'; '.join(found) or 'nothing destructive'} | {measured} |")
    return "\n".join(lines)


def scan_upgrade(revision: str, path: Path, shown) -> list[Operation]:
    """Destructive operations in the ``upgrade()`` of one revision file."""
    source = path.read_text(encoding="utf-8")
    tree = ast.parse(source, filename=str(path))
    upgrade = next((node for node in tree.body
                    if isinstance(node, ast.FunctionDef) and node.name == "upgrade"), None)
    if upgrade is None:
        return []
    found = []
    docstring = ast.get_docstring(upgrade, clean=False)
    # An f-string's literal parts are nodes of their own; the f-string is judged as a whole.
    parts = {id(v) for n in ast.walk(upgrade) if isinstance(n, ast.JoinedStr) for v in n.values}
    for node in ast.walk(upgrade):
        if id(node) in parts:
            continue
        for operation in _operations(node, docstring):
            code = (ast.get_source_segment(source, node) or "").strip().splitlines()[0]
            found.append(Operation(revision, shown(path), node.lineno, operation, code))
    return found


def _operations(node: ast.AST, docstring: str | None) -> list[str]:
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
        name = node.func.attr
        if name in _DROPPING_CALLS:
            target = ", ".join(ast.unparse(a) for a in node.args[:2])
            return [f"{_DROPPING_CALLS[name]} {target}".strip()]
        if name == "alter_column" and any(k.arg == "type_" for k in node.keywords):
            target = ", ".join(ast.unparse(a) for a in node.args[:2])
            return [f"column type change {target}".strip()]
        return []
    text = _string(node)
    if text is None or text == docstring:
        return []
    return [label for pattern, label in _SQL if pattern.search(text)]


def _string(node: ast.AST) -> str | None:
    """A string literal's text; an f-string's with ``{}`` for each interpolated part."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.JoinedStr):
        return "".join(v.value if isinstance(v, ast.Constant) else "{}" for v in node.values)
    return None

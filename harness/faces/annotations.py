"""Annotations: violations located in files, what CI faces (GitHub, SARIF, Code Quality) point at.

A violation names a revision; a reviewer wants the line. The line is the failing operation's
when a migration raised inside its revision file (the traceback says where), otherwise the
``def upgrade()`` or ``def downgrade()`` whose step broke the property, found in the revision
file with :mod:`ast` -- never by running or importing it again.
"""

from __future__ import annotations

import ast
import dataclasses
import functools
import hashlib
import os
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping

from ..baseline import fingerprints

if TYPE_CHECKING:
    from ..commands import RunResult
    from ..report import Report

RULES: dict[str, str] = {
    "schema": "Whatever path led to a revision state, its schema equals the reference "
              "(the same revisions applied in order from an empty database).",
    "column_order": "Columns come back where they were after a round trip.",
    "migration_error": "Every step the graph allows succeeds on any data the schema admits, "
                       "and none hangs.",
    "data": "Steps that change no table structure keep every row; an upgrade and its "
            "downgrade give back every row.",
    "tenant_isolation": "Acting as the application role with one tenant set, every granted "
                        "table and view shows and changes only that tenant's rows.",
    "models": "At the heads, Alembic's autogenerate comparison of the database against the "
              "project's target_metadata finds nothing.",
    "heads": "The history has no more heads than the heads setting allows.",
}
"""One sentence per property, as the README states it."""


@dataclasses.dataclass(frozen=True)
class Annotation:
    """One violation (or violated report section) at one place in one file."""

    rule: str
    revision: str | None
    message: str
    """The whole text: first line a headline, then the evidence."""
    path: str
    """Relative to the root the faces were given (the repository), in POSIX form."""
    line: int
    fingerprint: str
    """Stable across runs and machines: property, revision and the objects found."""

    @property
    def title(self) -> str:
        return f"[{self.rule}]" + (f" at {self.revision}" if self.revision else "")


def from_run(result: RunResult, root: Path | None = None) -> list[Annotation]:
    """An annotation per violation of a walk, sweep or replay, located in its revision file."""
    root = root or Path.cwd()
    found = []
    for failure in result.failures:
        last_op = next((s.op for s in reversed(failure.steps) if s.op != "seed"), "upgrade")
        for violation in failure.violations:
            source = result.sources.get(violation.revision or "")
            path, line = (source, _line(source, violation.evidence, last_op)) if source else (
                result.alembic_ini, 1)
            digest = "\n".join(fingerprints(violation)) or violation.headline()
            found.append(Annotation(violation.property, violation.revision, violation.message,
                                 _shown(path, root), line, _hash(digest)))
    return found


def from_report(report: Report, root: Path | None = None) -> list[Annotation]:
    """An annotation per revision a violated report section names (else one at alembic.ini)."""
    from ..report.dependencies import revisions_named

    root = root or Path.cwd()
    files = {r["id"]: r["file"] for r in report.project.get("revisions", [])}
    ini = report.project.get("alembic_ini", "alembic.ini")
    found = []
    for section in report.sections:
        if section.status != "violated":
            continue
        revisions = sorted(set(revisions_named(section.evidence)) & set(files)) or [None]
        for rev in revisions:
            path = files[rev] if rev else ini
            line = _def_line(str(Path(path).resolve()), "upgrade") if rev else 1
            found.append(Annotation(section.key, rev, f"{section.title}: {section.summary}",
                                 _shown(path, root), line, _hash(f"{section.key}|{rev}")))
    return found


def _line(source: str, evidence: Mapping[str, Any], last_op: str) -> int:
    """The raising line when it is in ``source``, else the line of the function that ran."""
    location = evidence.get("location") or ""
    where, _, number = location.rpartition(":")
    if where and number.isdigit() and os.path.abspath(where) == os.path.abspath(source):
        return int(number)
    said = str(evidence.get("command") or evidence.get("after") or "")
    op = "downgrade" if "downgrade" in said else "upgrade" if said else last_op
    return _def_line(source, "downgrade" if op == "downgrade" else "upgrade")


@functools.lru_cache(maxsize=1024)
def _def_line(path: str, name: str) -> int:
    """The line of ``def name`` at the top of the module in ``path``; 1 when there is none."""
    try:
        tree = ast.parse(Path(path).read_text(), filename=path)
    except (OSError, SyntaxError, ValueError):
        return 1
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name == name:
            return node.lineno
    return 1


def _shown(path: str | os.PathLike[str], root: Path) -> str:
    """``path`` relative to ``root`` when inside it (what CI services resolve), else absolute."""
    absolute = Path(path).resolve()
    try:
        return absolute.relative_to(root.resolve()).as_posix()
    except ValueError:
        return absolute.as_posix()


def _hash(text: str) -> str:
    return hashlib.sha256(re.sub(r"\s+", " ", text).encode()).hexdigest()[:32]

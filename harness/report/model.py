"""The report as data: one section per check, each with a status, evidence and a command.

A section's status is one of three words and nothing softer: ``verified`` (the check ran and
found nothing wrong), ``violated`` (it ran and found something; the evidence says what and
where), ``not applicable`` (it could not run here, and ``summary`` says why). Markdown and JSON
are two renderings of the same values, so the document and the CI artefact never disagree.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Literal

Status = Literal["verified", "violated", "not applicable"]

VERIFIED: Status = "verified"
VIOLATED: Status = "violated"
NOT_APPLICABLE: Status = "not applicable"

_ICONS = {VERIFIED: "✅", VIOLATED: "❌", NOT_APPLICABLE: "➖"}


@dataclasses.dataclass(frozen=True)
class Section:
    """The outcome of one check."""

    key: str
    """Stable identifier for machines (``lock_safety``)."""
    title: str
    status: Status
    summary: str
    """One sentence: what was checked and what came out."""
    body: str = ""
    """Markdown: the evidence as tables and lists."""
    evidence: dict[str, Any] = dataclasses.field(default_factory=dict)
    """The same evidence as JSON-ready data."""
    commands: tuple[str, ...] = ()
    """Commands that reproduce the evidence."""

    def to_json(self) -> dict[str, Any]:
        return {
            "key": self.key, "title": self.title, "status": self.status,
            "summary": self.summary, "evidence": self.evidence, "commands": list(self.commands),
        }

    def heading(self) -> str:
        return f"{_ICONS[self.status]} {self.title}: {self.status}"


@dataclasses.dataclass(frozen=True)
class Report:
    """Every section of one report on one project, and what it was run on."""

    sections: tuple[Section, ...]
    project: dict[str, Any]
    """alembic.ini, revisions (id, file, message), generation date, server version, options."""
    duration_s: float

    @property
    def ok(self) -> bool:
        """No section violated; not applicable ones are explained, not failed."""
        return all(s.status != VIOLATED for s in self.sections)

    def counts(self) -> dict[str, int]:
        return {status: sum(s.status == status for s in self.sections)
                for status in (VERIFIED, VIOLATED, NOT_APPLICABLE)}

    def summary_line(self) -> str:
        """One line for CI logs."""
        counts = self.counts()
        violated = [s.key for s in self.sections if s.status == VIOLATED]
        detail = f" ({', '.join(violated)})" if violated else ""
        return (
            f"harness report: {'ok' if self.ok else 'VIOLATED'}: {counts[VERIFIED]} verified, "
            f"{counts[VIOLATED]} violated{detail}, {counts[NOT_APPLICABLE]} not applicable; "
            f"{len(self.project.get('revisions', []))} revisions in {self.duration_s:.1f}s"
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "format": "harness-report/1",
            "ok": self.ok,
            "summary": self.summary_line(),
            "project": self.project,
            "duration_s": round(self.duration_s, 3),
            "sections": [s.to_json() for s in self.sections],
        }

    def to_markdown(self) -> str:
        return _markdown(self)


def _markdown(report: Report) -> str:
    """The seed document's shape, every claim backed by what was observed."""
    project = report.project
    lines = [
        "# Migration Safety Verification",
        "",
        f"**Generated**: {project['generated_at']} by `{project['command']}` "
        f"in {report.duration_s:.1f}s, on PostgreSQL {project['server_version']}  ",
        f"**Project**: `{project['alembic_ini']}`  ",
        f"**Seeded databases**: {project['options']['rows_per_table']} rows per table "
        f"(seed {project['options']['seed']})  ",
        *(["**Seeded below the requested size**: " + "; ".join(
            f"`{table}` ({why})" for table, why in project["seeding_shortfalls"].items()) + "  "]
          if project["seeding_shortfalls"] else []),
        f"**Overall**: {'✅ every check verified or not applicable' if report.ok else '❌ violated'} "
        f"— {report.summary_line()}",
        "",
        "**Migrations verified**:",
        "",
        *(f"- `{r['file']}` ({r['id']}){': ' + r['message'] if r['message'] else ''}"
          for r in project["revisions"]),
        "",
        "| check | status | finding |",
        "|---|---|---|",
        *(f"| [{s.title}](#{_anchor(s.heading())}) | {s.heading().split(': ')[-1]} | {_cell(s.summary)} |"
          for s in report.sections),
    ]
    for section in report.sections:
        lines += ["", f"## {section.heading()}", "", f"**{section.status.capitalize()}**: {section.summary}"]
        if section.body:
            lines += ["", section.body]
        if section.commands:
            lines += ["", "Reproduce:", "", "```console", *(f"$ {c}" for c in section.commands), "```"]
    return "\n".join(lines) + "\n"


def _anchor(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation and emoji dropped, spaces as hyphens."""
    kept = "".join(ch for ch in heading.lower() if ch.isalnum() or ch in " -_")
    return kept.replace(" ", "-")


def _cell(text: str) -> str:
    shown = text if len(text) <= 160 else text[:157] + "..."
    return shown.replace("|", "\\|").replace("\n", " ")

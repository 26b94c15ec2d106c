"""The report as Markdown: the seed document's shape, every claim backed by what was observed."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .model import Report


def render_markdown(report: Report) -> str:
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

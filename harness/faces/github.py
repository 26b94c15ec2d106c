"""GitHub Actions: a workflow annotation per finding, a markdown job summary.

Annotations are lines on stdout that the runner turns into marks on the pull request's files
(``::error file=...,line=...,title=...::message``); the job summary is markdown appended to the
file ``$GITHUB_STEP_SUMMARY`` names, shown on the run's page.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TextIO

from .findings import Finding


def annotation(finding: Finding) -> str:
    """The workflow command for ``finding``; the message keeps its lines (escaped)."""
    properties = f"file={_property(finding.path)},line={finding.line},title={_property(finding.title)}"
    return f"::error {properties}::{_data(finding.message)}"


def annotate(findings: list[Finding], stream: TextIO | None = None) -> None:
    out = stream or sys.stdout
    for finding in findings:
        print(annotation(finding), file=out)
    out.flush()


def summary(findings: list[Finding], body: str) -> str:
    """``body``'s heading, a table of the findings at their files and lines, the rest of ``body``."""
    heading, _, rest = body.strip().partition("\n")
    if not findings:
        return body.rstrip() + "\n"
    rows = ["| property | revision | where | what |", "|---|---|---|---|"]
    for f in findings:
        first = (f.message.splitlines() or [""])[0].replace("|", "\\|")
        rows.append(f"| `{f.rule}` | `{f.revision or '-'}` | `{f.path}:{f.line}` | {first} |")
    return "\n".join([heading, "", *rows, rest]) + "\n"


def append_summary(path: Path, findings: list[Finding], body: str) -> None:
    with path.open("a") as out:
        out.write(summary(findings, body) + "\n")


def _data(text: str) -> str:
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _property(text: str) -> str:
    return _data(text).replace(":", "%3A").replace(",", "%2C")

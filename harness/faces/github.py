"""GitHub Actions: a workflow command per annotation, a markdown job summary.

Annotations are lines on stdout that the runner turns into marks on the pull request's files
(``::error file=...,line=...,title=...::message``); the job summary is markdown appended to the
file ``$GITHUB_STEP_SUMMARY`` names, shown on the run's page.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TextIO

from .annotations import Annotation


def workflow_command(annotation: Annotation) -> str:
    """The workflow command for ``annotation``; the message keeps its lines (escaped)."""
    properties = f"file={_property(annotation.path)},line={annotation.line},title={_property(annotation.title)}"
    return f"::error {properties}::{_data(annotation.message)}"


def annotate(annotations: list[Annotation], stream: TextIO | None = None) -> None:
    out = stream or sys.stdout
    for annotation in annotations:
        print(workflow_command(annotation), file=out)
    out.flush()


def summary(annotations: list[Annotation], body: str) -> str:
    """``body``'s heading, a table of the annotations at their files and lines, the rest of ``body``."""
    heading, _, rest = body.strip().partition("\n")
    if not annotations:
        return body.rstrip() + "\n"
    rows = ["| property | revision | where | what |", "|---|---|---|---|"]
    for a in annotations:
        first = (a.message.splitlines() or [""])[0].replace("|", "\\|")
        rows.append(f"| `{a.rule}` | `{a.revision or '-'}` | `{a.path}:{a.line}` | {first} |")
    return "\n".join([heading, "", *rows, rest]) + "\n"


def append_summary(path: Path, annotations: list[Annotation], body: str) -> None:
    with path.open("a") as out:
        out.write(summary(annotations, body) + "\n")


def _data(text: str) -> str:
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _property(text: str) -> str:
    return _data(text).replace(":", "%3A").replace(",", "%2C")

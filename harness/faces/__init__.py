"""Faces for CI services: workflow annotations and a job summary on GitHub, SARIF for code
scanning, a GitLab Code Quality report. Each is a rendering of the same annotations (violations located in files)
(:mod:`harness.faces.annotations`); :func:`publish` writes whichever the options and the
environment ask for.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping, TextIO

from . import github, gitlab, sarif
from .annotations import RULES, Annotation, from_report, from_run

if TYPE_CHECKING:
    from ..commands import RunResult
    from ..report import Report

__all__ = ["Annotation", "from_report", "from_run", "publish", "publish_report", "publish_run"]


def publish_run(result: RunResult, **options: Any) -> None:
    """:func:`publish` for a walk, sweep or replay."""
    publish(from_run(result), summary=result.to_markdown(), rules=RULES, **options)


def publish_report(report: Report, **options: Any) -> None:
    """:func:`publish` for the verification report: a rule per section."""
    lines = [f"# {report.summary_line()}", ""]
    lines += [f"- {section.heading()}: {section.summary}" for section in report.sections]
    rules = {section.key: section.title for section in report.sections}
    publish(from_report(report), summary="\n".join(lines), rules=rules, **options)


def publish(
    annotations: list[Annotation], *, summary: str, rules: Mapping[str, str], sarif_path: Path | None = None,
    gitlab_path: Path | None = None, environ: Mapping[str, str] | None = None,
    stream: TextIO | None = None,
) -> None:
    """Write the SARIF and Code Quality files asked for; under GitHub Actions, annotate and
    append ``summary`` (markdown) to the job summary."""
    environ = os.environ if environ is None else environ
    if sarif_path is not None:
        _write(sarif_path, sarif.document(annotations, rules))
    if gitlab_path is not None:
        _write(gitlab_path, gitlab.document(annotations))
    if environ.get("GITHUB_ACTIONS") == "true":
        github.annotate(annotations, stream)
        if environ.get("GITHUB_STEP_SUMMARY"):
            github.append_summary(Path(environ["GITHUB_STEP_SUMMARY"]), annotations, summary)


def _write(path: Path, document: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document, indent=2) + "\n")

"""A GitLab Code Quality report: the merge request widget lists each annotation at its line."""

from __future__ import annotations

from typing import Any

from .annotations import Annotation


def document(annotations: list[Annotation]) -> list[dict[str, Any]]:
    """The JSON list GitLab's ``artifacts:reports:codequality`` reads."""
    return [
        {
            "description": f"{a.title}: {a.message.splitlines()[0] if a.message else ''}",
            "check_name": a.rule,
            "fingerprint": a.fingerprint,
            "severity": "critical" if a.rule in ("data", "tenant_isolation") else "major",
            "location": {"path": a.path, "lines": {"begin": a.line}},
        }
        for a in annotations
    ]

"""A GitLab Code Quality report: the merge request widget lists each finding at its line."""

from __future__ import annotations

from typing import Any

from .findings import Finding


def document(findings: list[Finding]) -> list[dict[str, Any]]:
    """The JSON list GitLab's ``artifacts:reports:codequality`` reads."""
    return [
        {
            "description": f"{f.title}: {f.message.splitlines()[0] if f.message else ''}",
            "check_name": f.rule,
            "fingerprint": f.fingerprint,
            "severity": "critical" if f.rule in ("data", "tenant_isolation") else "major",
            "location": {"path": f.path, "lines": {"begin": f.line}},
        }
        for f in findings
    ]

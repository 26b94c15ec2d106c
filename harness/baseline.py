"""Accepted findings: adopt the harness on a history that already holds old defects.

Like a linter's baseline, a committed file lists what is known and accepted; a run then fails
only on what is new. Findings are fingerprinted per object, not per message: a schema violation
accepted because it leaves an index behind must still fail when the same downgrade also starts
leaving a policy behind. Fingerprints name the property, the revision and the object, never
values that change from run to run (generated rows, durations, error texts with oids).
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any, Iterable

from .errors import HarnessError
from .snapshot import Difference, format_diff
from .violations import Violation

FORMAT = "harness-baseline/1"


def fingerprints(violation: Violation) -> list[str]:
    """The stable names of what ``violation`` found, one per object where it names objects."""
    prefix = f"{violation.property}|{violation.revision or '-'}"
    evidence = violation.evidence
    if violation.property in ("schema", "column_order", "models"):
        return [f"{prefix}|{d['object']}|{d['change']}" for d in evidence.get("differences", [])]
    if violation.property == "data":
        return [f"{prefix}|{evidence.get('table', '-')}"]
    if violation.property == "tenant_isolation":
        return [f"{prefix}|{evidence.get('relation', '-')}|{evidence.get('operation', '-')}|{evidence.get('role', '-')}"]
    return [f"{prefix}|{evidence.get('command', '-')}"]


@dataclasses.dataclass(frozen=True)
class Baseline:
    """The fingerprints a project accepts, with a readable line for each."""

    accepted: dict[str, str]

    @classmethod
    def of(cls, violations: Iterable[Violation]) -> Baseline:
        accepted = {}
        for violation in violations:
            for fingerprint in fingerprints(violation):
                accepted[fingerprint] = violation.headline()
        return cls(accepted)

    def filter(self, violations: Iterable[Violation]) -> list[Violation]:
        """``violations`` less what is accepted; a partly accepted one keeps only what is new."""
        kept = []
        for violation in violations:
            new = [f for f in fingerprints(violation) if f not in self.accepted]
            if not new:
                continue
            differences = violation.evidence.get("differences")
            if differences is not None and len(new) < len(differences):
                prefix = f"{violation.property}|{violation.revision or '-'}"
                fresh = [d for d in differences if f"{prefix}|{d['object']}|{d['change']}" in new]
                violation = dataclasses.replace(
                    violation,
                    message=violation.message.splitlines()[0] + "\n"
                    + format_diff([Difference.from_json(d) for d in fresh]),
                    evidence={**violation.evidence, "differences": fresh},
                )
            kept.append(violation)
        return kept

    def to_json(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "accepted": [{"fingerprint": f, "finding": self.accepted[f]} for f in sorted(self.accepted)],
        }

    def write(self, path: Path) -> Path:
        path.write_text(json.dumps(self.to_json(), indent=2) + "\n")
        return path

    @classmethod
    def read(cls, path: Path) -> Baseline:
        try:
            document = json.loads(path.read_text())
        except FileNotFoundError:
            raise HarnessError(f"no baseline file at {path}",
                               hint="write one with `harness baseline -c alembic.ini`") from None
        except ValueError as exc:
            raise HarnessError(f"{path} is not a baseline file: {exc}") from None
        if not isinstance(document, dict) or document.get("format") != FORMAT:
            raise HarnessError(f"{path} is not a baseline file (expected format {FORMAT})")
        return cls({item["fingerprint"]: item.get("finding", "") for item in document["accepted"]})


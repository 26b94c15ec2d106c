"""Failures people can act on: the text they read, the JSON machines read, the file they replay.

A failure is one defect -- one property broken at one revision -- with its evidence (a violation
per table or object) and the steps that produced it, starting from a revision state. The steps
are written as the ``alembic`` commands a person types and the rows inserted between them as
``INSERT`` statements for psql; the failure file holds everything ``harness replay`` needs to run
the same steps on a fresh database, full values and the order rows went in included -- no
generator, no seed, no Hypothesis version involved.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import textwrap
from pathlib import Path
from typing import Any, Iterable

from .errors import HarnessError
from .graph import State
from .trial import LoggedStep
from .unrepeated import EXPLANATION
from .violations import Violation

FORMAT = "harness-failure/2"
_READABLE = (FORMAT, "harness-failure/1")
"""Formats replay reads: version 1 kept seeded rows per table, not in the order they went in."""


@dataclasses.dataclass(frozen=True)
class Failure:
    """A defect's violations (one property, one revision), the state the steps start from, the
    steps, and how to find them again."""

    violations: tuple[Violation, ...]
    start: State
    steps: tuple[LoggedStep, ...]
    reproduce: dict[str, Any] = dataclasses.field(default_factory=dict)
    repeated: bool = True
    """False for a failure the same steps did not show again (:mod:`harness.unrepeated`)."""

    def commands(self) -> list[str]:
        """The steps as a person types them, starting from the start state."""
        start = ["alembic upgrade " + " ".join(sorted(self.start))] if self.start else []
        return start + [line for step in self.steps for line in step.as_command().splitlines()]

    def to_json(self) -> dict[str, Any]:
        first = self.violations[0]
        return {
            "property": first.property,
            "revision": first.revision,
            "violations": [v.to_json() for v in self.violations],
            "start": sorted(self.start),
            "steps": [step.to_json() for step in self.steps],
            "commands": self.commands(),
            "reproduce": self.reproduce,
            "repeated": self.repeated,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Failure:
        return cls(
            violations=tuple(
                Violation.from_json({k: v for k, v in item.items() if k != "steps"})
                for item in data["violations"]
            ),
            start=frozenset(data.get("start", ())),
            steps=tuple(LoggedStep.from_json(step) for step in data["steps"]),
            reproduce=data.get("reproduce", {}),
            repeated=data.get("repeated", True),
        )

    def render(self) -> str:
        """For people: what broke, where, the evidence, and the steps that show it."""
        first = self.violations[0]
        if len(self.violations) == 1:
            lines = [first.headline(), *(f"    {line}" for line in first.message.splitlines()[1:])]
        else:
            where = f" at {first.revision}" if first.revision else ""
            lines = [f"[{first.property}]{where}: {len(self.violations)} pieces of evidence"]
            for violation in self.violations:
                head, *rest = violation.message.splitlines() or [""]
                lines += [f"  - {head}", *(f"    {line}" for line in rest)]
        if not self.repeated:
            lines += ["", *textwrap.wrap(EXPLANATION, 96), "", "Steps that showed it once, on a new database with no schema:"]
        else:
            lines += ["", "Steps that reproduce it, on a new database with no schema:"]
        lines += [f"  {command}" for command in self.commands()]
        if self.reproduce:
            lines += ["", "Found again by:"] + [f"  {k}: {v}" for k, v in self.reproduce.items()]
        return "\n".join(lines)


def defects(
    violations: Iterable[Violation], start: State, steps: tuple[LoggedStep, ...],
    reproduce: dict[str, Any] | None = None,
) -> list[Failure]:
    """One failure per defect among ``violations`` (found by the same steps): those of one
    property at one revision belong together, in the order first seen."""
    groups: dict[tuple[str, str | None], list[Violation]] = {}
    for violation in violations:
        groups.setdefault((violation.property, violation.revision), []).append(violation)
    return [Failure(tuple(group), start, steps, dict(reproduce or {})) for group in groups.values()]


def write_failure_file(directory: Path, failure: Failure, alembic_ini: Path | None) -> Path:
    """Write the file ``harness replay`` runs, into ``directory``; returns its path.

    The name says what broke where and ends with a digest of the steps and violations, so that
    the same failure found twice (by other seeds too) overwrites its file instead of piling up.
    """
    document = {"format": FORMAT, "alembic_ini": str(alembic_ini) if alembic_ini else None,
                **failure.to_json()}
    found = {k: v for k, v in document.items() if k != "reproduce"}
    digest = hashlib.sha1(json.dumps(found, sort_keys=True, default=str).encode()).hexdigest()[:10]
    first = failure.violations[0]
    path = Path(directory) / f"{first.property}-{first.revision or 'none'}-{digest}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document, indent=2, default=str) + "\n")
    return path


def read_failure_file(path: Path) -> tuple[Failure, Path | None]:
    """The failure recorded in ``path`` and the alembic.ini it was found on."""
    try:
        document = json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise HarnessError(f"no failure file at {path}") from None
    except ValueError as exc:
        raise HarnessError(f"{path} is not a failure file: {exc}") from None
    if not isinstance(document, dict) or document.get("format") not in _READABLE:
        raise HarnessError(f"{path} is not a failure file (expected format {FORMAT})")
    ini = document.get("alembic_ini")
    return Failure.from_json(document), Path(ini) if ini else None

"""A violation: a property that a migration broke, with the evidence a person needs to act.

Violations are data, not exceptions: the sweep collects them and goes on, the machine turns the
first one of an example into a failure for Hypothesis to shrink, and the faces render them as
text or JSON.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Literal

Property = Literal["schema", "column_order", "migration_error", "data", "tenant_isolation"]


@dataclasses.dataclass(frozen=True)
class Violation:
    """One broken property at one revision.

    ``revision`` is the revision whose migration broke it (for a schema difference after a
    downgrade, the revision that was downgraded). ``message`` is one readable paragraph (may span
    lines: a schema diff, the leaked rows); ``evidence`` holds the same facts as JSON-ready data.
    """

    property: Property
    revision: str | None
    message: str
    evidence: dict[str, Any] = dataclasses.field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Violation:
        return cls(**data)

    def headline(self) -> str:
        """The first line: property, revision and what happened."""
        where = f" at {self.revision}" if self.revision else ""
        return f"[{self.property}]{where}: {self.message.splitlines()[0] if self.message else ''}"

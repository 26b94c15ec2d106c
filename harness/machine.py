"""The random walk: a Hypothesis state machine whose rules choose a step and delegate.

Rules are independent of each other (each draws its move from the moves the current state
allows) so that shrinking can drop any step. The machine never checks anything itself: a
:class:`~harness.trial.Trial` runs the step and returns violations; the first violations of an
example become a failure whose exception type is made per (property, revision), so that Hypothesis
tells distinct defects apart and shrinks and reports each of them, instead of only the first.
"""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, Phase, Verbosity, seed, settings
from hypothesis import strategies as st
from hypothesis.database import DirectoryBasedExampleDatabase
from hypothesis.stateful import RuleBasedStateMachine, precondition, rule, run_state_machine_as_test

from . import seeding
from .session import Session
from .trial import LoggedStep, Trial
from .violations import Violation

if sys.version_info < (3, 11):  # pragma: no cover - the old-stack environment
    from exceptiongroup import BaseExceptionGroup

PROFILES: dict[str, dict[str, Any]] = {
    "dev": {"max_examples": 10, "stateful_step_count": 12},
    "ci": {"max_examples": 30, "stateful_step_count": 20},
    "nightly": {"max_examples": 100_000, "stateful_step_count": 60},
}
"""Budgets by use: a quick look at a desk, minutes in CI, hours at night."""


class PropertyViolated(AssertionError):
    """An example broke a property; carries the violations and the steps that led there."""

    violations: tuple[Violation, ...]
    steps: tuple[LoggedStep, ...]

    def __init__(self, violations: list[Violation], steps: list[LoggedStep]) -> None:
        self.violations = tuple(violations)
        self.steps = tuple(steps)
        lines = [v.headline() for v in violations]
        lines += ["", "Steps (from an empty database):"] + [f"  {s.as_command()}" for s in steps]
        lines += ["", *(v.message for v in violations)]
        super().__init__("\n".join(lines))


_failure_types: dict[tuple[str, str | None], type[PropertyViolated]] = {}


def _failure_type(violation: Violation) -> type[PropertyViolated]:
    """One exception type per (property, revision): Hypothesis's key for telling bugs apart."""
    key = (violation.property, violation.revision)
    if key not in _failure_types:
        name = f"{violation.property.title().replace('_', '')}Violated"
        _failure_types[key] = type(name, (PropertyViolated,), {"__module__": __name__})
    return _failure_types[key]


def build_machine(session: Session, overrides: seeding.Overrides | None = None) -> type[RuleBasedStateMachine]:
    """A state machine class walking ``session``'s project; one trial per example."""
    graph = session.project.graph
    exclude = (session.project.version_table,)
    jump_targets = ["heads", "base", *graph.revisions]

    class MigrationWalk(RuleBasedStateMachine):
        def __init__(self) -> None:
            super().__init__()
            self.trial = Trial(session)

        @precondition(lambda self: graph.upgrade_moves(self.trial.state))
        @rule(data=st.data())
        def upgrade(self, data: st.DataObject) -> None:
            revision = data.draw(st.sampled_from(graph.upgrade_moves(self.trial.state)), label="revision")
            self._check(self.trial.upgrade(revision))

        @precondition(lambda self: graph.downgrade_moves(self.trial.state))
        @rule(data=st.data())
        def downgrade(self, data: st.DataObject) -> None:
            revision = data.draw(st.sampled_from(graph.downgrade_moves(self.trial.state)), label="revision")
            self._check(self.trial.downgrade(revision))

        @rule(data=st.data())
        def jump(self, data: st.DataObject) -> None:
            target = data.draw(st.sampled_from(jump_targets), label="target")
            applied = graph.applied(self.trial.state)
            if target == "heads" or (target != "base" and target not in applied):
                self._check(self.trial.jump("upgrade", target))
            else:
                self._check(self.trial.jump("downgrade", target))

        @rule(data=st.data())
        def seed_rows(self, data: st.DataObject) -> None:
            state = self.trial.state

            def insert(conn):
                catalog = session.per_state(
                    "catalog", state, lambda: seeding.read_catalog(conn, exclude=exclude)
                )
                return seeding.seed_rows(conn, data.draw, catalog, overrides=overrides).inserted

            self._check(self.trial.seed(insert))

        def _check(self, violations: list[Violation]) -> None:
            if violations:
                raise _failure_type(violations[0])(violations, list(self.trial.log))

        def teardown(self) -> None:
            self.trial.close()

    return MigrationWalk


@dataclasses.dataclass
class WalkOutcome:
    """What a walk found: each distinct failure, shrunk, with the seed that reproduces it."""

    seed: int
    failures: list[PropertyViolated]


def run_walk(
    session: Session,
    *,
    seed_value: int,
    profile: str = "ci",
    max_examples: int | None = None,
    steps: int | None = None,
    overrides: seeding.Overrides | None = None,
    database_dir: Path | None = None,
    quiet: bool = True,
) -> WalkOutcome:
    """Walk the project's graph with Hypothesis; failures are returned, not raised."""
    budget = dict(PROFILES[profile])
    if max_examples is not None:
        budget["max_examples"] = max_examples
    if steps is not None:
        budget["stateful_step_count"] = steps
    machine = build_machine(session, overrides)
    run_settings = settings(
        **budget,
        deadline=None,
        derandomize=False,
        database=DirectoryBasedExampleDatabase(str(database_dir)) if database_dir else None,
        suppress_health_check=list(HealthCheck),
        verbosity=Verbosity.quiet if quiet else Verbosity.normal,
        report_multiple_bugs=True,
        phases=list(Phase),
        print_blob=True,
    )
    try:
        run_state_machine_as_test(seed(seed_value)(machine), settings=run_settings)
    except PropertyViolated as failure:
        return WalkOutcome(seed_value, [failure])
    except BaseExceptionGroup as group:
        matched, rest = group.split(PropertyViolated)
        if rest is not None:
            raise rest from None
        return WalkOutcome(seed_value, list(_leaves(matched)))
    return WalkOutcome(seed_value, [])


def _leaves(group: BaseExceptionGroup) -> list[PropertyViolated]:
    found: list[PropertyViolated] = []
    for exc in group.exceptions:
        if isinstance(exc, BaseExceptionGroup):
            found += _leaves(exc)
        else:
            found.append(exc)
    return found

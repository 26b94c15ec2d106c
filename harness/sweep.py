"""The deterministic companion of the walk: every revision up, down and up again, once.

For each revision, a trial starts from the reference of the state just before it (a clone, so
one broken revision never hides the next) and runs upgrade, downgrade, upgrade, with every
invariant checked after each step. Fast, exhaustive over the graph's edges, and the first thing
to run on a new project.
"""

from __future__ import annotations

import dataclasses
from typing import Callable

from .graph import State
from .references import Unreachable
from .session import Session
from .trial import LoggedStep, Trial
from .violations import Violation


@dataclasses.dataclass
class SweepOutcome:
    """Every finding, and the revisions that could not be reached, with the reason."""

    findings: list[Finding]
    not_reached: dict[str, str]


@dataclasses.dataclass(frozen=True)
class Finding:
    """Violations found on one revision's edge, with the steps that show them."""

    violations: tuple[Violation, ...]
    start: State
    steps: tuple[LoggedStep, ...]


def run_sweep(
    session: Session, *, revisions: list[str] | None = None,
    progress: Callable[[str], None] | None = None,
) -> SweepOutcome:
    """Sweep ``revisions`` (all of them by default); one broken revision never hides the next."""
    graph = session.project.graph
    outcome = SweepOutcome([], {})
    trial: Trial | None = None
    try:
        for revision in revisions or graph.revisions:
            before = _state_before(session, revision)
            if progress:
                progress(revision)
            # While every round trip is clean the database stays at the canonical state, so a
            # linear history is swept on one database; after a finding, or on another branch,
            # the next revision starts from a clone of its reference instead.
            if trial is not None and trial.state != before:
                _end(trial, outcome)
                trial = None
            if trial is None:
                try:
                    trial = Trial(session, before)
                except Unreachable as unreachable:
                    outcome.not_reached[revision] = str(unreachable)
                    continue
            irreversible = revision in session.settings.irreversible
            moves = [lambda: trial.upgrade(revision, canonical=True)]
            if not irreversible:
                moves += [lambda: trial.downgrade(revision), lambda: trial.upgrade(revision)]
            start_log = len(trial.log)
            for move in moves:
                violations = move()
                if violations:
                    outcome.findings.append(
                        Finding(tuple(violations), before, tuple(trial.log[start_log:]))
                    )
                    trial.close()
                    trial = None
                    break
        if trial is not None:
            _end(trial, outcome)
            trial = None
    finally:
        if trial is not None:
            trial.close()
    return outcome


def _end(trial: Trial, outcome: SweepOutcome) -> None:
    """Close a trial whose steps all passed, after the whole snapshot its run ends with."""
    try:
        violations = trial.finish()
        if violations:
            outcome.findings.append(Finding(tuple(violations), trial.start, tuple(trial.log)))
    finally:
        trial.close()


def _state_before(session: Session, revision: str) -> State:
    """The canonical state from which ``revision`` is applied: its dependencies, nothing more."""
    graph = session.project.graph
    state: State = frozenset()
    for step in graph.canonical_path(frozenset(graph.parents(revision))):
        state = graph.after_upgrade(state, step.revision)
    return state

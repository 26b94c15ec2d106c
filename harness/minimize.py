"""A failure's steps cut down to what its defect needs, by replaying them.

Hypothesis shrinks what it draws; its budget is small, since every attempt replays migrations.
What it leaves is cut further here on the recorded steps themselves, a few replays at most, each
deterministic: start as late in the history as the defect allows (from the reference of a state,
as ``alembic upgrade`` to it gives), then leave out single steps, shorten long values, then leave
out single rows, keeping each cut that still breaks the same property at the same revision.
"""

from __future__ import annotations

import dataclasses

import psycopg

from .errors import HarnessError
from .graph import State
from .pasteable import SHOWN
from .session import Session
from .trial import LoggedStep, Trial
from .violations import Violation

@dataclasses.dataclass(frozen=True)
class Cut:
    """Violations, and the start and steps that show them."""

    violations: tuple[Violation, ...]
    start: State
    steps: tuple[LoggedStep, ...]
    path: tuple[State, ...]
    """The state each step was taken from."""


def minimize(session: Session, found: Cut, replays: int) -> Cut:
    """``found`` with fewer steps and rows where the same defect still shows; ``found`` itself
    when nothing can be left out. ``found`` is trusted to show its defect: Hypothesis ran it
    last, to report it.

    The same defect: the same last step, taken from the same state, breaks the same property
    at the same revision (a downgrade of a revision not applied would fail too, for another
    reason).
    """
    key = (found.violations[0].property, found.violations[0].revision)
    left = replays
    if not found.steps:
        return found

    def attempt(start: State, steps: tuple[LoggedStep, ...]) -> Cut | None:
        nonlocal left
        left -= 1
        trial = Trial(session, start)
        try:
            for i, step in enumerate(steps):
                violations = trial.replay(step)
                if violations:
                    shown = (i == len(steps) - 1 and trial.path[-1] == found.path[-1]
                             and any((v.property, v.revision) == key for v in violations))
                    return Cut(tuple(violations), start, tuple(trial.log), tuple(trial.path)) if shown else None
        except (psycopg.Error, HarnessError):
            # A row left out was another row's parent; a jump Alembic refuses from here.
            return None
        finally:
            trial.close()
        return None

    best = found
    for k in _later_starts(best.steps):
        if left <= 0:
            return best
        cut = attempt(found.path[k], best.steps[k:])
        if cut is not None:
            best = cut
            break
    i = len(best.steps) - 2
    while i >= 0 and left > 0:  # single steps, never the last, latest first
        cut = attempt(best.start, best.steps[:i] + best.steps[i + 1:])
        best = cut if cut is not None else best
        i = min(i, len(best.steps) - 1) - 1
    plain = tuple(_plain(step) for step in best.steps)
    if plain != best.steps and left > 0:
        best = attempt(best.start, plain) or best
    for i in reversed(range(len(best.steps))):  # single rows, latest first
        for j in reversed(range(len(best.steps[i].rows or ()))):
            if left <= 0 or i >= len(best.steps) or j >= len(best.steps[i].rows or ()):
                return best
            step = best.steps[i]
            fewer = dataclasses.replace(step, rows=step.rows[:j] + step.rows[j + 1:])
            cut = attempt(best.start, best.steps[:i] + (fewer,) + best.steps[i + 1:])
            best = cut if cut is not None else best
    return best


def _plain(step: LoggedStep) -> LoggedStep:
    """The step with every long text value of its rows made short ('a', or no bytes): a
    value of thousands of characters is seldom what a defect needs, and costs the failure
    file its size."""
    if not step.rows:
        return step
    rows = tuple((table, {column: _short(value) for column, value in record.items()})
                 for table, record in step.rows)
    return dataclasses.replace(step, rows=rows)


def _short(value: object) -> object:
    if not isinstance(value, str) or len(value) <= SHOWN:
        return value
    return "\\x" if value.startswith("\\x") else "a"


def _later_starts(steps: tuple[LoggedStep, ...]) -> list[int]:
    """Where the steps might start instead: at the last step, then at each step that inserts
    rows, latest first."""
    last = len(steps) - 1
    seeds = [i for i, step in enumerate(steps[:last]) if step.op == "seed"]
    return [i for i in (last, *reversed(seeds)) if i > 0]

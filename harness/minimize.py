"""A failure's steps cut down to what its defect needs, by replaying them.

Hypothesis shrinks what it draws; its budget is small, since every attempt replays migrations.
What it leaves is cut further here on the recorded steps themselves, a few replays at most, each
deterministic: start as late in the history as the defect allows (from the reference of a state,
as ``alembic upgrade`` to it gives), then leave out single steps, shorten long values, keep one
row of the table the defect names with the rows it refers to, make values their simplest
(:mod:`harness.simplest`), then leave out single rows, keeping each cut that still breaks the
same property at the same revision.
"""

from __future__ import annotations

import collections
import dataclasses
from typing import Callable

import psycopg

from .errors import HarnessError
from .graph import State
from .pasteable import SHOWN
from .seeding import read_catalog
from .seeding.catalog import Catalog
from .session import Session
from .simplest import needed_by, simplest_rows
from .trial import LoggedStep, Trial
from .violations import Violation

MAX_NAMED = 8
"""Rows of a step tried, each alone with its parents, as all the defect needs."""


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

    The same defect: the last step, taken from the same state as the last step of ``found``,
    breaks the same property at the same revision (a downgrade of a revision not applied would
    fail too, for another reason).
    """
    left = replays
    if not found.steps:
        return found

    def attempt(start: State, steps: tuple[LoggedStep, ...]) -> Cut | None:
        nonlocal left
        left -= 1
        return _shown(session, found, start, steps)

    best = found
    for k in _later_starts(best.steps):
        if left <= 0:
            return best
        cut = attempt(found.path[k], best.steps[k:])
        if cut is not None:
            best = cut
            break
    i = len(best.steps) - 1
    while i >= 0 and left > 0 and len(best.steps) > 1:  # single steps, latest first
        cut = attempt(best.start, best.steps[:i] + best.steps[i + 1:])
        best = cut if cut is not None else best
        i = min(i, len(best.steps) - 1) - 1
    plain = tuple(_plain(step) for step in best.steps)
    if plain != best.steps and left > 0:
        best = attempt(best.start, plain) or best
    seeded = [i for i in reversed(range(len(best.steps))) if best.steps[i].rows]
    for i in seeded:  # the rows of one table the violations name, with their parents alone
        best = _one_named_row(best, i, session, attempt, lambda: left > 0)
    for i in seeded:
        best = _simplest_values(best, i, session, attempt, lambda: left > 0)
    for i in seeded:  # single rows, latest first
        for j in reversed(range(len(best.steps[i].rows or ()) if i < len(best.steps) else 0)):
            if left <= 0 or j >= len(best.steps[i].rows or ()):
                break
            step = best.steps[i]
            best = attempt(best.start, _with_rows(best.steps, i, step.rows[:j] + step.rows[j + 1:])) or best
    return best


def repeats(session: Session, found: Cut) -> bool:
    """Whether ``found``'s steps show its defect again, run afresh: none of them taken from a
    checkpoint, which would give back what the first run found instead of running it."""
    session.checkpoints.stop()
    return _shown(session, found, found.start, found.steps) is not None


def _shown(session: Session, found: Cut, start: State, steps: tuple[LoggedStep, ...]) -> Cut | None:
    """What ``steps`` from ``start`` show, if the last of them breaks ``found``'s property at
    its revision, taken from the same state as ``found``'s last step."""
    key = (found.violations[0].property, found.violations[0].revision)
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


Attempt = Callable[[State, tuple[LoggedStep, ...]], "Cut | None"]


def _with_rows(steps: tuple[LoggedStep, ...], i: int, rows: tuple) -> tuple[LoggedStep, ...]:
    return steps[:i] + (dataclasses.replace(steps[i], rows=tuple(rows)),) + steps[i + 1:]


def _catalog(session: Session, state: State) -> Catalog:
    """The seedable tables at ``state``, as the walk's seed steps read them."""
    exclude = (session.project.version_table,)
    return session.per_state("catalog", state, lambda: session.references.read_at(
        state, lambda conn: read_catalog(conn, exclude=exclude)))


def _one_named_row(best: Cut, i: int, session: Session, attempt: Attempt, budget: Callable[[], bool]) -> Cut:
    """Step ``i`` cut to one row of a table the violations name (data lost from it, a tenant's
    rows seen in it) and the rows it refers to, trying each such row in turn: a defect seen in
    one table seldom needs the rows of the others. ``best`` itself when no single row shows it."""
    named = {v.evidence.get("table") or v.evidence.get("relation") for v in best.violations}
    rows = best.steps[i].rows if i < len(best.steps) else None
    if not rows:
        return best
    catalog = _catalog(session, best.path[i])
    for j in [j for j, (table, _) in enumerate(rows) if table in named][:MAX_NAMED]:
        if not budget():
            break
        kept = needed_by(catalog, rows, j)
        if len(kept) < len(rows):
            cut = attempt(best.start, _with_rows(best.steps, i, [r for k, r in enumerate(rows) if k in kept]))
            if cut is not None:
                return cut
    return best


def _simplest_values(best: Cut, i: int, session: Session, attempt: Attempt, budget: Callable[[], bool]) -> Cut:
    """Step ``i``'s values made their simplest (:mod:`harness.simplest`): all at once, else one
    column at a time, keeping each that still shows the defect."""
    if i >= len(best.steps) or not best.steps[i].rows:
        return best
    catalog = _catalog(session, best.path[i])
    earlier = collections.Counter(table for step in best.steps[:i] for table, _ in step.rows or ())
    columns = list(dict.fromkeys((table, name) for table, record in best.steps[i].rows or () for name in record))
    for only in (None, *columns):
        if not budget():
            break
        rows = best.steps[i].rows or ()
        simpler = simplest_rows(catalog, rows, earlier, only)
        if simpler != rows:
            cut = attempt(best.start, _with_rows(best.steps, i, simpler))
            if cut is not None:
                best = cut
                if only is None:
                    break
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

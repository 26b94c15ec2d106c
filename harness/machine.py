"""The random walk: a Hypothesis state machine whose rules choose a step and delegate.

Rules are independent of each other (each draws its move from the moves the current state
allows) so that shrinking can drop any step. The machine never checks anything itself: a
:class:`~harness.trial.Trial` runs the step and returns violations; the first violations of an
example become a failure whose exception type is made per (property, revision), so that Hypothesis
tells distinct defects apart and shrinks and reports each of them, instead of only the first.

A seed is a promise: the walk looks on for other defects for a few examples after its first
failing one, then shrinks each within a budget of work (examples replayed), never of seconds,
so the same seed on the same history prints the same counterexamples however loaded the machine
is (see :class:`WorkClock`). The faces group each failure's violations into defects.

Anything else a rule raises (an unreachable server, a bug in the harness) is not a finding:
it stops the walk at once, as a :class:`WalkStopped` that Hypothesis neither retries nor shrinks
-- shrinking an infrastructure error replays the walk for minutes and proves nothing.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import sys
import time
from pathlib import Path
from typing import Any, Callable, Iterator

from hypothesis import HealthCheck, Phase, Verbosity, seed, settings
from hypothesis import strategies as st
from hypothesis.database import DirectoryBasedExampleDatabase
from hypothesis.stateful import RuleBasedStateMachine, precondition, rule, run_state_machine_as_test

from . import seeding
from .errors import HarnessError
from .graph import State
from .progress import Progress
from .session import Session
from .settings import PROFILES
from .trial import LoggedStep, Trial
from .violations import Violation

if sys.version_info < (3, 11):  # pragma: no cover - the old-stack environment
    from exceptiongroup import BaseExceptionGroup


class PropertyViolated(AssertionError):
    """An example broke a property; carries the violations and the steps that led there."""

    violations: tuple[Violation, ...]
    steps: tuple[LoggedStep, ...]
    path: tuple[State, ...]
    """The state each step was taken from."""

    def __init__(self, violations: list[Violation], steps: list[LoggedStep], path: list[State]) -> None:
        self.violations = tuple(violations)
        self.steps = tuple(steps)
        self.path = tuple(path)
        lines = [v.headline() for v in violations]
        lines += ["", "Steps, on a new database with no schema:"]
        lines += [f"  {line}" for step in steps for line in step.as_command().splitlines()]
        lines += ["", *(v.message for v in violations)]
        super().__init__("\n".join(lines))


class WalkStopped(BaseException):
    """Carries a rule's non-finding error past Hypothesis, which only catches ``Exception``."""

    def __init__(self, error: Exception) -> None:
        super().__init__(error)
        self.error = error


def _stops_walk(rule_body: Callable[..., None]) -> Callable[..., None]:
    """A rule that lets violations through to Hypothesis, stops the walk on anything else, and
    moves the progress line after every step."""

    @functools.wraps(rule_body)
    def run(self: RuleBasedStateMachine, **kwargs: Any) -> None:
        try:
            rule_body(self, **kwargs)
        except PropertyViolated:
            raise
        except Exception as exc:
            raise WalkStopped(exc) from exc
        finally:
            self.progress.step(self.session.coverage)

    return run


LOOK_ON = 5
"""Examples a walk runs on after its first failing one, looking for other defects."""


_failure_types: dict[tuple[str, str | None], type[PropertyViolated]] = {}


def _failure_type(violation: Violation) -> type[PropertyViolated]:
    """One exception type per (property, revision): Hypothesis's key for telling defects apart."""
    key = (violation.property, violation.revision)
    if key not in _failure_types:
        name = f"{violation.property.title().replace('_', '')}Violated"
        _failure_types[key] = type(name, (PropertyViolated,), {"__module__": __name__})
    return _failure_types[key]


class WorkClock:
    """The clock Hypothesis's engine reads while a walk runs: it counts examples, not seconds.

    Hypothesis bounds shrinking by a deadline on ``time.perf_counter``, ``MAX_SHRINKING_SECONDS``
    after shrinking starts (a module constant of its engine, with no public setting). Reading
    this clock instead, the same deadline becomes a bound on the examples shrinking replays: the same seed then stops at the
    same example on any machine under any load. So does its search for other defects after the
    first (ten seconds in Hypothesis). Everything else is the ``time`` module.
    """

    def __init__(self) -> None:
        self.examples = 0

    def perf_counter(self) -> float:
        return float(self.examples)

    def monotonic(self) -> float:
        """Hypothesis looks on for other defects until ten "seconds" after the first: here,
        :data:`LOOK_ON` examples."""
        return self.examples * 10 / LOOK_ON

    def __getattr__(self, name: str) -> Any:
        return getattr(time, name)


def build_machine(
    session: Session, overrides: seeding.Overrides | None = None, progress: Progress | None = None,
    clock: WorkClock | None = None,
) -> type[RuleBasedStateMachine]:
    """A state machine class walking ``session``'s project; one trial per example, each
    counted on ``clock``."""
    progress = progress or Progress(list(session.project.graph.revisions), enabled=False)
    graph = session.project.graph
    exclude = (session.project.version_table,)
    jump_targets = {target: graph.state_at(target) for target in ("heads", "base", *graph.revisions)}

    class MigrationWalk(RuleBasedStateMachine):
        def __init__(self) -> None:
            super().__init__()
            if clock is not None:
                clock.examples += 1
            self.session, self.progress = session, progress
            try:
                self.trial = Trial(session)
            except Exception as exc:
                raise WalkStopped(exc) from exc
            progress.example(session.coverage)

        @precondition(lambda self: graph.upgrade_moves(self.trial.state))
        @rule(data=st.data())
        @_stops_walk
        def upgrade(self, data: st.DataObject) -> None:
            revision = data.draw(st.sampled_from(graph.upgrade_moves(self.trial.state)), label="revision")
            self._check(self.trial.upgrade(revision))

        @precondition(lambda self: graph.downgrade_moves(self.trial.state))
        @rule(data=st.data())
        @_stops_walk
        def downgrade(self, data: st.DataObject) -> None:
            revision = data.draw(st.sampled_from(graph.downgrade_moves(self.trial.state)), label="revision")
            self._check(self.trial.downgrade(revision))

        def jumps(self) -> list[str]:
            """Targets a jump would move to; a jump to where the walk stands does nothing but
            cost a check, and shrinking spends minutes failing to remove such steps."""
            return [t for t, reached in jump_targets.items() if reached != self.trial.state]

        @precondition(lambda self: self.jumps())
        @rule(data=st.data())
        @_stops_walk
        def jump(self, data: st.DataObject) -> None:
            target = data.draw(st.sampled_from(self.jumps()), label="target")
            applied = graph.applied(self.trial.state)
            upward = target == "heads" or (target != "base" and target not in applied)
            direction = "upgrade" if upward else "downgrade"
            try:
                graph.plan(direction, target, self.trial.state)
            except HarnessError:
                # Alembic itself refuses this move (e.g. down to a revision that the current
                # head only depends on): no command a person could type, so no step.
                return
            self._check(self.trial.jump(direction, target))

        # At base there is nothing to insert into: a seed step there would be a wasted step.
        @precondition(lambda self: self.trial.state)
        @rule(data=st.data())
        @_stops_walk
        def seed_rows(self, data: st.DataObject) -> None:
            state = self.trial.state

            def insert(conn):
                catalog = session.per_state(
                    "catalog", state, lambda: seeding.read_catalog(conn, exclude=exclude)
                )
                return seeding.seed_rows(conn, data.draw, catalog, overrides=overrides).sequence

            self._check(self.trial.seed(insert))

        def _check(self, violations: list[Violation]) -> None:
            if violations:
                raise _failure_type(violations[0])(violations, list(self.trial.log), list(self.trial.path))

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
    replay_saved: bool = True,
    progress: Progress | None = None,
) -> WalkOutcome:
    """Walk the project's graph with Hypothesis; failures are returned, not raised.

    Failures are saved in ``database_dir`` and, with ``replay_saved``, the saved ones run first
    (a failure found at night comes back first in the morning). Repeating a walk by its seed
    turns that off: the examples saved since would run first and make it another walk.
    The explain phase is left out: it re-runs the failure under a tracer to name the lines only
    failing examples ran -- lines of Alembic and psycopg here, slowly, and of no use to anyone.
    Hypothesis prints nothing (its ``ci`` profile, loaded under ``CI=true``, is overridden
    here field by field); everything it would say comes back in the failures.
    """
    if profile not in PROFILES:
        raise HarnessError(f"unknown profile {profile!r}", hint=f"one of {', '.join(PROFILES)}")
    budget = PROFILES[profile]
    clock = WorkClock()
    machine = build_machine(session, overrides, progress, clock)
    run_settings = settings(
        max_examples=budget.max_examples if max_examples is None else max_examples,
        stateful_step_count=budget.steps if steps is None else steps,
        deadline=None,
        derandomize=False,
        database=DirectoryBasedExampleDatabase(str(database_dir)) if database_dir else None,
        suppress_health_check=list(HealthCheck),
        verbosity=Verbosity.quiet,
        report_multiple_bugs=True,
        phases=[p for p in Phase if p is not Phase.explain and (replay_saved or p is not Phase.reuse)],
        print_blob=True,
    )
    try:
        with _shrinking_bounded_by(clock, budget.shrink_examples):
            run_state_machine_as_test(seed(seed_value)(machine), settings=run_settings)
    except WalkStopped as stopped:
        raise stopped.error from None
    except PropertyViolated as failure:
        return WalkOutcome(seed_value, [failure])
    except BaseExceptionGroup as group:
        matched, rest = group.split(PropertyViolated)
        if rest is not None:
            raise rest from None
        return WalkOutcome(seed_value, list(_leaves(matched)))
    finally:
        if progress is not None:
            progress.done()
    return WalkOutcome(seed_value, [])


def _leaves(group: BaseExceptionGroup) -> list[PropertyViolated]:
    found: list[PropertyViolated] = []
    for exc in group.exceptions:
        if isinstance(exc, BaseExceptionGroup):
            found += _leaves(exc)
        else:
            found.append(exc)
    return found


@contextlib.contextmanager
def _shrinking_bounded_by(clock: WorkClock, examples: int) -> Iterator[None]:
    """Shrinking stops after ``examples`` examples, counted on ``clock`` (see :class:`WorkClock`).

    Where a Hypothesis version keeps its bound elsewhere, nothing is changed and shrinking keeps
    Hypothesis's own bound.
    """
    from hypothesis.internal.conjecture import engine

    if not hasattr(engine, "MAX_SHRINKING_SECONDS") or getattr(engine, "time", None) is not time:
        yield
        return
    previous = engine.MAX_SHRINKING_SECONDS
    engine.MAX_SHRINKING_SECONDS, engine.time = examples, clock
    try:
        yield
    finally:
        engine.MAX_SHRINKING_SECONDS, engine.time = previous, time

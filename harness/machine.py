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

import collections
import contextlib
import dataclasses
import functools
import sys
import time
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

from hypothesis import HealthCheck, Phase, Verbosity, event, seed, settings, target
from hypothesis import strategies as st
from hypothesis.errors import Flaky, Unsatisfiable
from hypothesis.stateful import (
    RuleBasedStateMachine, initialize, precondition, rule, run_state_machine_as_test,
)

from . import seeding
from .errors import HarnessError
from .example_db import example_database
from .graph import BASE, State
from .hypothesis_env import hypothesis_home, without_local_constants
from .progress import Progress
from .references import Unreachable
from .session import Session
from .settings import harness_path
from .settings import profile as profile_budget
from .stopping import Stop
from .trial import LoggedStep, Trial
from .unrepeated import unrepeated
from .violations import Violation

if sys.version_info < (3, 11):  # pragma: no cover - the old-stack environment
    from exceptiongroup import BaseExceptionGroup

DISCARDED_LIMIT = 0.10
"""Above this share of discarded examples a walk is not trusted: exit 2, with the fix."""


class PropertyViolated(AssertionError):
    """An example broke a property; carries the violations and the steps that led there."""

    violations: tuple[Violation, ...]
    steps: tuple[LoggedStep, ...]
    path: tuple[State, ...]
    """The state each step was taken from."""
    repeated: bool = True
    """False when the same steps passed when run again (see :mod:`harness.unrepeated`)."""

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
    clock: WorkClock | None = None, focus: Iterable[str] | None = None,
) -> type[RuleBasedStateMachine]:
    """A state machine class walking ``session``'s project; one trial per example, each
    counted on ``clock``.

    With ``focus`` (the revisions a change adds), each example starts from the state just before
    them, built canonically from references, and every move runs only focus revisions: the rest
    of the history is never walked down.
    """
    progress = progress or Progress(list(session.project.graph.revisions), enabled=False)
    graph = session.project.graph
    exclude = (session.project.version_table,)
    rows_per_seed = session.settings.seed_rows
    chosen = frozenset(focus or ())
    start = graph.state_of(p for r in chosen for p in graph.parents(r) if p not in chosen)

    def walked(revisions: Iterable[str]) -> list[str]:
        return [rev for rev in revisions if not chosen or rev in chosen]

    targets = walked(graph.revisions) if chosen else ["heads", "base", *graph.revisions]
    jump_targets = {target: graph.state_at(target) for target in targets}
    starts = [start] if chosen else _starts(session)

    class MigrationWalk(RuleBasedStateMachine):
        start: State

        def __init__(self) -> None:
            super().__init__()
            if clock is not None:
                clock.examples += 1
            self.session, self.progress = session, progress
            self.failed = False
            self.trial: Trial | None = None
            self.started: State = BASE
            """Where the trial began: the state drawn, or base when that state is unreachable."""
            progress.example(session.coverage)

        # Crossing a revision with rows in place must not depend on a lucky sequence of seed
        # steps: every example reaches a state drawn over the whole graph (with --since, the
        # state before the new revisions) by its last revision's upgrade, from the state just
        # before it already holding the deterministic filler's rows (a clone of a template
        # filled once per state). So the first step crosses a revision with rows in place and
        # opens its round trip, and any later downgrade of it checks what came back; a state
        # whose last revision starts from the empty database (or from several heads) is itself
        # the filled start. Shrinking moves the start towards the empty database, the first.
        @initialize(start=st.sampled_from(starts))
        @_stops_walk
        def begin(self, start: State) -> None:
            head = next(iter(start)) if len(start) == 1 and not chosen else None
            before = graph.after_downgrade(start, head) if head is not None else BASE
            first, cross = (before, head) if len(before) == 1 else (start, None)
            try:
                self.trial = Trial(session, first, filled=bool(first))
            except Unreachable:
                self.trial, cross = Trial(session), None
            self.started = self.trial.state
            if cross is not None:
                self._check(self.trial.upgrade(cross))

        @precondition(lambda self: walked(graph.upgrade_moves(self.trial.state)))
        @rule(data=st.data())
        @_stops_walk
        def upgrade(self, data: st.DataObject) -> None:
            moves = walked(graph.upgrade_moves(self.trial.state))
            revision = data.draw(st.sampled_from(moves), label="revision")
            self._check(self.trial.upgrade(revision))

        @precondition(lambda self: walked(graph.downgrade_moves(self.trial.state)))
        @rule(data=st.data())
        @_stops_walk
        def downgrade(self, data: st.DataObject) -> None:
            moves = walked(graph.downgrade_moves(self.trial.state))
            revision = data.draw(st.sampled_from(moves), label="revision")
            self._check(self.trial.downgrade(revision))

        # An upgrade and its own downgrade back to back, the sweep's move, from wherever the
        # walk stands (a filled start, rows seeded since): the round trip with rows is what data
        # preservation checks, and drawn one move at a time it is luck (a jump down through
        # several revisions closes no round trip; another move may come between).
        @precondition(lambda self: self.trial.state and walked(graph.upgrade_moves(self.trial.state)))
        @rule(data=st.data())
        @_stops_walk
        def round_trip(self, data: st.DataObject) -> None:
            revision = data.draw(st.sampled_from(walked(graph.upgrade_moves(self.trial.state))),
                                 label="revision")
            self._check(self.trial.upgrade(revision))
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
                plan = graph.plan(direction, target, self.trial.state)
            except HarnessError:
                # Alembic itself refuses this move (e.g. down to a revision that the current
                # head only depends on): no command a person could type, so no step.
                return
            if len(walked(step.revision for step in plan)) < len(plan):
                return  # it would run revisions outside the focus
            self._check(self.trial.jump(direction, target))

        # At base there is nothing to insert into: a seed step there would be a wasted step.
        @precondition(lambda self: self.trial.state)
        @rule(data=st.data())
        @_stops_walk
        def seed_rows(self, data: st.DataObject) -> None:
            state = self.trial.state

            rows = _rows_within_budget(data, rows_per_seed)

            def insert(conn):
                if not rows:
                    return ()
                catalog = session.per_state(
                    "catalog", state, lambda: seeding.read_catalog(conn, exclude=exclude)
                )
                result = seeding.seed_rows(conn, data.draw, catalog, overrides=overrides,
                                           max_rows=rows)
                session.coverage.seed_attempts += result.rows + result.rejected
                session.coverage.seed_refused += result.rejected
                return result.sequence

            self._check(self.trial.seed(insert))

        def _check(self, violations: list[Violation]) -> None:
            if violations:
                self.failed = True
                # Shrinking replays this example's steps from here on: keep what they build.
                session.checkpoints.start()
                raise _failure_type(violations[0])(violations, list(self.trial.log), list(self.trial.path))

        def teardown(self) -> None:
            if self.trial is None:
                return
            try:
                _observe(self.trial.log, self.started)
                if not self.failed:
                    self._check(self.trial.finish())
            finally:
                self.trial.close()

    MigrationWalk.start = start
    return MigrationWalk


ROW_UNITS = 450
"""What drawing one row may cost of Hypothesis's budget per example, candidates rejected by the
database included (measured on the bundled history: 200-250 on average, 530 at most)."""


def _rows_within_budget(data: st.DataObject, rows: int) -> int:
    """Rows a seed step may draw: fewer as the example's draws near Hypothesis's budget.

    Every draw of an example shares one budget (8 KiB of choices); past it the whole example is
    discarded, steps and findings with it. A seed step therefore draws at most a third of what
    is left (parents a row needs come on top of its rows), and none when little is: the count depends on the example's own draws only, so a seed
    still repeats a walk. Hypothesis keeps the budget and the count in private names; where
    they are missing the step draws ``rows``.
    """
    from hypothesis.internal.conjecture.engine import BUFFER_SIZE

    used = getattr(getattr(data, "conjecture_data", None), "length", None)
    if not isinstance(used, int):
        return rows
    return max(0, min(rows, (BUFFER_SIZE - used) // (3 * ROW_UNITS)))


def _observe(log: list[LoggedStep], start: State) -> None:
    """Tell Hypothesis what this example walked, and steer it toward walks that do more.

    The events are the features of each test case in Hypothesis's observability output
    (``HYPOTHESIS_EXPERIMENTAL_OBSERVABILITY``, which Tyche reads): the state it started from,
    edges walked, steps, rows per table. An example that starts from a filled state walked none
    of the edges leading there (its log begins with an upgrade to the start, a template cloned,
    with no revision of its own), so those edges are features of the examples that walk them
    only. The targets make a walk prefer examples that exercise more distinct edges and more
    steps on rows: Hypothesis keeps optimising them in runs of 1 000 examples or more (the
    nightly profile), and recent versions spend one pass on them in shorter runs (the ci
    profile's examples, not more of them); a value depends on the example only, so a seed
    still repeats a walk.
    """
    edges = sorted({(step.op, step.revision) for step in log if step.revision is not None})
    rows: collections.Counter[str] = collections.Counter()
    on_rows = 0
    for step in log:
        if step.op == "seed":
            rows.update(table for table, _ in step.rows or ())
        elif rows:
            on_rows += 1
    event("start", " ".join(sorted(start)) or "base")
    event("steps", len(log))
    for op, revision in edges:
        event(f"{op} {revision}")
    for table, count in sorted(rows.items()):
        event(f"rows {table}", count)
    target(float(len(edges)), label="distinct edges walked")
    target(float(on_rows), label="steps after rows were seeded")


@dataclasses.dataclass
class Health:
    """How many examples Hypothesis generated, and how many it threw away, and why.

    Counted before shrinking: the shrinker's own attempts overrun and fail filters by design.
    An example is discarded when its draws overran Hypothesis's budget (``overrun``) or a
    strategy gave up (``invalid``: a filter that rejects too much, an override's ``assume``).
    Hypothesis's swarm testing also discards a few: it enables a random subset of the rules per
    example, and at some states none of them can move. Those are its design, cost a few steps,
    and no setting removes them, so they are reported but do not count against the walk.
    """

    examples: int = 0
    overrun: int = 0
    invalid: int = 0
    why: collections.Counter[str] = dataclasses.field(default_factory=collections.Counter)

    @property
    def discarded(self) -> int:
        return self.overrun + self.invalid

    def problem(self) -> str | None:
        """Why the walk cannot be trusted, with the setting that fixes it; None when healthy."""
        counted = self.discarded - self.why[SWARM]
        total = self.examples + self.discarded
        if not total or counted <= DISCARDED_LIMIT * total:
            return None
        share = f"{counted} of {total} examples discarded ({counted / total:.0%})"
        if self.overrun >= counted - self.overrun:
            return (f"{share}: their draws overran Hypothesis's budget per example; walk "
                    f"fewer steps per example (--steps) or seed fewer rows per step "
                    f"(seed_rows in [tool.harness])")
        reasons = "; ".join(f"{why} ({n})" for why, n in self.why.most_common(3) if why != SWARM)
        return (f"{share}: a strategy gave up ({reasons}); loosen the filters or assume() "
                f"calls of the seeding overrides")

    def to_json(self) -> dict[str, Any]:
        return {"examples": self.examples, "overrun": self.overrun, "invalid": self.invalid,
                "discarded": self.discarded, "why": dict(self.why), "problem": self.problem()}


SWARM = "no rule enabled by Hypothesis's swarm testing could move"


def _starts(session: Session) -> list[State]:
    """Where examples may start: the empty database, then the state each revision makes
    with its dependencies, when that state has one head (a jump to it is then one command)."""
    graph = session.project.graph
    states = (graph.state_at(revision) for revision in graph.revisions)
    return list(dict.fromkeys([BASE, *(state for state in states if len(state) == 1)]))


@dataclasses.dataclass
class WalkOutcome:
    """What a walk found: each distinct failure, shrunk, with the seed that reproduces it."""

    seed: int
    failures: list[PropertyViolated]
    health: Health = dataclasses.field(default_factory=Health)
    stopped: str = "examples"
    """``"examples"`` (the budget ran out), ``"duration"``, ``"signal"``, or ``"unrepeated"``
    (Hypothesis ends a run at a failure that does not repeat)."""
    start: State = frozenset()
    """The state every example started from: base, or the state before a focus."""


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
    stop: Stop | None = None,
    focus: Iterable[str] | None = None,
) -> WalkOutcome:
    """Walk the project's graph with Hypothesis; failures are returned, not raised.

    Failures are saved in ``database_dir`` (and in the shared database the ``examples`` setting
    names, if any) and, with ``replay_saved``, the saved ones run first
    (a failure found at night comes back first in the morning). Repeating a walk by its seed
    turns that off: the examples saved since would run first and make it another walk.
    The explain phase is left out: it re-runs the failure under a tracer to name the lines only
    failing examples ran -- lines of Alembic and psycopg here, slowly, and of no use to anyone.
    Hypothesis prints nothing (its ``ci`` profile, loaded under ``CI=true``, is overridden
    here field by field); everything it would say comes back in the failures.

    ``focus`` limits the walk to the revisions a change adds (see :func:`build_machine`).
    ``stop`` ends the walk after the current example once it asks to (its duration is spent, a
    signal came); without one, the profile's duration, if any, applies. The failures found by
    then are shrunk as far as the shrinking budget allows and returned like any others.
    """
    budget = profile_budget(profile)
    stop = stop or Stop(budget.duration)
    clock = WorkClock()
    machine = build_machine(session, overrides, progress, clock, focus)
    run_settings = settings(
        max_examples=budget.max_examples if max_examples is None else max_examples,
        stateful_step_count=budget.steps if steps is None else steps,
        deadline=None,
        derandomize=False,
        database=example_database(database_dir, session.settings.examples),
        suppress_health_check=list(HealthCheck),
        verbosity=Verbosity.quiet,
        report_multiple_bugs=True,
        phases=[p for p in Phase if p is not Phase.explain and (replay_saved or p is not Phase.reuse)],
        print_blob=True,
    )
    health = Health()
    failures: list[PropertyViolated] = []
    ended = None
    try:
        ini = session.settings.alembic_ini
        home = harness_path(ini, "hypothesis") if ini else None
        with _shrinking_bounded_by(clock, budget.shrink_examples), hypothesis_home(home), \
                _watch_engine(stop, health), without_local_constants():
            run_state_machine_as_test(seed(seed_value)(machine), settings=run_settings)
    except WalkStopped as stopped:
        raise stopped.error from None
    except PropertyViolated as failure:
        failures = [failure]
    except (Flaky, BaseExceptionGroup) as caught:
        failures, ended = _failures_in(caught)
    except Unsatisfiable:
        pass  # nothing valid was generated before the stop, or at all: the health says which
    finally:
        if progress is not None:
            progress.done()
    return WalkOutcome(seed_value, failures, health, ended or stop.reason or "examples", machine.start)


@contextlib.contextmanager
def _watch_engine(stop: Stop, health: Health) -> Iterator[None]:
    """Count each test case Hypothesis's engine runs, and end the run when ``stop`` asks.

    Hypothesis has no public way to end a run early and keep what it found: its engine ends a
    run by ``exit_with()`` after a test case, and then reports the failures found so far,
    shrunk as far as they got. Its counters changed names across versions.
    """
    from hypothesis.internal.conjecture import engine
    from hypothesis.internal.conjecture.data import Status

    runner_class = engine.ConjectureRunner
    original = runner_class.test_function

    def test_function(runner: Any, data: Any) -> None:
        try:
            original(runner, data)
        finally:
            if runner.finish_shrinking_deadline is None:
                _count(health, data, Status)
        if stop.requested():
            runner.exit_with(engine.ExitReason.finished)

    runner_class.test_function = test_function
    try:
        yield
    finally:
        runner_class.test_function = original


def _count(health: Health, data: Any, status: Any) -> None:
    """Count one test case. An overrun counts only when its draws reached Hypothesis's budget:
    the engine also tries prefixes of earlier examples cut to their number of choices, and
    those end as overruns a few hundred bytes in (measured on the bundled history: 6 to 900
    bytes of 8 192), examples it never meant to keep rather than walks this one lost."""
    from hypothesis.internal.conjecture.engine import BUFFER_SIZE

    if data.status is status.OVERRUN:
        if getattr(data, "length", BUFFER_SIZE) * 2 > BUFFER_SIZE:
            health.overrun += 1
    elif data.status is status.INVALID:
        health.invalid += 1
        health.why[_why_invalid(data.events)] += 1
    elif data.status in (status.VALID, status.INTERESTING):
        health.examples += 1


def _why_invalid(events: dict[str, Any]) -> str:
    """A short reason for a discarded example, from the events Hypothesis recorded on it.

    Hypothesis records why it gave up only without observability; the rule filter's retries are
    recorded either way, so the swarm case is told by any mention of the rule choice.
    """
    said = " ".join(f"{key} {value}" for key, value in events.items())
    if "sampled_from([Rule(" in said:
        return SWARM
    reason = str(events.get("gave up because", ""))
    return reason.splitlines()[0][:160] if reason else "a strategy or assume() rejected it"


def _failures_in(caught: BaseException) -> tuple[list[PropertyViolated], str | None]:
    """The failures Hypothesis raised together, and ``"unrepeated"`` if one of them did not
    repeat (a ``Flaky`` error, alone or among the others: it ends the run)."""
    flaky, rest = (caught, None) if isinstance(caught, Flaky) else caught.split(Flaky)
    matched, rest = rest.split(PropertyViolated) if rest is not None else (None, None)
    if rest is not None:
        raise rest from None
    failures = _leaves(matched) if matched is not None else []
    if flaky is None:
        return failures, None
    return failures + unrepeated(flaky), "unrepeated"


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

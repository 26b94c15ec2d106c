"""The deterministic companion of the walk: every revision up, down and up again, once.

For each revision, a trial starts from the reference of the state just before it (a clone, so
one broken revision never hides the next) and runs upgrade, downgrade, upgrade, with every
invariant checked after each step. Fast, exhaustive over the graph's edges, and the first thing
to run on a new project.

Before each upgrade and each downgrade the deterministic filler
(:mod:`harness.seeding.filling`) gives rows to every table created or restructured since it last
ran (every table on a fresh clone): two tenants, every enum label, NULLs, the edges of each type.
Before a downgrade only the tables the upgrade created get rows: rows valid under the new schema
alone (a relaxed CHECK, a column made nullable) may rightly stop a downgrade restoring the old.
So data preservation, the round trip with rows and tenant isolation are checked on every
revision, every run, with no seed involved, and rows kept across the sweep's steps make the
filling cost grow with the history, not with its square. After the fill that precedes a
downgrade, isolation is checked again and blamed on the revision just upgraded: a table it
created gets its first rows there.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any, Callable

import psycopg

from .graph import State
from .invariants import data
from .invariants.row_reader import capture_rows
from .references import Unreachable
from .seeding import read_catalog
from .server import roles
from .server.base import SCRATCH_PREFIX
from .session import Coverage, Session
from .sweep_workers import jobs_of, run_segments
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
    """From ``start``: the rows earlier fills left, then the revision's fills and moves."""
    revision: str | None = None
    """The revision swept when it was found; None for what the whole snapshot at the end of a
    trial found (a change no step's scoped snapshot saw)."""


SEGMENT = 50
"""Revisions one trial sweeps at most: the next ones start afresh from their reference. The
unit a sweep shares out among processes, fixed by the revisions' positions in the history and
never by the number of jobs, so that no result depends on how many ran."""


def run_sweep(
    session: Session, *, revisions: list[str] | None = None,
    progress: Callable[[str], None] | None = None, jobs: int | None = None,
) -> SweepOutcome:
    """Sweep ``revisions`` (all of them by default); one broken revision never hides the next.

    The revisions go in segments of :data:`SEGMENT`, each on a session of its own that starts
    from its first revision's reference and leaves the cluster's roles as it found them: a
    segment's findings are then the same wherever and after whatever it ran. With ``jobs``
    (default: the ``jobs`` setting) above one, segments also run in other processes, each with
    a server of its own (:mod:`.sweep_workers`).
    """
    graph = session.project.graph
    jobs = jobs_of(session.settings) if jobs is None else jobs
    segments = _segments(graph.revisions, revisions or graph.revisions)
    if len(segments) == 1:
        return _sweep(session, segments[0], progress)

    outcome = SweepOutcome([], {})
    for found, coverage in run_segments(session, segments, jobs, lambda part: sweep_segment(session, part, progress)):
        outcome.findings += found.findings
        outcome.not_reached.update(found.not_reached)
        session.coverage.add(coverage)
    return outcome


def sweep_segment(session: Session, revisions: list[str],
                  progress: Callable[[str], None] | None = None) -> tuple[SweepOutcome, Coverage]:
    """One segment on a fresh session of ``session``'s server and project, from a template
    ``session`` keeps for the segments after it (see :func:`_start_of`); the roles the
    segment's migrations created are dropped afterwards (its databases are gone by then)."""
    start = _start_of(session, revisions[0])
    roles_before = roles.role_names(session.server.admin)
    fresh = session.fresh()
    if start is not None:
        fresh.references.lend(*start)
    try:
        return _sweep(fresh, revisions, progress), fresh.coverage
    finally:
        fresh.close()
        roles.drop_new_roles(session.server.admin, roles_before, session.server.scratch_names(), SCRATCH_PREFIX)


def _start_of(session: Session, revision: str) -> tuple[State, str] | None:
    """The state ``revision`` starts from and ``session``'s template of it, kept for the
    segments after it; None where that state cannot be reached (the segment's own session
    then says why).

    The template is made through the states where the history's segments before it start, in
    order, each from the one before it on its path: a process's templates then cost one step
    per revision of the history, not a run from the base per segment (the segments of 400
    revisions: 350 steps, not 1400), and whichever segments a process swept before, a segment's
    template comes from the same runs. A process takes its segments up the history, so the
    templates on the way are dropped once passed.
    """
    graph = session.project.graph
    references = session.references
    state = _state_before(session, revision)
    path = graph.canonical_path(state)
    passed: list[State] = [frozenset()] if state else []
    for position in range(SEGMENT, graph.revisions.index(revision), SEGMENT):
        stop = _state_before(session, graph.revisions[position])
        on_the_way = graph.canonical_path(stop)
        if stop != state and on_the_way == path[:len(on_the_way)]:
            passed.append(stop)
    # From the last one this process has (the start of the last segment it swept, or none).
    first = max((i + 1 for i, stop in enumerate(passed) if references.has_template(stop)), default=0)
    try:
        for stop in passed[first:]:
            references.template(stop)
        name = references.template(state)
    except Unreachable:
        return None
    references.forget(passed)
    return state, name


def _segments(history: list[str], chosen: list[str]) -> list[list[str]]:
    """``chosen`` in the history's order, cut where a multiple of :data:`SEGMENT` revisions of
    the whole history begins."""
    position = {revision: index for index, revision in enumerate(history)}
    segments: dict[int, list[str]] = {}
    for revision in sorted(chosen, key=position.__getitem__):
        segments.setdefault(position[revision] // SEGMENT, []).append(revision)
    return list(segments.values())


def _sweep(session: Session, revisions: list[str], progress: Callable[[str], None] | None) -> SweepOutcome:
    outcome = SweepOutcome([], {})
    trial: Trial | None = None
    try:
        for revision in revisions:
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
            moves = [lambda: trial.fill() or trial.upgrade(revision, canonical=True)]
            if not irreversible:
                moves += [lambda: trial.fill(created_only=True, check=revision) or trial.downgrade(revision),
                          lambda: trial.fill() or trial.upgrade(revision)]
            start_rows, start_log = trial.rows(), len(trial.log)
            for move in moves:
                violations = move()
                if violations:
                    try:
                        kept = _rows_kept(session, before, start_rows)
                    except Unreachable:  # no replay from the reference, but the finding stands
                        kept = ()
                    steps = (*kept, *trial.log[start_log:])
                    outcome.findings.append(Finding(tuple(violations), before, steps, revision))
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
def _rows_kept(session: Session, state: State, rows: data.RowsSnapshot) -> tuple[LoggedStep, ...]:
    """The rows ``rows`` holds beyond those of ``state``'s reference, as a step a replay
    inserts: what earlier revisions' fills left in the sweep's one database."""
    exclude = (session.project.version_table,)
    with psycopg.connect(session.server.dsn(session.references.template(state)), autocommit=True) as conn:
        reference = capture_rows(conn, exclude=exclude)
        parents_first = read_catalog(conn, exclude=exclude).keys()
    kept = []
    for key in parents_first:
        name = tuple(key.split(".", 1))
        if name in rows.tables:
            table = rows.tables[name]
            kept += [(key, _record(table.columns, row))
                     for row in data.surplus(table, reference.tables.get(name))]
    return (LoggedStep("seed", rows=tuple(kept)),) if kept else ()


def _record(columns: tuple[data.ComparedColumn, ...], row: data.Row) -> dict[str, Any]:
    """A captured row as a replay inserts it: JSON columns as JSON, everything else as text,
    which ``jsonb_populate_record`` reads with each type's own input function."""
    return {c.name: json.loads(v) if v is not None and c.type in ("json", "jsonb") else v
            for c, v in zip(columns, row)}


def _state_before(session: Session, revision: str) -> State:
    """The canonical state from which ``revision`` is applied: its dependencies, nothing more."""
    graph = session.project.graph
    return graph.state_of(graph.parents(revision))

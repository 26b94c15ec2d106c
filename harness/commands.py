"""The harness's commands, thin over a session: ``walk``, ``sweep`` and ``replay``.

Each returns a :class:`RunResult`; none prints or exits. The command line, the pytest entry
point and the report are faces over these functions.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import random
import re
import signal
import time
import zlib
from pathlib import Path
from typing import Any, Callable, Iterator

from . import heads
from .baseline import Baseline
from .errors import HarnessError
from .failures import Failure, defects, read_failure_file
from .server import Server
from .session import Session, open_session
from .seeding.overrides import Overrides
from .settings import Profile, ProfileName, Settings, load_settings
from .settings import profile as profile_budget
from .trial import Trial
from .violations import PROPERTIES


@dataclasses.dataclass
class RunResult:
    """What one command found."""

    command: str
    failures: list[Failure]
    """One per defect."""
    coverage: dict[str, Any]
    duration_s: float
    seed: int | None = None
    not_reached: dict[str, str] = dataclasses.field(default_factory=dict)
    accepted: int = 0
    """Violations left out because the project's baseline accepts them."""
    sources: dict[str, str] = dataclasses.field(default_factory=dict)
    """Each revision's file, for faces that point at lines (annotations, SARIF)."""
    alembic_ini: str = "alembic.ini"
    stopped: str | None = None
    """How a walk ended: ``"examples"`` (its budget), ``"duration"`` or ``"signal"``."""
    stop_signal: int | None = None
    """The signal that stopped a walk, by number."""
    health: dict[str, Any] | None = None
    """A walk's examples run and discarded, and why (:class:`harness.machine.Health`)."""
    shard: tuple[int, int] | None = None
    """``(i, n)``: the walk was the i-th of n shares of one seed's work."""

    @property
    def problem(self) -> str | None:
        """Why the run's verdict cannot be trusted (too many examples discarded), if so."""
        return (self.health or {}).get("problem")

    @property
    def ok(self) -> bool:
        return not self.failures and not self.not_reached

    @property
    def violations(self) -> list:
        return [v for failure in self.failures for v in failure.violations]

    def to_json(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "command": self.command,
            "seed": self.seed,
            **({"shard": "/".join(map(str, self.shard))} if self.shard else {}),
            "defects": len(self.failures),
            "violations": [v.to_json() for v in self.violations],
            "failures": [f.to_json() for f in self.failures],
            "not_reached": self.not_reached,
            "accepted": self.accepted,
            **({"stopped": self.stopped, "health": self.health} if self.stopped else {}),
            **({"signal": signal_name(self.stop_signal)} if self.stop_signal else {}),
            "coverage": self.coverage,
            "duration_s": round(self.duration_s, 3),
        }

    def to_markdown(self) -> str:
        """A short document of the run, for a CI artifact or a pull-request comment."""
        from .progress import coverage_summary

        verdict = "every property holds" if self.ok else f"{len(self.failures)} defect(s)"
        seed = f", seed `{self.seed}`" if self.seed is not None else ""
        lines = [f"# harness {self.command}: {verdict}", "",
                 f"{self.duration_s:.1f} s{seed}.", ""]
        for failure in self.failures:
            lines += ["```text", failure.render(), "```", ""]
        lines += [f"- not reached: `{rev}`: {why}" for rev, why in self.not_reached.items()]
        lines += ["## Coverage", "", "```text", *coverage_summary(self.coverage), "```", ""]
        return "\n".join(lines)


def walk(
    settings: Settings,
    *,
    profile: ProfileName = "ci",
    seed: int | None = None,
    max_examples: int | None = None,
    steps: int | None = None,
    overrides: Overrides | None = None,
    database_dir: Path | None = None,
    server: Server | None = None,
    progress: bool | None = None,
    since: str | None = None,
    shard: tuple[int, int] | None = None,
) -> RunResult:
    """The random walk: Hypothesis chooses steps and rows; every failure comes back shrunk.

    Without ``seed`` a fresh one is drawn and failures saved in ``database_dir`` run first;
    with one, the walk is that seed's walk exactly. ``profile`` sets the budget (see
    :data:`~harness.settings.PROFILES`), ``max_examples`` and ``steps`` override it;
    ``overrides`` gives strategies of your own for rows the catalog cannot describe.
    ``progress``: a live line on stderr (None: only when stderr is a terminal). The walk ends
    after the example running when ``settings.duration`` (else the profile's) is spent, or on
    SIGINT or SIGTERM; the result says which (``stopped``) and carries what was found and
    covered until then.

    ``since`` (a git ref) walks only the revisions whose files were added since then, from the
    state just before them: the pull-request mode. With none added there is nothing to walk.

    ``shard`` ``(i, n)`` makes this walk the i-th of n (from 1) walking one history together, one
    per CI job: each walks its share of the examples, with a seed of its own derived from
    ``seed``, so two shards of one seed walk different examples.
    """
    from .machine import run_walk
    from .minimize import Cut, minimize, repeats
    from .progress import Progress
    from .stopping import Stop

    chosen = profile_budget(profile)
    replay_saved = seed is None
    seed = random.getrandbits(32) if seed is None else seed
    walk_seed = seed
    if shard is not None:
        index, count = _check_shard(shard)
        walk_seed = zlib.crc32(f"{seed}:{index}/{count}".encode())
        total = max_examples or chosen.max_examples
        max_examples = -(-total // count)
    budget = {"--profile": profile, "--max-examples": max_examples, "--steps": steps,
              "--since": since, "--shard": shard and "/".join(map(str, shard))}
    command = f"harness walk -c {settings.alembic_ini} --seed {seed}" + "".join(
        f" {option} {value}" for option, value in budget.items() if value is not None
    )
    stop = Stop(settings.duration or chosen.duration)
    with _timed_session(settings, server) as (session, started), stop.on_signals():
        revisions = list(session.project.graph.revisions)
        if since is not None:
            revisions = _added_since(session, since)
            if not revisions:
                return _result("walk", session, started, [], seed=seed, revisions=revisions, shard=shard)
            share = len(revisions) / len(session.project.graph.revisions)
            max_examples = _focus_budget(chosen, share, max_examples)
        shown = Progress(revisions, enabled=progress)
        outcome = run_walk(
            session, seed_value=walk_seed, profile=profile, max_examples=max_examples, steps=steps,
            overrides=overrides, database_dir=database_dir, replay_saved=replay_saved,
            progress=shown, stop=stop, focus=revisions if since is not None else None,
        )
        cuts = []
        for found in outcome.failures:
            start = found.path[0] if found.path else outcome.start  # a filled example replays from base
            cut = Cut(found.violations, start, found.steps, found.path)
            # Cutting needs the failure to repeat; all are cut before any is confirmed afresh,
            # which ends the checkpoints the cutting uses.
            cuts.append((found, minimize(session, cut, chosen.replays) if found.repeated else cut))
        failures: list[Failure] = []
        for found, cut in cuts:
            repeated = found.repeated and repeats(session, cut)
            reported = {(f.violations[0].property, f.violations[0].revision) for f in failures}
            failures += [
                dataclasses.replace(defect, repeated=repeated)
                for defect in defects(cut.violations, cut.start, cut.steps, _reproduce(seed, profile, command, found))
                if (defect.violations[0].property, defect.violations[0].revision) not in reported
            ]
        result = _result("walk", session, started, failures, seed=seed, stopped=outcome.stopped,
                         stop_signal=stop.signal, health=outcome.health.to_json(),
                         revisions=revisions, shard=shard)
        result.coverage["examples"] = shown.examples
        result.coverage["from_empty"] = _from_empty(session, revisions)
        result.coverage["from_checkpoints"] = session.checkpoints.served
        if database_dir is not None:
            result.coverage["merged"] = _merge_coverage(database_dir, settings, result.coverage)
        return result


def sweep(
    settings: Settings, *, revisions: list[str] | None = None, server: Server | None = None,
    progress: Callable[[str], None] | None = None, since: str | None = None,
) -> RunResult:
    """Every revision upgraded, downgraded and upgraded again, each from its own clone.

    ``since`` (a git ref) sweeps only the revisions whose files were added since then: the
    pull-request mode, in which the rest of the history is only applied, from references.
    """
    from .sweep import run_sweep

    with _timed_session(settings, server) as (session, started):
        graph = session.project.graph
        chosen = [graph.resolve(r) for r in revisions] if revisions else None
        if since is not None:
            added = _added_since(session, since)
            chosen = [r for r in (chosen or graph.revisions) if r in added]
        outcome = run_sweep(session, revisions=chosen, progress=progress)
        failures = [defect for f in outcome.findings for defect in defects(f.violations, f.start, f.steps)]
        return _result("sweep", session, started, failures, not_reached=outcome.not_reached)


def replay(path: Path, settings: Settings | None = None, server: Server | None = None) -> RunResult:
    """Run a recorded failure's steps again on a fresh database and check everything again."""
    recorded, ini = read_failure_file(path)
    settings = settings or load_settings(ini)
    with _timed_session(settings, server) as (session, started):
        trial = Trial(session, recorded.start)
        try:
            for step in recorded.steps:
                violations = trial.replay(step)
                if violations:
                    found = defects(violations, recorded.start, tuple(trial.log))
                    return _result("replay", session, started, found)
            violations = trial.finish()
            if violations:
                return _result("replay", session, started,
                               defects(violations, recorded.start, tuple(trial.log)))
        finally:
            trial.close()
        return _result("replay", session, started, [])


@contextlib.contextmanager
def _timed_session(settings: Settings, server: Server | None) -> Iterator[tuple[Session, float]]:
    started = time.perf_counter()
    with open_session(settings, server) as session:
        yield session, started


def write_baseline(settings: Settings, output: Path | None = None, server: Server | None = None) -> tuple[Path, RunResult]:
    """Sweep and accept everything found: the file a project commits to adopt the harness today."""
    result = sweep(dataclasses.replace(settings, baseline=None), server=server)
    path = output or _baseline_path(settings) or Path(settings.alembic_ini).parent / "harness-baseline.json"
    return Baseline.of(result.violations).write(path), result


def _baseline_path(settings: Settings) -> Path | None:
    if not settings.baseline:
        return None
    return Path(settings.alembic_ini).parent / settings.baseline


def parse_shard(text: str) -> tuple[int, int]:
    """``"I/N"`` (``"2/4"``) as ``(I, N)``: the I-th of N shares of a walk, from 1."""
    index, _, count = text.partition("/")
    if not (index.isdigit() and count.isdigit()):
        raise HarnessError(f"shard {text!r} is not I/N", hint="write the share as 1/4, 2/4, ...")
    return _check_shard((int(index), int(count)))


def _focus_budget(chosen: Profile, share: float, max_examples: int | None) -> int:
    """The examples of a walk of ``share`` of the revisions (``--since``): the profile's, in
    proportion, and never fewer than the dev profile's. Each example keeps the profile's steps:
    all of them are spent on the new revisions, where a full walk spends about that share of
    its steps. Examples given explicitly are kept."""
    if max_examples is not None:
        return max_examples
    return max(profile_budget("dev").max_examples, math.ceil(chosen.max_examples * share))


def _from_empty(session: Session, revisions: list[str]) -> list[str]:
    """The revisions whose upgrade starts where no table exists yet (from the empty database,
    or after revisions that create only schemas and extensions): no run of it has rows to run
    on."""
    from .references import Unreachable

    graph = session.project.graph
    version_table = ".".join(session.project.version_table)
    found = []
    for rev in revisions:
        try:
            tables = set(session.references.snapshot(graph.state_of(graph.parents(rev))).tables.values())
        except Unreachable:
            continue
        if not tables - {version_table}:
            found.append(rev)
    return found


def _merge_coverage(database_dir: Path, settings: Settings, coverage: dict[str, Any]) -> dict[str, Any]:
    """This run's coverage saved beside its examples, and every saved run's merged."""
    from . import coverage_history
    from .example_db import example_database

    database = example_database(database_dir, settings.examples)
    coverage_history.record(database, coverage)
    return coverage_history.read(database)


def _check_shard(shard: tuple[int, int]) -> tuple[int, int]:
    index, count = shard
    if not 1 <= index <= count:
        raise HarnessError(f"shard {index}/{count} does not exist",
                           hint=f"shards of {count} are numbered 1 to {count}: --shard 1/{count}")
    return index, count


def _added_since(session: Session, ref: str) -> list[str]:
    from .changes import revisions_since

    return revisions_since(session.project.graph, ref)


def _result(command: str, session: Session, started: float, failures: list[Failure],
            revisions: list[str] | None = None, **extra: Any) -> RunResult:
    """The run's result; its coverage lists ``revisions`` (default: all of them)."""
    if revisions is None:
        revisions = list(session.project.graph.revisions)
    coverage = session.coverage.to_json(revisions, session.settings.irreversible)
    if command in ("walk", "sweep"):
        failures = [*failures, *heads.check(session)]
    coverage["properties"] = _checked(session)
    accepted = 0
    path = _baseline_path(session.settings)
    if path is not None:
        baseline, kept = Baseline.read(path), []
        for failure in failures:
            new = baseline.filter(failure.violations)
            accepted += len(failure.violations) - len(new)
            if new:
                kept.append(dataclasses.replace(failure, violations=tuple(new)))
        failures = kept
    graph = session.project.graph
    sources = {rev: str(graph.revision(rev).path) for rev in graph.revisions}
    return RunResult(command, failures, coverage, time.perf_counter() - started, accepted=accepted,
                     sources=sources, alembic_ini=str(session.settings.alembic_ini), **extra)


def _checked(session: Session) -> list[str]:
    """The properties this run checked: isolation only where tenant policies exist, column order
    unless the project accepts it."""
    skipped = {"tenant_isolation"} if session.isolation_setup() is None else set()
    if session.settings.accept_column_order:
        skipped.add("column_order")
    optional = {"models", "heads"} - set(heads.checked(session))
    return [p for p in PROPERTIES if p not in skipped | optional]


def signal_name(number: int) -> str:
    return signal.Signals(number).name


def _reproduce(seed: int, profile: str, command: str, failure: BaseException) -> dict[str, Any]:
    """The ways back to a walk's failure: its seed (CLI or pytest) and Hypothesis's blob."""
    found = {"seed": seed, "command": command,
             "pytest": f"pytest --hypothesis-seed={seed} --harness-profile={profile}"}
    for note in getattr(failure, "__notes__", ()):
        if blob := re.search(r"@reproduce_failure\(.*?\)", note):
            found["blob"] = blob.group(0)
    return found

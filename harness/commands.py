"""The harness's commands, thin over a session: ``walk``, ``sweep`` and ``replay``.

Each returns a :class:`RunResult`; none prints or exits. The command line, the pytest entry
point and the report are faces over these functions.
"""

from __future__ import annotations

import contextlib
import dataclasses
import random
import re
import time
from pathlib import Path
from typing import Any, Callable, Iterator

from .baseline import Baseline
from .failures import Failure, defects, read_failure_file
from .server import Server
from .session import Session, open_session
from .seeding.overrides import Overrides
from .settings import PROFILES, ProfileName, Settings, load_settings
from .trial import Trial


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
            "defects": len(self.failures),
            "violations": [v.to_json() for v in self.violations],
            "failures": [f.to_json() for f in self.failures],
            "not_reached": self.not_reached,
            "accepted": self.accepted,
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
) -> RunResult:
    """The random walk: Hypothesis chooses steps and rows; every failure comes back shrunk.

    Without ``seed`` a fresh one is drawn and failures saved in ``database_dir`` run first;
    with one, the walk is that seed's walk exactly. ``profile`` sets the budget (see
    :data:`~harness.settings.PROFILES`), ``max_examples`` and ``steps`` override it;
    ``overrides`` gives strategies of your own for rows the catalog cannot describe.
    ``progress``: a live line on stderr (None: only when stderr is a terminal).
    """
    from .machine import run_walk
    from .minimize import Cut, minimize
    from .progress import Progress

    replay_saved = seed is None
    seed = random.getrandbits(32) if seed is None else seed
    budget = {"--profile": profile, "--max-examples": max_examples, "--steps": steps}
    command = f"harness walk -c {settings.alembic_ini} --seed {seed}" + "".join(
        f" {option} {value}" for option, value in budget.items() if value is not None
    )
    with _timed_session(settings, server) as (session, started):
        outcome = run_walk(
            session, seed_value=seed, profile=profile, max_examples=max_examples, steps=steps,
            overrides=overrides, database_dir=database_dir, replay_saved=replay_saved,
            progress=Progress(list(session.project.graph.revisions), enabled=progress),
        )
        failures: list[Failure] = []
        for found in outcome.failures:
            cut = minimize(session, Cut(found.violations, frozenset(), found.steps, found.path), PROFILES[profile].replays)
            reported = {(f.violations[0].property, f.violations[0].revision) for f in failures}
            failures += [
                defect for defect in defects(cut.violations, cut.start, cut.steps, _reproduce(seed, profile, command, found))
                if (defect.violations[0].property, defect.violations[0].revision) not in reported
            ]
        return _result("walk", session, started, failures, seed=seed)


def sweep(
    settings: Settings, *, revisions: list[str] | None = None, server: Server | None = None,
    progress: Callable[[str], None] | None = None, since: str | None = None,
) -> RunResult:
    """Every revision upgraded, downgraded and upgraded again, each from its own clone.

    ``since`` (a git ref) sweeps only the revisions whose files were added since then: the
    pull-request mode, in which the rest of the history is only applied, from references.
    """
    from .changes import revisions_since
    from .sweep import run_sweep

    with _timed_session(settings, server) as (session, started):
        graph = session.project.graph
        chosen = [graph.resolve(r) for r in revisions] if revisions else None
        if since is not None:
            added = revisions_since(graph, since)
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


def _result(command: str, session: Session, started: float, failures: list[Failure], **extra: Any) -> RunResult:
    coverage = session.coverage.to_json(list(session.project.graph.revisions), session.settings.irreversible)
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
    return RunResult(command, failures, coverage, time.perf_counter() - started, accepted=accepted, **extra)


def _reproduce(seed: int, profile: str, command: str, failure: BaseException) -> dict[str, Any]:
    """The ways back to a walk's failure: its seed (CLI or pytest) and Hypothesis's blob."""
    found = {"seed": seed, "command": command,
             "pytest": f"pytest --hypothesis-seed={seed} --harness-profile={profile}"}
    for note in getattr(failure, "__notes__", ()):
        if blob := re.search(r"@reproduce_failure\(.*?\)", note):
            found["blob"] = blob.group(0)
    return found

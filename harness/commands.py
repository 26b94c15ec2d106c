"""The harness's commands, thin over a session: ``walk``, ``sweep`` and ``replay``.

Each returns a :class:`RunResult`; none prints or exits. The command line, the pytest entry
point and the report are faces over these functions.
"""

from __future__ import annotations

import contextlib
import dataclasses
import random
import time
from pathlib import Path
from typing import Any, Callable, Iterator

from .failures import Failure, read_failure_file
from .server import Server
from .session import Session, open_session
from .settings import Settings, load_settings
from .trial import Trial


@dataclasses.dataclass
class RunResult:
    """What one command found."""

    command: str
    failures: list[Failure]
    coverage: dict[str, Any]
    duration_s: float
    seed: int | None = None
    not_reached: dict[str, str] = dataclasses.field(default_factory=dict)

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
            "violations": [item for f in self.failures for item in f.to_json()["violations"]],
            "failures": [f.to_json() for f in self.failures],
            "not_reached": self.not_reached,
            "coverage": self.coverage,
            "duration_s": round(self.duration_s, 3),
        }


def walk(
    settings: Settings,
    *,
    profile: str = "ci",
    seed: int | None = None,
    max_examples: int | None = None,
    steps: int | None = None,
    overrides: Any = None,
    database_dir: Path | None = None,
    server: Server | None = None,
) -> RunResult:
    """The random walk: Hypothesis chooses steps and rows; every failure comes back shrunk."""
    from .machine import run_walk

    seed = random.getrandbits(32) if seed is None else seed
    with _timed_session(settings, server) as (session, started):
        outcome = run_walk(
            session, seed_value=seed, profile=profile, max_examples=max_examples, steps=steps,
            overrides=overrides, database_dir=database_dir,
        )
        failures = [
            Failure(f.violations, frozenset(), f.steps, _reproduce(seed, f)) for f in outcome.failures
        ]
        return _result("walk", session, started, failures, seed=seed)


def sweep(
    settings: Settings, *, revisions: list[str] | None = None, server: Server | None = None,
    progress: Callable[[str], None] | None = None,
) -> RunResult:
    """Every revision upgraded, downgraded and upgraded again, each from its own clone."""
    from .sweep import run_sweep

    with _timed_session(settings, server) as (session, started):
        chosen = [session.project.graph.resolve(r) for r in revisions] if revisions else None
        outcome = run_sweep(session, revisions=chosen, progress=progress)
        failures = [Failure(f.violations, f.start, f.steps) for f in outcome.findings]
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
                    failure = Failure(tuple(violations), recorded.start, tuple(trial.log))
                    return _result("replay", session, started, [failure])
        finally:
            trial.close()
        return _result("replay", session, started, [])


@contextlib.contextmanager
def _timed_session(settings: Settings, server: Server | None) -> Iterator[tuple[Session, float]]:
    started = time.perf_counter()
    with open_session(settings, server) as session:
        yield session, started


def _result(command: str, session: Session, started: float, failures: list[Failure], **extra: Any) -> RunResult:
    coverage = session.coverage.to_json(list(session.project.graph.revisions))
    return RunResult(command, failures, coverage, time.perf_counter() - started, **extra)


def _reproduce(seed: int, failure: BaseException) -> dict[str, Any]:
    found = {"seed": seed, "command": f"harness walk --seed {seed}"}
    for note in getattr(failure, "__notes__", ()):
        if "@reproduce_failure" in note:
            found["blob"] = note.strip()
    return found

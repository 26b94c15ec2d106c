"""The benchmark suite: the harness against the floor, against pytest-alembic, and by scale.

    .venv/bin/python -m benchmarks [--revisions 50 100 200 400] [--compare-at 100] [--quick]
    .venv/bin/python -m benchmarks failures [--seeds 3]   (see benchmarks/failures.py)
    .venv/bin/python -m benchmarks detection [--seeds 10]   (see benchmarks/detection.py)
    .venv/bin/python -m benchmarks since [--seeds 3]   (see benchmarks/since.py)

Never a timed test: a script run by hand, whose figures go to the README. Everything runs on one
embedded server started here, and every ratio compares two runs on that same server, so the load
of the machine (recorded with the results) shifts the seconds more than the ratios.

Sections:
- scale: for each generated history (:mod:`benchmarks.histories`), the floor (Alembic alone,
  :mod:`benchmarks.floor`) and ``harness sweep``; seconds, the ratio, and the cost per revision,
  which must stay flat (linear growth) rather than grow with the history (quadratic). Beside
  the floor, the same steps as one command each (env.py run per step), the yardstick of a
  person typing them.
- alternative: pytest-alembic's two round-trip tests on the ``--compare-at`` history.
- profile: where the sweep's time goes on that history, by the harness's own parts.
- walk: migration steps per second on the bundled history and on the generated 100-revision
  one, each against the floor's on the same history (medians of three rounds, walk and floor in
  turn; a round's floor is itself the median of runs filling a second), and the cost of a fresh
  example.
- shrink: one walk of the data mutant of tests/mutants.py until its failure is shrunk.
- snapshot: ``take_snapshot`` against the number of tables (see ``bench_snapshot.py``).
- server: starting and stopping the embedded server, the fixed cost of every run.
- seeding: rows per second and the share of inserts the database refuses, on the bundled
  schema and the mutant corpus (:mod:`benchmarks.seeding`, which also runs alone).

A section that fails (say, a walk that finds a defect while others change the harness) is
reported as such and the others still run: one broken section must not cost a long run's figures.

Beside wall-clock seconds, the scale and walk sections give CPU seconds (this process and the
embedded server, :mod:`benchmarks.cpu`) and their ratio, which holds on a loaded machine where the
wall-clock ratio wanders with the other jobs.

Results are printed as a table and written as JSON (``docs/speed.json``) with a plot
(``docs/speed.svg``).
"""

from __future__ import annotations

import argparse
import cProfile
import json
import os
import platform
import pstats
import statistics
import sys
import tempfile
import time
import zlib
from pathlib import Path
from typing import Any, Callable

import psycopg

from harness.commands import sweep, walk
from harness.machine import run_walk
from harness.progress import Progress
from harness.server import Server, open_server
from harness.session import Session, open_session
from harness.settings import Settings, load_settings
from harness.sweep_workers import default_jobs
from harness.snapshot import take_snapshot
from harness.trial import Trial

from . import alternative
from .bench_snapshot import schema
from .cpu import cpu_seconds
from .floor import run_commands, run_floor
from .histories import write_history
from .plot import line_chart
from .seeding import bench_seeding
from .seeding import render as render_seeding

ROOT = Path(__file__).resolve().parent.parent
BUNDLED_INI = ROOT / "alembic.ini"

PARTS = {
    "schema snapshots": ("harness/snapshot/reader.py", "read_snapshot"),
    "migration steps (env.py runs)": ("harness/runner.py", "_execute"),
    "step reads (rows, sequences, keys)": ("harness/step_reads.py", "now"),
    "isolation checks": ("harness/invariants/isolation.py", "check_isolation"),
    "schema diffs": ("harness/snapshot/diff.py", "diff_snapshots"),
    "clone databases": ("harness/server/base.py", "create_database"),
    "drop databases": ("harness/server/base.py", "drop_database"),
}
"""The sweep's parts whose cumulative time the profile reports (none calls another)."""


OPTIONS: dict[str, Any] = {}
"""Settings every benchmarked run gets (``--scoped-off``)."""


def median_of(repeat: int, action: Callable[[], float]) -> float:
    return statistics.median(action() for _ in range(repeat))


def timed_sweep(server: Server, ini: Path, **options: Any) -> float:
    return cpu_timed_sweep(server, ini, **options)[0]


def cpu_timed_sweep(server: Server, ini: Path, **options: Any) -> tuple[float, float | None]:
    """Wall-clock and CPU seconds (see :mod:`benchmarks.cpu`) of one sweep."""
    started = time.perf_counter()
    result, cpu = cpu_seconds(server, lambda: sweep(load_settings(ini, **OPTIONS, **options), server=server))
    elapsed = time.perf_counter() - started
    if not result.ok:
        raise RuntimeError(f"the sweep of {ini} found something: {[v.headline() for v in result.violations]}")
    return elapsed, cpu


def floor_on_fresh_database(server: Server, ini: Path) -> float:
    with server.scratch() as database:
        return run_floor(ini, database.sqlalchemy_url("psycopg"))


def floor_cpu(server: Server, ini: Path, repeat: int) -> tuple[float, float | None]:
    """The floor's median wall-clock and median CPU seconds over ``repeat`` runs."""
    return _medians([cpu_seconds(server, lambda: floor_on_fresh_database(server, ini)) for _ in range(repeat)])


def commands_on_fresh_database(server: Server, ini: Path) -> float:
    with server.scratch() as database:
        return run_commands(ini, database.sqlalchemy_url("psycopg"))


def bench_scale(server: Server, work: Path, sizes: list[int], repeat: int) -> list[dict[str, Any]]:
    rows = []
    for n in sizes:
        ini = write_history(work / f"history-{n}", n)
        floor, floor_cpu_s = floor_cpu(server, ini, repeat)
        commands = median_of(repeat, lambda: commands_on_fresh_database(server, ini))
        swept, sweep_cpu_s = cpu_timed_sweep(server, ini)
        alone, _ = cpu_timed_sweep(server, ini, jobs=1)
        cpu_ratio = sweep_cpu_s / floor_cpu_s if sweep_cpu_s and floor_cpu_s else None
        rows.append({"revisions": n, "floor_s": floor, "sweep_s": swept, "ratio": swept / floor,
                     "sweep_ms_per_revision": swept / n * 1000, "floor_cpu_s": floor_cpu_s,
                     "sweep_cpu_s": sweep_cpu_s, "cpu_ratio": cpu_ratio, "jobs": default_jobs(),
                     "one_job_s": alone, "one_job_ratio": alone / floor,
                     "commands_s": commands, "commands_ratio": swept / commands})
        cpu = f"  CPU {sweep_cpu_s:.2f} s / {floor_cpu_s:.2f} s = x{cpu_ratio:.1f}" if cpu_ratio else ""
        print(f"  {n:>4} revisions: floor {floor:7.2f} s  sweep {swept:7.2f} s  x{swept / floor:5.1f}{cpu}"
              f"  (one job: {alone:.2f} s, x{alone / floor:.1f}; one command a step: {commands:.2f} s, "
              f"sweep x{swept / commands:.1f})", flush=True)
    return rows


def bench_alternative(server: Server, work: Path, n: int) -> dict[str, Any]:
    """pytest-alembic, then the sweep right after it, so both run under the same load."""
    ini = write_history(work / f"history-{n}", n)
    python = alternative.environment()
    with server.scratch() as database:
        took = alternative.run_pytest_alembic(python, ini, database.sqlalchemy_url("psycopg"))
    sweep_s = timed_sweep(server, ini)
    return {"revisions": n, "tool": alternative.PYTEST_ALEMBIC, "tests": list(alternative.TESTS),
            "pytest_alembic_s": took, "sweep_s": sweep_s, "ratio": sweep_s / took}


def bench_profile(server: Server, work: Path, n: int) -> dict[str, Any]:
    """Shares of the sweep's time by part, from cProfile's cumulative times (which inflate it)."""
    ini = write_history(work / f"history-{n}", n)
    profile = cProfile.Profile()
    profile.enable()
    timed_sweep(server, ini, jobs=1)  # cProfile sees only this process
    profile.disable()
    stats = pstats.Stats(profile).stats  # type: ignore[attr-defined]
    total = max(cumulative for (_, _, _, cumulative, _) in stats.values())
    parts = {}
    for label, (path, function) in PARTS.items():
        parts[label] = sum(
            cumulative for (filename, _, name), (_, _, _, cumulative, _) in stats.items()
            if filename.endswith(path) and name == function
        )
    parts["everything else"] = total - sum(parts.values())
    return {"revisions": n, "profiled_s": total, "shares": {k: v / total for k, v in parts.items()}}


def walk_against_floor(server: Server, ini: Path, rounds: int = 3) -> dict[str, Any]:
    """The walk's migration steps per second on ``ini``, seeding and checks included, against
    the floor's on the same history and server (a linear history: the floor runs it up, down, up).

    The walk and the floor run in turn, ``rounds`` times, and their medians are compared: the
    machine's speed drifts within minutes, and one walk against floors run after it measured
    the drift as much as the walk (a change the pairs found 5 % faster read 4.0x the floor's
    CPU a step, where the code before it had read 3.6x). The walk is the same each round: one
    seed, one history. A round's floor is several floors (see :func:`_floor_round`).
    """
    floor_steps = 3 * len(Session(load_settings(ini), server).project.graph.revisions)
    walks, floors = [], []
    for _ in range(rounds):
        started = time.perf_counter()
        result, cpu = cpu_seconds(server, lambda: walk(load_settings(ini, **OPTIONS), profile="dev",
                                                       seed=20261115, server=server))
        walks.append((time.perf_counter() - started, cpu))
        if not result.ok:
            raise RuntimeError(f"the walk of {ini} found something: {[v.headline() for v in result.violations]}")
        floors.append(_floor_round(server, ini))
    took, cpu = _medians(walks)
    floor, floor_cpu_s = _medians(floors)
    steps = result.coverage["steps"]
    cpu_ratio = (cpu / steps) / (floor_cpu_s / floor_steps) if cpu and floor_cpu_s else None
    return {"walk_s": took, "migration_steps": steps, "steps_per_s": steps / took,
            "floor_steps_per_s": floor_steps / floor, "per_step_ratio": (floor_steps / floor) / (steps / took),
            "walk_cpu_s": cpu, "floor_cpu_s": floor_cpu_s, "per_step_cpu_ratio": cpu_ratio, "rounds": rounds}


FLOOR_ROUND_S = 1.0
"""The least a round's floor runs for: one floor of the bundled history is 15 steps in about
0.15 s, and single runs of it spread over 130-290 ms within a minute (medians of nine:
160-180 ms), which moved the walk's ratio more than any change measured against it."""


def _floor_round(server: Server, ini: Path) -> tuple[float, float | None]:
    """The median of as many floors, each on a fresh database, as fill :data:`FLOOR_ROUND_S`
    (at least three)."""
    runs = [cpu_seconds(server, lambda: floor_on_fresh_database(server, ini))]
    while len(runs) < 3 or sum(wall for wall, _ in runs) < FLOOR_ROUND_S:
        runs.append(cpu_seconds(server, lambda: floor_on_fresh_database(server, ini)))
    return _medians(runs)


def _medians(runs: list[tuple[float, float | None]]) -> tuple[float, float | None]:
    """The median wall-clock and the median CPU seconds (None if any run's CPU is unknown)."""
    cpus = [cpu for _, cpu in runs]
    return (statistics.median(wall for wall, _ in runs),
            None if None in cpus else statistics.median(cpus))  # type: ignore[type-var]


def bench_walk(server: Server, work: Path, examples: int) -> dict[str, Any]:
    settings = load_settings(BUNDLED_INI)
    bundled = walk_against_floor(server, BUNDLED_INI)
    generated = walk_against_floor(server, write_history(work / "history-walk-100", 100))
    session = Session(settings, server)
    try:
        session.references.template(frozenset())

        def fresh_example() -> float:
            """A trial's database cloned when its first step needs it, connected, read, dropped."""
            started = time.perf_counter()
            trial = Trial(session)
            trial.rows()
            trial.close()
            return time.perf_counter() - started

        fresh = [fresh_example() for _ in range(examples)]
    finally:
        session.close()
    return {"profile": "dev", **bundled, "generated_100": generated,
            "fresh_example_ms": statistics.median(fresh) * 1000,
            "fresh_example_p90_ms": sorted(fresh)[int(len(fresh) * 0.9)] * 1000}


def bench_shrink(server: Server, work: Path) -> dict[str, Any]:
    """One walk of the data mutant of tests/mutants.py to its shrunk failure: examples, seconds."""
    sys.path.insert(0, str(ROOT / "tests"))
    from mutants import MUTANTS, with_role
    from projects import make_project

    mutant = next(m for m in MUTANTS if m.property == "data")
    ini = make_project(work / "shrink", with_role(mutant.revisions, "harness_bench_app"), env=mutant.env)
    counter = _ExampleCounter()
    started = time.perf_counter()
    with open_session(load_settings(ini, **{**mutant.settings, **OPTIONS}), server) as session:
        # The seed tests/test_mutants.py walks it with, known to find it.
        outcome = run_walk(session, seed_value=zlib.crc32(mutant.id.encode()), profile="ci", progress=counter)
    took = time.perf_counter() - started
    if not outcome.failures:
        raise RuntimeError(f"the walk missed {mutant.id}")
    return {"mutant": mutant.id, "examples": counter.examples, "seconds": took,
            "shrunk_steps": len(outcome.failures[0].steps)}


class _ExampleCounter(Progress):
    """Counts the examples a walk runs (generation and every shrink attempt), prints nothing."""

    def __init__(self) -> None:
        super().__init__([], enabled=False)
        self.examples = 0

    def example(self, coverage: Any) -> None:
        self.examples += 1


def bench_snapshots(server: Server, tables: list[int], repeat: int) -> list[dict[str, Any]]:
    rows = []
    for count in tables:
        with server.scratch() as database:
            with psycopg.connect(database.dsn, autocommit=True) as conn:
                conn.execute(schema(count))
                warm = []
                for _ in range(repeat):
                    started = time.perf_counter()
                    take_snapshot(conn)
                    warm.append(time.perf_counter() - started)
            cold = []
            for _ in range(repeat):
                started = time.perf_counter()
                with psycopg.connect(database.dsn, autocommit=True) as conn:
                    take_snapshot(conn)
                cold.append(time.perf_counter() - started)
        rows.append({"tables": count, "cold_ms": statistics.median(cold) * 1000,
                     "warm_ms": statistics.median(warm) * 1000})
    return rows


def bench_server(repeat: int) -> dict[str, Any]:
    def start_and_stop() -> float:
        started = time.perf_counter()
        with open_server(Settings()) as server:
            server.admin.execute("SELECT 1")
        return time.perf_counter() - started

    times = [start_and_stop() for _ in range(repeat)]
    return {"start_stop_ms": statistics.median(times) * 1000, "runs": repeat}


def render(results: dict[str, Any]) -> str:
    lines = [f"PostgreSQL {results['machine']['postgresql']}, {results['machine']['cpus']} CPUs, "
             f"load {results['machine']['load_before']} before, {results['machine']['load_after']} after"]
    if isinstance(results.get("scale"), list):
        lines += ["", "| revisions | floor (s) | sweep (s) | sweep / floor | sweep, one job (s) "
                      "| one job / floor | sweep ms per revision "
                      "| CPU: floor (s) | CPU: sweep (s) | CPU: sweep / floor | one command a step (s) "
                      "| sweep / commands |",
                  "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
        lines += [f"| {r['revisions']} | {r['floor_s']:.2f} | {r['sweep_s']:.2f} | {r['ratio']:.1f}x | "
                  f"{_figure(r.get('one_job_s'))} | {_figure(r.get('one_job_ratio'), 1, 'x')} | "
                  f"{r['sweep_ms_per_revision']:.0f} | {_figure(r.get('floor_cpu_s'))} | "
                  f"{_figure(r.get('sweep_cpu_s'))} | {_figure(r.get('cpu_ratio'), 1, 'x')} | "
                  f"{_figure(r.get('commands_s'))} | {_figure(r.get('commands_ratio'), 1, 'x')} |"
                  for r in results["scale"]]
        jobs = results["scale"][0].get("jobs") if results["scale"] else None
        lines += ["", "The floor runs every step in one env.py run; \"one command a step\" runs env.py once "
                      "per step, as `alembic upgrade`/`downgrade` typed for each would (in one process, the "
                      f"script directory loaded once). The sweep runs with its default jobs ({jobs}, one per "
                      "processor), and again with one; the CPU figures count its workers and their servers."]
    if results.get("alternative") and "error" not in results["alternative"]:
        a = results["alternative"]
        lines += ["", f"pytest-alembic ({a['tool']}, {' + '.join(a['tests'])}) on {a['revisions']} revisions: "
                      f"{a['pytest_alembic_s']:.2f} s; harness sweep {a['sweep_s']:.2f} s = {a['ratio']:.2f}x"]
    if results.get("profile") and "error" not in results["profile"]:
        p = results["profile"]
        lines += ["", f"Where the sweep's time goes ({p['revisions']} revisions, cProfile, "
                      f"{p['profiled_s']:.1f} s profiled):"]
        lines += [f"  {share * 100:5.1f} %  {label}" for label, share in
                  sorted(p["shares"].items(), key=lambda item: -item[1])]
    if results.get("walk") and "error" not in results["walk"]:
        w = results["walk"]
        for label, entry in (("bundled history", w), ("generated 100 revisions", w["generated_100"])):
            lines += [f"walk ({label}, profile {w['profile']}): {entry['migration_steps']} migration steps in "
                      f"{entry['walk_s']:.1f} s = {entry['steps_per_s']:.1f} steps/s; floor "
                      f"{entry['floor_steps_per_s']:.1f} steps/s; per-step cost {entry['per_step_ratio']:.1f}x the floor's"
                      f" (CPU: {_figure(entry.get('per_step_cpu_ratio'), 1, 'x')})"]
        lines += [f"fresh example {w['fresh_example_ms']:.1f} ms median, {w['fresh_example_p90_ms']:.1f} ms p90"]
    if results.get("shrink") and "error" not in results["shrink"]:
        k = results["shrink"]
        lines += ["", f"shrink ({k['mutant']}, profile ci): {k['examples']} examples (generation and shrink "
                      f"attempts) in {k['seconds']:.1f} s, shrunk to {k['shrunk_steps']} steps"]
    if results.get("snapshot") and "error" not in results["snapshot"]:
        lines += ["", "| tables | snapshot, new connection (ms) | snapshot, warm connection (ms) |",
                  "|---:|---:|---:|"]
        lines += [f"| {r['tables']} | {r['cold_ms']:.0f} | {r['warm_ms']:.0f} |" for r in results["snapshot"]]
    if results.get("seeding") and "error" not in results["seeding"]:
        lines += ["", "seeding (rows per second, inserts refused):", render_seeding(results["seeding"])]
    if results.get("server") and "error" not in results["server"]:
        lines += ["", f"embedded server start + stop: {results['server']['start_stop_ms']:.0f} ms median"]
    lines += [f"\n{name}: FAILED: {entry['error']}" for name, entry in results.items()
              if isinstance(entry, dict) and "error" in entry]
    return "\n".join(lines)


def _figure(value: float | None, digits: int = 2, unit: str = "") -> str:
    return "-" if value is None else f"{value:.{digits}f}{unit}"


def plot(results: dict[str, Any]) -> str:
    scale = results["scale"]
    series = {
        "harness sweep": [(r["revisions"], r["sweep_s"]) for r in scale],
        "floor (Alembic alone, up/down/up)": [(r["revisions"], r["floor_s"]) for r in scale],
    }
    if results.get("alternative") and "error" not in results["alternative"]:
        a = results["alternative"]
        series["pytest-alembic (2 tests)"] = [(a["revisions"], a["pytest_alembic_s"])]
    return line_chart("Sweep time by history length", "revisions", "seconds", series)


def section(results: dict[str, Any], name: str, skip: list[str], run: Callable[[], Any]) -> None:
    """Run one section into ``results[name]``; a failure is recorded, not raised."""
    if name in skip:
        return
    print(name, flush=True)
    try:
        results[name] = run()
    except Exception as exc:  # noqa: BLE001 - recorded and printed, the other sections still run
        results[name] = {"error": f"{type(exc).__name__}: {str(exc).strip().splitlines()[0] if str(exc).strip() else ''}"}
        print(f"  {name} failed: {results[name]['error']}", flush=True)


def main() -> None:
    if sys.argv[1:2] == ["failures"]:
        from .failures import main as failures

        failures(sys.argv[2:])
        return
    if sys.argv[1:2] == ["since"]:
        from . import since

        since.main(sys.argv[2:])
        return
    if sys.argv[1:2] == ["detection"]:
        from . import detection

        detection.main(sys.argv[2:])
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--revisions", type=int, nargs="+", default=[100, 400])
    parser.add_argument("--compare-at", type=int, default=100, help="history length for pytest-alembic and the profile")
    parser.add_argument("--repeat", type=int, default=3, help="runs per median of the floor and the snapshots (a sweep runs once)")
    parser.add_argument("--tables", type=int, nargs="+", default=[10, 100, 300])
    parser.add_argument("--skip", nargs="*", default=[],
                        choices=["scale", "alternative", "profile", "walk", "shrink", "snapshot", "server", "seeding"])
    parser.add_argument("--quick", action="store_true", help="50 and 100 revisions, one run each, no profile")
    parser.add_argument("--scoped-off", action="store_true", help="every snapshot whole (scoped_snapshots = false)")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "speed.json")
    args = parser.parse_args()
    if args.scoped_off:
        OPTIONS["scoped_snapshots"] = False
    if args.quick:
        args.revisions, args.repeat, args.skip = [50, 100], 1, [*args.skip, "profile"]
    results: dict[str, Any] = {"options": dict(OPTIONS),
                               "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                                           "load_before": [round(x, 2) for x in os.getloadavg()]}}
    with open_server(Settings()) as server, tempfile.TemporaryDirectory(prefix="harness-bench-") as tmp:
        work = Path(tmp)
        results["machine"]["postgresql"] = server.admin.info.parameter_status("server_version")
        print(f"PostgreSQL {results['machine']['postgresql']}", flush=True)
        section(results, "scale", args.skip, lambda: bench_scale(server, work, args.revisions, args.repeat))
        section(results, "alternative", args.skip, lambda: bench_alternative(server, work, args.compare_at))
        section(results, "profile", args.skip, lambda: bench_profile(server, work, args.compare_at))
        section(results, "walk", args.skip, lambda: bench_walk(server, work, examples=30))
        section(results, "shrink", args.skip, lambda: bench_shrink(server, work))
        section(results, "snapshot", args.skip, lambda: bench_snapshots(server, args.tables, args.repeat * 3))
        section(results, "seeding", args.skip, lambda: bench_seeding(server, work, examples=10))
    section(results, "server", args.skip, lambda: bench_server(args.repeat * 3))
    results["machine"]["load_after"] = [round(x, 2) for x in os.getloadavg()]
    print()
    print(render(results))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    if isinstance(results.get("scale"), list):
        args.out.with_suffix(".svg").write_text(plot(results))
    print(f"\nwritten: {args.out}")


if __name__ == "__main__":
    main()

"""Detection: which defects each run finds, on how many seeds, and how soon.

    .venv/bin/python -m benchmarks detection [--seeds 10] [--correct-seeds N] [--only ID ...]
                                             [--starts filled|empty]

Every mutant of ``tests/mutants.py`` is swept once (the sweep has no seed) and walked under the
``ci`` profile's budget on each seed, each walk stopped at its first failure as the mutant tests
run it (:func:`test_mutants.run_walk`, seeded here by the number given instead of the mutant's
name). A run catches a mutant when it reports the mutant's property at a revision it may blame,
naming its object. Every correct history of the corpus is swept once and walked on the first
``--correct-seeds`` seeds (all of them by default; a walk that finds nothing spends its whole
budget, so these are the long runs): any finding there is a false alarm, printed as such.

Printed per mutant: whether the sweep caught it and in how many seconds, the share of seeds
whose walk caught it, and the median seconds of the walks that did. The summary line gives the
walks' catches per minute of walking (every walk's seconds, caught or not), the figure that
compares designs: ``--starts empty`` walks every example from the empty database, as the walk
did before examples started from filled states (Hypothesis's own swarm testing of the rules is
on either way), so one run of each on the same mutants says what the filled starts buy.
"""

from __future__ import annotations

import argparse
import json
import secrets
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

from harness import machine
from harness.server import Server, open_server
from harness.settings import Settings, load_settings
from harness.violations import Violation

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from mutants import CORRECT, MUTANTS, Correct, Mutant, with_role  # noqa: E402
from projects import make_project  # noqa: E402
from test_mutants import run_sweep, run_walk  # noqa: E402

Run = Callable[[Settings, Server, str], list[Violation]]


def _caught(mutant: Mutant, role: str, violations: list[Violation]) -> bool:
    """As the mutant tests judge it: the property, at the revision to blame, naming the object."""
    names = mutant.names.replace("__app_role__", role)
    return any(v.property == mutant.property and v.revision in mutant.blamed and names in v.message
               for v in violations)


def _timed(run: Run, history: Mutant | Correct, work: Path, server: Server, seed: int | None,
           ) -> tuple[str, list[Violation], float]:
    """One run on a fresh copy of the history, with an application role of its own."""
    role = f"harness_app_{secrets.token_hex(4)}"
    ini = make_project(work / secrets.token_hex(4), with_role(history.revisions, role), env=history.env)
    settings = load_settings(ini, **history.settings)
    started = time.perf_counter()
    # run_walk seeds the walk with the CRC-32 of the name it is given: a name per seed.
    violations = run(settings, server, history.id if seed is None else f"{history.id}#{seed}")
    return role, violations, time.perf_counter() - started


def measure(server: Server, work: Path, seeds: list[int], correct_seeds: list[int], only: list[str],
            ) -> dict[str, Any]:
    mutants = [m for m in MUTANTS if not only or m.id in only]
    correct = [c for c in CORRECT if not only or c.id in only]
    rows = []
    for mutant in mutants:
        role, found, swept_s = _timed(run_sweep, mutant, work, server, None)
        walks = [_timed(run_walk, mutant, work, server, seed) for seed in seeds]
        caught = [took for role_, found_, took in walks if _caught(mutant, role_, found_)]
        row = {"mutant": mutant.id, "property": mutant.property, "must": list(mutant.runs),
               "sweep": _caught(mutant, role, found), "sweep_s": swept_s,
               "walk_share": len(caught) / len(seeds), "walk_caught": len(caught),
               "walk_total_s": sum(took for _, _, took in walks),
               "walk_median_s": statistics.median(caught) if caught else None}
        rows.append(row)
        print(_line(row), flush=True)
    alarms = []
    for history in correct:
        for seed in [None, *correct_seeds]:
            _, found, took = _timed(run_sweep if seed is None else run_walk, history, work, server, seed)
            alarms += [{"history": history.id, "seed": seed, "violation": v.headline()} for v in found]
            run = "sweep" if seed is None else f"walk, seed {seed}"
            print(f"  {history.id} ({run}, {took:.1f} s): "
                  + ("; ".join(f"FALSE ALARM {v.headline()}" for v in found) or "silent"), flush=True)
    return {"seeds": seeds, "correct_seeds": correct_seeds, "mutants": rows, "false_alarms": alarms,
            "correct_histories": [c.id for c in correct]}


def _line(row: dict[str, Any]) -> str:
    median = "-" if row["walk_median_s"] is None else f"{row['walk_median_s']:.1f}"
    sweep = f"{'yes' if row['sweep'] else 'NO '} {row['sweep_s']:5.1f}"
    return f"| {row['mutant']} | {row['property']} | {sweep} | {row['walk_share'] * 100:.0f} % | {median} |"


def render(results: dict[str, Any]) -> str:
    lines = [f"{len(results['mutants'])} mutants, walks on seeds {results['seeds']} (ci profile, "
             f"first failure, unshrunk)", "",
             "| mutant | property | sweep caught, s | walk: seeds caught | walk: median s to catch |",
             "|---|---|---|---:|---:|"]
    lines += [_line(row) for row in results["mutants"]]
    caught = sum(row["walk_caught"] for row in results["mutants"])
    minutes = sum(row["walk_total_s"] for row in results["mutants"]) / 60
    if minutes:
        lines += ["", f"walks ({results['starts']} starts): {caught} catches in {minutes:.1f} min of "
                      f"walking, {caught / minutes:.1f} per minute"]
    lines += ["", f"correct histories ({len(results['correct_histories'])}), sweep and walks on seeds "
                  f"{results['correct_seeds']}: {len(results['false_alarms'])} false alarm(s)"]
    return "\n".join(lines)


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks detection", description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=10, help="walk seeds per mutant: 0, 1, ...")
    parser.add_argument("--correct-seeds", type=int, help="walk seeds per correct history (default: --seeds)")
    parser.add_argument("--only", nargs="*", default=[], help="mutant or correct history ids")
    parser.add_argument("--starts", choices=("filled", "empty"), default="filled",
                        help="where walks start: states drawn over the graph and filled, or always empty")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "detection.json")
    args = parser.parse_args(argv)
    if args.starts == "empty":
        machine._starts = lambda session: [machine.BASE]  # type: ignore[assignment]
    with open_server(Settings()) as server, tempfile.TemporaryDirectory(prefix="harness-detect-") as tmp:
        seeds = list(range(args.seeds))
        correct_seeds = seeds if args.correct_seeds is None else list(range(args.correct_seeds))
        results = measure(server, Path(tmp), seeds, correct_seeds, args.only)
    results["starts"] = args.starts
    print()
    print(render(results))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"\nwritten: {args.out}")

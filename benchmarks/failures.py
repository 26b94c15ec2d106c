"""Failures as a person meets them: seconds from ``harness walk`` to the printed failure, the
size of its JSON, seconds to replay its failure file, and how many seeds catch a hard mutant.

    .venv/bin/python -m benchmarks failures [--seeds 3] [--catch-seeds 12] [--out FILE]

One mutant per class of defect (a round trip, data, isolation, an error that needs data) from
``tests/mutants.py``, each walked from the command line (a fresh process, as a person runs it)
under the ``ci`` profile on one embedded server started here. Never a timed test.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import zlib
from pathlib import Path
from typing import Any

from harness.server import Server, open_server
from harness.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from mutants import MUTANTS, Mutant, with_role  # noqa: E402
from projects import make_project  # noqa: E402

CLASSES = {
    "round trip": "index-left-behind",
    "data": "rows-deleted-by-a-grants-revision",
    "isolation": "new-tenant-table-without-rls-seeded",
    "error with data": "unique-index-over-duplicates",
}
"""The mutant standing for each class of defect."""

HARD = "numeric-scale-reduced-loses-cents"
"""The mutant few seeds caught: rows must hold amounts with cents before r2 runs."""


def _mutant(name: str) -> Mutant:
    return next(m for m in MUTANTS if m.id == name)


def _project(work: Path, mutant: Mutant, tag: str) -> Path:
    role = f"bench_app_{zlib.crc32(tag.encode()):08x}"
    return make_project(work / tag, with_role(mutant.revisions, role), env=mutant.env)


def _harness(*args: str) -> tuple[float, subprocess.CompletedProcess[str]]:
    """Seconds a ``harness`` command took, and what it did; its CPU seconds in ``cpu_s``."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    started, cpu = time.perf_counter(), _children_cpu()
    done = subprocess.run([sys.executable, "-m", "harness", *args], capture_output=True, text=True, env=env)
    done.cpu_s = _children_cpu() - cpu  # type: ignore[attr-defined]
    return time.perf_counter() - started, done


def _children_cpu() -> float:
    """CPU seconds of the harness processes run so far (not PostgreSQL's): on a loaded machine
    the wall clock says more about the neighbours than about the harness."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def time_to_failure(server: Server, work: Path, klass: str, seed: int) -> dict[str, Any]:
    """One walk of the class's mutant from the command line, and one replay of what it wrote."""
    ini = _project(work, _mutant(CLASSES[klass]), f"{CLASSES[klass]}-{seed}")
    out = ini.parent / "result.json"
    took, done = _harness("walk", "-c", str(ini), "--seed", str(seed), "--profile", "ci",
                          "--database-url", server.dsn("postgres"), "--json", str(out))
    if done.returncode != 1:
        return {"class": klass, "seed": seed, "walk_s": took, "walk_cpu_s": done.cpu_s, "caught": False,
                "error": (done.stderr.strip().splitlines() or [""])[-1]}
    result = json.loads(out.read_text())
    files = sorted((ini.parent / ".harness" / "failures").glob("*.json"))
    replay_s, replayed = _harness("replay", str(files[0]), "--database-url", server.dsn("postgres"))
    failure = result["failures"][0]
    return {
        "class": klass, "seed": seed, "walk_s": took, "walk_cpu_s": done.cpu_s, "caught": True,
        "defects": len(result["failures"]),
        "revisions": sorted({str(v["revision"]) for f in result["failures"] for v in f["violations"]}),
        "steps": len(failure["steps"]),
        "rows": sum(_rows(step) for step in failure["steps"]),
        "json_bytes": len(out.read_bytes()),
        "failure_file_bytes": max(len(f.read_bytes()) for f in files),
        "replay_s": replay_s, "replay_cpu_s": replayed.cpu_s, "replay_reproduces": replayed.returncode == 1,
    }


def _rows(step: dict[str, Any]) -> int:
    """Rows a step inserts, in this format or the first one (rows per table, before this
    benchmark existed)."""
    rows = step.get("rows") or ()
    return sum(len(r) for r in rows.values()) if isinstance(rows, dict) else len(rows)


def caught_by(server: Server, work: Path, seed: int) -> bool:
    """Whether the walk of the hard mutant under ``seed`` reports its defect."""
    mutant = _mutant(HARD)
    ini = _project(work, mutant, f"{HARD}-{seed}")
    out = ini.parent / "result.json"
    _, done = _harness("walk", "-c", str(ini), "--seed", str(seed), "--profile", "ci",
                       "--database-url", server.dsn("postgres"), "--json", str(out))
    if done.returncode != 1:
        return False
    violations = json.loads(out.read_text())["violations"]
    return any(v["property"] == mutant.property and v["revision"] in mutant.blamed for v in violations)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks failures", description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3, help="seeds per class (the median is reported)")
    parser.add_argument("--catch-seeds", type=int, default=12, help=f"seeds tried on {HARD}")
    parser.add_argument("--classes", nargs="*", default=list(CLASSES), choices=list(CLASSES))
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "failures.json")
    args = parser.parse_args(argv)
    results: dict[str, Any] = {"load_before": [round(x, 2) for x in os.getloadavg()], "runs": []}
    with open_server(Settings()) as server, tempfile.TemporaryDirectory(prefix="harness-bench-") as tmp:
        work = Path(tmp)
        for klass in args.classes:
            for seed in range(1, args.seeds + 1):
                run = time_to_failure(server, work, klass, seed)
                results["runs"].append(run)
                print(json.dumps(run), flush=True)
        caught = [seed for seed in range(1, args.catch_seeds + 1) if caught_by(server, work, seed)]
        results["hard_mutant"] = {"mutant": HARD, "seeds": args.catch_seeds, "caught": caught}
        print(f"{HARD}: caught on {len(caught)} of {args.catch_seeds} seeds", flush=True)
    results["load_after"] = [round(x, 2) for x in os.getloadavg()]
    results["summary"] = summary(results["runs"])
    print("\n".join(render(results)))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")


def summary(runs: list[dict[str, Any]]) -> dict[str, Any]:
    by_class: dict[str, Any] = {}
    for klass in dict.fromkeys(r["class"] for r in runs):
        mine = [r for r in runs if r["class"] == klass]
        caught = [r for r in mine if r["caught"]]
        by_class[klass] = {
            "mutant": CLASSES[klass], "caught": f"{len(caught)}/{len(mine)}",
            "median_walk_s": statistics.median(r["walk_s"] for r in mine),
            "median_walk_cpu_s": statistics.median(r["walk_cpu_s"] for r in mine),
            "median_json_bytes": statistics.median(r["json_bytes"] for r in caught) if caught else None,
            "median_replay_s": statistics.median(r["replay_s"] for r in caught) if caught else None,
            "median_replay_cpu_s": statistics.median(r["replay_cpu_s"] for r in caught) if caught else None,
            "max_steps": max((r["steps"] for r in caught), default=None),
            "max_rows": max((r["rows"] for r in caught), default=None),
        }
    return by_class


def render(results: dict[str, Any]) -> list[str]:
    lines = [f"load {results['load_before']} before, {results['load_after']} after", "",
             "| class | mutant | caught | median s to failure (CPU s) | median JSON bytes "
             "| median replay s (CPU s) | max steps | max rows |", "|---|---|---:|---:|---:|---:|---:|---:|"]
    for klass, s in results["summary"].items():
        replay = (f"{s['median_replay_s']:.1f} ({s['median_replay_cpu_s']:.1f})"
                  if s["median_replay_s"] is not None else "-")
        lines.append(f"| {klass} | {s['mutant']} | {s['caught']} | {s['median_walk_s']:.1f} "
                     f"({s['median_walk_cpu_s']:.1f}) | {s['median_json_bytes']} | {replay} | "
                     f"{s['max_steps']} | {s['max_rows']} |")
    hard = results["hard_mutant"]
    lines.append(f"\n{hard['mutant']}: caught on {len(hard['caught'])} of {hard['seeds']} seeds {hard['caught']}")
    return lines


if __name__ == "__main__":
    main()

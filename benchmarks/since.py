"""The pull-request walk against the full one: ``--since`` with one new revision, profile ci.

    .venv/bin/python -m benchmarks since [--seeds 3] [--generated 20]

A git repository holds a history with its newest revision left out of the last commit (the
revision a pull request adds). Each seed walks it twice under the ``ci`` profile on one server:
the whole history, and ``--since HEAD`` (only the new revision, from the state before it). The
goal: the second costs less than half the first. Runs alternate, so the machine's load falls on
both alike; each walk opens its own session, so the references each needs are built in its time.

Histories: the bundled one (its last revision, the grants, is the new one) and a generated
linear one (:mod:`benchmarks.histories`).
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from harness.commands import walk
from harness.server import Server, open_server
from harness.settings import Settings, load_settings

from .histories import write_history

ROOT = Path(__file__).resolve().parent.parent


def bundled(root: Path) -> Path:
    """The bundled project copied under ``root``; its newest revision file is left uncommitted."""
    root.mkdir(parents=True)
    shutil.copy(ROOT / "alembic.ini", root / "alembic.ini")
    shutil.copy(ROOT / "pyproject.toml", root / "pyproject.toml")
    shutil.copytree(ROOT / "alembic", root / "alembic", ignore=shutil.ignore_patterns("__pycache__"))
    newest = sorted((root / "alembic" / "versions").glob("*.py"))[-1]
    _commit(root, leave_out=newest)
    return root / "alembic.ini"


def generated(root: Path, revisions: int) -> Path:
    ini = write_history(root, revisions)
    newest = sorted((root / "migrations" / "versions").glob("*.py"))[-1]
    _commit(root, leave_out=newest)
    return ini


def _commit(root: Path, leave_out: Path) -> None:
    git = ["git", "-C", str(root), "-c", "user.email=bench@harness", "-c", "user.name=bench"]
    subprocess.run([*git, "init", "-q"], check=True)
    subprocess.run([*git, "add", "."], check=True)
    subprocess.run([*git, "rm", "-q", "--cached", str(leave_out.relative_to(root))], check=True)
    subprocess.run([*git, "commit", "-qm", "history before the pull request"], check=True)


def compare(settings: Settings, server: Server, seeds: int) -> dict[str, Any]:
    """Seconds of the full walk and of the ``--since HEAD`` walk, per seed, and their medians."""
    full, since = [], []
    steps = {"full": 0, "since": 0}
    new = {"full": 0, "since": 0}
    """Steps on the new revision's edges."""
    for seed in range(1, seeds + 1):
        for name, times, ref in (("full", full, None), ("since", since, "HEAD")):
            started = time.perf_counter()
            result = walk(settings, profile="ci", seed=seed, server=server, since=ref, progress=False)
            times.append(time.perf_counter() - started)
            steps[name] += result.coverage["steps"]
            newest = list(result.coverage["revisions"])[-1]
            new[name] += sum(result.coverage["revisions"][newest].values())
            if not result.ok:
                raise SystemExit(f"the {name} walk of seed {seed} found a defect: {result.violations[0].headline()}")
        if len(result.coverage["revisions"]) != 1:
            raise SystemExit(f"the --since walk did not walk only the new revision: {result.coverage['revisions']}")
    return {"full_s": [round(t, 2) for t in full], "since_s": [round(t, 2) for t in since],
            "full_median_s": round(statistics.median(full), 2),
            "since_median_s": round(statistics.median(since), 2),
            "ratio": round(statistics.median(since) / statistics.median(full), 3),
            "steps": steps, "steps_on_the_new_revision": new}


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks since")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--generated", type=int, default=20, metavar="N",
                        help="revisions of the generated history (0: the bundled one only)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp, open_server(Settings()) as server:
        histories = {"bundled": bundled(Path(tmp) / "bundled")}
        if args.generated:
            histories[f"generated-{args.generated}"] = generated(Path(tmp) / "generated", args.generated)
        for name, ini in histories.items():
            figures = compare(load_settings(ini), server, args.seeds)
            print(f"{name}: full ci walk {figures['full_median_s']} s (median of {figures['full_s']}), "
                  f"--since one revision {figures['since_median_s']} s ({figures['since_s']}): "
                  f"ratio {figures['ratio']}; steps {figures['steps']}, of them on the new revision "
                  f"{figures['steps_on_the_new_revision']}", flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])

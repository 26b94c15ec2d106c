"""Pull-request mode: which revisions a change adds, so CI walks only those.

Revisions are selected by their files: those added to the versions directory since a git ref
(typically the target branch). Everything before them is applied canonically from references,
so checking a change costs seconds on a long history.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

from .errors import HarnessError
from .graph import RevisionGraph


def revisions_since(graph: RevisionGraph, ref: str) -> list[str]:
    """Revisions whose files git reports as added since ``ref``, in graph order."""
    paths = {Path(graph.revision(rev).path).resolve(): rev for rev in graph.revisions}
    directories = sorted({str(path.parent) for path in paths})
    top = _git(["rev-parse", "--show-toplevel"], cwd=directories[0]).strip()
    added = _git(["diff", "--name-only", "--diff-filter=A", ref, "--", *directories], cwd=top)
    untracked = _git(["ls-files", "--others", "--exclude-standard", "--", *directories], cwd=top)
    new_files = {(Path(top) / line).resolve() for line in (added + untracked).splitlines() if line}
    return [rev for path, rev in paths.items() if path in new_files]


def _git(args: list[str], cwd: str) -> str:
    try:
        result = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, timeout=60)
    except FileNotFoundError:
        raise HarnessError("pull-request mode needs git on PATH") from None
    if result.returncode != 0:
        raise HarnessError(
            f"git {' '.join(args[:2])} failed in {cwd}: {result.stderr.strip().splitlines()[-1] if result.stderr.strip() else result.returncode}",
            hint="--since needs the project in a git checkout and a ref that exists there (fetch it first in CI)",
        )
    return result.stdout

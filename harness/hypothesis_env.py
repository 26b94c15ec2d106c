"""Where Hypothesis keeps its files and what it mixes into its draws, during a walk.

Two process-wide choices of Hypothesis that a walk must not inherit from whoever runs it: its
home directory (``.hypothesis/`` in the current directory) and its pool of "local" constants
(literals of the modules the process happened to load). Both live in private names of
Hypothesis; where a version lacks them, nothing changes.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Iterator


@contextlib.contextmanager
def without_local_constants() -> Iterator[None]:
    """Hypothesis draws from an empty pool of "local" constants while this runs.

    Hypothesis mixes into what it draws the literals of every module loaded in the process that
    is not installed: the migrations and env.py Alembic imported, earlier walks' projects, the
    harness itself from a checkout. One seed then draws differently in a process that loaded
    other modules, and a seed is a promise. The pool lives in a private function of its
    providers, and the constants it gave are kept in a cache by kind of draw, which must be
    swapped too: otherwise a draw made earlier in the process, before this ran, keeps the
    loaded modules' literals in play (one mutant was caught alone and missed after other
    tests). Where a version lacks them, nothing changes.
    """
    from hypothesis.internal.conjecture import providers

    original = getattr(providers, "_get_local_constants", None)
    if original is None:
        yield
        return
    # The pool's shape (its sorted sets and their keys) from the pool as it stands, not from
    # calling ``original``: that parses every loaded module not yet seen, a quarter of a
    # second at a walk's start, only to be thrown away.
    pool = getattr(providers, "_local_constants", None)
    empty = providers.Constants(**{
        field: type(values)() if not hasattr(values, "key") or values.key is None else type(values)(key=values.key)
        for field, values in vars(pool if pool is not None else original()).items()
    })
    cache = getattr(providers, "CONSTANTS_CACHE", None)
    if not hasattr(cache, "max_size"):
        cache = None
    providers._get_local_constants = lambda: empty
    if cache is not None:
        providers.CONSTANTS_CACHE = type(cache)(cache.max_size)
    try:
        yield
    finally:
        providers._get_local_constants = original
        if cache is not None:
            providers.CONSTANTS_CACHE = cache


@contextlib.contextmanager
def hypothesis_home(directory: Path | None) -> Iterator[None]:
    """Hypothesis's own files (its constants cache) under ``directory`` during the walk, not in
    a ``.hypothesis/`` of the current directory; the previous home is restored after, so that
    the project's own Hypothesis tests in the same session keep theirs. The environment's
    ``HYPOTHESIS_STORAGE_DIRECTORY`` wins."""
    from hypothesis import configuration

    attribute = "__hypothesis_home_directory"
    chosen = os.environ.get("HYPOTHESIS_STORAGE_DIRECTORY")
    if directory is None or chosen or not hasattr(configuration, attribute):
        yield
        return
    previous = getattr(configuration, attribute)
    configuration.set_hypothesis_home_dir(directory)
    try:
        yield
    finally:
        setattr(configuration, attribute, previous)

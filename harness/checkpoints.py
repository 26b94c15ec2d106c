"""Databases of the states a run's trials reached, kept so that running the same steps again is
a clone, not a replay.

Shrinking replays a failing example again and again, each time with a step left out or a value
made simpler, and every attempt runs again the steps before the first one it changes. Once a run
has found a failure, trials keep their databases as checkpoints, keyed by where they started and
every step since, with their own bookkeeping and the findings of the step that led there:

* a trial that ends keeps its database instead of dropping it (no copy: nothing goes on on it);
* a trial about to take a step other than those trials took from where it stands keeps a copy
  first: attempts part there, and the next ones may too.

A later trial whose steps so far are a checkpoint's key takes them from it, findings included,
and clones its database only when a step of its own needs one: it pays for what differs only.

A step is deterministic given the database before it (the seed's promise rests on the same), so
the copy holds what a replay would build and the findings are those a replay would make. Before
the first failure nothing is kept: a passing walk runs exactly as it would without this module.
The run's coverage counts the steps that ran, not those a copy stood for.
"""

from __future__ import annotations

import collections
import copy
import dataclasses
from typing import Any, ClassVar, Collection, Hashable

from .server import Server
from .violations import Violation

Key = tuple[Hashable, ...]
"""Where a trial started, then each step it took since (see :meth:`harness.trial.Trial`)."""


@dataclasses.dataclass(frozen=True)
class Checkpoint:
    """A database as a trial left it after the steps of its key."""

    database: str
    """A scratch database: clone it, never connect to it."""
    saved: Any
    """The trial's own state then (see :class:`Resumable`)."""
    violations: tuple[Violation, ...]
    """What the checks of the key's last step found."""


class Checkpoints:
    """The checkpoints of one run, at most ``limit`` databases (the least recently used goes)."""

    def __init__(self, server: Server, limit: int) -> None:
        self._server = server
        self._limit = limit
        self._kept: collections.OrderedDict[Key, Checkpoint] = collections.OrderedDict()
        self._finished: dict[Key, tuple[Violation, ...]] = {}
        self._next: dict[Key, set[Hashable]] = {}
        """The steps trials took from each key since checkpoints were on."""
        self._held: collections.Counter[str] = collections.Counter()
        """Checkpoints a trial stands for (it clones them when it needs a database): never dropped."""
        self.on = False
        self.served = 0
        """Steps a clone stood for."""

    def start(self) -> None:
        """Keep checkpoints from now on: the run found a failure, shrinking replays begin."""
        self.on = self._limit > 0

    def get(self, key: Key) -> Checkpoint | None:
        """The checkpoint of ``key``, held (never dropped) until the caller releases it."""
        found = self._kept.get(key)
        if found is not None:
            self._kept.move_to_end(key)
            self._held[found.database] += 1
            self.served += 1
        return found

    def release(self, checkpoint: Checkpoint) -> None:
        """The caller cloned ``checkpoint`` or no longer needs it."""
        self._held[checkpoint.database] -= 1

    def parting(self, key: Key, step: Hashable) -> bool:
        """Whether trials took other steps than ``step`` from ``key``: a trial there should keep
        a copy before it takes ``step``.

        Copies are made where attempts part, not after every step: one costs about what a step
        costs (17 ms against 18 on the data mutant), and a shrink replays its first failing
        example whole before it leaves anything out, which would copy every step of it for
        nothing (the data mutant's shrink took 2.5 times as long so).
        """
        return bool(self._next.get(key, set()) - {step})

    def wants(self, key: Key) -> bool:
        """Whether a checkpoint of ``key`` would be new."""
        return self.on and key not in self._kept

    def took(self, key: Key, step: Hashable) -> None:
        """A trial at ``key`` took ``step``."""
        if self.on:
            self._next.setdefault(key, set()).add(step)

    def keep(self, key: Key, database: str, saved: Any, violations: Collection[Violation]) -> None:
        """Keep ``database`` (the checkpoint's from now on) as the state after ``key``."""
        self._kept[key] = Checkpoint(database, saved, tuple(violations))
        unheld = [k for k, checkpoint in self._kept.items() if not self._held[checkpoint.database]]
        for oldest in unheld[:max(0, len(self._kept) - self._limit)]:
            self._server.drop_database(self._kept.pop(oldest).database)

    def finished(self, key: Key) -> tuple[Violation, ...] | None:
        """What the end of a trial found after the steps of ``key``, if one ended there."""
        return self._finished.get(key)

    def finish(self, key: Key, violations: Collection[Violation]) -> None:
        if self.on:
            self._finished[key] = tuple(violations)

    def stop(self) -> None:
        """Keep nothing from now on, and drop what was kept: the runs that follow must run
        every step (to confirm that a failure repeats)."""
        self.close()
        self.on = False
        self._finished.clear()
        self._next.clear()

    def close(self) -> None:
        for checkpoint in self._kept.values():
            self._server.drop_database(checkpoint.database)
        self._kept.clear()


class Resumable:
    """An object a checkpoint keeps the state of: everything but its ``HANDLES`` (connections,
    what the run shares), which stay the trial's own."""

    HANDLES: ClassVar[frozenset[str]] = frozenset({"_conn"})

    def saved(self) -> dict[str, Any]:
        """A copy of the object's state, its handles left out."""
        return copy.deepcopy({name: value for name, value in vars(self).items() if name not in self.HANDLES})

    def restore(self, state: dict[str, Any]) -> None:
        """Take back what :meth:`saved` copied (a copy again: a checkpoint serves many trials)."""
        vars(self).update(copy.deepcopy(state))

    def reconnect(self, conn: Any) -> None:
        """Go on with the same state on another database (a clone of the last one)."""
        self._conn = conn

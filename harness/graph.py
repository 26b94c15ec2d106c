"""The revision graph of an Alembic project, as states and one-revision moves between them.

A *state* is a frozenset of revision ids: the rows ``alembic_version`` holds, i.e. the applied
revisions that no other applied revision needs (:meth:`RevisionGraph.state_of` covers the one
case where Alembic writes more). Base is ``frozenset()``. A move applies
or un-applies exactly one revision, so that a branched or merged history is walked edge by edge
instead of through Alembic's relative steps (``+1``/``-1``), which are ambiguous at branch and
merge points.

"Needs" covers both ``down_revision`` and ``depends_on``: Alembic's version table forgets a
revision as soon as something that depends on it is applied, so the state model must too.

The script directory is loaded once here; the runner reuses the same :class:`ScriptDirectory`
so that revision modules are imported once per run, not once per step.
"""

from __future__ import annotations

import heapq
import os
import traceback
from dataclasses import dataclass
from typing import TYPE_CHECKING, Iterable, Literal

from alembic.script import ScriptDirectory
from alembic.script.revision import RevisionError
from alembic.util import CommandError

from .errors import HarnessError

if TYPE_CHECKING:
    from alembic.config import Config
    from alembic.script import Script

State = frozenset[str]
BASE: State = frozenset()
Op = Literal["upgrade", "downgrade"]


@dataclass(frozen=True)
class Step:
    """Apply (``upgrade``) or un-apply (``downgrade``) exactly one revision."""

    op: Op
    revision: str

    def __post_init__(self) -> None:
        if self.op not in ("upgrade", "downgrade"):
            raise ValueError(f"Step op must be 'upgrade' or 'downgrade', not {self.op!r}")

    def as_command(self) -> str:
        """The command a person types for this step when the graph is not at hand.

        ``upgrade <rev>`` applies exactly ``rev`` whenever the step is legal. ``downgrade
        <rev>@-1`` un-applies exactly ``rev`` unless ``rev`` is a merge (Alembic: "Ambiguous
        walk"); :meth:`RevisionGraph.command` finds a form that works in a given state.
        """
        if self.op == "upgrade":
            return f"alembic upgrade {self.revision}"
        return f"alembic downgrade {self.revision}@-1"

    def __str__(self) -> str:
        return f"{self.op} {self.revision}"


class RevisionGraph:
    """Revisions, states and moves of one Alembic script directory."""

    def __init__(self, script: ScriptDirectory) -> None:
        self.script = script
        self._scripts: dict[str, Script] = {s.revision: s for s in _load_scripts(script)}
        # _all_down_revisions is down_revision plus depends_on resolved to ids (branch labels
        # included); Alembic exposes no public equivalent.
        self._parents: dict[str, tuple[str, ...]] = {
            rev: tuple(s._all_down_revisions) for rev, s in self._scripts.items()
        }
        children: dict[str, list[str]] = {rev: [] for rev in self._scripts}
        for rev, parents in self._parents.items():
            for parent in parents:
                children[parent].append(rev)
        self._children = {rev: tuple(sorted(kids)) for rev, kids in children.items()}
        self.revisions: tuple[str, ...] = self._topological_order()
        self._index = {rev: i for i, rev in enumerate(self.revisions)}
        self._closure: dict[str, frozenset[str]] = {}
        for rev in self.revisions:
            self._closure[rev] = frozenset({rev}).union(
                *(self._closure[p] for p in self._parents[rev])
            )
        # The state after `alembic upgrade heads`. Alembic's own list of heads also names
        # revisions that are only depended upon; those never stay in alembic_version.
        self.heads: State = frozenset(r for r in self.revisions if not self._children[r])
        # Revisions that need nothing. A root with depends_on is a base to Alembic, not here.
        self.bases: State = frozenset(r for r in self.revisions if not self._parents[r])
        self._upgraded: dict[tuple[State, str], State] = {}
        self._states: dict[frozenset[str], State] = {}

    @classmethod
    def load(cls, config: Config) -> RevisionGraph:
        """Load the script directory named by ``config`` (importing every revision file)."""
        try:
            script = ScriptDirectory.from_config(config)
        except CommandError as exc:
            raise HarnessError(f"cannot find the Alembic scripts: {exc}") from exc
        return cls(script)

    def _topological_order(self) -> tuple[str, ...]:
        # Kahn's algorithm with ids as tie-breaker: the order must not depend on file names
        # or directory listing order, so that canonical paths are the same on every machine.
        waiting = {rev: len(parents) for rev, parents in self._parents.items()}
        ready = [rev for rev, n in waiting.items() if n == 0]
        heapq.heapify(ready)
        order = []
        while ready:
            rev = heapq.heappop(ready)
            order.append(rev)
            for child in self._children[rev]:
                waiting[child] -= 1
                if waiting[child] == 0:
                    heapq.heappush(ready, child)
        return tuple(order)

    # -- revisions -------------------------------------------------------------------------

    def _check(self, rev: str) -> str:
        if rev not in self._scripts:
            raise HarnessError(
                f"unknown revision {rev!r}",
                hint=f"`alembic history` lists the revisions in {self.script.dir}",
            )
        return rev

    def parents(self, rev: str) -> tuple[str, ...]:
        """Revisions ``rev`` needs applied first: its down revisions, then its depends_on."""
        return self._parents[self._check(rev)]

    def children(self, rev: str) -> tuple[str, ...]:
        """Revisions that need ``rev`` (as down revision or dependency), sorted."""
        return self._children[self._check(rev)]

    def revision(self, rev: str) -> Script:
        """Alembic's script object for ``rev`` (file path, docstring)."""
        return self._scripts[self._check(rev)]

    def resolve(self, name: str) -> str:
        """The id of the one revision ``name`` denotes.

        Accepts what Alembic accepts for a single revision: full ids, unique prefixes (Alembic
        wants at least four characters), branch labels, ``label@head``, and ``head``/``heads``
        when there is one head. Names of no or several revisions (``base``, ``heads`` on a
        branched history) are refused; :meth:`state_at` takes those.
        """
        found = self._lookup(name)
        if len(found) != 1:
            listed = ", ".join(sorted(found)) or "no revision"
            raise HarnessError(f"{name!r} names {listed}, not a single revision")
        return next(iter(found))

    def state_at(self, name: str) -> State:
        """The state ``alembic upgrade <name>`` reaches from base (``heads``, ``base`` too)."""
        return self._heads_of(self.applied(self._lookup(name)))

    def _lookup(self, name: str) -> frozenset[str]:
        if name == "base":
            return BASE
        if name == "heads":
            return self.heads
        if "+" in name or "-" in name:  # never part of an id: a relative step
            raise HarnessError(
                f"{name!r} is a relative step, which depends on the database's state",
                hint="name a revision, a branch label, heads or base",
            )
        try:
            # the revision map's own errors: ScriptDirectory rewords an ambiguous prefix as
            # "Can't locate revision"
            found = self.script.revision_map.get_revisions(name)
        except RevisionError as exc:
            raise HarnessError(
                f"cannot resolve revision {name!r}: {exc}",
                hint=f"`alembic history` lists the revisions in {self.script.dir}",
            ) from exc
        return frozenset(s.revision for s in found if s is not None)

    # -- states ----------------------------------------------------------------------------

    def applied(self, state: Iterable[str]) -> frozenset[str]:
        """Every revision applied in ``state``: the heads and all they need, transitively."""
        heads = [self._check(r) for r in state]
        if len(heads) == 1:  # a linear history's every state: no copy of what it needs
            return self._closure[heads[0]]
        return frozenset().union(*(self._closure[r] for r in heads))

    def state_of(self, version_rows: Iterable[str]) -> State:
        """The state for what a database's ``alembic_version`` holds.

        Usually the rows unchanged. Alembic can leave a redundant ancestor behind: downgrading
        a revision whose down revisions include an ancestor of another (a merge of a revision
        with its own ancestor, or a ``depends_on`` on an ancestor) while other heads are applied
        inserts that ancestor too. Such rows describe the same applied set as the state.
        """
        rows = frozenset(version_rows)
        # Remembered: every step of a run asks, and the answer costs a pass over what is applied.
        if rows not in self._states:
            self._states[rows] = self._heads_of(self.applied(rows))
        return self._states[rows]

    def _heads_of(self, applied: frozenset[str]) -> State:
        needed = {p for rev in applied for p in self._parents[rev]}
        return frozenset(applied - needed)

    def _sorted(self, revs: Iterable[str]) -> list[str]:
        return sorted(revs, key=self._index.__getitem__)

    def upgrade_moves(self, state: State) -> list[str]:
        """Revisions that can be applied next: not applied, everything they need applied."""
        applied = self.applied(state)
        return [
            rev for rev in self.revisions
            if rev not in applied and all(p in applied for p in self._parents[rev])
        ]

    def downgrade_moves(self, state: State) -> list[str]:
        """Applied revisions that no applied revision needs: the ones that can be un-applied."""
        return self._sorted(self._heads_of(self.applied(state)))

    def after_upgrade(self, state: State, rev: str) -> State:
        """What ``alembic_version`` holds after applying ``rev`` in ``state``."""
        # Remembered: walking the canonical path to every state of a long history would
        # otherwise cost the square of its length, per walk.
        key = (state, rev)
        if key not in self._upgraded:
            self._upgraded[key] = self._after_upgrade(state, rev)
        return self._upgraded[key]

    def _after_upgrade(self, state: State, rev: str) -> State:
        applied = self.applied(state)
        missing = [p for p in self.parents(rev) if p not in applied]
        if rev in applied or missing:
            why = "it is applied" if rev in applied else f"it needs {', '.join(missing)}"
            raise HarnessError(f"cannot upgrade {rev!r} from {_show(state)}: {why}")
        return self._heads_of(applied | {rev})

    def after_downgrade(self, state: State, rev: str) -> State:
        """What ``alembic_version`` holds after un-applying ``rev`` in ``state``."""
        applied = self.applied(state)
        self._check(rev)
        if rev not in self._heads_of(applied):
            raise HarnessError(f"cannot downgrade {rev!r} from {_show(state)}: "
                               "it is not applied or an applied revision needs it")
        return self._heads_of(applied - {rev})

    def after(self, state: State, step: Step) -> State:
        """The state after ``step``; raises :class:`HarnessError` if the step is not legal."""
        if step.op == "upgrade":
            return self.after_upgrade(state, step.revision)
        return self.after_downgrade(state, step.revision)

    def canonical_path(self, state: State) -> list[Step]:
        """Upgrades from base to ``state``, in topological order (ties broken by id)."""
        applied = self.applied(state)
        return [Step("upgrade", rev) for rev in self.revisions if rev in applied]

    # -- Alembic's own planning ------------------------------------------------------------

    def plan(self, op: Op, target: str, heads: Iterable[str]) -> list[Step]:
        """The steps ``alembic <op> <target>`` takes from ``heads``, as Alembic plans them.

        ``heads`` is a state or the raw rows of ``alembic_version``.
        """
        current = tuple(self._sorted(self._check(h) for h in heads))
        try:
            if op == "upgrade":
                planned = self.script._upgrade_revs(target, current)
            else:
                planned = self.script._downgrade_revs(target, current)
        except CommandError as exc:
            raise HarnessError(
                f"alembic {op} {target} from {_show(frozenset(current))}: {exc}"
            ) from exc
        return [Step(op, s.revision.revision) for s in planned]

    def command(self, step: Step, state: State) -> str:
        """An ``alembic`` command that takes exactly ``step`` from ``state``.

        Checked against Alembic's own planner. A merge cannot be downgraded with ``<rev>@-1``;
        naming one of its parents works when that parent has no other applied descendant. When
        no single command does it, :meth:`Step.as_command` is returned.
        """
        if step.op == "upgrade":
            candidates = [step.revision]
        else:
            candidates = [f"{step.revision}@-1", *self.parents(step.revision)]
        for target in candidates:
            try:
                if self.plan(step.op, target, state) == [step]:
                    return f"alembic {step.op} {target}"
            except HarnessError:
                continue
        return step.as_command()

    def commands(self, steps: Iterable[Step], state: State = BASE) -> list[str]:
        """The commands for a walk of ``steps`` starting at ``state``."""
        out = []
        for step in steps:
            out.append(self.command(step, state))
            state = self.after(state, step)
        return out


def _load_scripts(script: ScriptDirectory) -> list[Script]:
    # Alembic imports every revision file while building its map, and reports a dangling
    # down_revision/depends_on as a bare KeyError; turn each failure into one line naming
    # the file or revision at fault.
    try:
        return list(script.revision_map.iterate_revisions("heads", "base"))
    except KeyError as exc:
        raise HarnessError(
            f"revision {exc.args[0]!r} is named as a down_revision or depends_on in "
            f"{script.versions} but no revision file defines it"
        ) from exc
    except (CommandError, RevisionError) as exc:
        raise HarnessError(f"cannot read the revisions in {script.versions}: {exc}") from exc
    except Exception as exc:
        where = source_location(exc, script.dir)
        raise HarnessError(
            f"cannot import {where or 'a revision file'}: {type(exc).__name__}: {exc}",
            hint="revision files must import without the application running",
        ) from exc


def source_location(exc: BaseException, directory: str) -> str | None:
    """``path:line`` of the innermost frame of ``exc`` inside ``directory``, if any.

    Says which migration file (or env.py) line raised, past the SQLAlchemy and Alembic frames
    above it. A SyntaxError has no frame in the file it is about, so its own position is used.
    """
    root = os.path.abspath(directory) + os.sep
    if isinstance(exc, SyntaxError) and exc.filename:
        if os.path.abspath(exc.filename).startswith(root):
            return f"{os.path.abspath(exc.filename)}:{exc.lineno}"
    found = None
    for frame, line in traceback.walk_tb(exc.__traceback__):
        filename = os.path.abspath(frame.f_code.co_filename)
        if filename.startswith(root):
            found = f"{filename}:{line}"
    return found


def _show(state: State) -> str:
    return "base" if not state else "{" + ", ".join(sorted(state)) + "}"

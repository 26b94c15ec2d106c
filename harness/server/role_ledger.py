"""Roles are cluster-wide, scratch databases are many: each database gets the roles its own
migrations made, as it would on a server of its own.

A history that runs ``CREATE ROLE app`` in an upgrade and ``DROP ROLE app`` in the downgrade is
correct on the one database it is written for. The harness runs it in many scratch databases of
one cluster: a template at that revision made the role, so a trial upgrading from the revision
before finds it already there; a trial that downgraded dropped it, so the next trial
downgrading from a copy of the same template finds it gone. Both are the harness's doing.

The ledger remembers, per scratch database, the roles the migrations run in it (or in the
databases it was copied from) created and did not drop. A run that fails because a role of
another database's making already exists, or because a role its own database made is gone,
is run again once the role is dropped (where nothing depends on it) or made again with the
options it had. A run that fails on a role its own database made is the history's defect
and stays one: an upgrade run again after a downgrade that forgot to drop its role.

Only roles that appeared while one of this process's runs went on are ever touched: when a
migration's error names them, and when the last database that holds them is dropped (not
while another harness run has scratch databases on the server: they may be its roles too). A
role another scratch database still holds grants to cannot be dropped; the failure then
stands, with a hint saying why.
"""

from __future__ import annotations

import contextlib
import dataclasses
import re
import threading
from typing import TYPE_CHECKING, Callable

import psycopg
from psycopg import sql

from . import roles

if TYPE_CHECKING:
    from ..runner import StepOutcome

Roles = dict[str, str]
"""Each role's name and its options, as ``CREATE ROLE`` takes them."""

MENDS = 4
"""Runs of one step at most: each failure mended is a role, and histories make few at once."""

DUPLICATE_OBJECT = "42710"
UNDEFINED_OBJECT = "42704"
_QUOTED = re.compile(r'"([^"]+)"')

SHARED_HINT = (
    "roles are cluster-wide: role {name} was made by this history's migrations in another "
    "scratch database of this run, which still depends on it; a server of its own would not "
    "have it (see the cluster_changes section of `harness report`)"
)


class RoleLedger:
    """The roles each scratch database's migrations made, on one server."""

    def __init__(self, admin: Callable[[], psycopg.Connection], alone: Callable[[], bool]) -> None:
        """``alone`` says whether no other harness run has scratch databases on the server;
        while one has, the roles that appeared may be its own, and none is dropped with a
        database."""
        self._admin = admin
        self._alone = alone
        self._lock = threading.Lock()
        self._options: dict[str, str] = {}
        """Every role of the cluster and its options, as last read."""
        self._made: set[str] = set()
        """Roles that appeared while a migration of this process ran, and are still there."""
        self._held: dict[str, dict[str, str]] = {}
        """Per database: the roles its migrations made and did not drop, with their options."""

    def copied(self, template: str, name: str) -> None:
        """``name`` was created as a copy of ``template``: it holds what the template held."""
        with self._lock:
            if template in self._held:
                self._held[name] = dict(self._held[template])

    def dropped(self, name: str) -> None:
        """``name`` was dropped: the roles its migrations made that no other database holds
        go with it, as a server of its own would lose them with the database (and a shared
        server gets back the roles it had)."""
        with self._lock:
            held = self._held.pop(name, None)
            if not held:
                return
            orphans = sorted(held.keys() - set().union(*self._held.values()))
            if not orphans or not self._alone():
                return
            for role in orphans:
                # Still depended on by a database the ledger does not know of: left.
                with contextlib.suppress(psycopg.Error):
                    self._admin().execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(role)))
            self._refresh()

    def read(self) -> Roles:
        """Every role of the cluster and its options now."""
        with self._lock:
            return self._read()

    def _ran(self, database: str, before: Roles, after: Roles) -> None:
        """A run in ``database`` ended: the roles that appeared between ``before`` and ``after``
        are its making, the roles that went are its dropping. Read on both sides of the run,
        not remembered from the last one: roles made in between are someone else's."""
        self._options = after
        made = after.keys() - before.keys()
        gone = before.keys() - after.keys()
        self._made = (self._made - gone) | made
        if not made and not gone:
            return
        held = self._held.setdefault(database, {})
        for name in made:
            held[name] = after[name]
        for name in gone:
            held.pop(name, None)

    def run(self, database: str, attempt: Callable[[], tuple[StepOutcome, Roles, Roles]], *,
            resumable: bool) -> StepOutcome:
        """``attempt()``, a migration run in ``database`` with the roles just before and just
        after it (the runner reads them in its own messages on either side: see
        :data:`~harness.server.roles.ROLE_OPTIONS`), and again while a role another database
        made or dropped is what it failed on (a few times at most: one per role).

        A run whose failure left earlier steps committed (a transaction per migration) runs
        again only if ``resumable``: a jump, planned again from where it stopped. The outcome
        is then the first run's committed steps followed by the second run's.
        """
        outcome: StepOutcome | None = None
        for _ in range(MENDS):
            again, before, after = attempt()
            with self._lock:
                self._ran(database, before, after)
            outcome = again if outcome is None else outcome.followed_by(again)
            if again.ok or (again.heads != again.heads_before and not resumable):
                return outcome
            hint = self._mend(database, again.sqlstate, again.error or "")
            if hint is not None:
                return dataclasses.replace(outcome, error=f"{outcome.error}; {hint}") if hint else outcome
        assert outcome is not None
        return outcome

    def _mend(self, database: str, sqlstate: str | None, message: str) -> str | None:
        """Undo what other databases did to the roles a failed run in ``database`` tripped
        over; returns None when it may run again, else a hint for the failure (or "")."""
        names = _QUOTED.findall(message)
        with self._lock:
            held = self._held.get(database, {})
            existing = self._options
            if sqlstate == DUPLICATE_OBJECT:
                for name in names:
                    if name in self._made and name in existing and name not in held:
                        return self._drop(name)
            elif sqlstate == UNDEFINED_OBJECT:
                for name in names:
                    if name in held and name not in existing:
                        return self._create(name, held[name])
        return ""

    def _drop(self, name: str) -> str | None:
        return self._mended(sql.SQL("DROP ROLE {}").format(sql.Identifier(name)), name)

    def _create(self, name: str, options: str) -> str | None:
        return self._mended(sql.SQL("CREATE ROLE {} " + options).format(sql.Identifier(name)), name)

    def _mended(self, statement: sql.Composed, name: str) -> str | None:
        """None once ``statement`` ran; else the failure stands, with the hint when another
        scratch database's grants kept the role (any other refusal, such as a server role
        without CREATEROLE, leaves the failure as it was)."""
        try:
            self._admin().execute(statement)
        except psycopg.errors.DependentObjectsStillExist:
            return SHARED_HINT.format(name=name)
        except psycopg.Error:
            return ""
        self._refresh()
        return None

    def _refresh(self) -> None:
        """Read the roles again after the ledger dropped or made one itself."""
        self._options = self._read()
        self._made &= self._options.keys()

    def _read(self) -> Roles:
        return {name: options for name, options in self._admin().execute(roles.ROLE_OPTIONS)}

"""The revision to blame for an isolation hole that rows seeded after the migrations revealed.

Tenant isolation is checked after every step, seed steps included; a hole in a table that had no
rows of two tenants until a seed step shows only then, with no migration step to blame. The hole
is the schema's, though: who may reach a relation is decided by the relation itself (its owner,
row-level security and FORCE flags, a view's definition), its policies and grants, and its tenant
column. The revision to blame is the last one on the path to the state whose upgrade changed any
of those, as the references of the states along that path record them: the revision that made
the relation, or last changed what guards it. Read from references, never from the walked
database, so that the same state always blames the same revision.

What lives outside a database's schema escapes this: a role given ``BYPASSRLS`` by a migration
changes no object of the relation, and the revision that last changed the relation is blamed.
"""

from __future__ import annotations

import re
from typing import Any, Mapping

from .graph import State
from .session import Session
from .snapshot import Snapshot

_GUARDS = ("table ", "view ", "materialized view ", "foreign table ", "policy ", "grant ",
           "function ", "procedure ")
"""Kinds of snapshot objects that decide who reaches a relation or a function's results."""


def opened_by(session: Session, state: State, relation: str, tenant_column: str) -> str | None:
    """The last revision on the canonical path to ``state`` whose upgrade changed what guards
    ``relation`` (``schema.table``, or a function's signature); None when none did."""
    return session.per_state(f"opened by: {relation}", state,
                             lambda: _last_change(session, state, relation, tenant_column))


def _last_change(session: Session, state: State, relation: str, tenant_column: str) -> str | None:
    graph, references = session.project.graph, session.references
    blamed = None
    current: State = frozenset()
    before = _guards(references.snapshot(current), relation, tenant_column)
    for step in graph.canonical_path(state):
        current = graph.after_upgrade(current, step.revision)
        after = _guards(references.snapshot(current), relation, tenant_column)
        if after != before:
            blamed = step.revision
        before = after
    return blamed


def _guards(snapshot: Snapshot, relation: str, tenant_column: str) -> dict[str, Mapping[str, Any]]:
    """The objects of ``snapshot`` that decide who reaches ``relation``."""
    if "(" in relation:  # a function, as regprocedure names it: its overloads, its grants
        named = re.compile(rf"[ .]{re.escape(relation.split('(')[0])}\(")
        return {key: attrs for key, attrs in snapshot.objects.items()
                if key.startswith(_GUARDS) and key not in snapshot.tables and named.search(key)}
    return {
        key: attrs for key, attrs in snapshot.objects.items()
        if snapshot.tables.get(key) == relation and (
            key.startswith(_GUARDS) or key.startswith("column ") and key.endswith(f".{tenant_column}"))
    }

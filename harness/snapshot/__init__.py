"""Schema snapshots: one database's schema as a comparable value, and a readable diff of two.

``take_snapshot(conn)`` reads every schema the project owns from the system catalogs, one query
per family of objects, into a :class:`Snapshot` keyed by readable identities
(``"policy tenant_isolation on public.invoices"``). What differs between identical schemas (oids,
the database's name, ACL entry order, row order) is normalised away and nothing else is.
``diff_snapshots`` lists the objects that differ, ``format_diff`` says how, for people.
"""

from __future__ import annotations

from .reader import SnapshotError, take_snapshot
from .diff import diff_snapshots, format_diff
from .model import Difference, Snapshot
from .tracking import Scope, ScopedRead, family_of, install_tracking, take_scoped_snapshot

__all__ = ["Difference", "Scope", "ScopedRead", "Snapshot", "SnapshotError", "diff_snapshots", "family_of", "format_diff",
           "install_tracking", "take_scoped_snapshot", "take_snapshot"]

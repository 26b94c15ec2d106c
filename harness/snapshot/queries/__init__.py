"""The catalog query of a snapshot: one branch per family of objects, in a single statement.

Every branch yields rows ``(key, table, attributes, roles)``: the object's readable identity, the
table whose rows it shapes (or NULL), its attributes as JSON, and the roles it refers to. One
statement rather than one per family: the scope CTEs are computed once and the statement is
planned once, which is most of the cost on a small schema and on a fresh connection.
"""

from __future__ import annotations

from . import objects, privileges, scope, tables
from .common import VERSION_TABLE_SETTING, prefix
from .scope import ROWS_TRIGGER, SCOPE_SETTING, TRACKING_SCHEMA


def _statement(*, scoped: bool) -> str:
    branches = [body for module in (objects, tables, privileges) for body in module.FAMILIES.values()]
    if scoped:
        branches.append(scope.SUMMARY)
    return prefix(scoped=scoped) + privileges.ACL_OBJECTS + "\nUNION ALL\n".join(
        f"({body.strip()})" for body in branches
    )


STATEMENT = _statement(scoped=False)
SCOPED_STATEMENT = _statement(scoped=True)
"""The same, limited to what the change log says a step touched (see :mod:`.scope`); its last row
has a NULL key and says what it covered."""

__all__ = ["ROWS_TRIGGER", "SCOPED_STATEMENT", "SCOPE_SETTING", "STATEMENT", "TRACKING_SCHEMA", "VERSION_TABLE_SETTING"]

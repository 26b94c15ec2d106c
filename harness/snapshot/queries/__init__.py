"""The catalog query of a snapshot: one branch per family of objects, in a single statement.

Every branch yields rows ``(key, table, attributes, roles)``: the object's readable identity, the
table whose rows it shapes (or NULL), its attributes as JSON, and the roles it refers to. One
statement rather than one per family: the scope CTEs are computed once and the statement is
planned once, which is most of the cost on a small schema and on a fresh connection.
"""

from __future__ import annotations

from . import objects, privileges, tables
from .common import PREFIX, VERSION_TABLE_SETTING

STATEMENT = PREFIX + privileges.ACL_OBJECTS + "\nUNION ALL\n".join(
    f"({body.strip()})"
    for module in (objects, tables, privileges)
    for body in module.FAMILIES.values()
)

__all__ = ["STATEMENT", "VERSION_TABLE_SETTING"]

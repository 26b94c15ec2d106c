"""The values a snapshot and its diff are made of: plain data, comparable and JSON-serialisable.

Attribute values are what JSON can hold (strings, numbers, booleans, lists), exactly as the
catalog queries produce them, so a snapshot read back from a cached file compares equal to one
just taken.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any, Literal, Mapping

Change = Literal["added", "removed", "changed"]
Kind = Literal["schema", "column_order"]

POSITION = "position"
"""The attribute holding a column's ordinal among its table's live columns.

It is compared apart from every other attribute: a column that only moved is a ``column_order``
difference, which a project may choose to accept.
"""

_FORMAT = 1


@dataclasses.dataclass(frozen=True)
class Snapshot:
    """One database's schema as read from its catalogs, normalised for comparison."""

    objects: Mapping[str, Mapping[str, Any]]
    """Readable identity (``"column public.tenants.name"``) -> attributes."""
    versions: tuple[tuple[str | None, ...], ...] = ()
    """The version table's rows, sorted: reported apart from the schema, never diffed with it."""
    roles: frozenset[str] = frozenset()
    """Roles the schema refers to (owners, grantees, grantors, policy roles); roles themselves
    are cluster-wide, not part of a database."""
    tables: Mapping[str, str] = dataclasses.field(default_factory=dict)
    """Object key -> ``schema.table`` (unquoted) for a table, view, materialized view or foreign
    table and for what is defined on it: columns, constraints, indexes, triggers, rules,
    policies, statistics, grants."""

    @functools.cached_property
    def by_table(self) -> Mapping[str | None, frozenset[str]]:
        """``schema.table`` -> the keys of its objects (the inverse of :attr:`tables`); None ->
        the keys of the objects that belong to no table."""
        keys: dict[str | None, set[str]] = {None: set()}
        for key in self.objects:
            keys.setdefault(self.tables.get(key), set()).add(key)
        return {table: frozenset(found) for table, found in keys.items()}

    def to_json(self) -> dict[str, Any]:
        return {
            "format": _FORMAT,
            "objects": {key: dict(attrs) for key, attrs in self.objects.items()},
            "versions": [list(row) for row in self.versions],
            "roles": sorted(self.roles),
            "tables": dict(self.tables),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Snapshot:
        if data.get("format") != _FORMAT:
            raise ValueError(f"unsupported snapshot format {data.get('format')!r}, expected {_FORMAT}")
        return cls(
            objects={key: dict(attrs) for key, attrs in data["objects"].items()},
            versions=tuple(tuple(row) for row in data["versions"]),
            roles=frozenset(data["roles"]),
            tables=dict(data["tables"]),
        )


@dataclasses.dataclass(frozen=True)
class Difference:
    """One object that differs between two snapshots, and how."""

    object: str
    change: Change
    kind: Kind = "schema"
    details: tuple[tuple[str, Any, Any], ...] = ()
    """``(attribute, before, after)``; for an added or removed object, all its attributes."""
    table: str | None = None
    """``schema.table`` when the difference is in a table's own definition, its columns or its
    constraints: the changes that can legitimately rewrite the table's rows. None otherwise,
    even for an index or a grant on a table."""

    def to_json(self) -> dict[str, Any]:
        return {
            "object": self.object,
            "change": self.change,
            "kind": self.kind,
            "details": [list(detail) for detail in self.details],
            "table": self.table,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Difference:
        return cls(
            object=data["object"],
            change=data["change"],
            kind=data["kind"],
            details=tuple(tuple(detail) for detail in data["details"]),
            table=data.get("table"),
        )

"""Property ``models``: at the heads, the migrations build what the models declare.

pytest-alembic's most used test, and ``alembic check``: Alembic's autogenerate comparison of the
database every head's migrations produce against the project's ``target_metadata`` finds
nothing. A model with a column no migration creates, or a type that differs, means the next
``alembic revision --autogenerate`` writes a migration nobody asked for, or production runs
with a schema the application does not expect.

The metadata is the one env.py passes to ``context.configure(target_metadata=...)`` (with its
``include_object``, ``include_name``, ``compare_type`` ... options, so the comparison is the
one the project's own autogenerate makes), or the ``target_metadata = "module:attribute"``
setting. With neither, the property is not checked.
"""

from __future__ import annotations

import importlib
from typing import Any, Mapping

import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy.pool import NullPool

from ..errors import HarnessError
from ..violations import Violation

COMPARE_OPTIONS = (
    "include_object", "include_name", "include_schemas", "compare_type", "compare_server_default",
    "version_table", "version_table_schema",
)
"""What env.py may pass to ``context.configure()`` that steers the comparison."""


def import_metadata(spec: str) -> Any:
    """The object ``module:attribute`` names (the project's directories are on ``sys.path``)."""
    module_name, _, attribute = spec.partition(":")
    hint = 'target_metadata = "package.module:attribute", e.g. "app.models:Base.metadata"'
    if not module_name or not attribute:
        raise HarnessError(f"setting target_metadata = {spec!r} is not module:attribute", hint=hint)
    try:
        found: Any = importlib.import_module(module_name)
        for name in attribute.split("."):
            found = getattr(found, name)
    except (ImportError, AttributeError) as exc:
        raise HarnessError(f"setting target_metadata = {spec!r}: {type(exc).__name__}: {exc}",
                           hint=hint) from None
    if not isinstance(found, sa.MetaData):
        raise HarnessError(f"setting target_metadata = {spec!r} names a {type(found).__name__}, "
                           "not a MetaData", hint=hint)
    return found


def check(url: str, metadata: Any, options: Mapping[str, Any], revision: str, heads: str) -> list[Violation]:
    """Compare the database at ``url`` (at the heads) with ``metadata``; one violation naming
    every difference, or none."""
    opts = {k: v for k, v in options.items() if k in COMPARE_OPTIONS and v is not None}
    engine = sa.create_engine(url, poolclass=NullPool, future=True)
    try:
        with engine.connect() as conn:
            context = MigrationContext.configure(conn, opts=opts)
            found = [describe(d) for d in _flatten(compare_metadata(context, metadata))]
    finally:
        engine.dispose()
    if not found:
        return []
    return [Violation(
        property="models",
        revision=revision,
        message=f"at {heads}, the database differs from the models (target_metadata): "
                f"{len(found)} difference(s), as `alembic check` would report them:\n"
                + "\n".join(f"{d['object']}: {d['change']}" for d in found),
        evidence={"heads": heads, "differences": found},
    )]


def describe(diff: tuple) -> dict[str, str]:
    """One of Alembic's diff tuples as the object it concerns and what differs, in words."""
    kind = diff[0]
    if kind in ("add_table", "remove_table"):
        table = diff[1]
        return {"object": f"table {_name(table.schema, table.name)}", "change":
                "in the models, no migration creates it" if kind == "add_table"
                else "created by the migrations, absent from the models"}
    if kind in ("add_column", "remove_column"):
        schema, table, column = diff[1], diff[2], diff[3]
        change = (f"in the models ({column.type}), no migration creates it" if kind == "add_column"
                  else f"created by the migrations ({column.type}), absent from the models")
        return {"object": f"column {_name(schema, table)}.{column.name}", "change": change}
    if kind.startswith("modify_"):
        schema, table, column, _, existing, wanted = diff[1:7]
        what = kind.removeprefix("modify_")
        return {"object": f"column {_name(schema, table)}.{column}",
                "change": f"{what}: the migrations give {_show(what, existing)}, "
                          f"the models {_show(what, wanted)}"}
    if kind in ("add_index", "remove_index"):
        index = diff[1]
        return {"object": f"index {index.name} on {_name(index.table.schema, index.table.name)}",
                "change": _side(kind)}
    if kind in ("add_constraint", "remove_constraint", "add_fk", "remove_fk"):
        constraint = diff[1]
        table = constraint.table
        return {"object": f"constraint {constraint.name or type(constraint).__name__} on "
                          f"{_name(table.schema, table.name)}", "change": _side(kind)}
    return {"object": kind, "change": " ".join(str(part) for part in diff[1:])}


def _flatten(diffs: list) -> list[tuple]:
    """Alembic groups a column's modifications in a list; one tuple per difference here."""
    flat: list[tuple] = []
    for diff in diffs:
        flat.extend(diff if isinstance(diff, list) else [diff])
    return flat


def _side(kind: str) -> str:
    return ("in the models, no migration creates it" if kind.startswith("add_")
            else "created by the migrations, absent from the models")


def _show(what: str, value: Any) -> str:
    if what == "nullable":
        return "NULL" if value else "NOT NULL"
    if value is None:
        return "none"
    return str(getattr(value, "arg", value))


def _name(schema: str | None, name: str) -> str:
    return f"{schema}.{name}" if schema else name

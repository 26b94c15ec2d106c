"""The simplest value a column accepts, and which rows a row needs: what cutting a failure's rows
down to what its defect needs relies on.

Simplest means what a person reads at a glance: NULL where the column allows it, else ``0``,
``''``, ``false``, an ordinary date (2000-01-01), an enum's first label, an empty document. In a
column under a unique constraint the n-th row of its table takes the n-th simplest value
(``0``, ``1``, ... ; ``''``, ``'a'``, ``'b'``, ...), so that the rows stay distinct. Key columns
that foreign keys join keep their values (rows refer to each other by them), but for a child's
column that may be NULL.
"""

from __future__ import annotations

import datetime
import string
import uuid
from typing import Any, Mapping, Sequence

from .seeding.catalog import Catalog, Column, Table

Row = tuple[str, Mapping[str, Any]]
"""``("schema.table", record)``, as a seed step logs it."""

_DAY = datetime.date(2000, 1, 1)


def simplest_rows(catalog: Catalog, rows: Sequence[Row], ordinals: Mapping[str, int],
                  only: tuple[str, str] | None = None) -> tuple[Row, ...]:
    """``rows`` with each value made its simplest, counting each table's rows on from
    ``ordinals`` (rows of that table seen in earlier steps); with ``only``, a ``(table,
    column)``, that column's values alone."""
    counts = dict(ordinals)
    simpler = []
    for table_key, record in rows:
        n = counts.get(table_key, 0)
        counts[table_key] = n + 1
        table = catalog[table_key] if table_key in catalog else None
        if table is None:
            simpler.append((table_key, record))
            continue
        joined = _joined(catalog, table)
        simpler.append((table_key, {
            name: value if name in joined or (only and only != (table_key, name)) or name not in _names(table)
            else simplest(table.column(name), n if _unique(table, name) else 0, value)
            for name, value in record.items()
        }))
    return tuple(simpler)


def simplest(column: Column, n: int, value: Any) -> Any:
    """The ``n``-th simplest value of ``column``'s type; ``value`` where the type has none."""
    if column.nullable:
        return None
    kind = column.type.kind
    if kind in ("int2", "int4", "int8", "numeric", "money", "float4", "float8"):
        return str(n)
    if kind == "text":
        return "" if n == 0 else string.ascii_lowercase[(n - 1) % 26] * (1 + (n - 1) // 26)
    if kind == "bool":
        return "false" if n == 0 else "true" if n == 1 else value
    if kind == "uuid":
        return str(uuid.UUID(int=n))
    if kind == "date":
        return (_DAY + datetime.timedelta(days=n)).isoformat()
    if kind in ("timestamp", "timestamptz"):
        return f"{_DAY + datetime.timedelta(days=n)} 00:00:00" + ("+00" if kind == "timestamptz" else "")
    if kind == "enum" and n < len(column.type.labels):
        return column.type.labels[n]
    if kind in ("json", "jsonb") and n == 0:
        return {}
    if kind == "bytea" and n == 0:
        return "\\x"
    return value


def needed_by(catalog: Catalog, rows: Sequence[Row], index: int) -> set[int]:
    """The positions in ``rows`` of row ``index`` and of the rows it refers to through foreign
    keys, transitively."""
    needed, todo = {index}, [index]
    while todo:
        table_key, record = rows[todo.pop()]
        if table_key not in catalog:
            continue
        for key in catalog[table_key].foreign_keys:
            wanted = tuple(_text(record.get(c)) for c in key.columns)
            if None in wanted:
                continue
            for j, (parent, parent_record) in enumerate(rows):
                if j not in needed and parent == key.parent and tuple(
                        _text(parent_record.get(c)) for c in key.parent_columns) == wanted:
                    needed.add(j)
                    todo.append(j)
    return needed


def _text(value: Any) -> str | None:
    return None if value is None else str(value)


def _names(table: Table) -> set[str]:
    return {c.name for c in table.columns if c.insertable}


def _unique(table: Table, name: str) -> bool:
    return any(name in columns for columns in table.unique)


def _joined(catalog: Catalog, table: Table) -> set[str]:
    """Columns of ``table`` a foreign key joins on, as the parent or as a child that cannot be
    NULL (a child column that can is simplest NULL, and its parent row then goes too)."""
    joined = {c for key in table.foreign_keys for c in key.columns if not table.column(c).nullable}
    for other in catalog:
        for key in other.foreign_keys:
            if key.parent == table.key:
                joined.update(key.parent_columns)
    return joined

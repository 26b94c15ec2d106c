"""Rows for the live schema: the catalog read as values, hints from its constraints, inserts
the database judges, and two row makers (Hypothesis' for the walk, a deterministic one for the
report).

One module per job: :mod:`.hints` (constraint text -> :class:`Hints`), :mod:`.catalog` (the live
catalog), :mod:`.catalog_changes` (which of its tables a scratch database's change log says
changed since it was read), :mod:`.insert` (one INSERT in its own savepoint, the parent-key pool),
:mod:`.expressions`, :mod:`.checks` and :mod:`.repair` (CHECKs parsed, judged on a drawn row,
and the row repaired against them), :mod:`.overrides`, :mod:`.strategies` (Hypothesis value
strategies), :mod:`.rows` (:func:`seed_rows`) and :mod:`.filling` (the report's filler).
Importing this package does not import Hypothesis: the names that need it are loaded on first
use.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from .catalog import Catalog, Column, ForeignKey, Table, TypeInfo, read_catalog
from .hints import Hints
from .insert import DEFAULT
from .overrides import Overrides

if TYPE_CHECKING:
    from .rows import SeedResult, seed_rows

__all__ = [
    "DEFAULT",
    "Catalog",
    "Column",
    "ForeignKey",
    "Hints",
    "Overrides",
    "SeedResult",
    "Table",
    "TypeInfo",
    "read_catalog",
    "seed_rows",
]

_LAZY = {"SeedResult": ".rows", "seed_rows": ".rows"}
"""Names whose modules import Hypothesis."""


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name], __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

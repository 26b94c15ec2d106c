"""The user's own strategies for tables or columns the catalog cannot describe well enough.

Hypothesis is imported only when overrides are given (the caller has it loaded by then), so
that the public API can name :class:`Overrides` without loading Hypothesis.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Mapping

from ..errors import HarnessError
from .catalog import Catalog

if TYPE_CHECKING:
    from hypothesis.strategies import SearchStrategy

__all__ = ["NO_OVERRIDES", "Overrides"]


class Overrides:
    """User strategies for tables or columns, keyed by ``"schema.table"``.

    A mapping value maps column names to strategies for those columns (used exactly as given:
    include ``st.none()`` or ``st.just(DEFAULT)`` to keep NULLs or defaults). A strategy value
    draws whole rows as mappings ``column -> value``: columns it leaves out are omitted (their
    default applies) except foreign-key columns, which are still drawn from parent rows.
    Names that match nothing at the current revision are ignored, since a column may exist
    only at some revisions; :meth:`unmatched` lists them for a warning.
    """

    def __init__(
        self,
        mapping: Mapping[str, Mapping[str, SearchStrategy[Any]] | SearchStrategy[Any]]
        | None = None,
    ) -> None:
        self._rows: dict[str, SearchStrategy[Mapping[str, Any]]] = {}
        self._columns: dict[str, dict[str, SearchStrategy[Any]]] = {}
        if mapping:
            from hypothesis.strategies import SearchStrategy
        for key, value in (mapping or {}).items():
            if not isinstance(key, str) or "." not in key:
                raise HarnessError(f"override key {key!r} is not a \"schema.table\" name")
            if isinstance(value, SearchStrategy):
                self._rows[key] = value
            elif isinstance(value, Mapping) and all(
                isinstance(s, SearchStrategy) for s in value.values()
            ):
                self._columns[key] = dict(value)
            else:
                raise HarnessError(
                    f"override for {key} must be a strategy for whole rows or a mapping of "
                    "column names to strategies"
                )

    def row(self, key: str) -> SearchStrategy[Mapping[str, Any]] | None:
        return self._rows.get(key)

    def column(self, key: str, column: str) -> SearchStrategy[Any] | None:
        return self._columns.get(key, {}).get(column)

    def unmatched(self, catalog: Catalog) -> list[str]:
        """Override names with no table or column in ``catalog``."""
        missing = [key for key in [*self._rows, *self._columns] if key not in catalog]
        for key, columns in self._columns.items():
            if key in catalog:
                names = {c.name for c in catalog[key].columns}
                missing.extend(f"{key}.{c}" for c in columns if c not in names)
        return missing


NO_OVERRIDES = Overrides()


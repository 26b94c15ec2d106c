"""Rows built from the catalog, the same every time: the sweep's filler and the report's.

Data, isolation and data-dependent defects show only on rows, and a deterministic check needs
the rows that show them without a search: at least two tenants, every enum label and every
literal a CHECK or a partition bound names, NULL where allowed, the edges of each type (empty
and maximal-length strings, mixed case, zero, negative, the type's limits, far dates), and
parents for every foreign key. :func:`fill` gives each table such a set of rows, driven by the
catalog model (:func:`.catalog.read_catalog`), with no Hypothesis and no randomness.

Row ``i`` of a table takes the ``i``-th edge of every column at once (non-unique columns cycle
through theirs, so values repeat as real data does; key columns take plain, distinct values
once their edges are spent). The database is the judge: every row goes in inside its own
savepoint (:class:`.insert.Inserter`); a refused row is tried again as one row per edge it
carried, each on otherwise plain values, so one edge a CHECK forbids never costs the others.
Refused rows are counted. A row that a CHECK constraint certainly refuses (evaluated on the
row by :mod:`.checks`, which answers only what it models exactly) is counted as refused
without being sent: a refusal costs a failed round trip and an undo, and the bundled history's
CHECKs refuse about eighty edge rows per fill. A row of a table carrying the tenant column
goes in with the tenant setting at the row's tenant, as the application would insert it (the
:class:`.insert.Inserter` sets it).
"""

from __future__ import annotations

import dataclasses
import datetime
import json
import re
import string
import uuid
from decimal import Decimal
from typing import Any, Callable, Collection, Iterable, Sequence

import psycopg
from psycopg import sql
from psycopg.types.json import Jsonb

from .catalog import Catalog, Column, ForeignKey, Table, Tenancy, TypeInfo, read_catalog
from .checks import SOME, Env, evaluate
from .expressions import parse_check
from .hints import Hints
from .insert import DEFAULT, Inserter

LONGEST_TEXT = 200
"""The longest string given to a column without a length limit."""
EXTRA_ROWS = 2
"""Rows beyond the longest list of edges: plain rows, and repeats of the first edges."""
PARENTS = 4
"""Parents a table's rows are spread over at least: two tenants and more."""
BATCH = 64
"""Rows sent in one round trip at most."""

Plain = Callable[[int], Any]
"""A column's plain value for row number ``n``: valid-looking and distinct per ``n``."""


@dataclasses.dataclass
class Filled:
    """What :func:`fill` did: rows per table now, rows it added, rows the database refused,
    tables it could not give rows to, and the rows that went in (for a replay)."""

    rows: dict[str, int] = dataclasses.field(default_factory=dict)
    added: dict[str, int] = dataclasses.field(default_factory=dict)
    rejected: int = 0
    unseedable: dict[str, str] = dataclasses.field(default_factory=dict)
    records: dict[str, list[dict[str, Any]]] = dataclasses.field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {k: v for k, v in dataclasses.asdict(self).items() if k != "records"}


def fill(
    conn: psycopg.Connection,
    rows_per_table: int | None = None,
    *,
    seed: int = 0,
    exclude: Iterable[tuple[str, str]] = (),
    tables: Collection[str] | None = None,
    tenancy: Tenancy | None = None,
    catalog: Catalog | None = None,
) -> Filled:
    """Give rows to every table (or to ``tables``, ``schema.table`` names), parents first.

    Without ``rows_per_table``, each table gets its whole set of edge rows, whatever it holds
    already (the sweep fills a table again after a migration changed it). With it, each table
    is topped up to that many rows (the report's sizes), edges first. ``seed`` shifts the
    plain values; ``tenancy`` goes to the :class:`Inserter`, which sets the tenant setting per
    row; ``catalog``, when the caller keeps one for the schema, saves reading it (``exclude``
    is then the caller's business).
    ``conn`` must be in autocommit mode; everything goes in in one transaction.
    """
    catalog = catalog if catalog is not None else read_catalog(conn, exclude=exclude)
    result = Filled()
    with conn.transaction(), conn.cursor() as cursor:
        inserter = Inserter(cursor, tenancy=tenancy)
        for table in catalog:
            if tables is not None and table.key not in tables:
                continue
            present = _count(inserter, table)
            _Table(inserter, table, seed + present, result).fill(
                None if rows_per_table is None else max(rows_per_table - present, 0))
            result.rows[table.key] = present + result.added.get(table.key, 0)
    return result


def _count(inserter: Inserter, table: Table) -> int:
    query = sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(table.schema, table.name))
    return inserter.run(query, ()).fetchone()[0]


class _Table:
    """The rows of one table: edges per column, plain values, parents, and the inserts."""

    def __init__(self, inserter: Inserter, table: Table, offset: int, result: Filled) -> None:
        self.inserter, self.table, self.result = inserter, table, result
        self.number = offset
        in_keys = {name for fk in table.foreign_keys for name in fk.columns}
        self.own = [c for c in table.columns if c.insertable and not c.counted and c.name not in in_keys]
        keyed = {name for key in table.unique for name in key}
        self.unique = {c.name for c in self.own if c.name in keyed}
        self.edges = {c.name: _edges(c) for c in self.own}
        self.plain = {c.name: _plain(c) for c in self.own}
        self.checks = tuple(node for node in map(parse_check, table.checks) if node is not None)
        self.kinds = {c.name: (c.type.kind, c.default) for c in table.columns}

    def fill(self, wanted: int | None) -> None:
        table = self.table
        missing = [c.name for c in self.own
                   if not c.nullable and c.default is None and self.plain[c.name] is None]
        if missing:
            self.result.unseedable[table.key] = f"no values for {', '.join(missing)}"
            return
        pools = [(fk, self._choices(fk)) for fk in _widest_first(table.foreign_keys)]
        edge_rows = max((len(e) for e in self.edges.values()), default=0)
        edge_rows = max(edge_rows, *(min(len(choices), PARENTS) for _, choices in pools), 0)
        edge_rows += EXTRA_ROWS
        limit, budget = (edge_rows, None) if wanted is None else (edge_rows + 3 * wanted, wanted)
        # Rows go in in batches of one round trip, made ahead as if none were refused; a
        # refusal ends its batch and the rows after it are made again, after its split, so
        # every row is what one-at-a-time inserts would have made. A table that is its own
        # parent goes a row at a time: its next row may choose the one before as parent.
        batch_size = 1 if any(fk.parent == table.key for fk in table.foreign_keys) else BATCH
        added, i = 0, 0
        while i < limit and (budget is None or added < budget):
            batch: list[tuple[int, dict[str, Any], dict[str, Any], int]] = []
            room = batch_size if budget is None else min(batch_size, budget - added)
            judged = False
            while i < limit and len(batch) < room and not judged:
                parents = self._parents(pools, i)
                i += 1
                if parents is not None:
                    row = self._ordered({**parents, **{c.name: self._value(c, i - 1) for c in self.own}})
                    batch.append((i, row, parents, self.number))
                    # A row a CHECK refuses ends its batch as the database's refusal would.
                    judged = self._refuses(row)
            if not batch:
                break
            sent = batch[:-1] if judged else batch
            records, refused = (self.inserter.insert_many(table, [row for _, row, _, _ in sent])
                                if sent else ([], None))
            self._keep(records)
            added += len(records)
            if refused is not None or judged:
                i, row, parents, self.number = batch[len(records)]
                self.result.rejected += 1
                added += self._split(row, parents, None if budget is None else budget - added)
        if added:
            self.result.added[table.key] = added

    def _choices(self, fk: ForeignKey) -> list[tuple[Any, ...] | None]:
        """Parent keys in physical order, and NULL last when every column of the key allows it."""
        pool: list[tuple[Any, ...] | None] = list(self.inserter.pool(fk))
        if all(self.table.column(c).nullable for c in fk.columns):
            pool.append(None)
        return pool

    def _parents(self, pools: list[tuple[ForeignKey, list]], i: int) -> dict[str, Any] | None:
        """Row ``i``'s foreign key columns: the ``i``-th parent agreeing with those set; None
        when a required parent does not exist."""
        values: dict[str, Any] = {}
        for fk, choices in pools:
            fixed = {k: values[c] for k, c in enumerate(fk.columns) if c in values}
            matching = [p for p in choices if p is None or all(p[k] == v for k, v in fixed.items())]
            if not matching:
                return None
            chosen = matching[i % len(matching)]
            values.update({c: None if chosen is None else chosen[k]
                           for k, c in enumerate(fk.columns) if c not in values})
        return values

    def _value(self, column: Column, i: int) -> Any:
        edges = self.edges[column.name]
        if column.name in self.unique:
            return edges[i] if i < len(edges) else self._plain(column)
        return edges[i % len(edges)] if edges else self._plain(column)

    def _plain(self, column: Column) -> Any:
        self.number += 1
        make = self.plain[column.name]
        if make is None:
            return DEFAULT if column.default is not None else None
        return make(self.number)

    def _split(self, row: dict[str, Any], parents: dict[str, Any], budget: int | None) -> int:
        """Each edge of the refused ``row`` alone on a plain row, at most ``budget`` rows.
        Rows added.

        In batches, as :meth:`fill` sends its rows: a split row does not depend on the refusals
        before it, so the rows after a refused one are sent as they were made, and rows are
        made only while the rows waiting could all go in without passing ``budget``.
        """
        added = 0
        columns = iter(self.own)
        waiting: list[dict[str, Any]] = []
        while budget is None or added < budget:
            room = BATCH if budget is None else min(BATCH, budget - added)
            for column in columns:
                plain = {**parents, **{c.name: self._plain(c) for c in self.own}}
                if row[column.name] != plain[column.name]:
                    alone = self._ordered({**plain, column.name: row[column.name]})
                    if self._refuses(alone):
                        self.result.rejected += 1
                        continue
                    waiting.append(alone)
                    if len(waiting) >= room:
                        break
            if not waiting:
                break
            records, refused = self.inserter.insert_many(self.table, waiting)
            self._keep(records)
            added += len(records)
            if refused is None:
                waiting = []
            else:
                waiting = waiting[len(records) + 1:]
                self.result.rejected += 1
        return added

    def _refuses(self, row: dict[str, Any]) -> bool:
        """Whether a CHECK constraint certainly refuses ``row`` (false, not NULL nor unknown)."""
        if not self.checks:
            return False
        env = Env({name: _judged(value, self.kinds[name][0]) for name, value in row.items()}, self.kinds)
        return any(evaluate(check, env) is False for check in self.checks)

    def _ordered(self, row: dict[str, Any]) -> dict[str, Any]:
        for lower, higher in self.table.ordered:
            pair = (row.get(lower), row.get(higher))
            if all(isinstance(v, str) for v in pair):
                row[lower], row[higher] = sorted(pair, key=_ordering)
        return row

    def _keep(self, records: list[dict[str, Any]]) -> None:
        if records:
            self.result.records.setdefault(self.table.key, []).extend(records)


def _judged(value: Any, kind: str | None) -> Any:
    """A value as :mod:`.checks` reads it: this module writes JSON as text, which the checks
    would take for a JSON string; a document it cannot parse is a value not known here."""
    if kind in ("json", "jsonb") and isinstance(value, str):
        try:
            return Jsonb(json.loads(value))
        except ValueError:
            return SOME
    return value


def _widest_first(keys: Sequence[ForeignKey]) -> list[ForeignKey]:
    # A composite key (tenant_id, event_id) fixes the tenant before the tenant's own key does.
    return sorted(keys, key=lambda fk: (-len(fk.columns), fk.name))


def _ordering(text: str) -> tuple[Decimal, str]:
    # Numbers compare as numbers, everything else this module makes (ISO times) as text.
    try:
        return Decimal(text), ""
    except ArithmeticError:
        return Decimal(0), text


# ---------------------------------------------------------------------------------------------
# Values: the edges of a column, and a plain value per row number
# ---------------------------------------------------------------------------------------------


def _edges(column: Column) -> list[Any]:
    """The named literals, then the type's edges that the column's bounds admit, then NULL."""
    hints = column.hints.merge(column.type.hints)
    edges: list[Any] = list(hints.values)
    if not hints.values:
        edges += [v for v in _type_edges(column.type, hints) if _admitted(v, column.type, hints)]
    if column.nullable:
        edges.append(None)
    return list(dict.fromkeys(edges))


def _admitted(value: str, t: TypeInfo, hints: Hints) -> bool:
    if t.kind not in _NUMBERS:
        return True
    number = Decimal(value)
    return not ((hints.lower and (number < hints.lower[0] or (number == hints.lower[0] and not hints.lower[1])))
                or (hints.upper and (number > hints.upper[0] or (number == hints.upper[0] and not hints.upper[1]))))


_NUMBERS = ("int2", "int4", "int8", "numeric", "money", "float4", "float8")
_INT_LIMITS = {"int2": 2**15, "int4": 2**31, "int8": 2**63}
_FAR_DATES = ("2025-01-01", "0001-01-01", "9999-12-31", "1970-01-01")


def _type_edges(t: TypeInfo, hints: Hints) -> list[str]:
    kind = t.kind
    if t.labels:
        return list(t.labels)
    if kind in _INT_LIMITS:
        limit = _INT_LIMITS[kind]
        return ["0", "-1", "1", str(-limit), str(limit - 1), *_bounds(hints, integral=True)]
    if kind == "numeric":
        if t.precision is not None and t.scale is not None:
            largest = Decimal(10) ** (t.precision - t.scale) - Decimal(10) ** -t.scale
            smallest = Decimal(10) ** -t.scale
            return ["0", "-1", str(smallest), str(largest), str(-largest), *_bounds(hints)]
        return ["0", "-1", "0.5", "123456789012.123456789", *_bounds(hints)]
    if kind in ("float4", "float8", "money"):
        return ["0", "-1", "1.5", "1e30" if kind != "money" else "92233720368547758.07", *_bounds(hints)]
    if kind == "text":
        return _text_edges(t, hints)
    if kind == "array" and t.element is not None:
        element = _plain_of(t.element, t.element.hints)
        return ["{}", *(["{" + json.dumps(str(element(1))) + "}"] if element else [])]
    return list(_SIMPLE_EDGES.get(kind, ()))


def _bounds(hints: Hints, *, integral: bool = False) -> list[str]:
    """The bounds a CHECK names, and just inside them."""
    found = []
    for bound, sign in ((hints.lower, 1), (hints.upper, -1)):
        if bound is not None:
            value, inclusive = bound
            step = Decimal(1) if integral else Decimal("0.01")
            found.append(str(value if inclusive else value + sign * step))
    return found


def _text_edges(t: TypeInfo, hints: Hints) -> list[str]:
    longest = min(x for x in (t.length, hints.max_length, LONGEST_TEXT) if x is not None)
    shortest = hints.min_length or 0
    candidates = ["", "MiXeD.CaSe@Example.COM", "z" * longest, " padded ", "ünïcödé ß"]
    patterns = [re.compile(p) for p in hints.patterns]
    return [c[:longest] for c in candidates
            if shortest <= len(c[:longest]) and all(p.search(c[:longest]) for p in patterns)]


_SIMPLE_EDGES: dict[str | None, tuple[str, ...]] = {
    "uuid": ("00000000-0000-0000-0000-000000000000", "ffffffff-ffff-ffff-ffff-ffffffffffff"),
    "bool": ("true", "false"),
    "date": _FAR_DATES,
    "timestamp": tuple(f"{d} 00:00:00" for d in _FAR_DATES) + ("2025-06-30 23:59:59.999999",),
    "timestamptz": tuple(f"{d} 00:00:00+00" for d in _FAR_DATES) + ("2025-06-30 23:59:59.999999+00",),
    "time": ("00:00:00", "23:59:59.999999"),
    "timetz": ("00:00:00+00", "23:59:59.999999-12"),
    "interval": ("0", "1 day", "-1 mons", "100 years"),
    "json": ("{}", "[]", '{"Key": "MiXeD"}', "null"),
    "jsonb": ("{}", "[]", '{"Key": "MiXeD"}', "null"),
    "bytea": ("\\x", "\\x00ff"),
    "inet": ("0.0.0.0", "255.255.255.255", "::1"),
    "cidr": ("0.0.0.0/0", "10.0.0.0/8", "::/0"),
}


def _plain(column: Column) -> Plain | None:
    hints = column.hints.merge(column.type.hints)
    if hints.values:
        return lambda n: hints.values[n % len(hints.values)]
    return _plain_of(column.type, hints)


def _plain_of(t: TypeInfo, hints: Hints) -> Plain | None:
    kind = t.kind
    if t.labels:
        return lambda n: t.labels[n % len(t.labels)]
    if kind == "array" and t.element is not None:
        element = _plain_of(t.element, t.element.hints)
        return None if element is None else (lambda n: "{" + json.dumps(str(element(n))) + "}")
    if kind in _NUMBERS:
        return _plain_number(t, hints)
    if kind == "text":
        return _plain_text(t, hints)
    return _SIMPLE_PLAIN.get(kind)


def _plain_number(t: TypeInfo, hints: Hints) -> Plain:
    low = hints.lower[0] if hints.lower else Decimal(0)
    high = hints.upper[0] if hints.upper else None
    if t.precision is not None and t.scale is not None:
        ceiling = Decimal(10) ** (t.precision - t.scale) - Decimal(10) ** -t.scale
        high = ceiling if high is None else min(high, ceiling)
    if high is not None and high - low <= 2:
        # A bound like (0, 1]: only fractions fit; distinct ones while the scale allows.
        width = high - low
        return lambda n: str(low + width * Decimal(n % 97 + 1) / Decimal(98))
    start = int(low) + 1
    span = None if high is None else int(high) - start
    return lambda n: str(start + (n if span is None or span <= 0 else n % span))


def _plain_text(t: TypeInfo, hints: Hints) -> Plain:
    longest = min(x for x in (t.length, hints.max_length, 24) if x is not None)
    shortest = max(hints.min_length or 1, 1)
    patterns = [re.compile(p) for p in hints.patterns]
    fixed = t.name == "bpchar" and t.length is not None

    size = longest if fixed else min(max(shortest, 8), longest)

    def option(n: int, alphabet: str, numbered: bool) -> str:
        text = "".join(alphabet[(n * 7 + k * 3) % len(alphabet)] for k in range(size))
        if numbered:
            # The row number keeps values apart under unique keys, composite ones too.
            text = (text[: max(size - len(str(n)), 0)] + str(n))[-longest:]
        return text

    def make(n: int) -> str:
        # The first alphabet whose text every pattern matches, else the first: made one at a
        # time, as most columns have no pattern.
        first = option(n, *_ALPHABETS[0])
        if all(p.search(first) for p in patterns):
            return first
        matching = (text for text in (option(n, *alphabet) for alphabet in _ALPHABETS[1:])
                    if all(p.search(text) for p in patterns))
        return next(matching, first)

    return make


_ALPHABETS = tuple((alphabet, any(ch.isdigit() for ch in alphabet)) for alphabet in (
    string.ascii_lowercase + string.digits,
    string.ascii_uppercase,
    string.digits,
    string.ascii_lowercase,
    string.ascii_letters + string.digits,
))
"""Each alphabet of plain text, and whether it holds digits (the row number then goes in)."""
_EPOCH = datetime.datetime(2025, 1, 1, tzinfo=datetime.timezone.utc)


def _moment(n: int) -> datetime.datetime:
    return _EPOCH + datetime.timedelta(hours=n * 7, seconds=n)


_SIMPLE_PLAIN: dict[str | None, Plain] = {
    "uuid": lambda n: str(uuid.UUID(int=n + 1)),
    "bool": lambda n: "true" if n % 2 else "false",
    "timestamptz": lambda n: _moment(n).isoformat(),
    "timestamp": lambda n: _moment(n).isoformat()[:19],
    "date": lambda n: _moment(n * 24).date().isoformat(),
    "time": lambda n: _moment(n).time().isoformat(),
    "timetz": lambda n: _moment(n).time().isoformat() + "+00",
    "interval": lambda n: f"{n} minutes",
    "json": lambda n: json.dumps({"n": n}),
    "jsonb": lambda n: json.dumps({"n": n}),
    "bytea": lambda n: "\\x" + n.to_bytes(4, "big").hex(),
    "inet": lambda n: f"10.{n // 65536 % 256}.{n // 256 % 256}.{n % 256}",
    "cidr": lambda n: f"10.{n // 256 % 256}.{n % 256}.0/24",
}

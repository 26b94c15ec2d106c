"""Hypothesis strategies for column values: the type's edges, leaning toward what the hints say.

A value is a guess the database judges: strategies aim at the edges (NULLs, ``''``, long
strings, mixed case, unicode, zero and boundary numbers) and, where CHECKs or partition bounds
give :class:`~.hints.Hints`, mostly at values those will accept.
"""

from __future__ import annotations

import bisect
import datetime
import functools
import ipaddress
import itertools
import math
import string
import uuid
import weakref
from decimal import Decimal
from fractions import Fraction
from typing import Any, Callable

from hypothesis import strategies as st
from hypothesis.strategies import SearchStrategy
from psycopg.types.json import Json, Jsonb

from .catalog import Column, TypeInfo
from .hints import NO_HINTS, Hints, tighter
from .insert import DEFAULT

__all__ = ["column_values", "weighted"]


_Leaves = tuple[tuple[SearchStrategy[Any], Fraction], ...]
_BRANCHES: weakref.WeakKeyDictionary[SearchStrategy[Any], _Leaves] = weakref.WeakKeyDictionary()
"""The leaves and their probabilities of each strategy :func:`weighted` made."""


def weighted(*branches: tuple[SearchStrategy[Any], int]) -> SearchStrategy[Any]:
    """One branch, chosen with the given weights; shrinks toward the first branch.

    Branches that are themselves weighted are flattened into one choice among all leaves:
    each level of choice costs Hypothesis a draw, and the draws (not the inserts) are what
    seeding spends most of its time on. ``st.one_of`` cannot weight: it drops repeated
    branches.
    """
    total = sum(weight for _, weight in branches)
    leaves: list[tuple[SearchStrategy[Any], Fraction]] = []
    for strategy, weight in branches:
        share = Fraction(weight, total)
        inner = _BRANCHES.get(strategy)
        if inner:
            leaves.extend((leaf, share * p) for leaf, p in inner)
        else:
            leaves.append((strategy, share))
    if len(leaves) == 1:
        return leaves[0][0]
    scale = math.lcm(*(p.denominator for _, p in leaves))
    bounds = list(itertools.accumulate(int(p * scale) for _, p in leaves))
    strategies = [leaf for leaf, _ in leaves]
    chosen = st.integers(0, bounds[-1] - 1).flatmap(
        lambda i: strategies[bisect.bisect_right(bounds, i)]
    )
    _BRANCHES[chosen] = tuple(leaves)
    return chosen


# PostgreSQL refuses NUL in text and json; surrogates (Cs) are not UTF-8. The same characters as
# ``codec="utf-8"``, whose table Hypothesis builds by encoding every code point (a second of a
# first run, in every new project's Hypothesis home: each CI run) where categories need none.
_CHARS = st.characters(exclude_categories=("Cs",), exclude_characters="\x00")
_MIXED_CASE = string.ascii_letters + string.digits + " -_."
_SHORT = 12
_LONG_TEXT = (256, 1000, 4000)
"""Past varchar(255), and past the 2 kB where values start to be TOASTed."""
_EDGE_TEXT = (
    "", " ", "  padded  ", "a", "A", "ab", "Ab", "AB", "NULL", "null", "0", "-1", "'", '"', "\\",
    "%_", "\t\n", "ß", "İ", "é", "e\u0301", "😀", "中文", "עברית",
)
"""Blank, case pairs, SQL-looking words, quoting characters, and unicode whose case mapping or
normalisation changes length or bytes."""


def _stretch(seed: str, size: int) -> str:
    return (seed * size)[:size]


def _text(min_size: int = 0, max_size: int | None = None) -> SearchStrategy[str] | None:
    """Short mixed-case and unicode strings, known troublemakers, strings at the limit
    (exactly ``max_size`` characters: the varchar(n) or char(n) that a migration shortens or
    a cast pads), or very long ones when there is no limit; None when no length fits.

    Long strings repeat a short seed so they cost a handful of choices, not thousands.
    """
    cap = max_size if max_size is not None else max(_LONG_TEXT)
    if cap < min_size:
        return None
    short = max(min_size, min(cap, _SHORT))
    branches = [
        (st.text(_MIXED_CASE, min_size=min_size, max_size=short), 3),
        (st.text(_CHARS, min_size=min_size, max_size=short), 3),
    ]
    edges = [s for s in _EDGE_TEXT if min_size <= len(s) <= cap]
    if edges:
        branches.append((st.sampled_from(edges), 2))
    if max_size is not None or cap > short:
        sizes = (cap,) if max_size is not None else _LONG_TEXT
        if cap > 0:
            branches.append((st.builds(_stretch, st.text(_CHARS, min_size=1, max_size=3),
                                       st.sampled_from(sizes)), 2))
    return weighted(*branches)


_INT_RANGES = {"int2": (-(2**15), 2**15 - 1), "int4": (-(2**31), 2**31 - 1),
               "int8": (-(2**63), 2**63 - 1)}
_UNBOUNDED_NUMERIC = 10**30
_MONEY_UNITS = 10**17


def _scaled(lo: int, hi: int, scale: int, as_int: bool) -> SearchStrategy[Any] | None:
    """Numbers ``units * 10**-scale`` for units in [lo, hi], weighted toward the edges; None
    for an empty range.

    Never ``st.nothing()``: inside a choice it would make Hypothesis discard whole examples.
    """
    if lo > hi:
        return None
    edges = sorted({u for u in (0, 1, -1, lo, hi, lo + 1, hi - 1) if lo <= u <= hi})
    units = weighted((st.integers(lo, hi), 3), (st.sampled_from(edges), 1))
    if as_int:
        return units
    return units.map(lambda u: Decimal(u).scaleb(-scale))


def _numeric_range(t: TypeInfo) -> tuple[int, int, int, bool]:
    """(lowest units, highest units, scale, values are ints) for a numeric kind."""
    if t.kind in _INT_RANGES:
        return (*_INT_RANGES[t.kind], 0, True)
    if t.kind == "money":
        return (-_MONEY_UNITS, _MONEY_UNITS, 2, False)
    if t.precision is not None:
        top = 10 ** t.precision - 1
        return (-top, top, t.scale or 0, False)
    return (-_UNBOUNDED_NUMERIC, _UNBOUNDED_NUMERIC, 6, False)


_TIMEZONES = weighted(
    (st.just(datetime.timezone.utc), 1),
    (st.integers(-14 * 60, 14 * 60).map(lambda m: datetime.timezone(datetime.timedelta(minutes=m))),
     2),
)
_INSTANT_EDGES = (
    datetime.datetime(1970, 1, 1), datetime.datetime(2000, 1, 1), datetime.datetime(1900, 1, 1),
    datetime.datetime(2038, 1, 19, 3, 14, 8), datetime.datetime(1, 1, 1),
    datetime.datetime(9999, 12, 31, 23, 59, 59, 999999),
)
# Aware values stay within years 2..9998 so that reading them back in any session time zone
# still fits Python's datetime.
_AWARE_MIN = datetime.datetime(2, 1, 1)
_AWARE_MAX = datetime.datetime(9998, 12, 31)
_MOMENT = datetime.datetime(2000, 1, 1)
"""Where drawn instants start, and shrink to."""


def _instants(low: datetime.datetime, high: datetime.datetime) -> SearchStrategy[datetime.datetime]:
    """Naive datetimes in [low, high] from one integer draw, microseconds from 2000.

    ``st.datetimes`` draws each field apart (and rejects impossible days), several choices a
    value: on wide tables of timestamps, the largest part of a row's cost.
    """
    def micros(moment: datetime.datetime) -> int:
        return (moment - _MOMENT) // datetime.timedelta(microseconds=1)

    return st.integers(micros(low), micros(high)).map(
        lambda us: _MOMENT + datetime.timedelta(microseconds=us)
    )


def _dates() -> SearchStrategy[datetime.date]:
    start = _MOMENT.toordinal()
    return st.integers(datetime.date.min.toordinal() - start, datetime.date.max.toordinal() - start).map(
        lambda days: datetime.date.fromordinal(start + days)
    )


def _aware(moment: datetime.datetime, zone: datetime.tzinfo) -> datetime.datetime:
    """The instant ``moment`` (UTC) as the clock of ``zone`` shows it."""
    return moment.replace(tzinfo=datetime.timezone.utc).astimezone(zone)


def _json_documents() -> SearchStrategy[Any]:
    scalars = (st.none() | st.booleans() | st.integers(-(2**63), 2**63)
               | st.floats(allow_nan=False, allow_infinity=False) | st.text(_CHARS, max_size=8))
    keys = st.text(_CHARS, max_size=6)
    values = st.recursive(
        scalars, lambda kids: st.lists(kids, max_size=3) | st.dictionaries(keys, kids, max_size=3),
        max_leaves=5,
    )
    # Documents are objects in nearly every schema (and CHECKs often insist on it).
    return weighted(
        (st.dictionaries(keys, values, max_size=4), 6), (st.lists(values, max_size=3), 1),
        (scalars, 1),
    )


@functools.lru_cache(maxsize=4096)
def _generic(t: TypeInfo) -> SearchStrategy[Any] | None:
    """Values of the type itself, edges included; None when no strategy exists for it."""
    kind = t.kind
    if kind in _INT_RANGES or kind == "money":
        lo, hi, scale, as_int = _numeric_range(t)
        return _scaled(lo, hi, scale, as_int)
    if kind == "numeric":
        nan = st.just(Decimal("NaN"))
        if t.precision is not None:
            return weighted((_scaled(*_numeric_range(t)), 8), (nan, 1))
        free = st.builds(lambda u, s: Decimal(u).scaleb(-s),
                         st.integers(-_UNBOUNDED_NUMERIC, _UNBOUNDED_NUMERIC),
                         st.sampled_from((0, 2, 6, 20)))
        return weighted((free, 6), (_scaled(-10, 10, 0, False), 2), (nan, 1))
    if kind in ("float4", "float8"):
        return weighted((st.floats(width=32 if kind == "float4" else 64), 3),
                         (st.sampled_from((0.0, -0.0, 1.0, -1.0)), 1))
    if kind == "text":
        return _text(0, t.length)
    if kind == "bool":
        return st.booleans()
    if kind == "uuid":
        edges = (uuid.UUID(int=0), uuid.UUID(int=2**128 - 1))
        return weighted((st.uuids(), 3), (st.sampled_from(edges), 1))
    if kind == "date":
        return weighted((_dates(), 3),
                         (st.sampled_from([d.date() for d in _INSTANT_EDGES]), 1))
    if kind == "timestamp":
        return weighted((_instants(datetime.datetime.min, datetime.datetime.max), 3),
                        (st.sampled_from(_INSTANT_EDGES), 1))
    if kind == "timestamptz":
        edges = [d.replace(tzinfo=datetime.timezone.utc) for d in _INSTANT_EDGES
                 if _AWARE_MIN <= d <= _AWARE_MAX]
        return weighted(
            (st.builds(_aware, _instants(_AWARE_MIN, _AWARE_MAX), _TIMEZONES), 3),
            (st.sampled_from(edges), 1),
        )
    if kind == "time":
        return weighted((st.times(), 3),
                         (st.sampled_from((datetime.time(0), datetime.time.max)), 1))
    if kind == "timetz":
        return st.times(timezones=_TIMEZONES)
    if kind == "interval":
        # Months are not a fixed number of days: '1 mon' and '30 days' differ, and only
        # text can say it (Python's timedelta has no months).
        days = datetime.timedelta(days=10**6)
        return weighted(
            (st.timedeltas(min_value=-days, max_value=days), 3),
            (st.sampled_from((datetime.timedelta(0), datetime.timedelta(microseconds=1), "1 mon",
                              "-1 years", "1 mon -30 days", "P1Y2M3DT4H5M6S")), 1),
        )
    if kind in ("json", "jsonb"):
        return _json_documents().map(Jsonb if kind == "jsonb" else Json)
    if kind == "bytea":
        return weighted((st.binary(max_size=16), 3),
                         (st.sampled_from((b"", b"\x00", b"\xff" * 3000)), 1))
    if kind == "inet":
        return st.ip_addresses()
    if kind == "cidr":
        return st.ip_addresses().map(ipaddress.ip_network)
    if kind == "enum":
        return st.sampled_from(t.labels)
    if kind == "array" and t.element is not None:
        element = _values(t.element, NO_HINTS)
        if element is None:
            return None
        return st.lists(weighted((element, 5), (st.none(), 1)), max_size=4)
    return None


def _hinted(t: TypeInfo, hints: Hints) -> SearchStrategy[Any] | None:
    """Values the constraints suggest will pass: their literals, patterns, ranges, lengths."""
    branches: list[SearchStrategy[Any] | None] = []
    if hints.values:
        branches.append(st.sampled_from(hints.values))
    if t.kind == "text":
        branches.extend(st.from_regex(p, alphabet=_CHARS) for p in hints.patterns)
        if hints.min_length is not None or hints.max_length is not None:
            branches.append(_text(hints.min_length or 0, tighter(hints.max_length, t.length, min)))
    if hints.lower or hints.upper:
        branches.append(_within(t, hints.lower, hints.upper))
    found = [b for b in branches if b is not None]
    return weighted(*((b, 1) for b in found)) if found else None


def _within(
    t: TypeInfo, lower: tuple[Decimal, bool] | None, upper: tuple[Decimal, bool] | None
) -> SearchStrategy[Any] | None:
    """Numbers of the type between the bounds (and at them, when inclusive)."""
    if t.kind in ("float4", "float8"):
        low = float(lower[0]) if lower else None
        high = float(upper[0]) if upper else None
        if low is not None and high is not None and low > high:
            return None
        return st.floats(min_value=low, max_value=high,
                         exclude_min=bool(lower) and not lower[1],
                         exclude_max=bool(upper) and not upper[1],
                         width=32 if t.kind == "float4" else 64)
    if not (t.kind in _INT_RANGES or t.kind in ("numeric", "money")):
        return None
    lo, hi, scale, as_int = _numeric_range(t)
    if lower:
        lo = max(lo, _units(lower, scale, math.ceil, +1))
    if upper:
        hi = min(hi, _units(upper, scale, math.floor, -1))
    return _scaled(lo, hi, scale, as_int)


def _units(
    bound: tuple[Decimal, bool], scale: int, to_int: Callable[[Decimal], int], step: int
) -> int:
    """The first unit of 10**-scale inside a bound, moving by ``step`` off an exclusive one."""
    value, inclusive = bound
    units = value.scaleb(scale)
    exact = units == units.to_integral_value()
    return to_int(units) + (step if exact and not inclusive else 0)


@functools.lru_cache(maxsize=4096)
def _values(t: TypeInfo, hints: Hints) -> SearchStrategy[Any] | None:
    """Mostly values the hints suggest, some of the type's own values: those exercise the
    edges, and those the constraints refuse are simply discarded.

    Most values outside an ``IN`` list or a pattern are refused, and a row has to pass every
    constraint at once, hence the strong lean toward hints.
    """
    hints = t.hints.merge(hints)
    generic = _generic(t)
    hinted = _hinted(t, hints) if hints else None
    if hinted is None or generic is None:
        return hinted if generic is None else generic
    return weighted((hinted, 7), (generic, 1))


def column_values(
    column: Column, override: SearchStrategy[Any] | None, nulls: bool = True,
    explicit: bool = False,
) -> SearchStrategy[Any] | None:
    """A column's values: an override as given, else values, NULL when nullable (and
    ``nulls``), DEFAULT when there is one (unless ``explicit``: values only). None when no
    strategy can give a value."""
    if override is not None:
        return override
    values = _values(column.type, column.hints)
    if explicit:
        return values
    branches: list[tuple[SearchStrategy[Any], int]] = []
    if column.counted:
        # Explicit values collide with the sequence's later ones: rarer, and shrinking leads
        # back to the sequence.
        branches.append((st.just(DEFAULT), 3))
    if values is not None:
        branches.append((values, 1 if column.counted else 6))
    if column.nullable and nulls:
        branches.append((st.none(), 2))
    if column.default is not None and not column.counted:
        branches.append((st.just(DEFAULT), 2))
    return weighted(*branches) if branches else None


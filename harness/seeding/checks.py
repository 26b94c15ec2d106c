"""CHECK constraints judged on a drawn row, in SQL's three-valued logic.

Hints (:mod:`.hints`) describe one column at a time, but the constraints that refuse most rows
tie columns together: ``(status = 'done') = (finished_at IS NOT NULL)``, ``a < b``,
``kind = 'free' OR price IS NOT NULL``, ``num_nonnulls(email, phone) >= 1``, ``CASE``. This
module evaluates their expression trees (:func:`.expressions.parse_check`) on a row
(:func:`evaluate`), answering
:data:`UNSURE` for anything it does not model (most functions, collation-dependent text order,
values it cannot read). :mod:`.repair` then changes the row until no constraint it can judge
refuses it. The database stays the judge: a row is never withheld on this module's word.

No Hypothesis, no database: text and values in, values out.
"""

from __future__ import annotations

import dataclasses
import datetime
import functools
import json
import re
import uuid
from decimal import Decimal, InvalidOperation
from typing import Any, Callable, Mapping

from .expressions import COMPARISONS, PATTERNS, Node, Parser, ParseError, columns_of
from .hints import python_regex
from .insert import DEFAULT

__all__ = ["SOME", "UNSURE", "Env", "case_branch", "compare", "evaluate", "parse_default"]


class _Marker:
    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return self.name


UNSURE: Any = _Marker("UNSURE")
"""The value cannot be known here: the constraint may pass or fail."""
SOME: Any = _Marker("SOME")
"""A value known not to be NULL, but not what it is (an unread default such as ``now()``)."""


@functools.lru_cache(maxsize=4096)
def parse_default(expression: str) -> Any:
    """A column default's value when it is a constant (``'pending'::text``, ``0``), else
    :data:`SOME` (``now()``, a sequence: a value, but not known here)."""
    try:
        parser = Parser(expression)
        node = parser.expression()
    except (ParseError, InvalidOperation, IndexError):
        return SOME
    if parser.peek()[0] != "end" or columns_of(node):
        return SOME
    value = evaluate(node, Env({}, {}))
    return SOME if value is UNSURE else value


# ---------------------------------------------------------------------------------------------
# Evaluation
# ---------------------------------------------------------------------------------------------

_NUMERIC = {"int2", "int4", "int8", "numeric", "money", "float4", "float8"}
_TEXT_TYPES = {"text", "character varying", "varchar", "character", "bpchar", "char", "name",
               "citext"}
_NUMERIC_TYPES = {"integer", "int", "int2", "int4", "int8", "smallint", "bigint", "numeric",
                  "decimal", "real", "double precision", "float4", "float8"}


@dataclasses.dataclass
class Env:
    """A row to judge: column -> value (as drawn, as text from the database, or a marker for
    a default), and column -> ``(kind, default)`` from the catalog."""

    row: Mapping[str, Any]
    columns: Mapping[str, tuple[str | None, str | None]]

    def value(self, name: str) -> Any:
        if name not in self.columns:
            return UNSURE
        if name not in self.row:
            return UNSURE
        kind, default = self.columns[name]
        value = self.row[name]
        if value is DEFAULT:
            return None if default is None else _read(parse_default(default), kind)
        return _read(value, kind)


def _read(value: Any, kind: str | None) -> Any:
    """A column's value as this module compares it: Decimal numbers, str text, dates and times,
    bools; :data:`SOME` for values it cannot compare."""
    if value is None or value is SOME or value is UNSURE:
        return value
    if kind in _NUMERIC:
        if isinstance(value, bool):
            return SOME
        try:
            number = Decimal(value) if isinstance(value, (int, str, Decimal)) else Decimal(repr(value))
        except (InvalidOperation, ValueError):
            return SOME
        return number if number.is_finite() else SOME
    if kind == "text":
        return value if isinstance(value, str) else SOME
    if kind == "enum":
        return value if isinstance(value, str) else SOME
    if kind == "bool":
        if isinstance(value, bool):
            return value
        return {"true": True, "t": True, "false": False, "f": False}.get(str(value), SOME)
    if kind in ("date", "timestamp", "timestamptz", "time", "timetz"):
        if isinstance(value, (datetime.date, datetime.time)):
            return value
        return _temporal(value, kind)
    if kind == "uuid":
        return str(value).lower() if isinstance(value, (str, uuid.UUID)) else SOME
    if kind in ("json", "jsonb"):
        return _Document(getattr(value, "obj", value))
    return SOME


def _temporal(text: Any, kind: str) -> Any:
    if not isinstance(text, str):
        return SOME
    parse = {"date": datetime.date.fromisoformat, "time": datetime.time.fromisoformat,
             "timetz": datetime.time.fromisoformat}.get(kind, datetime.datetime.fromisoformat)
    try:
        return parse(text)
    except ValueError:
        return SOME


@dataclasses.dataclass(frozen=True)
class _Document:
    """A JSON value: only its type is ever asked for (``jsonb_typeof``)."""

    value: Any


def evaluate(node: Node, env: Env) -> Any:
    """The node's value on ``env``'s row: None for SQL NULL, :data:`UNSURE` if unknown."""
    return _EVALUATORS[node.kind](node, env)


def _truth(value: Any) -> Any:
    return value if value is None or isinstance(value, bool) else UNSURE


def _and(node: Node, env: Env) -> Any:
    values = [_truth(evaluate(a, env)) for a in node.args]
    if False in values:
        return False
    return UNSURE if UNSURE in values else None if None in values else True


def _or(node: Node, env: Env) -> Any:
    values = [_truth(evaluate(a, env)) for a in node.args]
    if True in values:
        return True
    return UNSURE if UNSURE in values else None if None in values else False


def _not(node: Node, env: Env) -> Any:
    value = _truth(evaluate(node.args[0], env))
    return value if value is None or value is UNSURE else not value


def _is(node: Node, env: Env) -> Any:
    value = evaluate(node.args[0], env)
    if value is UNSURE:
        return UNSURE
    if node.value == "null":
        result = value is None
    elif value is SOME:
        return UNSURE
    else:
        result = value is (node.value == "true")
    return result != node.negated


def _distinct(node: Node, env: Env) -> Any:
    left, right = (evaluate(a, env) for a in node.args)
    if left is None or right is None:
        return (left is None) != (right is None) if not node.negated else (left is None) == (right is None)
    same = compare("=", left, right)
    return same if same is UNSURE else (not same) != node.negated


def compare(op: str, left: Any, right: Any) -> Any:
    """SQL comparison of two read values."""
    if left is UNSURE or right is UNSURE or left is SOME or right is SOME:
        return UNSURE
    if left is None or right is None:
        return None
    if isinstance(left, _Document) or isinstance(right, _Document):
        return UNSURE
    if type(left) is not type(right) and not (isinstance(left, Decimal) and isinstance(right, Decimal)):
        return UNSURE
    if isinstance(left, str) and op not in ("=", "<>"):
        return UNSURE  # text order is the collation's, not Python's
    try:
        return {"=": left == right, "<>": left != right, "<": left < right, "<=": left <= right,
                ">": left > right, ">=": left >= right}[op]
    except (TypeError, ArithmeticError):
        return UNSURE


def _op(node: Node, env: Env) -> Any:
    left, right = (evaluate(a, env) for a in node.args)
    op = node.value
    if op in COMPARISONS:
        return compare(op, left, right)
    if left is UNSURE or right is UNSURE or left is SOME or right is SOME:
        return UNSURE
    if left is None or right is None:
        return None
    if op in PATTERNS:
        if not (isinstance(left, str) and isinstance(right, str)):
            return UNSURE
        regex = python_regex(right, op.lstrip("!"))
        if regex is None:
            return UNSURE
        return (re.search(regex, left) is not None) != op.startswith("!")
    if op == "||":
        return left + right if isinstance(left, str) and isinstance(right, str) else UNSURE
    if isinstance(left, Decimal) and isinstance(right, Decimal):
        try:
            return {"+": left + right, "-": left - right, "*": left * right,
                    "/": left / right if right else UNSURE}.get(op, UNSURE)
        except ArithmeticError:
            return UNSURE
    return UNSURE


def _neg(node: Node, env: Env) -> Any:
    value = evaluate(node.args[0], env)
    return -value if isinstance(value, Decimal) else value if value is None else UNSURE


def _cast(node: Node, env: Env) -> Any:
    value = evaluate(node.args[0], env)
    if value is None or value is UNSURE or value is SOME:
        return value
    target = node.value.removesuffix(" []").removesuffix("[]").strip()
    if isinstance(value, list):
        return [_cast_value(v, target) for v in value]
    return _cast_value(value, target)


def _cast_value(value: Any, target: str) -> Any:
    if target in _TEXT_TYPES:
        return value if isinstance(value, str) else UNSURE
    if target in _NUMERIC_TYPES:
        try:
            return Decimal(value) if isinstance(value, (str, Decimal)) else UNSURE
        except InvalidOperation:
            return UNSURE
    if target in ("date", "timestamp without time zone", "timestamp", "timestamp with time zone",
                  "timestamptz"):
        if not isinstance(value, str):
            return value
        return _temporal(value, "date" if target == "date" else "timestamp")
    if target == "boolean":
        return _read(value, "bool")
    if target == "uuid":
        return _read(value, "uuid")
    if target in ("jsonb", "json"):
        return _Document(json.loads(value)) if isinstance(value, str) else value
    return value


def _quantified(node: Node, env: Env) -> Any:
    left = evaluate(node.args[0], env)
    items = evaluate(node.args[1], env)
    if not isinstance(items, list):
        return UNSURE
    results = [compare(node.value, left, item) for item in items]
    combine = _or if node.kind == "any" else _and
    return combine(Node(node.kind, tuple(Node("lit", value=r) for r in results)), env)


def _array(node: Node, env: Env) -> Any:
    return [evaluate(a, env) for a in node.args]


def _case(node: Node, env: Env) -> Any:
    branch = case_branch(node, env)
    return UNSURE if branch is None else evaluate(branch, env)


def case_branch(node: Node, env: Env) -> Node | None:
    """The result a CASE takes on the row, or None when that cannot be known."""
    subject, *parts, default = node.args
    base = UNSURE if subject is None else evaluate(subject, env)
    for condition, result in zip(parts[::2], parts[1::2]):
        taken = _truth(evaluate(condition, env)) if subject is None else compare(
            "=", base, evaluate(condition, env))
        if taken is UNSURE:
            return None
        if taken is True:
            return result
    return default


def _func(node: Node, env: Env) -> Any:
    name = node.value
    args = [evaluate(a, env) for a in node.args]
    if name in ("num_nonnulls", "num_nulls"):
        if UNSURE in args:
            return UNSURE
        nulls = sum(a is None for a in args)
        return Decimal(nulls if name == "num_nulls" else len(args) - nulls)
    if name == "coalesce":
        for value in args:
            if value is not None:
                return value
        return None
    if name == "nullif" and len(args) == 2:
        same = compare("=", args[0], args[1])
        return UNSURE if same is UNSURE else None if same else args[0]
    if any(a is UNSURE or a is SOME for a in args):
        return UNSURE
    if any(a is None for a in args):
        return None  # the functions below are strict
    text = _TEXT_FUNCTIONS.get(name)
    if text is not None and len(args) == 1 and isinstance(args[0], str):
        return text(args[0])
    if name in ("jsonb_typeof", "json_typeof") and isinstance(args[0], _Document):
        return _json_type(args[0].value)
    return UNSURE


_TEXT_FUNCTIONS: dict[str, Callable[[str], Any]] = {
    "length": lambda s: Decimal(len(s)), "char_length": lambda s: Decimal(len(s)),
    "character_length": lambda s: Decimal(len(s)), "lower": str.lower, "upper": str.upper,
    "btrim": lambda s: s.strip(" "), "ltrim": lambda s: s.lstrip(" "),
    "rtrim": lambda s: s.rstrip(" "),
}


def _json_type(value: Any) -> Any:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float, Decimal)):
        return "number"
    return {dict: "object", list: "array", str: "string", type(None): "null"}.get(type(value), UNSURE)


_EVALUATORS: dict[str, Callable[[Node, Env], Any]] = {
    "col": lambda node, env: env.value(node.value),
    "lit": lambda node, env: node.value,
    "cast": _cast, "op": _op, "neg": _neg, "and": _and, "or": _or, "not": _not, "is": _is,
    "distinct": _distinct, "any": _quantified, "all": _quantified, "array": _array,
    "func": _func, "case": _case,
}

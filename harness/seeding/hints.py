"""What CHECK constraints and partition bounds say valid values look like, read from their text.

Everything here works on the deparsed expressions (``pg_get_constraintdef``,
``pg_get_expr(relpartbound)``) and knows neither the database nor Hypothesis: the catalog
reader attaches the :class:`Hints` to columns, and both row makers (Hypothesis' strategies
and the report's deterministic filler) read them.
"""

from __future__ import annotations

import dataclasses
import functools
import re
from decimal import Decimal, InvalidOperation
from typing import Any, Callable, Iterable, Iterator, Sequence

__all__ = [
    "NO_HINTS",
    "Hints",
    "check_hints",
    "domain_hints",
    "orderings",
    "partition_hints",
    "python_regex",
    "tighter",
]


@dataclasses.dataclass(frozen=True)
class Hints:
    """What CHECK constraints and partition bounds say valid values look like.

    Read loosely from the deparsed expressions, so a bound inside an ``OR`` is taken as if it
    always held: that only makes some drawn rows fail, which the database reports anyway.
    """

    values: tuple[str, ...] = ()
    """Literals the column is compared with (``=``, ``IN``), and partition bounds, as text."""
    patterns: tuple[str, ...] = ()
    """Python regular expressions translated from ``~``, ``~*``, ``LIKE`` and ``ILIKE``."""
    lower: tuple[Decimal, bool] | None = None
    """Numeric lower bound and whether it is inclusive."""
    upper: tuple[Decimal, bool] | None = None
    min_length: int | None = None
    max_length: int | None = None

    def __bool__(self) -> bool:
        return self != NO_HINTS

    def merge(self, other: Hints) -> Hints:
        """Both sets of hints; of two bounds on one side the tighter wins."""
        if not other:
            return self
        if not self:
            return other
        return Hints(
            values=_unique(self.values + other.values),
            patterns=_unique(self.patterns + other.patterns),
            lower=tighter(self.lower, other.lower, max),
            upper=tighter(self.upper, other.upper, min),
            min_length=tighter(self.min_length, other.min_length, max),
            max_length=tighter(self.max_length, other.max_length, min),
        )


NO_HINTS = Hints()



_IDENT = r'"(?:[^"]|"")+"|[a-z_][a-z0-9_$]*|VALUE'
_TYPE_NAME = r'(?:"(?:[^"]|"")+"|[a-z_][a-z0-9_ ]*)'
_CAST = rf'(?:::{_TYPE_NAME}(?:\.{_TYPE_NAME})?(?:\(\d+(?:,\s*\d+)?\))?(?:\[\])?)?'
_STRING = r"(?P<e{n}>E?)'(?P<s{n}>(?:[^']|'')*)'" + _CAST
_NUMBER = r"\(*'?(?P<num{n}>-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?)'?\)*" + _CAST
# A column operand, possibly parenthesised and cast, ``((status)::text``; never a function's
# argument (``length(x)``), whose value is not the column's.
_OPERAND = rf'(?<![\w$(])\(*(?P<col{{n}}>{_IDENT})\)*\s*{_CAST}\)*'
_COMPARE = r"(?P<op{n}>>=|<=|>|<|=)"


def _pattern(template: str) -> re.Pattern[str]:
    return re.compile(template.format(
        col=_OPERAND.format(n=0), str=_STRING.format(n=0), num=_NUMBER.format(n=0),
        cmp=_COMPARE.format(n=0),
    ))


_IN_LIST = _pattern(r"{col}\s*=\s*ANY\s*\(+ARRAY\[(?P<items>(?:'(?:[^']|'')*'|[^\]'])*)\]")
_EQUALS_STRING = _pattern(r"{col}\s*=\s*{str}")
_MATCHES = _pattern(r"{col}\s*(?P<match>~~\*|~~|~\*|~)\s*{str}")
_NUMERIC = _pattern(r"{col}\s*{cmp}\s*{num}")
_NUMERIC_REVERSED = _pattern(r"(?<![\w$'])(?:{num})\s*{cmp}\s*{col}")
_LENGTH = re.compile(
    rf"(?:char_length|character_length|length)\(\s*\(*(?P<col0>{_IDENT})\)*\s*{_CAST}\s*\)"
    rf"\s*{_COMPARE.format(n=0)}\s*{_NUMBER.format(n=0)}"
)
_COLUMNS_COMPARED = re.compile(
    rf"{_OPERAND.format(n=0)}\s*(?P<op>>=|<=|>|<)\s*{_OPERAND.format(n=1)}"
)
_NOT_EMPTY = re.compile(
    rf"(?:(?:b|l|r)?trim\(\s*)?\(*(?P<col0>{_IDENT})\)*\s*{_CAST}\s*\)?\s*<>\s*''"
)
_LITERAL = re.compile(
    r"(?P<e>E?)'(?P<s>(?:[^']|'')*)'|(?P<num>-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?)"
)
_FLIPPED = {">": "<", ">=": "<=", "<": ">", "<=": ">=", "=": "="}


def check_hints(definition: str, columns: set[str]) -> dict[str, Hints]:
    """Hints per column from one ``pg_get_constraintdef`` text; unknown names are ignored."""
    found: dict[str, Hints] = {}
    for name, hints in _check_hints(definition):
        if name in columns:
            found[name] = found.get(name, NO_HINTS).merge(hints)
    return found


@functools.lru_cache(maxsize=4096)
def _check_hints(definition: str) -> tuple[tuple[str, Hints], ...]:
    """Each (column, hint) the text gives, in order: parsed once per text, as a sweep reads the
    catalog again after every step and most checks are those it read before."""
    found: list[tuple[str, Hints]] = []

    def add(match: re.Match[str], hints: Hints) -> None:
        found.append((_identifier(match["col0"]), hints))

    for m in _IN_LIST.finditer(definition):
        add(m, Hints(values=tuple(_literals(m["items"]))))
    for m in _EQUALS_STRING.finditer(definition):
        add(m, Hints(values=(_string(m["e0"], m["s0"]),)))
    for m in _MATCHES.finditer(definition):
        regex = python_regex(_string(m["e0"], m["s0"]), m["match"])
        if regex is not None:
            add(m, Hints(patterns=(regex,)))
    for m in _NUMERIC.finditer(definition):
        add(m, _bound(m["op0"], m["num0"]))
    for m in _NUMERIC_REVERSED.finditer(definition):
        add(m, _bound(_FLIPPED[m["op0"]], m["num0"]))
    for m in _LENGTH.finditer(definition):
        add(m, _length(m["op0"], int(Decimal(m["num0"]))))
    for m in _NOT_EMPTY.finditer(definition):
        add(m, Hints(min_length=1))
    return tuple(found)


def orderings(definition: str, columns: set[str]) -> Iterator[tuple[str, str]]:
    """(lower, higher) pairs of columns compared with each other."""
    for m in _COLUMNS_COMPARED.finditer(definition):
        left, right = _identifier(m["col0"]), _identifier(m["col1"])
        if left in columns and right in columns and left != right:
            yield (right, left) if m["op"].startswith(">") else (left, right)


def domain_hints(definitions: Iterable[str], column: str) -> Iterator[Hints]:
    for definition in definitions:
        hints = check_hints(definition, {column}).get(column)
        if hints:
            yield hints


def partition_hints(bound: str, keys: Sequence[str | None]) -> dict[str, Hints]:
    """A partition's lower bound, or its list values, lands a row in that partition."""
    found: dict[str, Hints] = {}
    lower = re.match(r"FOR VALUES FROM \((.*?)\) TO \(", bound)
    listed = re.match(r"FOR VALUES IN \((.*)\)$", bound)
    if lower:
        values = re.findall(r"'(?:[^']|'')*'|[^,\s]+", lower.group(1))
        for key, value in zip(keys, values):
            if key is not None and value not in ("MINVALUE", "MAXVALUE"):
                found[key] = Hints(values=tuple(_literals(value)))
    elif listed and keys and keys[0] is not None:
        found[keys[0]] = Hints(values=tuple(_literals(listed.group(1))))
    return found


def _identifier(text: str) -> str:
    return text[1:-1].replace('""', '"') if text.startswith('"') else text


def _string(escape: str, body: str) -> str:
    text = body.replace("''", "'")
    # pg_get_constraintdef writes E'' strings when a literal holds backslashes.
    return re.sub(r"\\(.)", r"\1", text) if escape else text


def _literals(text: str) -> Iterator[str]:
    for m in _LITERAL.finditer(text):
        yield m["num"] if m["num"] is not None else _string(m["e"], m["s"])


def _bound(op: str, number: str) -> Hints:
    try:
        value = Decimal(number)
    except InvalidOperation:
        return NO_HINTS
    if op == "=":
        return Hints(values=(number,))
    if op in (">", ">="):
        return Hints(lower=(value, op == ">="))
    return Hints(upper=(value, op == "<="))


def _length(op: str, n: int) -> Hints:
    return {
        ">": Hints(min_length=n + 1), ">=": Hints(min_length=n),
        "<": Hints(max_length=max(n - 1, 0)), "<=": Hints(max_length=n),
        "=": Hints(min_length=n, max_length=n),
    }[op]


def python_regex(pattern: str, operator: str) -> str | None:
    """The PostgreSQL pattern as a Python regex, or None where the dialects differ.

    POSIX classes (``[[:alpha:]]``) and word boundaries (``\\m``, ``\\y``) exist only in
    PostgreSQL; a trailing ``$`` becomes ``\\Z`` because Python's ``$`` also matches before a
    final newline, which PostgreSQL would then refuse.
    """
    if operator.startswith("~~"):
        parts = re.split(r"(\\.|%|_)", pattern)
        regex = "".join(
            ".*" if p == "%" else "." if p == "_" else re.escape(p.removeprefix("\\"))
            for p in parts
        )
        regex = rf"\A{regex}\Z"
    else:
        if "[:" in pattern:
            return None
        anchored = pattern.endswith("$") and not pattern.endswith(r"\$")
        regex = pattern[:-1] + r"\Z" if anchored else pattern
    if operator.endswith("*"):
        regex = "(?i)" + regex
    try:
        re.compile(regex)
    except re.error:
        return None
    return regex


def _unique(items: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(items))


def tighter(a: Any, b: Any, pick: Callable[..., Any]) -> Any:
    if a is None or b is None:
        return b if a is None else a
    return pick(a, b)


"""Deparsed SQL expressions (CHECK constraints, column defaults) as a small tree.

PostgreSQL hands constraints back as text (``pg_get_constraintdef``), fully parenthesised and
with every literal cast: a precedence-climbing parser reads the part of the grammar they use
(boolean logic, comparisons, ``IS``, ``ANY``/``ALL`` over arrays, pattern and arithmetic
operators, casts, function calls, ``CASE``). Anything else makes the parse fail, and the
constraint is left to the database alone.
"""

from __future__ import annotations

import dataclasses
import functools
import re
from decimal import Decimal, InvalidOperation
from typing import Any, Callable

__all__ = ["COMPARISONS", "PATTERNS", "Node", "ParseError", "Parser", "columns_of", "parse_check"]


@dataclasses.dataclass(frozen=True)
class Node:
    """One node: ``kind`` says which, ``args`` its operands, ``value`` its operator or constant.

    Kinds: ``col`` (value: name), ``lit`` (value: the constant), ``cast`` (value: type name),
    ``op`` (value: operator; args: left, right), ``neg``, ``and``, ``or``, ``not``, ``is``
    (value: ``null``, ``true`` or ``false``; negated in ``negated``), ``distinct``, ``any`` /
    ``all`` (value: operator; args: left, array), ``array``, ``func`` (value: name), ``case``
    (args: subject or None, then condition / result pairs, then the ELSE result).
    """

    kind: str
    args: tuple[Any, ...] = ()
    value: Any = None
    negated: bool = False


_TOKEN = re.compile(r"""
    \s+
  | (?P<str>[eE]?'(?:[^']|'')*')
  | (?P<num>\d+(?:\.\d+)?(?:[eE][+-]?\d+)?)
  | (?P<qid>"(?:[^"]|"")+")
  | (?P<id>[A-Za-z_][A-Za-z0-9_$]*)
  | (?P<cast>::)
  | (?P<punct>[()\[\],.])
  | (?P<op>[-+*/<>=~!@#%^&|`?]+)
""", re.VERBOSE)
COMPARISONS = {"=", "<>", "!=", "<", "<=", ">", ">="}
PATTERNS = {"~", "~*", "!~", "!~*", "~~", "~~*", "!~~", "!~~*"}
_STOP_WORDS = {"AND", "OR", "NOT", "IS", "THEN", "ELSE", "END", "WHEN", "FROM", "ANY", "ALL"}


class ParseError(Exception):
    pass


def _tokens(text: str) -> list[tuple[str, str]]:
    found = []
    position = 0
    while position < len(text):
        m = _TOKEN.match(text, position)
        if m is None:
            raise ParseError(text[position:])
        position = m.end()
        if m.lastgroup is not None:
            found.append((m.lastgroup, m.group()))
    return found


class Parser:
    """Precedence climbing over PostgreSQL's deparsed expressions (OR < AND < NOT < IS <
    comparison < other operators < + - < * / < unary minus < ``::``)."""

    def __init__(self, text: str) -> None:
        self.tokens = _tokens(text)
        self.at = 0

    def peek(self, offset: int = 0) -> tuple[str, str]:
        index = self.at + offset
        return self.tokens[index] if index < len(self.tokens) else ("end", "")

    def word(self, offset: int = 0) -> str:
        kind, text = self.peek(offset)
        return text.upper() if kind == "id" else ""

    def take(self, text: str | None = None) -> str:
        kind, found = self.peek()
        if kind == "end" or (text is not None and found.upper() != text):
            raise ParseError(f"expected {text}, found {found!r}")
        self.at += 1
        return found

    def expression(self) -> Node:
        return self.disjunction()

    def disjunction(self) -> Node:
        return self.chain("OR", self.conjunction)

    def conjunction(self) -> Node:
        return self.chain("AND", self.negation)

    def chain(self, word: str, operand: Callable[[], Node]) -> Node:
        """``operand [word operand]...`` as one ``and`` or ``or`` node."""
        items = [operand()]
        while self.word() == word:
            self.take()
            items.append(operand())
        return items[0] if len(items) == 1 else Node(word.lower(), tuple(items))

    def negation(self) -> Node:
        if self.word() == "NOT":
            self.take()
            return Node("not", (self.negation(),))
        return self.test()

    def test(self) -> Node:
        node = self.comparison()
        while self.word() == "IS":
            self.take()
            negated = self.word() == "NOT"
            if negated:
                self.take()
            what = self.take().upper()
            if what == "DISTINCT":
                self.take("FROM")
                node = Node("distinct", (node, self.comparison()), negated=negated)
            elif what in ("NULL", "TRUE", "FALSE"):
                node = Node("is", (node,), what.lower(), negated)
            else:
                raise ParseError(f"IS {what}")
        return node

    def comparison(self) -> Node:
        left = self.other()
        kind, op = self.peek()
        if kind == "op" and op in COMPARISONS:
            self.take()
            op = "<>" if op == "!=" else op
            if self.word() in ("ANY", "ALL", "SOME"):
                quantifier = "all" if self.take().upper() == "ALL" else "any"
                self.take("(")
                array = self.expression()
                self.take(")")
                return Node(quantifier, (left, array), op)
            return Node("op", (left, self.other()), op)
        return left

    def other(self) -> Node:
        left = self.additive()
        while self.peek()[0] == "op" and (self.peek()[1] in PATTERNS or self.peek()[1] == "||"):
            op = self.take()
            left = Node("op", (left, self.additive()), op)
        return left

    def additive(self) -> Node:
        left = self.multiplicative()
        while self.peek() in (("op", "+"), ("op", "-")):
            op = self.take()
            left = Node("op", (left, self.multiplicative()), op)
        return left

    def multiplicative(self) -> Node:
        left = self.unary()
        while self.peek() in (("op", "*"), ("op", "/"), ("op", "%")):
            op = self.take()
            left = Node("op", (left, self.unary()), op)
        return left

    def unary(self) -> Node:
        if self.peek() == ("op", "-"):
            self.take()
            return Node("neg", (self.unary(),))
        return self.postfix()

    def postfix(self) -> Node:
        node = self.primary()
        while True:
            if self.peek()[0] == "cast":
                self.take()
                node = Node("cast", (node,), self.type_name())
            elif self.peek() == ("punct", "["):
                raise ParseError("subscripts")
            else:
                return node

    def type_name(self) -> str:
        words = []
        while self.peek()[0] in ("id", "qid") and (not words or self.word() not in _STOP_WORDS):
            words.append(self.take().strip('"').lower())
            if self.peek() == ("punct", "."):
                self.take()
                words = []
        if not words:
            raise ParseError("type name")
        if self.peek() == ("punct", "("):
            while self.take() != ")":
                pass
        while self.peek() == ("punct", "["):
            self.take()
            self.take("]")
            words.append("[]")
        return " ".join(words)

    def primary(self) -> Node:
        kind, text = self.peek()
        if text == "(":
            self.take()
            node = self.expression()
            self.take(")")
            return node
        if kind == "str":
            self.take()
            body = text[text.index("'") + 1:-1].replace("''", "'")
            if text[0] in "eE":
                body = re.sub(r"\\(.)", r"\1", body)
            return Node("lit", value=body)
        if kind == "num":
            self.take()
            return Node("lit", value=Decimal(text))
        if kind == "qid":
            self.take()
            return Node("col", value=text[1:-1].replace('""', '"'))
        if kind != "id":
            raise ParseError(f"unexpected {text!r}")
        upper = text.upper()
        if upper in ("NULL", "TRUE", "FALSE"):
            self.take()
            return Node("lit", value=None if upper == "NULL" else upper == "TRUE")
        if upper == "ARRAY":
            self.take()
            self.take("[")
            items = self.items("]")
            return Node("array", tuple(items))
        if upper == "CASE":
            return self.case()
        self.take()
        if self.peek() == ("punct", "("):
            self.take()
            return Node("func", tuple(self.items(")")), text.lower())
        if self.peek() == ("punct", "."):
            self.take()
            return Node("col", value=self.take().strip('"'))
        return Node("col", value=text if upper != "VALUE" else "VALUE")

    def items(self, closing: str) -> list[Node]:
        found: list[Node] = []
        if self.peek() == ("punct", closing):
            self.take()
            return found
        while True:
            found.append(self.expression())
            if self.take() == closing:
                return found

    def case(self) -> Node:
        self.take("CASE")
        subject = None if self.word() == "WHEN" else self.expression()
        parts: list[Node | None] = [subject]
        while self.word() == "WHEN":
            self.take()
            condition = self.expression()
            self.take("THEN")
            parts += [condition, self.expression()]
        default = Node("lit", value=None)
        if self.word() == "ELSE":
            self.take()
            default = self.expression()
        self.take("END")
        return Node("case", (*parts, default))


@functools.lru_cache(maxsize=4096)
def parse_check(definition: str) -> Node | None:
    """The expression of a ``CHECK (...)`` definition, or None if it is beyond this parser."""
    m = re.match(r"\s*CHECK\s*\((.*)\)(?:\s+NOT VALID)?(?:\s+NO INHERIT)?\s*$", definition, re.S)
    if m is None:
        return None
    try:
        parser = Parser(m.group(1))
        node = parser.expression()
    except (ParseError, InvalidOperation, IndexError):
        return None
    return node if parser.peek()[0] == "end" else None


def columns_of(node: Node) -> frozenset[str]:
    if node.kind == "col":
        return frozenset((node.value,))
    return frozenset().union(*(columns_of(a) for a in node.args if isinstance(a, Node)))

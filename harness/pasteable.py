"""Rows as ``INSERT`` statements a person pastes into psql.

Recorded rows hold each column as PostgreSQL's text form (JSON columns as JSON values), which
every type's input reads back: a quoted literal is therefore valid for any column, and numbers
are left bare only for readability. Values too long to read (or binary) are cut, with their
length in a comment; the failure file keeps them whole.
"""

from __future__ import annotations

import json
import re
from typing import Any, Mapping

SHOWN = 40
"""Characters of a value shown before it is cut."""

_PLAIN_NAME = re.compile(r"[a-z_][a-z0-9_$]*")
_NUMBER = re.compile(r"-?(?:0|[1-9]\d{0,17})(?:\.\d+)?")
_BYTES = re.compile(r"\\x(?:[0-9a-f]{2})*")
# Reserved in PostgreSQL (and those allowed only as function or type names): such a column or
# table name must be quoted.
_RESERVED = frozenset("""
all analyse analyze and any array as asc asymmetric authorization binary both case cast check
collate collation column concurrently constraint create cross current_catalog current_date
current_role current_schema current_time current_timestamp current_user default deferrable desc
distinct do else end except false fetch for foreign freeze from full grant group having ilike in
initially inner intersect into is isnull join lateral leading left like limit localtime
localtimestamp natural not notnull null offset on only or order outer overlaps placing primary
references returning right select session_user similar some symmetric system_user table
tablesample then to trailing true union unique user using variadic verbose when where window with
""".split())
_ESCAPES = {"\\": "\\\\", "'": "''", "\n": "\\n", "\r": "\\r", "\t": "\\t"}


def identifier(name: str) -> str:
    """A name as SQL needs it: bare when it can be, else double-quoted."""
    if _PLAIN_NAME.fullmatch(name) and name not in _RESERVED:
        return name
    return '"' + name.replace('"', '""') + '"'


def insert_statement(table: str, record: Mapping[str, Any]) -> str:
    """``INSERT INTO schema.table (columns) VALUES (literals);`` for one recorded row."""
    schema, name = table.split(".", 1)
    if not record:
        return f"INSERT INTO {identifier(schema)}.{identifier(name)} DEFAULT VALUES;"
    columns = ", ".join(identifier(c) for c in record)
    values = ", ".join(literal(v) for v in record.values())
    return f"INSERT INTO {identifier(schema)}.{identifier(name)} ({columns}) VALUES ({values});"


def literal(value: Any) -> str:
    """A recorded value as a SQL literal; long and binary values cut, with their length."""
    if value is None:
        return "NULL"
    if not isinstance(value, str):
        value = json.dumps(value, ensure_ascii=False)
    elif _NUMBER.fullmatch(value):
        return value
    if _BYTES.fullmatch(value) and len(value) > 2 + 2 * (SHOWN // 2):
        return f"{_quoted(value[:2 + SHOWN])}/* {(len(value) - 2) // 2} bytes, cut */"
    if len(value) > SHOWN:
        return f"{_quoted(value[:SHOWN])}/* {len(value)} characters, cut */"
    return _quoted(value)


def _quoted(text: str) -> str:
    """'text', or E'text' with escapes when it holds a character one cannot see."""
    if all(c.isprintable() for c in text):
        return "'" + text.replace("'", "''") + "'"
    return "E'" + "".join(_ESCAPES.get(c) or _escaped(c) for c in text) + "'"


def _escaped(char: str) -> str:
    if char.isprintable():
        return char
    return f"\\u{ord(char):04x}" if ord(char) <= 0xFFFF else f"\\U{ord(char):08x}"

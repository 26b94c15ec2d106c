"""What a migration raised, told in a line: the driver's own error, its SQLSTATE, where it came from.

A failed step's exception may be SQLAlchemy's wrapper of the driver's, or the driver's, or
anything env.py or a migration raises; the runner reports each the same way.
"""

from __future__ import annotations

import sqlalchemy as sa


def raised_in(exc: BaseException, module: str) -> bool:
    """Whether ``exc`` was raised by code of ``module`` (its innermost frame).

    By module name, not file: ``os`` is frozen since Python 3.11 and has no file of its own.
    """
    tb = exc.__traceback__
    while tb is not None and tb.tb_next is not None:
        tb = tb.tb_next
    return tb is not None and tb.tb_frame.f_globals.get("__name__") == module


def sqlstate_of(exc: BaseException | None) -> str | None:
    """The SQLSTATE anywhere in the exception chain, whatever the driver calls it."""
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        for candidate in (exc, getattr(exc, "orig", None)):
            code = getattr(candidate, "sqlstate", None) or getattr(candidate, "pgcode", None)
            if isinstance(code, str):
                return code
        exc = exc.__cause__ or exc.__context__
    return None


def describe(exc: BaseException) -> tuple[str, str]:
    """(one line, full text) for an exception, preferring the driver's own error."""
    orig = getattr(exc, "orig", None)
    if isinstance(exc, sa.exc.DBAPIError) and orig is not None:
        summary = f"{type(orig).__name__}: {first_line(str(orig))}"
        detail = str(orig).strip()
        if exc.statement:
            detail += f"\n[SQL: {exc.statement}]"
        return summary, detail
    return f"{type(exc).__name__}: {first_line(str(exc))}", f"{type(exc).__name__}: {exc}"


def first_line(text: str) -> str:
    return text.strip().splitlines()[0] if text.strip() else ""

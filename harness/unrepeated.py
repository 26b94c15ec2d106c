"""Failures that did not repeat: the same steps failed once and passed when run again.

Hypothesis runs a failing example again before it shrinks it, and again while it shrinks; when
the same draws behave differently it stops the whole run with a ``Flaky`` error (an
"inconsistent data generation" when the second run stopped drawing earlier or later). A
migration's outcome then depended on something outside its scratch database: state of the
cluster that all scratch databases share (roles above all), the clock, randomness, a file.

That is not an error of the harness, and not one to hide either: the failure was seen, with its
steps, and is reported as it was found -- not shrunk, since shrinking needs it to repeat, and
marked so that nobody takes its steps for a reproduction.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Iterator

from .errors import HarnessError

if TYPE_CHECKING:
    from .machine import PropertyViolated

if sys.version_info < (3, 11):  # pragma: no cover - the old-stack environment
    from exceptiongroup import BaseExceptionGroup

EXPLANATION = (
    "It did not repeat: the same steps passed when Hypothesis ran them again, so the outcome "
    "depends on something outside the scratch database (a cluster-wide role or setting another "
    "scratch database changed, the clock, randomness, a file). It is reported as first seen, "
    "not shrunk."
)


def unrepeated(flaky: BaseException) -> list[PropertyViolated]:
    """The failures behind Hypothesis's ``flaky``, each marked as not repeated.

    Hypothesis carries them as the exceptions it groups, or as the exception it was handling
    when it noticed (the context). Without any, the walk's own draws behaved differently on
    the same data, which only state outside the database can cause: a clear error says so.
    """
    from .machine import PropertyViolated

    found: dict[int, PropertyViolated] = {}
    for exc in _related(flaky, set()):
        if isinstance(exc, PropertyViolated):
            exc.repeated = False
            found.setdefault(id(exc), exc)
    if not found:
        raise HarnessError(
            "the walk behaved differently on the same draws, without a failure to show: a "
            "migration's outcome depends on something outside its scratch database (a "
            "cluster-wide role or setting, the clock, randomness); run `harness sweep` to see "
            "each revision once, or rerun with another --seed"
        ) from flaky
    return list(found.values())


def _related(exc: BaseException | None, seen: set[int]) -> Iterator[BaseException]:
    """``exc``, the exceptions it groups, and those it was raised from or while handling."""
    if exc is None or id(exc) in seen:
        return
    seen.add(id(exc))
    yield exc
    if isinstance(exc, BaseExceptionGroup):
        for inner in exc.exceptions:
            yield from _related(inner, seen)
    yield from _related(exc.__cause__, seen)
    yield from _related(exc.__context__, seen)

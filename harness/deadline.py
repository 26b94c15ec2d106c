"""A wall-clock limit on one migration step, whatever the step is stuck in.

``statement_timeout`` only reaches SQL statements; a migration can also hang in Python (a sleep,
a retry loop, a call to a service that never answers). The limit is a timer signal whose handler
raises :class:`StepHang` into the running code: the step unwinds through Alembic's own cleanup
in the thread that runs it, so no abandoned thread can wake up later and act on another step's
database, and no process has to be started per step. The exception derives from
``BaseException`` so that a migration's ``except Exception`` retry loop cannot swallow it.

The limit is a safety net set far above any normal step, so that a verdict never depends on
the machine's load. Signals reach only the main thread: elsewhere (a walk started from a
thread) steps run without the net, and ``statement_timeout`` still bounds their SQL.
"""

from __future__ import annotations

import contextlib
import signal
import threading
import time
from typing import Iterator


class StepHang(BaseException):
    """A step ran past its wall-clock limit; raised into the step's own code."""

    def __init__(self, seconds: float) -> None:
        super().__init__(f"still running after {seconds:g} s (step_timeout)")
        self.seconds = seconds


@contextlib.contextmanager
def step_deadline(seconds: float | None) -> Iterator[None]:
    """Raise :class:`StepHang` in the body once it has run ``seconds`` of wall-clock time.

    A timer someone else armed (pytest-timeout's, say) is put back with what it had left.
    """
    if not seconds or not _can_signal():
        yield
        return
    armed = True

    def expire(signum: int, frame: object) -> None:
        if armed:
            raise StepHang(seconds)

    previous_handler = signal.signal(signal.SIGALRM, expire)
    previous_left, _ = signal.setitimer(signal.ITIMER_REAL, seconds)
    started = time.monotonic()
    try:
        yield
    finally:
        # The timer may go off while the body has just ended: that late hang is dropped, and
        # the cleanup is done again so that it always completes.
        while True:
            try:
                armed = False
                signal.setitimer(signal.ITIMER_REAL, 0)
                signal.signal(signal.SIGALRM, previous_handler)
                break
            except StepHang:
                continue
        if previous_left:
            left = previous_left - (time.monotonic() - started)
            signal.setitimer(signal.ITIMER_REAL, max(left, 0.001))


def _can_signal() -> bool:
    return hasattr(signal, "setitimer") and threading.current_thread() is threading.main_thread()

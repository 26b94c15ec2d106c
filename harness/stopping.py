"""When a walk ends before its examples are done: a time budget, or a signal from outside.

A night is a time budget, not a number of examples, and a CI runner ends a job with SIGTERM
(SIGINT on cancel). Either way the walk must end as if it had run out of examples: after the
current example, with what it found saved and reported. So the first SIGINT or SIGTERM only
asks for that stop; a second one interrupts at once, as Ctrl-C does.

The budget is read between examples only, never inside one: what an example finds never depends
on the clock, only how many examples a night holds.
"""

from __future__ import annotations

import contextlib
import signal
import threading
import time
from typing import Iterator

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class Stop:
    """Whether the walk should stop after the current example, and why."""

    def __init__(self, duration_s: float | None = None) -> None:
        self.duration_s = duration_s
        self._deadline = time.monotonic() + duration_s if duration_s else None
        self.reason: str | None = None
        """``"duration"`` or ``"signal"`` once a stop is asked for."""
        self.signal: signal.Signals | None = None

    def requested(self) -> bool:
        if self.reason is None and self._deadline is not None and time.monotonic() >= self._deadline:
            self.reason = "duration"
        return self.reason is not None

    @property
    def exit_code(self) -> int | None:
        """The shell's code for a run ended by the signal: 128 + its number."""
        return 128 + int(self.signal) if self.signal is not None else None

    @contextlib.contextmanager
    def on_signals(self) -> Iterator[None]:
        """While inside, SIGINT and SIGTERM ask for the stop (the second one interrupts).

        Handlers can be set only from the main thread; elsewhere signals keep their handlers.
        """
        if threading.current_thread() is not threading.main_thread():
            yield
            return

        def ask(signum: int, frame: object) -> None:
            if self.signal is not None:
                raise KeyboardInterrupt
            self.signal = signal.Signals(signum)
            self.reason = "signal"

        previous = {number: signal.signal(number, ask) for number in STOP_SIGNALS}
        try:
            yield
        finally:
            for number, handler in previous.items():
                signal.signal(number, handler)

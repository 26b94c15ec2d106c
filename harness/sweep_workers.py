"""A sweep's segments shared out among processes, each with a server of its own.

Why this shape:

- A sweep spends about half its time waiting for PostgreSQL, and a step is a ping-pong between
  one Python process and one backend: two sweeps side by side on two cores each go as fast as
  one alone. Threads cannot share that out: Alembic's ``op`` and ``context`` are module-wide
  proxies, so one process runs one migration at a time.
- Each worker starts a server of its own (the embedded one starts in about 0.1 s from its
  cached ``initdb``). Roles are cluster-wide: segments sharing a cluster would see each other's
  ``CREATE ROLE`` and ``DROP ROLE`` at moments that depend on timing. So more than one job
  needs the embedded server; on a server by URL or in a container, segments run one after
  another in the harness's own process.
- The harness's process sweeps segments too, and every process takes the next segment nobody
  has started, so the work balances itself; a segment's result does not depend on where it
  ran (:func:`.sweep.sweep_segment`).
- A worker is ``python -m harness.sweep_workers``, spoken to in pickles over its standard input
  and output. What migrations print goes to its standard error. It stops at the end of its
  input, on SIGTERM, and when the harness's process dies (``PR_SET_PDEATHSIG``), dropping its
  server each time. A worker that cannot start or dies gives its segment back to the
  harness's process, which says so.
"""

from __future__ import annotations

import collections
import contextlib
import dataclasses
import functools
import os
import pickle
import signal
import subprocess
import sys
import threading
import traceback
from typing import TYPE_CHECKING, Callable, Sequence

from .errors import HarnessError, ServerError
from .server.embedded import EmbeddedServer, die_with_parent
from .session import Coverage, Session
from .settings import Settings

if TYPE_CHECKING:
    from .invariants.isolation import IsolationSetup
    from .sweep import SweepOutcome

Result = tuple["SweepOutcome", Coverage]


def default_jobs() -> int:
    """The processors this process may use."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def jobs_of(settings: Settings) -> int:
    """The ``jobs`` setting, or one per processor when it is not set."""
    if settings.jobs is None:
        return default_jobs()
    if settings.jobs < 1:
        raise HarnessError(f"jobs must be 1 or more, not {settings.jobs}",
                           hint="leave it out to run one per processor")
    return settings.jobs


def run_segments(
    session: Session, segments: Sequence[list[str]], jobs: int,
    sweep_here: Callable[[list[str]], Result],
) -> list[Result]:
    """Each segment's result, in order: ``sweep_here`` runs them in this process, workers
    started for ``jobs`` above one run the others. The first :class:`HarnessError` of any
    segment ends the run."""
    results: list[Result | None] = [None] * len(segments)
    pending = collections.deque(range(len(segments)))
    settings = _worker_settings(session)
    count = min(jobs, len(segments)) - 1 if settings is not None else 0
    workers: list[_Worker] = []
    try:
        for _ in range(count):
            try:
                workers.append(_Worker(settings))
            except OSError as exc:
                print(f"harness: cannot start a sweep worker, its segments run here: {exc}", file=sys.stderr)
                break
        # Detected here once for every segment, while the workers start their servers.
        isolation = session.isolation_setup()
        for worker in workers:
            worker.start(isolation, segments, pending, results)
        _sweep_pending(pending, segments, results, sweep_here, workers)
        for worker in workers:
            worker.join()
        _raise_first(workers)
        # segments given back by a worker that ended after this process had run out of them
        _sweep_pending(pending, segments, results, sweep_here, workers)
    finally:
        for worker in workers:
            worker.close()
    return results  # type: ignore[return-value]


def _sweep_pending(pending: collections.deque[int], segments: Sequence[list[str]],
                   results: list[Result | None], sweep_here: Callable[[list[str]], Result],
                   workers: list[_Worker]) -> None:
    while True:
        try:
            index = pending.popleft()
        except IndexError:
            return
        results[index] = sweep_here(segments[index])
        _raise_first(workers)


def _raise_first(workers: list[_Worker]) -> None:
    for worker in workers:
        if worker.error is not None:
            raise worker.error


def _worker_settings(session: Session) -> Settings | None:
    """The settings a worker starts the same server with: the same programs and version.
    None when the harness does not run this server itself."""
    server = session.server
    if not isinstance(server, EmbeddedServer):
        return None
    return dataclasses.replace(session.settings, server="embedded", database_url=None,
                               pg_version=server.version, pg_bin_dir=str(server.binaries.bin_dir),
                               keep_server_dir=False)


class _Worker:
    """One worker process, and the thread-side of talking to it."""

    def __init__(self, settings: Settings) -> None:
        """Start the process and send it ``settings``, so that it starts its server while
        this one is busy (in the main thread: the kernel's parent-death signal follows the
        thread that started the process)."""
        self.error: HarnessError | None = None
        self._closing = False
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
        self._process = subprocess.Popen(
            [sys.executable, "-m", "harness.sweep_workers"], stdin=subprocess.PIPE,
            stdout=subprocess.PIPE, env=env, preexec_fn=functools.partial(die_with_parent, signal.SIGTERM),
        )
        self._broken: _Broken | None = None
        self._thread: threading.Thread | None = None
        try:
            self._send(settings)
        except _Broken as broken:
            self._broken = broken

    def start(self, *work: object) -> None:
        """Serve segments in a thread of this process (:meth:`_serve`'s arguments)."""
        self._thread = threading.Thread(target=self._serve, args=work, daemon=True)
        self._thread.start()

    def join(self) -> None:
        if self._thread is not None:
            self._thread.join()

    def _serve(self, isolation: IsolationSetup | None, segments: Sequence[list[str]],
               pending: collections.deque[int], results: list[Result | None]) -> None:
        """Sweep segments from ``pending`` until none is left, this worker fails or the run
        ends; a segment it could not finish goes back to ``pending``."""
        try:
            if self._broken is not None:
                raise self._broken
            self._send(isolation)
            self._receive()  # ready
        except _Broken as broken:
            return self._say(broken)
        while self.error is None:
            try:
                index = pending.popleft()
            except IndexError:
                return
            try:
                self._send(segments[index])
                results[index] = self._receive()
            except _Broken as broken:
                pending.append(index)
                return self._say(broken)
            except HarnessError as error:
                self.error = error

    def close(self) -> None:
        """End the worker: at the end of its input when idle, by SIGTERM when not."""
        self._closing = True
        with contextlib.suppress(OSError):
            self._process.stdin.close()
        try:
            self._process.wait(timeout=1)
        except subprocess.TimeoutExpired:
            self._process.terminate()
            try:
                self._process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
        self.join()  # it reads the end of the worker's output, and stops
        self._process.stdout.close()

    def _send(self, message: object) -> None:
        try:
            pickle.dump(message, self._process.stdin)
            self._process.stdin.flush()
        except (OSError, ValueError) as exc:
            raise _Broken(f"cannot reach it ({exc})") from None

    def _receive(self) -> Result | None:
        try:
            reply = pickle.load(self._process.stdout)
        except (EOFError, OSError, ValueError, pickle.UnpicklingError):
            raise _Broken(f"it ended with exit code {self._process.wait()}") from None
        kind, *body = reply
        if kind == "error":
            server, message, hint = body
            raise (ServerError if server else HarnessError)(message, hint)
        if kind == "crash":
            raise _Broken(body[0])
        return tuple(body) if body else None  # type: ignore[return-value]

    def _say(self, broken: _Broken) -> None:
        if not self._closing:
            print(f"harness: a sweep worker stopped, its segment runs here instead: {broken}",
                  file=sys.stderr)


class _Broken(Exception):
    """The worker could not be reached or crashed; its last line says why."""


def _work() -> int:
    """The worker: sweep each segment read, until the end of the input."""
    from .server import open_server
    from .sweep import sweep_segment

    replies = os.fdopen(os.dup(sys.stdout.fileno()), "wb")
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())  # nothing printed may reach the replies
    requests = sys.stdin.buffer

    def reply(*message: object) -> None:
        with contextlib.suppress(OSError):  # the harness is gone: nobody to tell
            pickle.dump(message, replies)
            replies.flush()

    try:
        settings = pickle.load(requests)
        with open_server(settings) as server:
            session = Session(settings, server)
            session.known_isolation(pickle.load(requests))
            reply("ready")
            while True:
                try:
                    segment = pickle.load(requests)
                except EOFError:
                    return 0
                try:
                    reply("ok", *sweep_segment(session, segment))
                except HarnessError as error:
                    reply("error", isinstance(error, ServerError), error.message, error.hint)
    except EOFError:  # the harness ended before the first segment
        return 0
    except (KeyboardInterrupt, SystemExit):
        return 1
    except HarnessError as error:
        reply("crash", str(error))
    except Exception as exc:  # noqa: BLE001 - a bug here is told to the harness, which runs the segment itself
        reply("crash", traceback.format_exception_only(type(exc), exc)[-1].strip())
    return 1


if __name__ == "__main__":
    sys.exit(_work())

"""PostgreSQL for the harness: one interface, three backends, scratch databases only.

``open_server(settings)`` gives a :class:`Server`: by default an embedded cluster the harness
starts itself (no Docker, no system service), otherwise an existing server by explicit URL, or a
testcontainers container. Whatever the backend, the harness only ever creates, clones and drops
databases named ``harness_*`` that it made itself.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from typing import Iterator

from ..errors import Terminated
from ..settings import Settings
from .base import Database, Server, redact
from .binaries import find_binaries

__all__ = ["Database", "Server", "open_server", "start_server", "redact"]


def start_server(settings: Settings) -> Server:
    """Start or reach the server ``settings`` ask for; the caller must ``close()`` it."""
    if settings.server == "url":
        from ..errors import ServerError
        from .remote import UrlServer

        if not settings.database_url:
            raise ServerError("server = 'url' needs a database_url",
                              hint="pass --database-url or set HARNESS_DATABASE_URL")
        return UrlServer(settings.database_url)
    if settings.server == "container":
        from .container import ContainerServer

        return ContainerServer(settings.pg_version)
    from .embedded import EmbeddedServer

    binaries = find_binaries(settings.pg_version, settings.pg_bin_dir)
    return EmbeddedServer(binaries, keep_dir=settings.keep_server_dir)


@contextlib.contextmanager
def open_server(settings: Settings | None = None) -> Iterator[Server]:
    """The server for the block; scratch databases dropped and the server stopped at the end.

    SIGTERM is turned into ``SystemExit`` for the duration, so that a CI runner cancelling the
    job cleans up like Ctrl-C does instead of leaving databases behind.
    """
    server = start_server(settings or Settings())
    with _sigterm_as_exit():
        try:
            yield server
        finally:
            server.close()


@contextlib.contextmanager
def _sigterm_as_exit() -> Iterator[None]:
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.getsignal(signal.SIGTERM)
    if previous not in (signal.SIG_DFL, None):
        yield
        return

    def handler(signum: int, frame: object) -> None:
        raise Terminated(128 + signum)

    signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)

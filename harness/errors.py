"""Errors about the harness's inputs and infrastructure, as opposed to findings about migrations.

A finding (a broken downgrade, a leaked row) is a ``Violation`` and exits 1. Everything in this
module means the harness could not do its job -- a missing ``alembic.ini``, an unreachable
server, an unknown revision -- and exits 2 with one line a person can act on.
"""

from __future__ import annotations


class HarnessError(Exception):
    """Something outside the migrations stopped the run.

    ``message`` says what went wrong and names the object (file, revision, server); ``hint``,
    when given, says what to do about it. ``str()`` is the single line shown to people.
    """

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return f"{self.message} ({self.hint})" if self.hint else self.message


class ServerError(HarnessError):
    """PostgreSQL could not be started, reached or used."""


class Terminated(SystemExit):
    """The harness was sent SIGTERM: it ends, cleaning up, with the shell's code for it.

    Its own class, so that the runner tells it from a migration calling ``sys.exit()``.
    """

"""``harness report``: the migration safety verification document, written from what was run.

A verification checklist ticked by hand says "pending execution" next to every claim. This
package executes each check on a real PostgreSQL -- one module per check -- and writes the
document from what it observed: a status per section (verified / violated / not applicable),
the evidence (figures, diffs, the offending revision and line) and the commands that
reproduce it, as Markdown for people, JSON for machines, and one summary line for CI logs.

    report = build_report(load_settings("alembic.ini"))
    Path("MIGRATION_SAFETY_VERIFICATION.md").write_text(report.to_markdown())
"""

from __future__ import annotations

import dataclasses
import datetime
import time
from typing import Any, Callable, Sequence

from ..server import Server
from ..session import open_session
from ..settings import Settings
from . import (
    backup, credentials, dependencies, destructive, locks, reversibility, rollback, schema,
    tenancy, timing,
)
from .context import Context, Options
from .model import NOT_APPLICABLE, VERIFIED, VIOLATED, Report, Section, Status

__all__ = ["NOT_APPLICABLE", "VERIFIED", "VIOLATED", "Options", "Report", "Section", "Status",
           "build_report"]

CHECKS: tuple[Callable[[Context], Section], ...] = (
    schema.check,
    rollback.check,
    reversibility.check,
    destructive.check,
    credentials.check,
    dependencies.check,
    locks.check,
    timing.check,
    backup.check,
    tenancy.check,
)
"""The sections in the order of the document."""


def build_report(
    settings: Settings,
    *,
    server: Server | None = None,
    rows_per_table: int = Options.rows_per_table,
    seed: int = Options.seed,
    lock_wait_s: float = Options.lock_wait_s,
    walk_examples: int = Options.walk_examples,
    walk_steps: int = Options.walk_steps,
    expected_objects: Sequence[str] | None = None,
    command: str = "harness report",
) -> Report:
    """Run every check on the project of ``settings`` and return the report.

    ``server`` is reused when given (tests pass their session-wide one); otherwise one is
    started and stopped. ``expected_objects`` defaults to the ``expected_objects`` setting.
    ``command`` is the command line recorded in the document.
    """
    started = time.perf_counter()
    expected = expected_objects if expected_objects is not None else settings.expected_objects
    options = Options(rows_per_table=rows_per_table, seed=seed, lock_wait_s=lock_wait_s,
                      walk_examples=walk_examples, walk_steps=walk_steps,
                      expected_objects=tuple(expected))
    with open_session(settings, server) as session:
        ctx = Context(session, options)
        try:
            sections = tuple(check(ctx) for check in CHECKS)
            project = _describe(ctx, command)
        finally:
            ctx.close()
    return Report(sections, project, time.perf_counter() - started)


def _describe(ctx: Context, command: str) -> dict[str, Any]:
    """What the report was run on and with, for its header."""
    graph = ctx.graph
    return {
        "alembic_ini": ctx.ini,
        "command": command,
        "generated_at": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "server_version": ctx.server.version,
        "options": dataclasses.asdict(ctx.options),
        "seeding_shortfalls": ctx.shortfalls(),
        "revisions": [
            {"id": rev, "file": ctx.shown(graph.revision(rev).path),
             "message": (graph.revision(rev).doc or "").strip().split("\n")[0]}
            for rev in graph.revisions
        ],
    }


"""Checks made once per run, at the heads: the models match the migrations, and the history
has no more heads than the project allows.

Both concern where the history ends, not a path through it, so the walk and the sweep make
them once, on a clone of the heads' reference database.
"""

from __future__ import annotations

from typing import Any

from .errors import HarnessError
from .failures import Failure
from .invariants import models
from .references import Unreachable
from .connection import default_driver
from .session import Session
from .violations import Violation


def check(session: Session) -> list[Failure]:
    """The ``heads`` rule and the ``models`` property, each as a failure at the heads."""
    graph = session.project.graph
    heads = frozenset(graph.heads)
    found = _too_many_heads(session)
    if target_metadata(session) is not None:
        found += _models(session, heads)
    return [Failure((violation,), heads, ()) for violation in found]


def checked(session: Session) -> list[str]:
    """Which of these properties this project has switched on."""
    on = ["models"] if target_metadata(session) is not None else []
    return on + (["heads"] if session.settings.heads is not None else [])


def target_metadata(session: Session) -> Any:
    """The models' MetaData: the setting's, else the one env.py passes; None when neither."""
    def find() -> Any:
        if session.settings.target_metadata:
            return models.import_metadata(session.settings.target_metadata)
        return _env_options(session).get("target_metadata")

    return session.per_state("target_metadata", frozenset(), find)


def _too_many_heads(session: Session) -> list[Violation]:
    limit, heads = session.settings.heads, session.project.graph.heads
    if limit is None or len(heads) <= limit:
        return []
    last = [rev for rev in session.project.graph.revisions if rev in heads][-1]
    return [Violation(
        property="heads", revision=last,
        message=f"{len(heads)} heads ({', '.join(sorted(heads))}), at most {limit} allowed: "
                "`alembic upgrade head` refuses to run; merge them (`alembic merge heads`)",
        evidence={"heads": sorted(heads), "limit": limit},
    )]


def _models(session: Session, heads: frozenset[str]) -> list[Violation]:
    try:
        template = session.references.template(heads)
    except Unreachable:
        return []  # the sweep and the walk report the migration that fails on the way
    database = session.server.create_database(template=template)
    try:
        options = _env_options(session)
        metadata = target_metadata(session)
        last = [rev for rev in session.project.graph.revisions if rev in heads][-1]
        return models.check(database.sqlalchemy_url(default_driver()), metadata, options,
                            revision=last, heads=", ".join(sorted(heads)))
    finally:
        session.server.drop_database(database.name)


def _env_options(session: Session) -> dict[str, Any]:
    """What env.py passes to ``context.configure()``, from one run of it that migrates nothing.

    The built-in env passes nothing of the project's: its metadata comes from the setting.
    """
    if session.settings.env == "builtin":
        return {}

    def capture() -> dict[str, Any]:
        scratch = session.server.create_database()
        runner = session.project.runner(scratch)
        try:
            runner.run([])
            return runner.context_options
        except HarnessError:
            return {}  # the walk and the sweep say why env.py cannot run
        finally:
            runner.close()
            session.server.drop_database(scratch.name)

    return session.per_state("env_options", frozenset(), capture)

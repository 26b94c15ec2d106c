"""The floor: PostgreSQL and Alembic alone, every revision up, down and up again, in one process.

No checks at all: one database, one connection, Alembic's script directory loaded once, and one
``run_migrations`` that yields, for each revision in order, its upgrade, its downgrade and its
upgrade again, each in its own transaction (``transaction_per_migration``). Alembic still keeps
``alembic_version`` as it always does. Nothing a migration tool could do to the same steps is
cheaper, so the harness's sweep is reported as a multiple of this.
"""

from __future__ import annotations

import io
import time
from pathlib import Path

import sqlalchemy as sa
from alembic.config import Config
from alembic.runtime.environment import EnvironmentContext
from alembic.runtime.migration import MigrationStep
from alembic.script import ScriptDirectory
from sqlalchemy.pool import NullPool


def run_floor(ini: Path, url: str) -> float:
    """Seconds to run every revision of the linear history at ``ini`` up, down, up on ``url``."""
    config, script, revisions = _history(ini)

    def steps(heads, context):
        for revision in revisions:
            yield MigrationStep.upgrade_from_script(script.revision_map, revision)
            yield MigrationStep.downgrade_from_script(script.revision_map, revision)
            yield MigrationStep.upgrade_from_script(script.revision_map, revision)

    engine = sa.create_engine(url, poolclass=NullPool)
    try:
        with engine.connect() as conn:
            started = time.perf_counter()
            with EnvironmentContext(config, script, fn=steps) as env:
                env.configure(connection=conn, transaction_per_migration=True)
                with env.begin_transaction():
                    env.run_migrations()
            conn.commit()
            return time.perf_counter() - started
    finally:
        engine.dispose()


def run_commands(ini: Path, url: str) -> float:
    """Seconds for the same steps as :func:`run_floor`, one ``alembic upgrade``/``downgrade``
    each: the project's env.py run once per step on one kept connection, the script directory
    loaded once. What a person's own commands cost, without starting a process each time."""
    config, script, revisions = _history(ini)
    moves = (MigrationStep.upgrade_from_script, MigrationStep.downgrade_from_script,
             MigrationStep.upgrade_from_script)
    engine = sa.create_engine(url, poolclass=NullPool)
    try:
        with engine.connect() as conn:
            config.attributes["connection"] = conn
            started = time.perf_counter()
            for revision in revisions:
                for move in moves:
                    def step(heads, context, move=move, revision=revision):
                        return [move(script.revision_map, revision)]

                    with EnvironmentContext(config, script, fn=step):
                        script.run_env()
            return time.perf_counter() - started
    finally:
        engine.dispose()


def _history(ini: Path) -> tuple[Config, ScriptDirectory, list]:
    """The project's config, its script directory, and its revisions from the first."""
    config = Config(str(ini), stdout=io.StringIO())
    script = ScriptDirectory.from_config(config)
    return config, script, [script.get_revision(r.revision) for r in reversed(list(script.walk_revisions()))]

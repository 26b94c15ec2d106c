"""The Alembic project under test: its configuration, revision graph, and how to run its steps.

Loaded once per run: Alembic's script directory is parsed here and nowhere else, because on long
histories parsing it per step is what makes other tools slow.
"""

from __future__ import annotations

import configparser
import io
from pathlib import Path

import sqlalchemy
from alembic.config import Config

from .errors import HarnessError
from .graph import RevisionGraph, State
from .runner import Runner
from .server import Database
from .settings import Settings


class Project:
    """An Alembic project: ``alembic.ini``, the script directory, the version table's name."""

    def __init__(self, settings: Settings) -> None:
        if settings.alembic_ini is None:
            raise HarnessError("no alembic.ini given", hint="pass the project's file with -c PATH")
        self.settings = settings
        self.config = _load_config(Path(settings.alembic_ini))
        self.graph = RevisionGraph.load(self.config)
        self.version_table = _version_table(settings.version_table)
        self.driver = settings.driver or _driver_of(self.config.get_main_option("sqlalchemy.url"))

    def runner(self, database: Database) -> Runner:
        """A runner that executes this project's migrations on ``database``."""
        return Runner(
            self.config,
            self.graph,
            url=database.sqlalchemy_url(self.driver),
            statement_timeout_ms=self.settings.statement_timeout_ms,
            env_var=self.settings.env_var,
        )

    def read_state(self, conn) -> State:
        """What the version table holds on ``conn`` (a psycopg connection): the applied heads."""
        schema, table = self.version_table
        exists = conn.execute("SELECT to_regclass(%s)", (f'"{schema}"."{table}"',)).fetchone()[0]
        if exists is None:
            return frozenset()
        rows = conn.execute(f'SELECT version_num FROM "{schema}"."{table}"').fetchall()
        return self.graph.state_of(row[0] for row in rows)


def _load_config(ini: Path) -> Config:
    if not ini.is_file():
        raise HarnessError(f"no alembic.ini at {ini}", hint="pass the project's file with -c PATH")
    # Config(stdout=...) keeps Alembic's own progress lines out of the harness's output.
    config = Config(str(ini), stdout=io.StringIO())
    try:
        script_location = config.get_main_option("script_location")
    except configparser.Error as exc:
        raise HarnessError(f"{ini} is not a valid alembic.ini: {exc}") from None
    if not script_location:
        raise HarnessError(f"{ini} has no script_location in its [alembic] section")
    return config


def _version_table(setting: str | None) -> tuple[str, str]:
    if not setting:
        return ("public", "alembic_version")
    schema, _, table = setting.rpartition(".")
    return (schema or "public", table)


def _driver_of(url: str | None) -> str:
    """The project's own driver, so migrations run as they do in production.

    Without one, psycopg 3 where SQLAlchemy supports it (2.0+), else psycopg2 as 1.4 expects.
    """
    scheme = (url or "").split("://", 1)[0]
    if "+" in scheme:
        return scheme.split("+", 1)[1]
    return "psycopg" if int(sqlalchemy.__version__.split(".")[0]) >= 2 else "psycopg2"

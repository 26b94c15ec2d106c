"""The Alembic project under test: its configuration, revision graph, and how to run its steps.

Loaded once per run: Alembic's script directory is parsed here and nowhere else, because on long
histories parsing it per step is what makes other tools slow.
"""

from __future__ import annotations

import ast
import configparser
import contextlib
import io
import os
import re
import sys
from pathlib import Path

from alembic.config import Config
from sqlalchemy.util import asbool

from .errors import HarnessError
from .graph import RevisionGraph, State
from .connection import default_driver
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
        self.future = _asks_for_future(self.config, None if settings.env == "builtin"
                                       else Path(self.graph.script.env_py_location))

    def runner(self, database: Database, statement_timeout_ms: int | None = None) -> Runner:
        """A runner that executes this project's migrations on ``database`` as configured.

        ``statement_timeout_ms`` overrides the setting, for callers that bound statements
        themselves (the lock probe). An env.py that fails before any migration ran is a
        :class:`HarnessError` naming the setting that fixes it, not a finding per step.
        """
        settings = self.settings
        return Runner(
            self.config,
            self.graph,
            url=database.sqlalchemy_url(self.driver),
            statement_timeout_ms=statement_timeout_ms or settings.statement_timeout_ms,
            env_var=settings.env_var,
            env=settings.env,
            future=self.future,
            connection_attribute=settings.connection_attribute,
            version_table=self.version_table,
            transaction_per_migration=settings.transaction_per_migration,
            strict_env=True,
            step_timeout_s=settings.step_timeout_s,
            roles=database.roles,
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
        prepend = config.get_main_option("prepend_sys_path")
    except configparser.Error as exc:
        raise HarnessError(f"{ini} is not a valid alembic.ini: {exc}") from None
    if not script_location:
        raise HarnessError(f"{ini} has no script_location in its [alembic] section")
    if prepend:
        _prepend_sys_path(config, ini.parent, prepend)
    return config


def _prepend_sys_path(config: Config, here: Path, value: str) -> None:
    """Put ``prepend_sys_path`` on ``sys.path`` as ``alembic`` run beside alembic.ini would.

    Alembic resolves relative entries (the ``.`` of its templates) against the working
    directory, which is the project's when a person runs ``alembic`` but rarely the harness's
    (pytest from a repository root, ``-c path/to/alembic.ini``). The harness resolves them
    against alembic.ini's directory and clears the option so Alembic does not add them again.
    Entries are split the way each Alembic release does: by ``path_separator`` where set
    (1.16+), else on spaces and commas.
    """
    separators = {"os": re.escape(os.pathsep), "space": " ", "newline": "\n", ":": ":",
                  ";": ";"}
    separator = separators.get(config.get_main_option("path_separator") or "", "[ ,]")
    entries = [e.strip() for e in re.split(f"(?:{separator})+", value) if e.strip()]
    sys.path[:0] = [str((here / entry).resolve()) for entry in entries]
    config.set_main_option("prepend_sys_path", "")


def _version_table(setting: str | None) -> tuple[str, str]:
    if not setting:
        return ("public", "alembic_version")
    schema, _, table = setting.rpartition(".")
    return (schema or "public", table)


def _asks_for_future(config: Config, env_py: Path | None) -> bool:
    """Whether the project asks SQLAlchemy 1.4 for 2.0-style connections.

    It does with ``sqlalchemy.future = true`` in alembic.ini (what ``engine_from_config``
    reads) or with ``future=True`` in a call of its env.py (``create_engine(...,
    future=True)``): the engine the harness shares with env.py must then be one too, and a
    legacy one otherwise, so that a revision runs under the harness as under ``alembic``.
    """
    with contextlib.suppress(ValueError):  # engine_from_config would refuse the value itself
        if asbool(config.get_main_option("sqlalchemy.future")):
            return True
    try:
        tree = ast.parse(env_py.read_text()) if env_py is not None else None
    except (OSError, SyntaxError, ValueError):
        return False
    return tree is not None and any(
        isinstance(node, ast.keyword) and node.arg == "future"
        and isinstance(node.value, ast.Constant) and node.value.value is True
        for node in ast.walk(tree)
    )


def _driver_of(url: str | None) -> str:
    """The project's own driver, so migrations run as they do in production."""
    scheme = (url or "").split("://", 1)[0]
    if "+" in scheme:
        return scheme.split("+", 1)[1]
    return default_driver()

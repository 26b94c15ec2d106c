"""Small Alembic projects written into a temporary directory, for tests of the harness.

A test states its history as a list of :class:`Rev` values and gets back the path of an
``alembic.ini`` that Alembic itself can run. By default each revision creates a table named
after it (``t_<id>``) and its downgrade drops it, so every step leaves a visible mark in the
catalog; tests that need other behaviour pass their own ``upgrade``/``downgrade`` bodies.

The ``env`` shapes mirror the env.py files real projects have, because the runner must cope
with each of them:

* ``cookbook`` -- Alembic's "sharing a connection" recipe: use ``config.attributes["connection"]``
  when given, else build an engine from ``sqlalchemy.url``.
* ``per_migration`` -- the same with ``transaction_per_migration=True``, the shape projects use
  together with ``autocommit_block()``.
* ``generic`` -- what ``alembic init`` writes: always builds its own engine from
  ``sqlalchemy.url``, ignoring any handed-in connection.
* ``env_var`` -- ignores the handed-in connection and builds its own engine from an environment
  variable (``ENV_VAR_NAME``), like env.py files that read the application's settings.
* ``engine`` -- expects an Engine in ``config.attributes["connection"]`` and calls ``.connect()``
  on it (pytest-alembic's recipe and many env.py files written after it).
* ``async`` -- Alembic's ``async`` template: an async engine built from ``sqlalchemy.url``,
  migrations through ``connection.run_sync()``.
* ``flask`` -- Flask-Migrate's template: the engine comes from ``current_app``, so it runs only
  inside the application.
* ``settings_module`` -- imports the URL from the application's settings module
  (``appsettings.py``, beside alembic.ini through ``prepend_sys_path``), which reads
  ``APP_URL_NAME`` once, at import.
* ``custom_version_table`` -- the cookbook shape keeping the version table as
  ``meta.revisions``, in a schema env.py creates.

Shapes other than these differ from the cookbook only in ``context.configure()`` options:
:func:`cookbook_env` writes them.
"""

from __future__ import annotations

import os
import textwrap
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Mapping, Sequence

ENV_VAR_NAME = "HARNESS_TEST_MIGRATION_URL"

DRIVER = os.environ.get("HARNESS_TEST_DRIVER", "psycopg")
"""The SQLAlchemy driver tests run migrations with; the old-stack tox env sets psycopg2."""
READS_BETWEEN_STEPS = DRIVER == "psycopg"
"""Whether the harness can read between the steps of one run, on the migration's own connection
(psycopg 3 only: on psycopg2 each step of the reference walk is a run of its own)."""
APP_URL_NAME = "HARNESS_TEST_APP_URL"

RevIds = str | tuple[str, ...] | None


@dataclass(frozen=True)
class Rev:
    """One revision file: its id, parents, and the bodies of ``upgrade()``/``downgrade()``.

    ``upgrade``/``downgrade`` are Python statements using ``op`` and ``sa``; None means
    "create/drop table ``t_<id>``".
    """

    id: str
    down: RevIds = None
    upgrade: str | None = None
    downgrade: str | None = None
    depends_on: RevIds = None
    branch_labels: RevIds = None

    def table(self) -> str:
        return f"t_{self.id}"


def numbered_id(i: int) -> str:
    return f"r{i:03d}"


def numbered(length: int, bodies: Mapping[int, tuple[str, str]]) -> list[Rev]:
    """A linear history ``r001`` to ``r<length>``: revision ``i`` runs ``bodies[i]`` (upgrade,
    downgrade) where given, else creates and drops its table ``t_r<i>``."""
    revisions = []
    for i in range(1, length + 1):
        upgrade, downgrade = bodies.get(i, (None, None))
        revisions.append(Rev(numbered_id(i), down=numbered_id(i - 1) if i > 1 else None,
                             upgrade=upgrade, downgrade=downgrade))
    return revisions


def chain(*ids: str, down: RevIds = None) -> list[Rev]:
    """A linear run of default revisions, the first one on top of ``down``."""
    revs = []
    for rev_id in ids:
        revs.append(Rev(rev_id, down=down))
        down = rev_id
    return revs


_COOKBOOK_ENV = '''\
from alembic import context
from sqlalchemy import engine_from_config, pool

config = context.config


def do_run_migrations(connection):
{setup}    context.configure(connection=connection, target_metadata=None{options})
    with context.begin_transaction():
        context.run_migrations()


connection = config.attributes.get("connection", None)
if connection is None:
    engine = engine_from_config(
        config.get_section(config.config_ini_section, {{}}),
        prefix="sqlalchemy.",
        poolclass=pool.NullPool,
    )
    with engine.connect() as connection:
        do_run_migrations(connection)
else:
    do_run_migrations(connection)
'''

_GENERIC_ENV = '''\
from alembic import context
from sqlalchemy import engine_from_config, pool

config = context.config
connectable = engine_from_config(
    config.get_section(config.config_ini_section, {}),
    prefix="sqlalchemy.",
    poolclass=pool.NullPool,
)
with connectable.connect() as connection:
    context.configure(connection=connection, target_metadata=None)
    with context.begin_transaction():
        context.run_migrations()
'''

_ENV_VAR_ENV = f'''\
import os

from alembic import context
from sqlalchemy import create_engine, pool

engine = create_engine(os.environ["{ENV_VAR_NAME}"], poolclass=pool.NullPool)
with engine.connect() as connection:
    context.configure(connection=connection, target_metadata=None)
    with context.begin_transaction():
        context.run_migrations()
'''

_ENGINE_ENV = '''\
from alembic import context
from sqlalchemy import engine_from_config, pool

config = context.config
connectable = config.attributes.get("connection", None)
if connectable is None:
    connectable = engine_from_config(
        config.get_section(config.config_ini_section, {}),
        prefix="sqlalchemy.",
        poolclass=pool.NullPool,
    )
with connectable.connect() as connection:
    context.configure(connection=connection, target_metadata=None)
    with context.begin_transaction():
        context.run_migrations()
'''

_ASYNC_ENV = '''\
import asyncio

from alembic import context
from sqlalchemy import pool
from sqlalchemy.ext.asyncio import async_engine_from_config

config = context.config


def do_run_migrations(connection):
    context.configure(connection=connection, target_metadata=None)
    with context.begin_transaction():
        context.run_migrations()


async def run_async_migrations():
    connectable = async_engine_from_config(
        config.get_section(config.config_ini_section, {}),
        prefix="sqlalchemy.",
        poolclass=pool.NullPool,
    )
    async with connectable.connect() as connection:
        await connection.run_sync(do_run_migrations)
    await connectable.dispose()


asyncio.run(run_async_migrations())
'''

_FLASK_ENV = '''\
import logging

from alembic import context
from flask import current_app

config = context.config
logger = logging.getLogger("alembic.env")


def get_engine():
    try:
        return current_app.extensions["migrate"].db.get_engine()
    except (TypeError, AttributeError):
        return current_app.extensions["migrate"].db.engine


config.set_main_option(
    "sqlalchemy.url", get_engine().url.render_as_string(hide_password=False).replace("%", "%%")
)
target_db = current_app.extensions["migrate"].db

with get_engine().connect() as connection:
    context.configure(connection=connection, target_metadata=target_db.metadata)
    with context.begin_transaction():
        context.run_migrations()
'''

_SETTINGS_MODULE_ENV = '''\
from alembic import context
from sqlalchemy import create_engine, pool

from appsettings import DATABASE_URL

engine = create_engine(DATABASE_URL, poolclass=pool.NullPool)
with engine.connect() as connection:
    context.configure(connection=connection, target_metadata=None)
    with context.begin_transaction():
        context.run_migrations()
'''

SETTINGS_MODULE = f'''\
"""The application's settings, read once when first imported."""
import os

DATABASE_URL = os.environ["{APP_URL_NAME}"]
'''


def cookbook_env(options: str = "", setup: str = "") -> str:
    """The cookbook env.py with ``options`` added to ``context.configure()`` and the statement
    ``setup`` run on the connection ahead of it (a ``CREATE SCHEMA`` the version table needs)."""
    # begin() rather than commit(): a legacy SQLAlchemy 1.4 connection has no commit()
    setup_line = (f"    with connection.begin():\n        connection.exec_driver_sql({setup!r})\n"
                  if setup else "")
    return _COOKBOOK_ENV.format(options=options, setup=setup_line)


ENV_SHAPES = {
    "cookbook": cookbook_env(),
    "per_migration": cookbook_env(", transaction_per_migration=True"),
    "generic": _GENERIC_ENV,
    "env_var": _ENV_VAR_ENV,
    "engine": _ENGINE_ENV,
    "async": _ASYNC_ENV,
    "flask": _FLASK_ENV,
    "settings_module": _SETTINGS_MODULE_ENV,
    "custom_version_table": cookbook_env(
        ', version_table="revisions", version_table_schema="meta"',
        setup="CREATE SCHEMA IF NOT EXISTS meta",
    ),
}

_SCRIPT_MAKO = '''\
"""${message}

Revision ID: ${up_revision}
Revises: ${down_revision | comma,n}
"""
from alembic import op
import sqlalchemy as sa
${imports if imports else ""}
revision = ${repr(up_revision)}
down_revision = ${repr(down_revision)}
branch_labels = ${repr(branch_labels)}
depends_on = ${repr(depends_on)}


def upgrade():
    ${upgrades if upgrades else "pass"}


def downgrade():
    ${downgrades if downgrades else "pass"}
'''

_INI = """\
[alembic]
script_location = %(here)s/migrations
path_separator = os
{extra}
"""


def make_project(
    root: str | Path,
    revisions: Iterable[Rev],
    env: str = "cookbook",
    env_py: str | None = None,
    url: str | None = None,
    ini_options: Mapping[str, str] | None = None,
    files: Mapping[str, str] | None = None,
) -> Path:
    """Write an Alembic project under ``root`` and return its ``alembic.ini``.

    ``env`` names one of :data:`ENV_SHAPES`; ``env_py`` replaces it with literal source (for
    broken or unusual env.py files). ``url`` becomes ``sqlalchemy.url`` in alembic.ini,
    ``ini_options`` further lines of its ``[alembic]`` section (``prepend_sys_path``), and
    ``files`` are written under ``root`` by relative path (the application's own code).
    """
    root = Path(root)
    migrations = root / "migrations"
    versions = migrations / "versions"
    versions.mkdir(parents=True, exist_ok=True)
    options = dict(ini_options or {})
    if url:
        options["sqlalchemy.url"] = url
    ini = root / "alembic.ini"
    ini.write_text(_INI.format(extra="\n".join(f"{k} = {v}" for k, v in options.items())))
    (migrations / "env.py").write_text(env_py if env_py is not None else ENV_SHAPES[env])
    (migrations / "script.py.mako").write_text(_SCRIPT_MAKO)
    for name, source in (files or {}).items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(source)
    for rev in revisions:
        write_revision(versions, rev)
    return ini


def write_revision(versions: Path, rev: Rev) -> Path:
    """Write one revision file; tests that grow a history after loading it use this directly."""
    upgrade = rev.upgrade if rev.upgrade is not None else (
        f'op.create_table("{rev.table()}", sa.Column("id", sa.Integer, primary_key=True))'
    )
    downgrade = rev.downgrade if rev.downgrade is not None else f'op.drop_table("{rev.table()}")'
    source = (
        f'"""Revision {rev.id}."""\n'
        "from alembic import op\n"
        "import sqlalchemy as sa\n\n"
        f"revision = {rev.id!r}\n"
        f"down_revision = {_ids(rev.down)!r}\n"
        f"branch_labels = {_ids(rev.branch_labels)!r}\n"
        f"depends_on = {_ids(rev.depends_on)!r}\n\n\n"
        f"def upgrade():\n{_body(upgrade)}\n\n"
        f"def downgrade():\n{_body(downgrade)}"
    )
    path = versions / f"{rev.id}_.py"
    path.write_text(source)
    return path


def _ids(value: RevIds) -> str | tuple[str, ...] | None:
    # Alembic accepts a string or a tuple; a list would be accepted too but is not what
    # `alembic revision` writes, so keep files looking like real ones.
    if isinstance(value, Sequence) and not isinstance(value, str):
        return tuple(value)
    return value


def _body(code: str) -> str:
    return textwrap.indent(textwrap.dedent(code).strip() or "pass", "    ") + "\n"

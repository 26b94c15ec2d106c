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
"""

from __future__ import annotations

import textwrap
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence

ENV_VAR_NAME = "HARNESS_TEST_MIGRATION_URL"

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
    context.configure(connection=connection, target_metadata=None{options})
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

ENV_SHAPES = {
    "cookbook": _COOKBOOK_ENV.format(options=""),
    "per_migration": _COOKBOOK_ENV.format(options=", transaction_per_migration=True"),
    "generic": _GENERIC_ENV,
    "env_var": _ENV_VAR_ENV,
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
{url_line}
"""


def make_project(
    root: str | Path,
    revisions: Iterable[Rev],
    env: str = "cookbook",
    env_py: str | None = None,
    url: str | None = None,
) -> Path:
    """Write an Alembic project under ``root`` and return its ``alembic.ini``.

    ``env`` names one of :data:`ENV_SHAPES`; ``env_py`` replaces it with literal source (for
    broken or unusual env.py files). ``url`` becomes ``sqlalchemy.url`` in alembic.ini.
    """
    root = Path(root)
    migrations = root / "migrations"
    versions = migrations / "versions"
    versions.mkdir(parents=True, exist_ok=True)
    ini = root / "alembic.ini"
    ini.write_text(_INI.format(url_line=f"sqlalchemy.url = {url}" if url else ""))
    (migrations / "env.py").write_text(env_py if env_py is not None else ENV_SHAPES[env])
    (migrations / "script.py.mako").write_text(_SCRIPT_MAKO)
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

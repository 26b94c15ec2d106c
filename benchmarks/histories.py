"""Generated linear Alembic histories over a growing schema, for the benchmarks.

Revision ``i`` does one of four things in turn, each with an exact downgrade, so a sweep finds
nothing and every measured second is checking, not reporting: create a table (with a foreign key
to the previous one), add a column to the newest table, index it, add a check constraint. A
history of ``n`` revisions ends with ``n / 4`` tables, so later revisions run on a larger schema,
as in a real project. The env.py takes what it is handed, as both tools hand different things.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

ENV_PY = '''\
from alembic import context
from sqlalchemy import engine_from_config, pool
from sqlalchemy.engine import Connection

config = context.config


def run(connection):
    context.configure(connection=connection, target_metadata=None)
    with context.begin_transaction():
        context.run_migrations()


# The harness hands in a connection; pytest-alembic an engine, or a connection dressed as one.
connectable = config.attributes.get("connection", None)
if connectable is None:
    connectable = engine_from_config(
        config.get_section(config.config_ini_section, {}), prefix="sqlalchemy.", poolclass=pool.NullPool
    )
if isinstance(connectable, Connection):
    run(connectable)
else:
    with connectable.connect() as connection:
        run(connection)
'''

INI = """\
[alembic]
script_location = %(here)s/migrations
path_separator = os
"""


def revision_id(i: int) -> str:
    return f"r{i:04d}"


def bodies(i: int) -> tuple[str, str]:
    """The upgrade and downgrade of revision ``i`` (1-based); table ``t<k>`` is made at 4k+1."""
    table = f"t{(i - 1) // 4}"
    kind = (i - 1) % 4
    if kind == 0:
        k = (i - 1) // 4
        parent = f', sa.Column("parent_id", sa.Integer, sa.ForeignKey("t{k - 1}.id"))' if k else ""
        return (
            f'op.create_table("{table}", sa.Column("id", sa.Integer, primary_key=True), '
            f'sa.Column("name", sa.Text, nullable=False, server_default=""){parent})',
            f'op.drop_table("{table}")',
        )
    if kind == 1:
        return (f'op.add_column("{table}", sa.Column("c{i}", sa.Integer))',
                f'op.drop_column("{table}", "c{i}")')
    if kind == 2:
        return (f'op.create_index("ix{i}", "{table}", ["c{i - 1}"])', f'op.drop_index("ix{i}", "{table}")')
    # A CHECK every integer meets: the sweep fills c with negative values before the upgrade.
    return (f'op.create_check_constraint("ck{i}", "{table}", "c{i - 2} >= -2147483648")',
            f'op.drop_constraint("ck{i}", "{table}", type_="check")')


def write_history(root: Path, revisions: int) -> Path:
    """A project with ``revisions`` linear revisions under ``root``; returns its alembic.ini."""
    versions = root / "migrations" / "versions"
    versions.mkdir(parents=True, exist_ok=True)
    (root / "alembic.ini").write_text(INI)
    (root / "migrations" / "env.py").write_text(ENV_PY)
    for i in range(1, revisions + 1):
        upgrade, downgrade = bodies(i)
        down = repr(revision_id(i - 1)) if i > 1 else "None"
        (versions / f"{revision_id(i)}_.py").write_text(textwrap.dedent(f'''\
            """Generated revision {i}."""
            from alembic import op
            import sqlalchemy as sa

            revision = {revision_id(i)!r}
            down_revision = {down}
            branch_labels = None
            depends_on = None


            def upgrade():
                {upgrade}


            def downgrade():
                {downgrade}
            '''))
    return root / "alembic.ini"

"""The harness's own env.py, for projects whose env.py cannot run outside their application.

Many env.py files need the application to be running: Flask-Migrate's reads
``current_app.extensions["migrate"]``, others import a settings module that wants secrets,
queues or a configured framework. None of that matters to the revision files themselves, which
only need ``op`` and a connection. With ``env = "builtin"`` the harness runs the project's
revision files through :func:`run_migrations` instead, on its own connection, keeping what the
project's env.py would have configured and the harness can be told: the version table's name and
schema, and whether each migration gets its own transaction.

Everything else a project's env.py may pass to ``context.configure()`` (``target_metadata``,
``include_schemas``, ``compare_type``, ...) steers autogenerate or offline SQL, so the built-in
env leaves it out; the ``models`` property then takes the metadata from the ``target_metadata``
setting.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from alembic.runtime.environment import EnvironmentContext
    from sqlalchemy.engine import Connection


def run_migrations(
    environment: EnvironmentContext,
    connection: Connection,
    *,
    version_table: tuple[str, str],
    transaction_per_migration: bool,
) -> None:
    """What a minimal online env.py does, on ``connection`` (idle, outside any transaction).

    ``version_table`` is ``(schema, table)``. A version table outside ``public`` lives in a
    schema the project's env.py usually creates before configuring Alembic (Alembic creates the
    table, never the schema), so the built-in env creates it too.
    """
    schema, table = version_table
    if schema != "public":
        quoted = connection.dialect.identifier_preparer.quote(schema)
        with connection.begin():  # on legacy and 2.0-style connections alike
            connection.exec_driver_sql(f"CREATE SCHEMA IF NOT EXISTS {quoted}")
    environment.configure(
        connection=connection,
        version_table=table,
        version_table_schema=None if schema == "public" else schema,
        transaction_per_migration=transaction_per_migration,
    )
    with environment.begin_transaction():
        environment.run_migrations()

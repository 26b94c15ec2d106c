"""Alembic environment: migrate the connection a caller hands in, or the DATABASE_URL database."""

import os
from logging.config import fileConfig

from alembic import context
from sqlalchemy import create_engine, pool

config = context.config
handed_in = config.attributes.get("connection")

# A caller that hands in its connection (a test, the harness) owns the process's logging.
if config.config_file_name is not None and handed_in is None:
    fileConfig(config.config_file_name, disable_existing_loggers=False)


def database_url(offline: bool = False) -> str:
    url = os.environ.get("DATABASE_URL")
    if url:
        return url
    if offline:
        # --sql output only needs the dialect, so no database is required to render it.
        return "postgresql://"
    raise RuntimeError(
        "DATABASE_URL is not set; export it, e.g. "
        "DATABASE_URL=postgresql://user@host:5432/dbname alembic upgrade head"
    )


def run_migrations(connection) -> None:
    context.configure(connection=connection, target_metadata=None)
    with context.begin_transaction():
        # ALTER TABLE, CREATE POLICY and friends take ACCESS EXCLUSIVE locks on live tables:
        # behind a long reader they would queue every query on the table while they wait.
        # Failing fast and retrying the deploy is the lesser harm.
        context.execute("SET LOCAL lock_timeout = '5s'")
        context.run_migrations()


if context.is_offline_mode():
    context.configure(
        url=database_url(offline=True),
        target_metadata=None,
        literal_binds=True,
        dialect_opts={"paramstyle": "named"},
    )
    with context.begin_transaction():
        context.run_migrations()
elif handed_in is not None:
    run_migrations(handed_in)
else:
    with create_engine(database_url(), poolclass=pool.NullPool).connect() as connection:
        run_migrations(connection)

"""The SQLAlchemy connection a migration runs on, the same on SQLAlchemy 1.4 and 2.x.

Migrations run on the connection style their project's stack gives them (legacy on 1.4), so
the harness's own reads and resets on that connection must work on both styles: explicit
``begin()`` rather than ``commit()``, and the driver's own autocommit for single round trips.
"""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING, Iterator

import psycopg
import sqlalchemy as sa
from sqlalchemy.engine import make_url

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

SQLALCHEMY_2 = int(sa.__version__.split(".")[0]) >= 2


def driver_of(conn: Connection) -> object:
    """The driver's own connection under a SQLAlchemy one."""
    return conn.connection.dbapi_connection


def in_autocommit(conn: Connection, statement: str) -> list[tuple] | None:
    """The rows of ``statement`` run in one round trip, in the driver's autocommit mode; of
    its last statement, if it holds several.

    None, with nothing run, where that cannot be done: inside a transaction, or with a driver
    that has no autocommit switch. The driver's errors are raised as they are.
    """
    driver = driver_of(conn)
    if conn.in_transaction() or not hasattr(driver, "autocommit"):
        return None
    driver.autocommit = True
    try:
        with contextlib.closing(driver.cursor()) as cursor:
            cursor.execute(statement)
            # psycopg 3 stands on the first statement's result (psycopg2 keeps only the last)
            while isinstance(driver, psycopg.Connection) and cursor.nextset():
                pass
            return cursor.fetchall() if cursor.description else []
    finally:
        driver.autocommit = False


@contextlib.contextmanager
def ended(conn: Connection) -> Iterator[None]:
    """Read in a transaction rolled back at the end, so the session is left idle.

    An explicit ``begin()`` works on legacy and 2.0-style connections alike; on a legacy one it
    also ends what a run left uncommitted without autocommit, which the end of the connection
    would have rolled back under plain ``alembic``.
    """
    transaction = conn.begin()
    try:
        yield
    finally:
        transaction.rollback()


def sync_url(url: str) -> str:
    """``url`` with a sync driver, for the connection the harness owns and hands to env.py.

    An async project's env.py runs its migrations through ``run_sync()`` on a sync connection,
    so the one handed to it must be sync too.
    """
    parsed = make_url(url)
    if parsed.get_dialect().is_async:
        parsed = parsed.set(drivername=f"postgresql+{default_driver()}")
    return parsed.render_as_string(hide_password=False)


def default_driver() -> str:
    """psycopg 3 where SQLAlchemy supports it (2.0+), else psycopg2 as 1.4 expects."""
    return "psycopg" if SQLALCHEMY_2 else "psycopg2"

"""What every PostgreSQL backend offers: scratch databases, created fast and always dropped.

Scratch databases are the only databases the harness ever creates, changes or drops. Their
names start with ``harness_`` and carry the creating process id, and each is commented with its
owner (host and pid) so that a janitor can recognise what a killed run left behind without ever
touching a database it did not create.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import secrets
import socket
import threading
import time
from typing import Iterator
from urllib.parse import quote, urlsplit, urlunsplit

import psycopg
from psycopg import sql

from ..errors import ServerError
from . import roles
from .role_ledger import RoleLedger

SCRATCH_PREFIX = "harness_"


@dataclasses.dataclass(frozen=True)
class Database:
    """One scratch database: its name and a libpq URL that reaches it as the superuser."""

    name: str
    dsn: str
    roles: RoleLedger | None = dataclasses.field(default=None, compare=False, repr=False)
    """The server's ledger of the roles each scratch database's migrations made."""

    def sqlalchemy_url(self, driver: str = "psycopg") -> str:
        """The same URL for SQLAlchemy with ``driver`` (psycopg, psycopg2, asyncpg, ...)."""
        scheme = "postgresql" if not driver else f"postgresql+{driver}"
        return scheme + self.dsn[len("postgresql"):]

    def __str__(self) -> str:
        return redact(self.dsn)


class Server:
    """A PostgreSQL server the harness may create scratch databases on.

    Subclasses provide :meth:`dsn` and :meth:`close`; everything about scratch databases lives
    here so the three backends behave identically.
    """

    version: int
    """The server's major version."""

    def __init__(self) -> None:
        self._admin: psycopg.Connection | None = None
        self._lock = threading.Lock()
        self._created: set[str] = set()
        self.roles = RoleLedger(lambda: self.admin, lambda: not roles.others_running(
            self.admin, self._created, SCRATCH_PREFIX))

    def dsn(self, dbname: str = "postgres") -> str:
        """A libpq URL for ``dbname`` as a role allowed to create databases."""
        raise NotImplementedError

    def close(self) -> None:
        """Drop every scratch database this process still has, then release the server."""
        self.drop_all()
        if self._admin is not None:
            self._admin.close()
            self._admin = None

    def __enter__(self) -> Server:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def admin(self) -> psycopg.Connection:
        """The one autocommit connection through which databases are created and dropped."""
        if self._admin is None or self._admin.closed:
            self._admin = connect(self._admin_dsn())
            self.version = self._admin.info.server_version // 10000
        return self._admin

    def _admin_dsn(self) -> str:
        return self.dsn("postgres")

    def create_database(self, template: str | None = None) -> Database:
        """A new empty scratch database, or a copy of ``template`` (another scratch database)."""
        name = f"{SCRATCH_PREFIX}{os.getpid()}_{secrets.token_hex(4)}"
        statement = sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(
            sql.Identifier(name), sql.Identifier(template or "template0")
        )
        if self.admin.info.server_version >= 150000:
            # FILE_COPY copies the directory instead of WAL-logging every block: about 10 ms
            # against 15+ ms for a small template, and the checkpoint it forces is cheap here.
            statement = statement + sql.SQL(" STRATEGY FILE_COPY")
        with self._lock:
            if template is not None:
                # Sessions just closed on it (a trial's, going on on the copy) would make the copy
                # wait, as a drop would.
                self._wait_for_sessions_to_end(template)
            try:
                self.admin.execute(statement)
            except psycopg.errors.InsufficientPrivilege as exc:
                raise ServerError(
                    f"cannot create scratch database on {redact(self._admin_dsn())}: {exc}".strip(),
                    hint="connect as a role with CREATEDB",
                ) from None
            except psycopg.errors.ObjectInUse:
                raise ServerError(
                    f"cannot copy {template}: another session is connected to it",
                    hint="close connections to a template database before cloning it",
                ) from None
            self._created.add(name)
            if template is not None:
                self.roles.copied(template, name)
            owner = json.dumps({"host": socket.gethostname(), "pid": os.getpid()})
            self.admin.execute(
                sql.SQL("COMMENT ON DATABASE {} IS {}").format(
                    sql.Identifier(name), sql.Literal(f"harness scratch {owner}")
                )
            )
        return Database(name=name, dsn=self.dsn(name), roles=self.roles)

    def drop_database(self, name: str) -> None:
        """Drop a scratch database, disconnecting whoever is still on it."""
        if not name.startswith(SCRATCH_PREFIX):
            raise ServerError(f"refusing to drop {name!r}: not a harness scratch database")
        force = sql.SQL(" WITH (FORCE)") if self.admin.info.server_version >= 130000 else sql.SQL("")
        with self._lock:
            self._wait_for_sessions_to_end(name)
            self.admin.execute(
                sql.SQL("DROP DATABASE IF EXISTS {}").format(sql.Identifier(name)) + force
            )
            self._created.discard(name)
            self.roles.dropped(name)

    def _wait_for_sessions_to_end(self, name: str) -> None:
        """Give the sessions just closed on ``name`` a moment to end.

        A session whose client has gone still takes a moment to exit, and ``DROP DATABASE``
        (or ``CREATE DATABASE`` copying it) that finds one waits for it in steps of 100 ms: a
        tenth of a second per example of a walk, most of what a shrink attempt costs. Polling
        for a few milliseconds first makes the drop or the copy immediate; sessions still there
        after that are ended by ``FORCE`` (a drop) or waited for (a copy).
        """
        delay = 0.0005
        while delay < 0.05 and self.admin.execute(
            "SELECT EXISTS (SELECT FROM pg_stat_activity WHERE datname = %s)", (name,)
        ).fetchone()[0]:
            time.sleep(delay)
            delay *= 2

    def scratch_names(self) -> set[str]:
        """The scratch databases this object created and has not dropped yet."""
        return set(self._created)

    def drop_all(self) -> None:
        """Drop every scratch database this object created and has not dropped yet."""
        if self._admin is None or self._admin.closed:
            return
        for name in sorted(self._created):
            with contextlib.suppress(psycopg.Error):
                self.drop_database(name)

    @contextlib.contextmanager
    def scratch(self, template: str | None = None) -> Iterator[Database]:
        """A scratch database for the duration of the block, dropped even on errors."""
        database = self.create_database(template)
        try:
            yield database
        finally:
            self.drop_database(database.name)


def connect(dsn: str, **kwargs: object) -> psycopg.Connection:
    """An autocommit psycopg connection, with connection failures as one-line ServerErrors."""
    try:
        return psycopg.connect(dsn, autocommit=True, connect_timeout=10, **kwargs)
    except psycopg.OperationalError as exc:
        reason = str(exc).strip().splitlines()[-1] if str(exc).strip() else type(exc).__name__
        raise ServerError(
            f"cannot connect to PostgreSQL at {redact(dsn)}: {reason}",
            hint="check that the server runs and the URL is right, or omit the URL to let "
            "the harness start its own server",
        ) from None


def redact(dsn: str) -> str:
    """``dsn`` with any password replaced, for messages and logs."""
    parts = urlsplit(dsn)
    if parts.password is None:
        return dsn
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return urlunsplit(parts._replace(netloc=netloc))


def libpq_url(user: str, host: str, port: int, dbname: str, password: str | None = None) -> str:
    """A ``postgresql://`` URL usable by psycopg, SQLAlchemy (after a driver) and people."""
    auth = quote(user, safe="")
    if password is not None:
        auth += ":" + quote(password, safe="")
    return f"postgresql://{auth}@{host}:{port}/{quote(dbname, safe='')}"

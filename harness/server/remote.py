"""An existing PostgreSQL server reached by an explicit URL.

The harness only creates and drops its own scratch databases there. The database named in the
URL is used for nothing but the administrative connection (CREATE/DROP DATABASE of our own).
"""

from __future__ import annotations

import sys
from urllib.parse import urlsplit, urlunsplit

from ..errors import ServerError
from . import janitor, roles
from .base import SCRATCH_PREFIX, Server, connect


class UrlServer(Server):
    """A server someone else runs; the URL's driver suffix (``+psycopg2``) is ignored."""

    def __init__(self, url: str) -> None:
        super().__init__()
        parts = urlsplit(url)
        scheme = parts.scheme.split("+", 1)[0]
        if scheme not in ("postgresql", "postgres"):
            raise ServerError(
                f"database URL must start with postgresql://, not {parts.scheme}://",
                hint="e.g. postgresql://user:password@host:5432/postgres",
            )
        self._url = urlunsplit(parts._replace(scheme="postgresql"))
        self._maintenance_db = parts.path.lstrip("/") or "postgres"
        connect(self._url).close()
        janitor.drop_stale_databases(self)
        self._roles_before = roles.role_names(self.admin)

    def close(self) -> None:
        """Drop the scratch databases, then the roles their migrations left in the cluster."""
        ours = self.scratch_names()
        super().close()
        try:
            with connect(self._admin_dsn()) as conn:
                roles.drop_new_roles(conn, self._roles_before, ours, SCRATCH_PREFIX)
        except ServerError as exc:
            print(f"harness: roles created by the run may be left on the server: {exc}", file=sys.stderr)

    def dsn(self, dbname: str = "postgres") -> str:
        parts = urlsplit(self._url)
        return urlunsplit(parts._replace(path="/" + dbname))

    def _admin_dsn(self) -> str:
        return self.dsn(self._maintenance_db)

"""PostgreSQL in a Docker container through testcontainers, for machines with a Docker daemon."""

from __future__ import annotations

import contextlib

from ..errors import ServerError
from .base import Server, libpq_url


class ContainerServer(Server):
    """``postgres:<version>`` started by testcontainers and removed on close."""

    def __init__(self, version: int | None) -> None:
        super().__init__()
        try:
            from testcontainers.community.postgres import PostgresContainer
        except ImportError:
            PostgresContainer = _older_testcontainers()
        if PostgresContainer is None:
            raise ServerError(
                "the container server needs testcontainers",
                hint="pip install 'alembic-harness[containers]', or use the embedded server (the default)",
            ) from None
        try:
            self._container = PostgresContainer(f"postgres:{version or 'latest'}", driver=None)
            self._container.start()
        except Exception as exc:  # docker's own exception types vary by version
            raise ServerError(
                f"no Docker daemon reachable for the container server ({type(exc).__name__})",
                hint="start Docker, or use the embedded server (the default) or --database-url",
            ) from None
        self._host = self._container.get_container_host_ip()
        self._port = int(self._container.get_exposed_port(5432))
        self._user = self._container.username
        self._password = self._container.password

    def dsn(self, dbname: str = "postgres") -> str:
        return libpq_url(self._user, self._host, self._port, dbname, self._password)

    def close(self) -> None:
        with contextlib.suppress(Exception):
            super().close()
        with contextlib.suppress(Exception):
            self._container.stop()


def _older_testcontainers() -> type | None:
    """testcontainers before 4.14 kept the module at the top level."""
    try:
        from testcontainers.postgres import PostgresContainer
    except ImportError:
        return None
    return PostgresContainer

"""Fixtures every test of the harness shares: one real PostgreSQL per test session.

The server is the harness's own embedded one, so these tests need nothing but PostgreSQL's
programs on the machine; if they are missing the session fails loudly rather than skipping.
"""

from __future__ import annotations

from typing import Iterator

import psycopg
import pytest

from harness.server import Database, Server, open_server
from harness.settings import Settings


@pytest.fixture(scope="session")
def pg_server() -> Iterator[Server]:
    with open_server(Settings()) as server:
        yield server


@pytest.fixture
def scratch_db(pg_server: Server) -> Iterator[Database]:
    with pg_server.scratch() as database:
        yield database


@pytest.fixture
def pg_conn(scratch_db: Database) -> Iterator[psycopg.Connection]:
    with psycopg.connect(scratch_db.dsn, autocommit=True) as conn:
        yield conn

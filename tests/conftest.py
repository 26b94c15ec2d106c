"""Fixtures every test of the harness shares: one real PostgreSQL per test session.

The server is the harness's own embedded one, so these tests need nothing but PostgreSQL's
programs on the machine; if they are missing the session fails loudly rather than skipping.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Iterator

import psycopg
import pytest

import harness
from harness.server import Database, Server, open_server
from harness.settings import Settings

SOURCE_TREE = Path(__file__).resolve().parent.parent


def pytest_report_header() -> str:
    return f"harness imported from {Path(harness.__file__).parent}"


def pytest_sessionstart(session: pytest.Session) -> None:
    """Under tox the tests must exercise the installed wheel, not the checkout beside them."""
    imported = Path(harness.__file__).resolve().parent
    if os.environ.get("HARNESS_TEST_INSTALLED") and imported == SOURCE_TREE / "harness":
        pytest.exit(f"harness was imported from the checkout ({imported}), not the installed wheel", 2)


@pytest.fixture(scope="session")
def pg_server() -> Iterator[Server]:
    """The newest PostgreSQL found, or the major version in $HARNESS_TEST_PG_VERSION (the
    corpus is run on 15 and 18 that way)."""
    with open_server(Settings(pg_version=int(os.environ.get("HARNESS_TEST_PG_VERSION", "0")) or None)) as server:
        yield server


@pytest.fixture
def scratch_db(pg_server: Server) -> Iterator[Database]:
    with pg_server.scratch() as database:
        yield database


@pytest.fixture
def pg_conn(scratch_db: Database) -> Iterator[psycopg.Connection]:
    with psycopg.connect(scratch_db.dsn, autocommit=True) as conn:
        yield conn

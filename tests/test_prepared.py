"""Statements prepared once per session, and planned ahead on a new one (harness.prepared)."""

from __future__ import annotations

import psycopg
import pytest

from harness.prepared import fetch_prepared, settle, warm

SETTINGS = "SELECT set_config('search_path', 'pg_catalog', true)"
LOOKUP = ("harness_test_ahead", "SELECT relname::text FROM pg_class WHERE relname = 'pg_class'")


def _plans(conn: psycopg.Connection, name: str) -> list[tuple[int]]:
    return conn.execute("SELECT generic_plans FROM pg_prepared_statements WHERE name = %s", (name,)).fetchall()


def test_a_statement_planned_ahead_is_ready_and_prepared_once(pg_conn: psycopg.Connection) -> None:
    """The thread prepares the statement and plans it without running it; the first use
    waits for the thread and runs that plan, with no second PREPARE."""
    warm(pg_conn, *LOOKUP, SETTINGS)
    settle(pg_conn)
    assert _plans(pg_conn, LOOKUP[0]) == [(1,)]
    assert fetch_prepared(pg_conn, [LOOKUP], SETTINGS) == [[("pg_class",)]]
    assert _plans(pg_conn, LOOKUP[0]) == [(2,)]


def test_a_first_use_waits_for_the_planning_under_way(pg_conn: psycopg.Connection) -> None:
    """Without settle(), the read itself waits for the thread: it neither prepares the
    statement a second time nor plans it again."""
    warm(pg_conn, *LOOKUP, SETTINGS)
    assert fetch_prepared(pg_conn, [LOOKUP], SETTINGS) == [[("pg_class",)]]
    assert _plans(pg_conn, LOOKUP[0]) == [(2,)]


def test_a_failed_planning_leaves_its_error_to_the_first_use(pg_conn: psycopg.Connection) -> None:
    missing = ("harness_test_missing", "SELECT * FROM public.no_such_table")
    warm(pg_conn, *missing, SETTINGS)
    with pytest.raises(psycopg.errors.UndefinedTable):
        fetch_prepared(pg_conn, [missing], SETTINGS)
    assert pg_conn.execute("SELECT 1").fetchone() == (1,)

"""Rows read by the change log: a reading after a step reads again exactly the tables the log
names, and every way a step can change rows lands in the log or makes the reading whole.

Each case changes rows once, the way a migration could, in a database with the change log; the
reading after it must equal a fresh capture of every row, and a table the change left alone must
not have been read again (its rows are the very value read before).
"""

from __future__ import annotations

import psycopg
import pytest

from harness.invariants.row_reader import RowReader, capture_rows
from harness.snapshot import install_tracking, take_snapshot

SCHEMA = """
CREATE TYPE mood AS ENUM ('calm', 'angry');
CREATE TABLE parent (id serial PRIMARY KEY, name text, feeling mood DEFAULT 'calm');
CREATE TABLE child (id serial PRIMARY KEY, parent_id int REFERENCES parent (id) ON DELETE CASCADE);
CREATE TABLE measure (at date NOT NULL, n int) PARTITION BY RANGE (at);
CREATE TABLE measure_2026 PARTITION OF measure FOR VALUES FROM ('2026-01-01') TO ('2027-01-01');
CREATE TABLE bystander (n int);
INSERT INTO parent (name) VALUES ('a'), ('b');
INSERT INTO child (parent_id) VALUES (1), (2);
INSERT INTO measure VALUES ('2026-05-01', 1);
INSERT INTO bystander VALUES (1);
"""

CHANGES = {
    "update": "UPDATE parent SET name = 'z' WHERE id = 1",
    "insert": "INSERT INTO parent (name) VALUES ('c')",
    "delete cascading to a child": "DELETE FROM parent WHERE id = 2",
    "truncate": "TRUNCATE child",
    "copy": "COPY child (parent_id) FROM PROGRAM 'echo 1'",
    "as a replica": "SET session_replication_role = replica; UPDATE child SET parent_id = NULL;"
                    "RESET session_replication_role",
    "into a partition directly": "INSERT INTO measure_2026 VALUES ('2026-06-01', 2)",
    "a column rewritten": "ALTER TABLE parent ALTER COLUMN name TYPE varchar(1) USING upper(name)",
    "an enum label renamed": "ALTER TYPE mood RENAME VALUE 'calm' TO 'serene'",
    "a table created with rows": "CREATE TABLE born AS SELECT 1 AS n",
    "a table created, then written": "CREATE TABLE born (n int); INSERT INTO born VALUES (7)",
    "a table renamed": "ALTER TABLE child RENAME TO kid",
    "a table dropped": "DROP TABLE child",
    "the log's trigger disabled, then rows written":
        "ALTER TABLE child DISABLE TRIGGER ALL; UPDATE child SET parent_id = NULL",
}

UNPLACED = {
    "a schema renamed": "CREATE SCHEMA app; ALTER TABLE child SET SCHEMA app; ALTER SCHEMA app RENAME TO app2",
    "a partition detached": "ALTER TABLE measure DETACH PARTITION measure_2026",
}
"""Changes the log cannot place: every table's digest is read instead."""


@pytest.fixture
def logged(pg_conn: psycopg.Connection) -> psycopg.Connection:
    pg_conn.execute(SCHEMA)
    assert install_tracking(pg_conn)
    return pg_conn


@pytest.mark.parametrize("change", [*CHANGES.values(), *UNPLACED.values()], ids=[*CHANGES, *UNPLACED])
def test_a_logged_reading_sees_every_change(logged: psycopg.Connection, change: str) -> None:
    reader = RowReader(exclude=(), logged=True)
    before, _ = reader.read(logged)
    logged.execute(change)
    after, _ = reader.read(logged)
    assert after == capture_rows(logged, exclude=())
    # Left alone either way: not named by the log, or its digest unchanged where the log cannot tell.
    assert after.tables["public", "bystander"] is before.tables["public", "bystander"]


@pytest.mark.parametrize(("disable", "write"), [
    ("ALTER TABLE child DISABLE TRIGGER ALL", "UPDATE child SET parent_id = NULL"),
    ("DROP TRIGGER harness_rows_written ON child", "UPDATE child SET parent_id = NULL"),
    ("ALTER TABLE measure_2026 DISABLE TRIGGER ALL", "INSERT INTO measure_2026 VALUES ('2026-07-01', 3)"),
], ids=["disabled", "dropped", "on a partition"])
def test_a_later_step_still_sees_writes_to_a_table_whose_trigger_a_step_disabled(
    logged: psycopg.Connection, disable: str, write: str,
) -> None:
    reader = RowReader(exclude=(), logged=True)
    reader.read(logged)
    logged.execute(disable)
    reader.read(logged)
    logged.execute(write)
    assert reader.read(logged)[0] == capture_rows(logged, exclude=())


def test_only_what_changed_is_read_again(logged: psycopg.Connection) -> None:
    """The log names the tables written; a table put back as it was is still read again (the
    log says it was written), and a table nobody wrote is not."""
    reader = RowReader(exclude=(), logged=True)
    first, _ = reader.read(logged)
    logged.execute("INSERT INTO bystander VALUES (2); DELETE FROM bystander WHERE n = 2")
    second, _ = reader.read(logged)
    assert second.tables["public", "bystander"] is not first.tables["public", "bystander"]
    assert second.tables["public", "parent"] is first.tables["public", "parent"]
    assert second == capture_rows(logged, exclude=())


def test_the_rows_log_is_not_part_of_the_schema(pg_conn: psycopg.Connection) -> None:
    pg_conn.execute(SCHEMA)
    plain = take_snapshot(pg_conn, None)
    assert install_tracking(pg_conn)
    pg_conn.execute("CREATE TABLE born (n int)")
    tracked = take_snapshot(pg_conn, None)
    pg_conn.execute("DROP TABLE born")
    assert take_snapshot(pg_conn, None) == plain
    assert not [key for key in tracked.objects if "harness" in key]

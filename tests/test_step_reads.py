"""What a trial reads around each step: read again exactly when the harness may have changed it."""

from __future__ import annotations

import psycopg

from harness.invariants.data import foreign_keys
from harness.invariants.row_reader import capture_rows
from harness.invariants.sequences import read_sequences
from harness.step_reads import StepReads

SCHEMA = """
CREATE TABLE parent (id serial PRIMARY KEY, name text);
CREATE TABLE child (id serial PRIMARY KEY, parent_id int REFERENCES parent (id));
CREATE TABLE audit (n int);
CREATE FUNCTION audit_child() RETURNS trigger LANGUAGE plpgsql AS
    $$ BEGIN INSERT INTO audit VALUES (NEW.id); RETURN NEW; END $$;
CREATE TRIGGER audit_child AFTER INSERT ON child FOR EACH ROW EXECUTE FUNCTION audit_child();
INSERT INTO parent (name) VALUES ('a'), ('b');
"""


def _matches(reading, conn: psycopg.Connection) -> bool:
    return reading.rows == capture_rows(conn, exclude=()) and reading.sequences == read_sequences(conn)


def test_a_reading_is_reused_until_the_harness_writes(pg_conn: psycopg.Connection) -> None:
    pg_conn.execute(SCHEMA)
    reads = StepReads(pg_conn, exclude=())
    first = reads.now()
    assert _matches(first, pg_conn)
    assert reads.now() is first
    # Foreign keys asked for later are read then, with the rows kept.
    with_keys = reads.now(foreign_keys=True)
    assert with_keys.rows is first.rows and with_keys.foreign_keys == foreign_keys(pg_conn)
    # A write hinted at one table is read whole, also where a trigger of it wrote elsewhere.
    reads.inserted({("public", "child")})
    pg_conn.execute("INSERT INTO child (parent_id) VALUES (1)")
    after = reads.now()
    assert _matches(after, pg_conn)
    assert after.rows.tables["public", "audit"].rows == (("1",),)


def test_sequences_drawn_are_read_again_with_the_rows_kept(pg_conn: psycopg.Connection) -> None:
    pg_conn.execute(SCHEMA)
    reads = StepReads(pg_conn, exclude=())
    first = reads.now()
    # An isolation check's inserts are rolled back; the sequences they drew from stay advanced.
    with pg_conn.transaction(force_rollback=True):
        pg_conn.execute("INSERT INTO parent (name) VALUES ('c')")
    reads.drew()
    second = reads.now()
    assert second.rows is first.rows
    assert second.sequences != first.sequences and _matches(second, pg_conn)


def test_a_step_is_read_again_whole(pg_conn: psycopg.Connection) -> None:
    pg_conn.execute(SCHEMA)
    reads = StepReads(pg_conn, exclude=())
    reads.now()
    reads.migrated()
    pg_conn.execute("DROP TABLE audit CASCADE; ALTER TABLE parent ADD COLUMN n int DEFAULT 7;"
                    "UPDATE child SET parent_id = NULL")
    assert _matches(reads.now(), pg_conn)


def test_an_insert_whose_trigger_changed_tables_is_still_read_right(pg_conn: psycopg.Connection) -> None:
    """After the harness's inserts only the rows are expected to change; a trigger that drops or
    creates a table is caught by the table list read alongside."""
    pg_conn.execute(SCHEMA + """
    CREATE TABLE gone (n int); INSERT INTO gone VALUES (1);
    CREATE FUNCTION reshape() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN
        IF NEW.name = 'drop' THEN DROP TABLE gone; ELSE CREATE TABLE born (n int); END IF;
        RETURN NEW; END $$;
    CREATE TRIGGER reshape AFTER INSERT ON parent FOR EACH ROW EXECUTE FUNCTION reshape();
    """)
    reads = StepReads(pg_conn, exclude=())
    reads.now()
    for name in ("drop", "create"):
        reads.inserted({("public", "parent")})
        pg_conn.execute("INSERT INTO parent (name) VALUES (%s)", (name,))
        assert _matches(reads.now(), pg_conn)
    assert ("public", "born") in reads.now().rows.tables

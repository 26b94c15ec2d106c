"""What a trial reads around each step: read again exactly when the harness may have changed it."""

from __future__ import annotations

import psycopg

from harness.invariants.data import foreign_keys
from harness.invariants.row_reader import capture_rows
from harness.invariants.sequences import OWNED, read_sequences
from harness.server import Database
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
    """After the harness's inserts only the rows and the sequences' values are expected to
    change; a trigger that drops or creates a table, and the sequence its serial column owns, is
    caught by the table list and the list of sequences read alongside."""
    pg_conn.execute(SCHEMA + """
    CREATE TABLE gone (id serial, n int); INSERT INTO gone (n) VALUES (1);
    CREATE FUNCTION reshape() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN
        IF NEW.name = 'drop' THEN DROP TABLE gone; ELSE CREATE TABLE born (id serial, n int); END IF;
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


def test_after_the_harness_writes_only_the_sequences_values_are_read(
    pg_conn: psycopg.Connection, scratch_db: Database
) -> None:
    """Which column owns which sequence changes only with a migration step: after the harness's
    inserts and isolation checks the owners are not read again (their joins were the one read
    that grew with the history), the values are; after a step both are."""
    pg_conn.execute(SCHEMA)
    # What is there is read on a session of its own, which runs the statements counted here too.
    with psycopg.connect(scratch_db.dsn, autocommit=True) as other:
        reads = StepReads(pg_conn, exclude=())
        reads.now()
        owners_read = _runs(pg_conn, OWNED[0])
        reads.inserted({("public", "parent")})
        pg_conn.execute("INSERT INTO parent (name) VALUES ('c')")
        assert _matches(reads.now(), other)
        with pg_conn.transaction(force_rollback=True):
            pg_conn.execute("INSERT INTO child (parent_id) VALUES (1)")
        reads.drew()
        assert _matches(reads.now(), other)
        assert _runs(pg_conn, OWNED[0]) == owners_read
        reads.migrated()
        pg_conn.execute("ALTER SEQUENCE child_id_seq OWNED BY audit.n; ALTER SEQUENCE parent_id_seq INCREMENT 5")
        assert _matches(reads.now(), other)
        assert _runs(pg_conn, OWNED[0]) == owners_read + 1


def test_a_sequence_at_the_end_of_its_range_is_read(pg_conn: psycopg.Connection) -> None:
    """Its next value lies past bigint's range: the values are read as numeric from then on."""
    pg_conn.execute(SCHEMA + "CREATE TABLE big (id bigserial, n int);"
                    "SELECT setval('big_id_seq', 9223372036854775807)")
    reads = StepReads(pg_conn, exclude=())
    assert reads.now().sequences["public", "big", "id"].next_value == 2 ** 63
    reads.migrated()
    pg_conn.execute("ALTER TABLE big ADD COLUMN m int")
    assert _matches(reads.now(), pg_conn)


def _runs(conn: psycopg.Connection, name: str) -> int:
    """How many times the session ran its prepared statement ``name``."""
    return conn.execute("SELECT generic_plans + custom_plans FROM pg_prepared_statements WHERE name = %s",
                        (name,)).fetchone()[0]


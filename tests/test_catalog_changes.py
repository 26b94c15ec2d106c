"""A seeding catalog read again where the change log says tables changed is the whole read.

Each change below alters what seeding knows of a table that was already read: in place (a
column, a CHECK, a foreign key, a policy), through another object (a renamed parent, an enum
value, a domain's CHECK), or by what a drop takes with it. Read again with only the changed
tables, the catalog must equal a whole read, and differ from the one before (so the case can
fail when a change goes unseen).
"""

from __future__ import annotations

import psycopg
import pytest

from harness.seeding import read_catalog
from harness.seeding.catalog import read_tables
from harness.seeding.catalog_changes import changed_tables
from harness.snapshot import install_tracking

_BASE = """
CREATE TYPE mood AS ENUM ('calm', 'busy');
CREATE DOMAIN short_code AS text CHECK (length(VALUE) < 9);
CREATE TABLE parents (id serial PRIMARY KEY, name text NOT NULL);
CREATE TABLE children (
    id serial PRIMARY KEY, parent_id int REFERENCES parents (id), mood mood, code short_code,
    amount int, tenant text
);
CREATE TABLE loose (id int PRIMARY KEY, note text);
CREATE TABLE events (id int, at date NOT NULL) PARTITION BY RANGE (at);
CREATE DOMAIN mood_of_day AS mood;
CREATE TABLE diary (id int PRIMARY KEY, moods mood[], today mood_of_day);
"""

CHANGES = {
    "a column added": "ALTER TABLE children ADD COLUMN extra text NOT NULL DEFAULT ''",
    "a column dropped": "ALTER TABLE children DROP COLUMN amount",
    "a column's type changed": "ALTER TABLE children ALTER COLUMN amount TYPE bigint",
    "a CHECK added": "ALTER TABLE children ADD CONSTRAINT positive CHECK (amount > 0)",
    "a foreign key added": "ALTER TABLE loose ADD COLUMN parent_id int REFERENCES parents (id)",
    "a unique constraint added": "ALTER TABLE loose ADD CONSTRAINT one_note UNIQUE (note)",
    "a default added": "ALTER TABLE loose ALTER COLUMN note SET DEFAULT 'x'",
    "the parent renamed": "ALTER TABLE parents RENAME TO guardians",
    "the parent's key renamed": "ALTER TABLE parents RENAME COLUMN id TO parent_key",
    "the parent dropped with its foreign keys": "DROP TABLE parents CASCADE",
    "an enum value added": "ALTER TYPE mood ADD VALUE 'idle'",
    "an enum value added, seen through arrays and domains": "ALTER TABLE children DROP COLUMN mood;"
                                                           " ALTER TYPE mood ADD VALUE 'idle'",
    "an enum value renamed": "ALTER TYPE mood RENAME VALUE 'busy' TO 'hectic'",
    "a domain CHECK added": "ALTER DOMAIN short_code ADD CONSTRAINT two_codes CHECK (VALUE IN ('AB', 'CD'))",
    "a domain CHECK dropped": "ALTER DOMAIN short_code DROP CONSTRAINT short_code_check",
    "a type dropped with its columns": "DROP TYPE mood CASCADE",
    "a partition attached": "CREATE TABLE events_2024 (id int, at date NOT NULL);"
                            "ALTER TABLE events ATTACH PARTITION events_2024"
                            " FOR VALUES FROM ('2024-01-01') TO ('2025-01-01')",
    "a partition created": "CREATE TABLE events_2025 PARTITION OF events"
                           " FOR VALUES FROM ('2025-01-01') TO ('2026-01-01')",
    "a partition dropped": "CREATE TABLE events_2025 PARTITION OF events"
                           " FOR VALUES FROM ('2025-01-01') TO ('2026-01-01');"
                           "CREATE TABLE events_2026 PARTITION OF events"
                           " FOR VALUES FROM ('2026-01-01') TO ('2027-01-01')",
    "a table moved to another schema": "CREATE SCHEMA other; ALTER TABLE loose SET SCHEMA other",
    "a schema renamed": "CREATE SCHEMA kept; CREATE TABLE kept.t (id int); ALTER SCHEMA kept RENAME TO moved",
    "a column added unlogged": "ALTER EVENT TRIGGER harness_log_command DISABLE;"
                               " ALTER TABLE children ADD COLUMN extra int",
}


@pytest.mark.parametrize("change", CHANGES.values(), ids=CHANGES.keys())
def test_a_catalog_read_again_from_the_log_is_the_whole_read(pg_conn: psycopg.Connection, change: str) -> None:
    pg_conn.execute(_BASE)
    if "events_2026" in change:  # the partition to drop is there before the catalog is read
        pg_conn.execute(change)
        change = "DROP TABLE events_2026"
    assert install_tracking(pg_conn)
    before = read_tables(pg_conn)
    _, last = changed_tables(pg_conn, None)
    pg_conn.execute(change)
    changed, _ = changed_tables(pg_conn, last)
    again = read_tables(pg_conn, kept=before if changed is not None else None, changed=changed or ())
    assert again.catalog == read_catalog(pg_conn)
    assert again.catalog != before.catalog


def test_only_what_the_log_names_is_read_again(pg_conn: psycopg.Connection) -> None:
    """A grant, a new function and a new type change no table: nothing is read again for
    them, nor is everything. A comment on a table reads it again, with the tables whose foreign
    keys refer to it (as after a rename, which the log names the same way)."""
    pg_conn.execute(_BASE)
    assert install_tracking(pg_conn)
    _, last = changed_tables(pg_conn, None)
    pg_conn.execute("GRANT SELECT ON loose TO PUBLIC; CREATE FUNCTION one() RETURNS int"
                    " LANGUAGE sql AS 'SELECT 1'; COMMENT ON TABLE parents IS 'people'")
    changed, _ = changed_tables(pg_conn, last)
    oids = dict(pg_conn.execute("SELECT relname, oid FROM pg_class WHERE relname IN"
                                " ('parents', 'children', 'loose', 'events')").fetchall())
    assert changed is not None
    assert {oids["parents"], oids["children"]} <= changed
    assert oids["loose"] not in changed and oids["events"] not in changed

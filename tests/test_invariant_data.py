"""Data preservation on a real PostgreSQL: what a step may and may not do to existing rows."""

from __future__ import annotations

from typing import Any

import psycopg
import pytest

from harness.errors import HarnessError
from harness.invariants.data import (
    AddedRows, check_round_trip, check_step, foreign_keys, rows_added,
)
from harness.invariants.row_reader import RowReader, capture_rows

EVENTS = """
CREATE TABLE events (id integer PRIMARY KEY, amount numeric(10,2), label varchar(20), seen boolean);
INSERT INTO events VALUES (1, 12.50, 'a', true), (2, 7.25, NULL, false), (3, 7.25, 'NULL', NULL);
CREATE TABLE ledger (id integer PRIMARY KEY, memo text);
INSERT INTO ledger VALUES (1, 'kept'), (2, 'kept too');
"""


def _tables(violations: list) -> set[str]:
    return {v.evidence["table"] for v in violations}


def _step(conn: psycopg.Connection, migration: str, **options: Any) -> list:
    conn.execute(EVENTS)
    before = capture_rows(conn)
    conn.execute(migration)
    after = capture_rows(conn)
    options.setdefault("direction", "upgrade")
    options.setdefault("revision", "0003")
    return check_step(before, after, **options)


STEPS = [
    # (id, migration, tables reported): rows lost or rewritten count, rows added do not
    ("policy-grant-index-view", """
        GRANT SELECT ON events TO PUBLIC;
        ALTER TABLE events ENABLE ROW LEVEL SECURITY;
        CREATE POLICY p ON events USING (true);
        CREATE INDEX ON events (amount);
        CREATE VIEW v AS SELECT * FROM events;
        CREATE FUNCTION f() RETURNS int LANGUAGE sql AS 'SELECT 1';
        """, set()),
    ("delete-untouched", "DELETE FROM ledger WHERE id = 2", {"public.ledger"}),
    ("reference-rows-inserted", "INSERT INTO ledger VALUES (3, 'new')", set()),
    ("update-untouched", "UPDATE events SET seen = NOT seen", {"public.events"}),
    ("add-column", "ALTER TABLE events ADD COLUMN note text DEFAULT 'x'", set()),
    ("drop-column", "ALTER TABLE events DROP COLUMN label", set()),
    ("widen-types", """
        ALTER TABLE events ALTER COLUMN id TYPE bigint, ALTER COLUMN amount TYPE numeric(12,4),
                           ALTER COLUMN label TYPE text
        """, set()),
    ("narrow-numeric", "ALTER TABLE events ALTER COLUMN amount TYPE integer", {"public.events"}),
    ("delete-touched", """
        ALTER TABLE events ADD COLUMN note text; DELETE FROM events WHERE id = 3
        """, {"public.events"}),
    ("seed-touched", """
        ALTER TABLE ledger ADD COLUMN kind text; INSERT INTO ledger VALUES (9, 'seed', 'system')
        """, set()),
    ("create-and-drop-tables", "DROP TABLE ledger; CREATE TABLE fresh AS SELECT 1 AS x", set()),
    ("rename-column", "ALTER TABLE events RENAME COLUMN label TO title", set()),
]


@pytest.mark.parametrize(("migration", "expected"),
                         [s[1:] for s in STEPS], ids=[s[0] for s in STEPS])
def test_step(pg_conn: psycopg.Connection, migration: str, expected: set[str]) -> None:
    violations = _step(pg_conn, migration)
    assert _tables(violations) == expected
    assert all(v.property == "data" and v.revision == "0003" for v in violations)


def test_data_migrations_are_exempt(pg_conn: psycopg.Connection) -> None:
    assert _step(pg_conn, "DELETE FROM ledger", data_migrations=("0003",)) == []


def test_a_jump_of_several_revisions_names_none(pg_conn: psycopg.Connection) -> None:
    [violation] = _step(pg_conn, "DELETE FROM ledger WHERE id = 2", revision=None,
                        direction="downgrade")
    assert violation.revision is None
    assert violation.message.startswith("rows of public.ledger changed by downgrade: 1 lost, 0 new")


def test_message_and_evidence_show_lost_and_new_rows(pg_conn: psycopg.Connection) -> None:
    [violation] = _step(pg_conn, "ALTER TABLE events ALTER COLUMN amount TYPE integer",
                        direction="downgrade")
    assert violation.message == (
        'rows of public.events changed by downgrade of 0003: 3 lost, 3 new; '
        'e.g. lost {"id": 1, "amount": "12.50", "label": "a", "seen": true}, '
        'new {"id": 1, "amount": 13, "label": "a", "seen": true}'
    )
    evidence = violation.evidence
    assert evidence["columns"] == ["id", "amount", "label", "seen"]
    assert (evidence["lost_count"], evidence["new_count"]) == (3, 3)
    assert [row["amount"] for row in evidence["lost"]] == ["12.50", "7.25", "7.25"]
    assert [row["amount"] for row in evidence["new"]] == [13, 7, 7]


def test_duplicate_rows_count_as_a_multiset(pg_conn: psycopg.Connection) -> None:
    pg_conn.execute("CREATE TABLE bag (x int); INSERT INTO bag VALUES (1), (1), (2)")
    before = capture_rows(pg_conn)
    pg_conn.execute("DELETE FROM bag WHERE ctid = (SELECT min(ctid) FROM bag WHERE x = 1)")
    [violation] = check_step(before, capture_rows(pg_conn), revision="r", direction="upgrade")
    assert (violation.evidence["lost"], violation.evidence["lost_count"]) == ([{"x": 1}], 1)


ROUND_TRIPS = [
    # (id, upgrade, downgrade, tables reported)
    ("add-then-drop-column", "ALTER TABLE events ADD COLUMN note text",
     "ALTER TABLE events DROP COLUMN note", set()),
    ("drop-then-readd-column", "ALTER TABLE events DROP COLUMN label",
     "ALTER TABLE events ADD COLUMN label varchar(20)", {"public.events"}),
    ("lossy-type-round-trip", "ALTER TABLE events ALTER COLUMN amount TYPE integer",
     "ALTER TABLE events ALTER COLUMN amount TYPE numeric(10,2)", {"public.events"}),
    ("table-dropped-by-downgrade", "CREATE TABLE extra (x int)", "DROP TABLE extra", set()),
    ("rows-left-behind", "INSERT INTO ledger VALUES (7, 'reference')", "SELECT 1",
     {"public.ledger"}),
    ("rows-added-and-removed", "INSERT INTO ledger VALUES (7, 'reference')",
     "DELETE FROM ledger WHERE id = 7", set()),
]


@pytest.mark.parametrize(("upgrade", "downgrade", "expected"),
                         [r[1:] for r in ROUND_TRIPS], ids=[r[0] for r in ROUND_TRIPS])
def test_round_trip(pg_conn: psycopg.Connection, upgrade: str, downgrade: str,
                    expected: set[str]) -> None:
    pg_conn.execute(EVENTS)
    before = capture_rows(pg_conn)
    pg_conn.execute(upgrade)
    pg_conn.execute(downgrade)
    violations = check_round_trip(before, capture_rows(pg_conn), revision="0003")
    assert _tables(violations) == expected
    assert all("not restored by upgrade and downgrade of 0003" in v.message for v in violations)
    assert check_round_trip(before, capture_rows(pg_conn), revision="0003",
                            data_migrations=["0003"]) == []


def test_a_downgrade_may_remove_rows_an_upgrade_added(pg_conn: psycopg.Connection) -> None:
    pg_conn.execute(EVENTS)
    added = AddedRows()
    before_up = capture_rows(pg_conn)
    pg_conn.execute("INSERT INTO ledger VALUES (7, 'reference'); ALTER TABLE ledger ADD note text")
    added.add(before_up, capture_rows(pg_conn))
    before_down = capture_rows(pg_conn)
    pg_conn.execute("DELETE FROM ledger WHERE id IN (2, 7)")
    [violation] = check_step(before_down, capture_rows(pg_conn), revision="0003",
                             direction="downgrade", removable=added)
    assert violation.evidence["lost"] == [{"id": 2, "memo": "kept too", "note": None}]


def test_rows_added_in_between(pg_conn: psycopg.Connection) -> None:
    pg_conn.execute(EVENTS)
    earlier = capture_rows(pg_conn)
    pg_conn.execute("CLUSTER events USING events_pkey; UPDATE ledger SET memo = memo")
    assert rows_added(earlier, capture_rows(pg_conn)) == {}
    pg_conn.execute("INSERT INTO ledger VALUES (3, 'seeded')")
    added = rows_added(earlier, capture_rows(pg_conn))
    assert added is not None and added[("public", "ledger")].rows == (("3", "seeded"),)
    pg_conn.execute("UPDATE ledger SET memo = 'rewritten' WHERE id = 1")
    assert rows_added(earlier, capture_rows(pg_conn)) is None


FOLDED = """
CREATE TABLE invoices (id int PRIMARY KEY, amount numeric);
INSERT INTO invoices VALUES (1, 10), (2, 20);
"""
SPLIT = """
CREATE TABLE lines (id int, invoice_id int REFERENCES invoices, amount numeric);
INSERT INTO lines SELECT id, id, amount FROM invoices;
ALTER TABLE invoices DROP COLUMN amount;
"""


@pytest.mark.parametrize(("downgrade", "lost"), [
    ("ALTER TABLE invoices ADD COLUMN amount numeric; UPDATE invoices i SET amount = "
     "(SELECT sum(amount) FROM lines WHERE invoice_id = i.id); DROP TABLE lines", []),
    ("ALTER TABLE invoices ADD COLUMN amount numeric; DROP TABLE lines",
     [{"id": 2, "amount": 20}]),
], ids=["folds-added-lines-back", "forgets-the-amounts"])
def test_round_trip_with_rows_added_in_between(pg_conn: psycopg.Connection, downgrade: str,
                                               lost: list) -> None:
    # A line added to invoice 1 between upgrade and downgrade changes what the downgrade
    # rightly gives back for invoice 1, and only for it.
    pg_conn.execute(FOLDED)
    before_up = capture_rows(pg_conn)
    pg_conn.execute(SPLIT)
    after_up = capture_rows(pg_conn)
    pg_conn.execute("INSERT INTO lines VALUES (3, 1, 5)")
    added = rows_added(after_up, capture_rows(pg_conn))
    keys = foreign_keys(pg_conn)
    pg_conn.execute(downgrade)
    violations = check_round_trip(before_up, capture_rows(pg_conn), revision="0003",
                                  added=added, foreign_keys=keys)
    assert [row for v in violations for row in v.evidence["lost"]] == lost


def test_capture_reads_every_user_table_once_as_text(pg_conn: psycopg.Connection) -> None:
    pg_conn.execute("""
        CREATE SCHEMA billing;
        CREATE TABLE billing.parted (k int, at timestamptz) PARTITION BY RANGE (k);
        CREATE TABLE billing.parted_low PARTITION OF billing.parted FOR VALUES FROM (0) TO (10);
        CREATE TABLE billing.parted_high PARTITION OF billing.parted FOR VALUES FROM (10) TO (20);
        INSERT INTO billing.parted VALUES (1, '2025-01-02 03:04:05+02'), (15, NULL);
        CREATE TABLE parent (x int); CREATE TABLE child () INHERITS (parent);
        INSERT INTO parent VALUES (1); INSERT INTO child VALUES (2);
        CREATE TABLE empty_columns ();
        CREATE TABLE alembic_version (version_num varchar(32) PRIMARY KEY);
        INSERT INTO alembic_version VALUES ('0003');
        SET TimeZone = 'Asia/Tokyo';
    """)
    snapshot = capture_rows(pg_conn)
    assert set(snapshot.tables) == {("billing", "parted"), ("public", "parent"),
                                    ("public", "child"), ("public", "empty_columns")}
    assert sorted(snapshot.tables["billing", "parted"].rows, key=str) == [
        ("1", "2025-01-02 01:04:05+00"), ("15", None)]
    assert snapshot.tables["public", "parent"].rows == (("1",),)
    assert snapshot.counts() == {"billing.parted": 2, "public.parent": 1, "public.child": 1,
                                 "public.empty_columns": 0}
    assert pg_conn.execute("SHOW TimeZone").fetchone() == ("Asia/Tokyo",)


def test_capture_fails_loudly_when_row_level_security_would_hide_rows(
    pg_conn: psycopg.Connection,
) -> None:
    # A predefined role reads every table but is bound by row-level security, and needs no
    # cluster-wide role created for the test.
    pg_conn.execute(EVENTS + """
        ALTER TABLE events ENABLE ROW LEVEL SECURITY;
        SET ROLE pg_read_all_data;
    """)
    with pytest.raises(HarnessError, match="row-level security"):
        capture_rows(pg_conn)


def test_capture_reads_every_row_of_a_small_schema(pg_conn: psycopg.Connection) -> None:
    for i in range(10):
        pg_conn.execute(
            f"CREATE TABLE t{i} (id int PRIMARY KEY, tenant uuid DEFAULT gen_random_uuid(),"
            f" at timestamptz DEFAULT now(), payload jsonb DEFAULT '{{}}');"
            f"INSERT INTO t{i} (id) SELECT generate_series(1, 100)"
        )
    snapshot = capture_rows(pg_conn)
    assert sum(len(t.rows) for t in snapshot.tables.values()) == 1000


def test_a_reader_reads_again_only_the_tables_whose_rows_changed(
    pg_conn: psycopg.Connection,
) -> None:
    pg_conn.execute(EVENTS)
    reader = RowReader()
    first, _ = reader.read(pg_conn)
    assert first == capture_rows(pg_conn)
    pg_conn.execute("UPDATE events SET label = 'b' WHERE id = 1; ALTER TABLE ledger ADD COLUMN n int")
    second, _ = reader.read(pg_conn)
    assert second == capture_rows(pg_conn)
    assert ("1", "12.50", "b", "true") in second.tables["public", "events"].rows
    assert [c.name for c in second.tables["public", "ledger"].columns] == ["id", "memo", "n"]
    pg_conn.execute("INSERT INTO events VALUES (4, 0, NULL, NULL)")
    third, _ = reader.read(pg_conn)
    # The unchanged table is the very value read before: its rows did not cross the wire again.
    assert third.tables["public", "ledger"] is second.tables["public", "ledger"]
    assert third == capture_rows(pg_conn)
    # Rows put back as they were digest as before: nothing to read again.
    pg_conn.execute("INSERT INTO ledger VALUES (3, 'kept', NULL)")
    pg_conn.execute("DELETE FROM ledger WHERE id = 3")
    assert reader.read(pg_conn)[0].tables["public", "ledger"] is second.tables["public", "ledger"]
    # A table said to be touched is read again whatever its digest; the statements asked for
    # run alongside.
    fourth, [[(one,)]] = reader.read(pg_conn, touched=[("public", "ledger")], also=[("harness_test_one", "SELECT 1")])
    assert fourth.tables["public", "ledger"] is not second.tables["public", "ledger"]
    assert fourth == capture_rows(pg_conn) and one == 1


def test_a_reader_sees_a_table_dropped_and_created_again_with_other_rows(
    pg_conn: psycopg.Connection,
) -> None:
    pg_conn.execute(EVENTS)
    reader = RowReader()
    reader.read(pg_conn)
    pg_conn.execute("DROP TABLE ledger; CREATE TABLE ledger (id integer PRIMARY KEY, memo text);"
                    "INSERT INTO ledger VALUES (9, 'new')")
    assert reader.read(pg_conn)[0].tables["public", "ledger"].rows == (("9", "new"),)
    pg_conn.execute("DROP TABLE ledger")
    assert ("public", "ledger") not in reader.read(pg_conn)[0].tables
"""The sweep's filler: the rows that show data, isolation and data-dependent defects, every time.

Each test reads what went in back from the database, which judged every row.
"""

from __future__ import annotations

import psycopg

from harness.commands import replay, sweep
from harness.failures import write_failure_file
from harness.seeding import Catalog
from harness.seeding import filling
from harness.seeding.filling import Tenancy, fill
from harness.settings import load_settings

from projects import Rev, make_project

BILLING = """
CREATE TYPE status AS ENUM ('draft', 'open', 'void');
CREATE TABLE tenants (id uuid PRIMARY KEY, name text NOT NULL);
INSERT INTO tenants VALUES ('00000000-0000-0000-0000-00000000000a', 'a'),
                           ('00000000-0000-0000-0000-00000000000b', 'b');
CREATE TABLE invoices (
    id serial PRIMARY KEY,
    tenant_id uuid NOT NULL REFERENCES tenants
        DEFAULT NULLIF(current_setting('app.tenant', true), '')::uuid,
    email varchar(40) NOT NULL,
    status status NOT NULL,
    kind text CHECK (kind IN ('sale', 'refund')),
    amount numeric(8, 2) NOT NULL CHECK (amount > -1000),
    qty smallint,
    due date,
    code text CHECK (lower(code) <> 'mixed.case@example.com'),
    set_by text
);
ALTER TABLE invoices ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY;
CREATE FUNCTION stamp() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN NEW.set_by := current_setting('app.tenant', true); RETURN NEW; END $$;
CREATE TRIGGER stamp BEFORE INSERT ON invoices FOR EACH ROW EXECUTE FUNCTION stamp();
"""
TENANCY = Tenancy("app.tenant", "tenant_id")


def _values(conn: psycopg.Connection, column: str) -> set:
    return {v for (v,) in conn.execute(f"SELECT {column}::text FROM invoices")}


def test_every_edge_of_every_column_goes_in(pg_conn: psycopg.Connection) -> None:
    pg_conn.execute(BILLING)
    filled = fill(pg_conn, tenancy=TENANCY)
    assert filled.unseedable == {}
    assert _values(pg_conn, "status") == {"draft", "open", "void"}
    assert _values(pg_conn, "kind") == {"sale", "refund", None}
    emails = _values(pg_conn, "email")
    assert {"", "z" * 40, "MiXeD.CaSe@Example.COM"} <= emails
    assert {"0.00", "-1.00", "0.01", "999999.99", "-999.99"} <= _values(pg_conn, "amount")
    assert {"0", "-1", "-32768", "32767", None} <= _values(pg_conn, "qty")
    assert {"0001-01-01", "9999-12-31", None} <= _values(pg_conn, "due")
    # A CHECK no hint reads refuses one edge: counted, and the row's other edges kept.
    assert "MiXeD.CaSe@Example.COM" not in _values(pg_conn, "code") and filled.rejected > 0
    assert {"", "z" * 200, None} <= _values(pg_conn, "code")
    # Repeated values, as real data holds them (a unique index over them must fail).
    assert pg_conn.execute("SELECT count(*) > count(DISTINCT status) FROM invoices").fetchone()[0]


def test_rows_belong_to_several_tenants_each_inserted_as_its_tenant(pg_conn: psycopg.Connection) -> None:
    pg_conn.execute(BILLING)
    fill(pg_conn, tenancy=TENANCY)
    tenants = pg_conn.execute(
        "SELECT count(DISTINCT tenant_id), bool_and(set_by = tenant_id::text) FROM invoices").fetchone()
    assert tenants[0] >= 2 and tenants[1], tenants


def test_the_same_rows_every_time_and_only_the_tables_asked(pg_server) -> None:
    results = []
    for _ in range(2):
        with pg_server.scratch() as database, psycopg.connect(database.dsn, autocommit=True) as conn:
            conn.execute(BILLING)
            first = fill(conn, tenancy=TENANCY, tables={"public.invoices"})
            results.append((first.records, conn.execute(
                "SELECT array_agg(t::text ORDER BY t::text) FROM invoices t").fetchone()))
    assert results[0] == results[1]
    records, _ = results[0]
    assert set(records) == {"public.invoices"}


def test_filling_again_adds_the_edges_again_beside_the_rows_present(pg_conn: psycopg.Connection) -> None:
    pg_conn.execute(BILLING)
    first = fill(pg_conn, tenancy=TENANCY, tables={"public.invoices"})
    again = fill(pg_conn, tenancy=TENANCY, tables={"public.invoices"})
    assert again.added["public.invoices"] >= first.added["public.invoices"] // 2
    assert again.rows["public.invoices"] == sum(
        f.added["public.invoices"] for f in (first, again))


# The sweep's use: rows kept across revisions on its one database, and a finding that replays.

_DEFECT = (
    # The parent sorts after its child: a replay must insert the kept rows parents first.
    Rev("r1", upgrade='op.create_table("z_parent", sa.Column("id", sa.Integer, primary_key=True))\n'
                      'op.create_table("t", sa.Column("id", sa.Integer, primary_key=True), '
                      'sa.Column("note", sa.Text), '
                      'sa.Column("parent_id", sa.Integer, sa.ForeignKey("z_parent.id"), nullable=False))',
        downgrade='op.drop_table("t")\nop.drop_table("z_parent")'),
    Rev("r2", down="r1", upgrade='op.create_table("u", sa.Column("id", sa.Integer, primary_key=True))',
        downgrade='op.drop_table("u")'),
    Rev("r3", down="r2", upgrade='op.create_index("ix_t_note", "t", ["note"])\n'
                                 'op.execute("DELETE FROM t WHERE note = \'\'")',
        downgrade='op.drop_index("ix_t_note", "t")'),
)


def test_a_sweep_finding_on_rows_earlier_fills_left_replays_from_its_file(tmp_path, pg_server) -> None:
    ini = make_project(tmp_path / "project", _DEFECT)
    result = sweep(load_settings(ini), server=pg_server)
    [failure] = result.failures
    assert [(v.property, v.revision) for v in failure.violations] == [("data", "r3")]
    # r3's own steps start on rows the fills of r1 and r2 left in t: the failure carries them.
    assert failure.steps[0].op == "seed"
    assert list(dict.fromkeys(table for table, _ in failure.steps[0].rows)) == ["public.z_parent", "public.t"]
    path = write_failure_file(tmp_path / "failures", failure, ini)
    replayed = replay(path, server=pg_server)
    assert [(v.property, v.revision) for v in replayed.violations] == [("data", "r3")]


def test_an_empty_catalog_given_is_the_schema_not_a_request_to_read_it(pg_conn: psycopg.Connection) -> None:
    # A state whose revisions made no table yet: the version table must not be filled.
    pg_conn.execute("CREATE TABLE alembic_version (version_num varchar(32) PRIMARY KEY)")
    assert fill(pg_conn, catalog=Catalog(())).records == {}
    assert pg_conn.execute("SELECT count(*) FROM alembic_version").fetchone() == (0,)


def test_rows_sent_in_batches_are_the_rows_sent_one_at_a_time(pg_server, monkeypatch) -> None:
    """A refused row ends its batch, and the rows after it are made again after its split:
    batches change the round trips, never the rows (serial keys and refusals included)."""
    sizes: list[int] = []
    insert_many = filling.Inserter.insert_many

    def counted(self, table, rows):
        sizes.append(len(rows))
        return insert_many(self, table, rows)

    monkeypatch.setattr(filling.Inserter, "insert_many", counted)

    def filled(batch: int, rows: int | None) -> tuple:
        monkeypatch.setattr(filling, "BATCH", batch)
        with pg_server.scratch() as database, psycopg.connect(database.dsn, autocommit=True) as conn:
            conn.execute(BILLING)
            result = fill(conn, rows, tenancy=TENANCY)
            return result.to_json(), result.records, conn.execute("SELECT * FROM invoices ORDER BY ctid").fetchall()

    batch = filling.BATCH
    for rows in (None, 30):
        sizes.clear()
        batched = filled(batch, rows)
        assert batched[0]["rejected"] > 0 and max(sizes) > 1
        assert batched == filled(1, rows)


RUNS = """
CREATE TABLE runs (
    id serial PRIMARY KEY,
    status text NOT NULL CHECK (status IN ('queued', 'running', 'done')),
    started_at timestamptz,
    finished_at timestamptz,
    details jsonb CHECK (jsonb_typeof(details) = 'object'),
    amount numeric(10, 2),
    currency char(3),
    email text,
    phone text,
    CHECK ((status = 'done') = (finished_at IS NOT NULL)),
    CHECK (finished_at IS NULL OR started_at IS NULL OR finished_at >= started_at),
    CHECK (amount IS NULL OR currency IS NOT NULL),
    CHECK (num_nonnulls(email, phone) >= 1)
);
"""


def test_rows_a_check_refuses_are_counted_unsent_and_the_database_agrees(pg_server, monkeypatch) -> None:
    """The filler judges its rows on the CHECKs it can read and does not send those certainly
    refused: the same rows go in, and as many are counted refused, as when the database judges
    every row (only serial keys differ: a refused insert draws one)."""
    withheld: list[dict] = []
    refuses = filling._Table._refuses

    def recorded(self, row):
        verdict = refuses(self, row)
        if verdict:
            withheld.append(row)
        return verdict

    def filled(judge) -> tuple:
        monkeypatch.setattr(filling._Table, "_refuses", judge)
        with pg_server.scratch() as database, psycopg.connect(database.dsn, autocommit=True) as conn:
            conn.execute(RUNS)
            result = fill(conn)
            rows = conn.execute("SELECT status, started_at, finished_at, details, amount, currency, email, phone "
                                "FROM runs ORDER BY ctid").fetchall()
            return result.rejected, result.added, rows

    judged = filled(recorded)
    # Every shape of CHECK above refuses some edge row here: ties, IN, jsonb_typeof, num_nonnulls.
    assert len(withheld) >= 10 and judged[0] >= len(withheld)
    assert {"done", "queued"} <= {row["status"] for row in withheld}
    assert judged == filled(lambda self, row: False)

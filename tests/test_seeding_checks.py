"""CHECK constraints judged and repaired before the insert, and rows under row-level security.

The evaluator may say "unsure", never a wrong verdict: every verdict it gives on a row is
compared with what PostgreSQL does with that row. Seeding then has to fill tables whose
constraints tie columns together with few refusals, reaching every branch of those constraints,
and to insert into tables whose policies bind the seeding role.
"""

from __future__ import annotations

import collections
import datetime
import secrets
from decimal import Decimal
from typing import Any

import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from psycopg import sql
from psycopg.types.json import Jsonb

from harness.seeding import read_catalog, seed_rows
from harness.seeding.checks import UNSURE, Env, evaluate
from harness.seeding.expressions import parse_check

EXAMPLES = settings(
    max_examples=30, deadline=None, derandomize=True, database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

COLUMNS = """
    status text, done_at timestamptz, a int, b int, c int, amount numeric(7, 2),
    code varchar(3), kind text, payload jsonb, started date, ended date
"""

CHECKS = [
    "(status = 'done') = (done_at IS NOT NULL)",
    "status IN ('done', 'open')",
    "a < b",
    "a IS NULL OR b IS NOT NULL",
    "CASE WHEN kind = 'x' THEN a IS NOT NULL ELSE a IS NULL END",
    "CASE kind WHEN 'x' THEN a > 0 WHEN 'y' THEN a < 0 END",
    "num_nonnulls(a, b, c) = 1",
    "num_nulls(a, b) <= 1",
    "a BETWEEN 0 AND 3",
    "amount BETWEEN -1 AND 10.5",
    "a + b > c",
    "started <= ended",
    "started > '2020-01-01'::date",
    "jsonb_typeof(payload) = 'object'",
    "length(code) = 3 AND code ~ '^[A-Z]+$'",
    "kind IS DISTINCT FROM status",
    "NOT (a = 0 AND b = 0)",
    "coalesce(a, 0) >= 0",
    "status <> ''",
    "lower(status) = status",
    "amount > 0 OR amount IS NULL",
    "done_at > '2000-01-01 00:00:00+00'",
]

ROWS = st.fixed_dictionaries({
    "status": st.sampled_from([None, "done", "open", "", "Open"]),
    "done_at": st.sampled_from([None, datetime.datetime(1999, 1, 1, tzinfo=datetime.timezone.utc),
                                datetime.datetime(2024, 5, 1, 12, tzinfo=datetime.timezone.utc)]),
    "a": st.sampled_from([None, -1, 0, 1, 5]),
    "b": st.sampled_from([None, -1, 0, 1, 5]),
    "c": st.sampled_from([None, 0, 2]),
    "amount": st.sampled_from([None, Decimal("0"), Decimal("-1.5"), Decimal("10.50"), Decimal("11")]),
    "code": st.sampled_from([None, "ABC", "AB", "abc", "A1C"]),
    "kind": st.sampled_from([None, "x", "y", "done"]),
    "payload": st.sampled_from([None, Jsonb({}), Jsonb({"k": 1}), Jsonb([]), Jsonb(1)]),
    "started": st.sampled_from([None, datetime.date(2019, 12, 31), datetime.date(2024, 1, 1)]),
    "ended": st.sampled_from([None, datetime.date(2020, 6, 1), datetime.date(2024, 1, 1)]),
})


def test_parsed_checks_agree_with_postgresql(pg_conn: psycopg.Connection) -> None:
    for i, check in enumerate(CHECKS):
        pg_conn.execute(f"CREATE TABLE t{i:02d} ({COLUMNS}, CONSTRAINT ck CHECK ({check}))")
    catalog = read_catalog(pg_conn)
    judged = [(t.key, parse_check(t.checks[0]), {c.name: (c.type.kind, c.default) for c in t.columns})
              for t in catalog]
    assert all(node is not None for _, node, _ in judged), [k for k, n, _ in judged if n is None]
    verdicts: collections.Counter[str] = collections.Counter()

    @EXAMPLES
    @given(ROWS)
    def agree(row: dict[str, Any]) -> None:
        for key, node, kinds in judged:
            said = evaluate(node, Env(dict(row), kinds))
            try:
                with pg_conn.transaction(force_rollback=True):
                    pg_conn.execute(
                        sql.SQL("INSERT INTO {} ({}) VALUES ({})").format(
                            sql.Identifier(*key.split(".")),
                            sql.SQL(", ").join(map(sql.Identifier, row)),
                            sql.SQL(", ").join(sql.Placeholder() * len(row)),
                        ),
                        list(row.values()),
                    )
                accepted = True
            except psycopg.errors.CheckViolation:
                accepted = False
            if said is UNSURE:
                verdicts["unsure"] += 1
                continue
            verdicts["sure"] += 1
            assert accepted == (said is not False), (key, node, row, said)

    agree()
    assert verdicts["sure"] > 10 * verdicts["unsure"], verdicts


SCHEMA = """
CREATE TABLE runs (
    id serial PRIMARY KEY,
    status text NOT NULL DEFAULT 'pending'
        CHECK (status IN ('pending', 'running', 'done', 'failed')),
    started_at timestamptz, finished_at timestamptz, attempts int NOT NULL DEFAULT 0,
    email text, phone text, kind text NOT NULL, price numeric(8, 2), low int, high int,
    CHECK ((status = 'pending') = (started_at IS NULL)),
    CHECK (finished_at IS NULL OR (started_at IS NOT NULL AND finished_at >= started_at)),
    CHECK (status <> 'done' OR finished_at IS NOT NULL),
    CHECK (num_nonnulls(email, phone) >= 1),
    CHECK (CASE WHEN kind = 'free' THEN price IS NULL ELSE price > 0 END),
    CHECK (kind IN ('free', 'paid')),
    CHECK (attempts BETWEEN 0 AND 5),
    CHECK (low < high)
);
"""


def test_cross_column_checks_fill_the_table_and_reach_every_branch(pg_conn: psycopg.Connection) -> None:
    pg_conn.execute(SCHEMA)
    catalog = read_catalog(pg_conn)
    totals: collections.Counter[str] = collections.Counter()
    statuses: set[str] = set()

    @EXAMPLES
    @given(st.data())
    def seed(data: st.DataObject) -> None:
        pg_conn.execute("TRUNCATE runs RESTART IDENTITY")
        result = seed_rows(pg_conn, data.draw, catalog)
        totals["rows"] += result.rows
        totals["refused"] += result.rejected
        statuses.update(s for (s,) in pg_conn.execute("SELECT status FROM runs"))
        totals.update(dict(zip(
            ("free", "priced", "no email", "no phone", "finished"),
            pg_conn.execute("""
                SELECT count(*) FILTER (WHERE kind = 'free'), count(*) FILTER (WHERE price > 0),
                       count(*) FILTER (WHERE email IS NULL), count(*) FILTER (WHERE phone IS NULL),
                       count(*) FILTER (WHERE finished_at IS NOT NULL)
                  FROM runs""").fetchone(),
        )))

    seed()
    assert totals["refused"] < 0.1 * (totals["rows"] + totals["refused"]), totals
    assert statuses == {"pending", "running", "done", "failed"}
    assert all(totals[k] for k in ("free", "priced", "no email", "no phone", "finished")), totals


def test_rows_under_row_level_security_go_in_as_their_own_tenant(pg_conn: psycopg.Connection) -> None:
    """A seeding role the policies bind (not a superuser, the tables FORCEd) inserts each row
    with the tenant setting at the row's tenant; otherwise every insert is refused."""
    role = f"harness_owner_{secrets.token_hex(4)}"
    tenant = "NULLIF(current_setting('app.tenant', true), '')::uuid"
    pg_conn.execute(f"""
        CREATE ROLE {role};
        CREATE TABLE tenants (id uuid PRIMARY KEY DEFAULT gen_random_uuid(), name text NOT NULL);
        CREATE TABLE items (id serial PRIMARY KEY, tenant_id uuid NOT NULL REFERENCES tenants,
                            title text);
        ALTER TABLE tenants OWNER TO {role};
        ALTER TABLE items OWNER TO {role};
        ALTER TABLE tenants ENABLE ROW LEVEL SECURITY;
        ALTER TABLE tenants FORCE ROW LEVEL SECURITY;
        ALTER TABLE items ENABLE ROW LEVEL SECURITY;
        ALTER TABLE items FORCE ROW LEVEL SECURITY;
        CREATE POLICY own ON tenants USING (id = {tenant});
        CREATE POLICY own ON items USING (tenant_id = {tenant});
        SET ROLE {role};
    """)
    catalog = read_catalog(pg_conn)
    assert catalog["public.items"].tenant == ("app.tenant", "tenant_id")
    totals: collections.Counter[str] = collections.Counter()

    @EXAMPLES
    @given(st.data())
    def seed(data: st.DataObject) -> None:
        pg_conn.execute("TRUNCATE items, tenants RESTART IDENTITY")
        result = seed_rows(pg_conn, data.draw, catalog)
        totals.update(result.inserted)
        totals["refused"] += result.rejected

    try:
        seed()
    finally:
        pg_conn.execute("RESET ROLE")
    assert totals["public.items"] and totals["public.tenants"], totals
    assert totals["refused"] == 0, totals
    # The catalog of a superuser, whom no policy binds, asks for no setting.
    assert read_catalog(pg_conn)["public.items"].tenant is None


@pytest.mark.parametrize("definition", ["CHECK (f(a) @@ b)", "CHECK ((a)[1] > 0)", "EXCLUDE (a WITH =)"])
def test_what_the_parser_cannot_read_is_left_to_the_database(definition: str) -> None:
    assert parse_check(definition) is None

"""The bundled Alembic history: every downgrade is a true inverse, and the application role
sees one tenant at a time.

These tests run the history for real on the session's PostgreSQL; without one they fail.
"""

from __future__ import annotations

import difflib
import re
import subprocess
import uuid
from pathlib import Path

import psycopg
import pytest
from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory
from psycopg import errors
from sqlalchemy import create_engine, pool

from harness.server.binaries import find_binaries
from projects import DRIVER

ROOT = Path(__file__).resolve().parent.parent
ALEMBIC_INI = ROOT / "alembic.ini"
APP_ROLE = "attribution_app"
# The old-stack tox environment (SQLAlchemy 1.4) migrates through psycopg2.

EXPECTED_CHAIN = [
    ("202511121302", "202511121302_baseline.py"),
    ("202511131115", "202511131115_add_core_tables.py"),
    ("202511131119", "202511131119_add_materialized_views.py"),
    ("202511131120", "202511131120_add_rls_policies.py"),
    ("202511131121", "202511131121_add_grants.py"),
]

# What the application role may read, and the column holding each row's tenant.
APP_READABLE = {
    "tenants": "id",
    "attribution_events": "tenant_id",
    "attribution_allocations": "tenant_id",
    "reconciliation_runs": "tenant_id",
    "revenue_ledger": "tenant_id",
    "v_realtime_revenue": "tenant_id",
    "v_reconciliation_status": "tenant_id",
}


def _revisions_base_to_head() -> list:
    script = ScriptDirectory.from_config(Config(str(ALEMBIC_INI)))
    return list(reversed(list(script.walk_revisions())))


REVISIONS = _revisions_base_to_head()


@pytest.fixture
def migrate(scratch_db):
    """Run an alembic command on the scratch database through a connection handed to env.py."""
    engine = create_engine(scratch_db.sqlalchemy_url(DRIVER), poolclass=pool.NullPool)

    def run(action: str, revision: str) -> None:
        config = Config(str(ALEMBIC_INI))
        with engine.connect() as connection:
            config.attributes["connection"] = connection
            getattr(command, action)(config, revision)

    yield run
    engine.dispose()


def _pg_dump_for(server_version: int) -> str:
    """The pg_dump of the server's own installation: an older one refuses to dump the server."""
    pg_dump = find_binaries(version=server_version).bin_dir / "pg_dump"
    if not pg_dump.is_file():
        pytest.fail(f"no pg_dump beside the PostgreSQL {server_version} server programs "
                    f"({pg_dump.parent})")
    return str(pg_dump)


@pytest.fixture
def schema_dump(pg_server, scratch_db):
    """The scratch database's schema as pg_dump prints it, without alembic_version.

    alembic_version survives ``downgrade base`` by design, so it is left out of comparisons.
    pg_dump 15.14+ prints random ``\\restrict`` keys on every run; those lines are dropped.
    """
    pg_dump = _pg_dump_for(pg_server.version)

    def dump() -> str:
        result = subprocess.run(
            [pg_dump, "--schema-only", "--exclude-table=public.alembic_version",
             f"--dbname={scratch_db.dsn}"],
            capture_output=True, text=True, check=False,
        )
        assert result.returncode == 0, f"pg_dump failed: {result.stderr}"
        return "\n".join(
            line for line in result.stdout.splitlines()
            if not re.match(r"\\(un)?restrict\b", line)
        )

    return dump


def assert_same_schema(actual: str, expected: str, what: str) -> None:
    if actual != expected:
        diff = difflib.unified_diff(expected.splitlines(), actual.splitlines(),
                                    "expected", "actual", lineterm="", n=2)
        pytest.fail(f"{what}:\n" + "\n".join(diff), pytrace=False)


def test_history_is_the_expected_linear_chain():
    assert [(r.revision, Path(r.path).name) for r in REVISIONS] == EXPECTED_CHAIN
    assert [r.down_revision for r in REVISIONS] == [None] + [rev for rev, _ in EXPECTED_CHAIN[:-1]]


def test_upgrade_downgrade_upgrade_restores_the_schema(migrate, schema_dump):
    empty = schema_dump()
    migrate("upgrade", "head")
    head = schema_dump()
    assert "CREATE POLICY tenant_isolation" in head

    migrate("downgrade", "base")
    assert_same_schema(schema_dump(), empty, "downgrade base left the schema changed")

    migrate("upgrade", "head")
    assert_same_schema(schema_dump(), head, "upgrade head a second time built another schema")


@pytest.mark.parametrize("revision", REVISIONS, ids=[r.revision for r in REVISIONS])
def test_downgrade_is_the_inverse_of_upgrade(migrate, schema_dump, revision):
    if revision.down_revision is not None:
        migrate("upgrade", revision.down_revision)
    before = schema_dump()

    migrate("upgrade", revision.revision)
    if revision.down_revision is not None:
        assert schema_dump() != before, f"{revision.revision} changed nothing"

    migrate("downgrade", revision.down_revision or "base")
    assert_same_schema(schema_dump(), before, f"downgrade of {revision.revision} is no inverse")


def _seed_tenant(conn: psycopg.Connection, slug: str) -> uuid.UUID:
    """One tenant with a row in every tenant-scoped table, inserted as the superuser."""
    tenant, touchpoint, conversion, allocation, run = (uuid.uuid4() for _ in range(5))
    conn.execute("INSERT INTO tenants (id, slug, name) VALUES (%s, %s, %s)",
                 (tenant, slug, slug.title()))
    conn.execute(
        "INSERT INTO attribution_events (id, tenant_id, idempotency_key, event_type, "
        "customer_ref, channel, occurred_at) "
        "VALUES (%s, %s, 'touch-1', 'touchpoint', 'cust-1', 'search', now() - interval '1 day')",
        (touchpoint, tenant),
    )
    conn.execute(
        "INSERT INTO attribution_events (id, tenant_id, idempotency_key, event_type, "
        "customer_ref, occurred_at, amount_minor, currency) "
        "VALUES (%s, %s, 'order-1', 'conversion', 'cust-1', now(), 12500, 'USD')",
        (conversion, tenant),
    )
    conn.execute(
        "INSERT INTO dead_events (tenant_id, stage, error_code, raw_payload) "
        "VALUES (%s, 'ingest', 'malformed_json', '{}')",
        (tenant,),
    )
    conn.execute(
        "INSERT INTO attribution_allocations (id, tenant_id, conversion_event_id, "
        "touchpoint_event_id, model, channel, weight, amount_minor, currency, status) "
        "VALUES (%s, %s, %s, %s, 'last_touch', 'search', 1, 12500, 'USD', 'final')",
        (allocation, tenant, conversion, touchpoint),
    )
    conn.execute(
        "INSERT INTO reconciliation_runs (id, tenant_id, idempotency_key, currency, "
        "period_start, period_end, status, expected_amount_minor, ledger_amount_minor, "
        "started_at, finished_at) "
        "VALUES (%s, %s, 'recon-1', 'USD', now() - interval '2 days', now(), 'matched', "
        "12500, 12500, now(), now())",
        (run, tenant),
    )
    conn.execute(
        "INSERT INTO revenue_ledger (tenant_id, idempotency_key, entry_type, allocation_id, "
        "amount_minor, currency) VALUES (%s, 'book-1', 'allocation', %s, 12500, 'USD')",
        (tenant, allocation),
    )
    return tenant


def _tenants_visible(conn: psycopg.Connection, relation: str) -> list[uuid.UUID]:
    column = APP_READABLE[relation]
    return [row[0] for row in conn.execute(f"SELECT {column} FROM {relation}")]


def test_application_role_sees_only_its_tenant(migrate, pg_conn):
    migrate("upgrade", "head")
    tenants = [_seed_tenant(pg_conn, "acme"), _seed_tenant(pg_conn, "globex")]
    pg_conn.execute("REFRESH MATERIALIZED VIEW CONCURRENTLY mv_realtime_revenue")
    pg_conn.execute("REFRESH MATERIALIZED VIEW CONCURRENTLY mv_reconciliation_status")

    readable = {
        name: kind for name, kind in pg_conn.execute(
            "SELECT c.relname, c.relkind FROM pg_class c "
            "JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname = 'public' AND c.relkind IN ('r', 'v', 'm', 'p', 'f') "
            "AND has_any_column_privilege(%s, c.oid, 'SELECT')",
            (APP_ROLE,),
        )
    }
    assert "m" not in readable.values(), "materialized views bypass RLS; never grant them"
    assert set(readable) == set(APP_READABLE)

    pg_conn.execute(f"SET ROLE {APP_ROLE}")
    for relation in APP_READABLE:
        assert _tenants_visible(pg_conn, relation) == [], f"{relation} with no tenant set"

    for tenant in tenants:
        pg_conn.execute("SELECT set_config('app.current_tenant', %s, false)", (str(tenant),))
        for relation in APP_READABLE:
            seen = _tenants_visible(pg_conn, relation)
            assert seen and set(seen) == {tenant}, f"{relation} as tenant {tenant}: {seen}"

    pg_conn.execute("RESET app.current_tenant")
    for relation in APP_READABLE:
        assert _tenants_visible(pg_conn, relation) == [], f"{relation} after RESET"

    acme, globex = tenants
    pg_conn.execute("SELECT set_config('app.current_tenant', %s, false)", (str(acme),))
    pg_conn.execute(
        "INSERT INTO revenue_ledger (tenant_id, idempotency_key, entry_type, amount_minor, "
        "currency) VALUES (%s, 'adjust-1', 'adjustment', -500, 'USD')",
        (acme,),
    )
    assert pg_conn.execute(
        "SELECT count(*) FROM revenue_ledger WHERE idempotency_key = 'adjust-1'"
    ).fetchone() == (1,)
    with pytest.raises(errors.InsufficientPrivilege):
        pg_conn.execute("UPDATE revenue_ledger SET memo = 'rewritten'")
    with pytest.raises(errors.InsufficientPrivilege):
        pg_conn.execute("DELETE FROM revenue_ledger")
    with pytest.raises(errors.InsufficientPrivilege, match="row-level security"):
        pg_conn.execute(
            "INSERT INTO revenue_ledger (tenant_id, idempotency_key, entry_type, amount_minor, "
            "currency) VALUES (%s, 'adjust-2', 'adjustment', 500, 'USD')",
            (globex,),
        )
    with pytest.raises(errors.InsufficientPrivilege):
        pg_conn.execute("SELECT * FROM mv_realtime_revenue")

    pg_conn.execute(
        "INSERT INTO dead_events (tenant_id, stage, error_code, raw_payload) "
        "VALUES (%s, 'validation', 'unknown_currency', '{}')",
        (acme,),
    )
    with pytest.raises(errors.InsufficientPrivilege):
        pg_conn.execute("SELECT * FROM dead_events")

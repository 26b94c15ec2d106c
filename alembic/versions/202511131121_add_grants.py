"""add grants

The application's database role, ``attribution_app``, with the least privilege the service
needs, and the tenant-safe views it reads the dashboards through.

The role is NOLOGIN: deployments create their own login roles and ``GRANT attribution_app`` to
them, so no password lives in a migration. It is NOBYPASSRLS, and the upgrade refuses an
existing role that is a superuser or bypasses row-level security, since tenant isolation rests
on the policies of 202511131120 applying to it.

Roles are cluster-wide, not per database, and many databases on one server may migrate at the
same moment (one per test, per branch, per shard). So the role is created only if missing, a
concurrent creator winning the race is not an error, and the downgrade never drops it: another
database on the server may be using it, holding grants to it (DROP ROLE would then fail) or
about to receive them. The downgrade revokes exactly what the upgrade granted instead.

Privileges, per table:

* ``tenants``: SELECT, and UPDATE of the self-service columns only.
* ``attribution_events``: SELECT, INSERT, and UPDATE of the processing state only; events are
  facts and stay as received.
* ``dead_events``: INSERT only. The service parks failed deliveries there; operators, not the
  application, read and resolve them.
* ``attribution_allocations``: SELECT, INSERT, UPDATE, DELETE; provisional allocations are
  recomputed freely (final ones are protected by the ledger's RESTRICT foreign key).
* ``reconciliation_runs``: SELECT, INSERT, and UPDATE of the run's progress and results.
* ``revenue_ledger``: SELECT, INSERT. Append-only: corrections are new rows.

The materialized views are deliberately not granted. Row-level security does not apply to
materialized views, so a grant would show every tenant's revenue to every tenant. The
application reads ``v_realtime_revenue`` and ``v_reconciliation_status`` instead: plain views
that filter on the same ``app.current_tenant`` setting as the policies. They run with their
owner's rights (which is how they can read the ungranted materialized views; hence not
``security_invoker``), and ``security_barrier`` stops the planner from pushing a caller's
functions below the tenant filter, where they could see other tenants' rows.

The views are created here rather than with the materialized views because they are access
surface, not data: they exist only so that this role can be granted something tenant-safe, and
their filter depends on the tenant setting that 202511131120 introduced. Creating them, granting
them and revoking them in one revision keeps the application's whole view of the database in
one place, and downgrading this revision removes all of it.

Revision ID: 202511131121
Revises: 202511131120
Create Date: 2025-11-13 11:21:00+00:00

"""

from typing import Sequence, Union

from alembic import op

revision: str = "202511131121"
down_revision: Union[str, Sequence[str], None] = "202511131120"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None

APP_ROLE = "attribution_app"
CURRENT_TENANT = "NULLIF(current_setting('app.current_tenant', true), '')::uuid"

TABLE_PRIVILEGES = {
    "tenants": "SELECT",
    "attribution_events": "SELECT, INSERT",
    "dead_events": "INSERT",
    "attribution_allocations": "SELECT, INSERT, UPDATE, DELETE",
    "reconciliation_runs": "SELECT, INSERT",
    "revenue_ledger": "SELECT, INSERT",
}

UPDATABLE_COLUMNS = {
    "tenants": ("name", "default_currency", "updated_at"),
    "attribution_events": ("processing_status", "processed_at"),
    "reconciliation_runs": (
        "status", "expected_amount_minor", "ledger_amount_minor", "started_at", "finished_at",
        "details", "updated_at",
    ),
}

TENANT_VIEWS = {
    "v_realtime_revenue": (
        "mv_realtime_revenue",
        "tenant_id, currency, channel, revenue_date, revenue_minor, entry_count, "
        "last_recorded_at",
        "Booked revenue per currency, channel and UTC day for the current tenant "
        "(app.current_tenant).",
    ),
    "v_reconciliation_status": (
        "mv_reconciliation_status",
        "tenant_id, currency, latest_run_id, latest_status, period_start, period_end, "
        "expected_amount_minor, ledger_amount_minor, discrepancy_minor, finished_at",
        "Latest reconciliation run per currency for the current tenant (app.current_tenant).",
    ),
}


def upgrade() -> None:
    op.execute(
        f"""
        DO $$
        BEGIN
            IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{APP_ROLE}') THEN
                CREATE ROLE {APP_ROLE} NOLOGIN NOBYPASSRLS;
            END IF;
        EXCEPTION
            -- Another database on this server created it between our check and our CREATE.
            WHEN duplicate_object OR unique_violation THEN NULL;
        END
        $$
        """
    )
    op.execute(
        f"""
        DO $$
        BEGIN
            IF EXISTS (SELECT FROM pg_roles
                        WHERE rolname = '{APP_ROLE}' AND (rolsuper OR rolbypassrls)) THEN
                RAISE EXCEPTION 'role {APP_ROLE} bypasses row-level security'
                    USING HINT = 'ALTER ROLE {APP_ROLE} NOSUPERUSER NOBYPASSRLS';
            END IF;
        END
        $$
        """
    )

    # Not left to PUBLIC's default USAGE on public, which hardened databases revoke.
    op.execute(f"GRANT USAGE ON SCHEMA public TO {APP_ROLE}")
    for table, privileges in TABLE_PRIVILEGES.items():
        op.execute(f"GRANT {privileges} ON {table} TO {APP_ROLE}")
    for table, columns in UPDATABLE_COLUMNS.items():
        op.execute(f"GRANT UPDATE ({', '.join(columns)}) ON {table} TO {APP_ROLE}")

    for view, (source, columns, comment) in TENANT_VIEWS.items():
        op.execute(
            f"CREATE VIEW {view} WITH (security_barrier) AS "
            f"SELECT {columns} FROM {source} WHERE tenant_id = {CURRENT_TENANT}"
        )
        op.execute(f"COMMENT ON VIEW {view} IS '{comment}'")
        op.execute(f"GRANT SELECT ON {view} TO {APP_ROLE}")


def downgrade() -> None:
    # Dropping the views drops their grants with them.
    for view in reversed(TENANT_VIEWS):
        op.execute(f"DROP VIEW {view}")
    for table, columns in UPDATABLE_COLUMNS.items():
        op.execute(f"REVOKE UPDATE ({', '.join(columns)}) ON {table} FROM {APP_ROLE}")
    for table, privileges in TABLE_PRIVILEGES.items():
        op.execute(f"REVOKE {privileges} ON {table} FROM {APP_ROLE}")
    op.execute(f"REVOKE USAGE ON SCHEMA public FROM {APP_ROLE}")

"""add rls policies

Tenant isolation in the database rather than only in application code: every tenant-scoped
table gets row-level security, ENABLEd and FORCEd, with one policy ``tenant_isolation``
comparing the row's tenant with the session's ``app.current_tenant`` setting. The application
sets it per transaction (``SET LOCAL app.current_tenant = '<uuid>'``) before touching data.

Why each part is there:

* FORCE makes the policies bind the tables' owner too; without it the owner bypasses them
  silently. Superusers and BYPASSRLS roles still bypass them, which the materialized-view
  refresh relies on (see 202511131119).
* ``current_setting(..., true)`` returns NULL instead of raising when the setting was never
  defined in the session, and ``NULLIF(..., '')`` covers a session where it was defined and
  then reset (the placeholder then reads as the empty string). Either way the comparison is
  NULL, so a session that forgot to set its tenant sees no rows and can write none, instead of
  failing or seeing everything.
* USING filters what can be read, updated and deleted; WITH CHECK stops a row from being
  inserted for, or moved to, another tenant.
* ``tenants`` has no tenant_id: its policy compares ``id``, so a tenant sees only its own row.
* Policies apply to every role (no TO clause): the application role does not exist yet at this
  revision (202511131121 creates it), and any future non-owner role should be isolated too.

Revision ID: 202511131120
Revises: 202511131119
Create Date: 2025-11-13 11:20:00+00:00

"""

from typing import Sequence, Union

from alembic import op

revision: str = "202511131120"
down_revision: Union[str, Sequence[str], None] = "202511131119"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None

CURRENT_TENANT = "NULLIF(current_setting('app.current_tenant', true), '')::uuid"

TENANT_COLUMN_BY_TABLE = {
    "tenants": "id",
    "attribution_events": "tenant_id",
    "dead_events": "tenant_id",
    "attribution_allocations": "tenant_id",
    "reconciliation_runs": "tenant_id",
    "revenue_ledger": "tenant_id",
}


def upgrade() -> None:
    for table, column in TENANT_COLUMN_BY_TABLE.items():
        op.execute(f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY")
        op.execute(f"ALTER TABLE {table} FORCE ROW LEVEL SECURITY")
        op.execute(
            f"CREATE POLICY tenant_isolation ON {table} "
            f"USING ({column} = {CURRENT_TENANT}) "
            f"WITH CHECK ({column} = {CURRENT_TENANT})"
        )


def downgrade() -> None:
    for table in reversed(TENANT_COLUMN_BY_TABLE):
        op.execute(f"DROP POLICY tenant_isolation ON {table}")
        op.execute(f"ALTER TABLE {table} NO FORCE ROW LEVEL SECURITY")
        op.execute(f"ALTER TABLE {table} DISABLE ROW LEVEL SECURITY")

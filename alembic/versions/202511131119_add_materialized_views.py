"""add materialized views

Dashboards read two pre-aggregated views instead of scanning the ledger and the run history:

* ``mv_realtime_revenue``: booked revenue per tenant, currency, channel and UTC day.
* ``mv_reconciliation_status``: the latest reconciliation run per tenant and currency.

Each has a UNIQUE index over its grouping key, which ``REFRESH MATERIALIZED VIEW CONCURRENTLY``
requires; a concurrent refresh keeps the dashboards readable while it runs. Both are created
WITH DATA because a concurrent refresh refuses an unpopulated view.

Days are cut in UTC (``AT TIME ZONE 'UTC'``) rather than with ``date_trunc`` on timestamptz,
whose result depends on the refreshing session's TimeZone.

Sums of bigint are numeric in PostgreSQL; they stay numeric so a large tenant can never make a
refresh fail with an overflow.

Row-level security does not apply to materialized views, so these views hold every tenant's
rows: the application must never be granted them directly (see 202511131121, which gives it
tenant-filtered views instead). The role that refreshes them must see every tenant, i.e. be a
superuser or have BYPASSRLS once 202511131120 forces row-level security on the base tables.

Revision ID: 202511131119
Revises: 202511131115
Create Date: 2025-11-13 11:19:00+00:00

"""

from typing import Sequence, Union

from alembic import op

revision: str = "202511131119"
down_revision: Union[str, Sequence[str], None] = "202511131115"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    op.execute(
        """
        CREATE MATERIALIZED VIEW mv_realtime_revenue AS
        SELECT l.tenant_id,
               l.currency,
               COALESCE(a.channel, 'unattributed') AS channel,
               (l.effective_at AT TIME ZONE 'UTC')::date AS revenue_date,
               sum(l.amount_minor) AS revenue_minor,
               count(*) AS entry_count,
               max(l.recorded_at) AS last_recorded_at
          FROM revenue_ledger AS l
          LEFT JOIN attribution_allocations AS a
            ON a.tenant_id = l.tenant_id AND a.id = l.allocation_id
         GROUP BY l.tenant_id, l.currency, COALESCE(a.channel, 'unattributed'),
                  (l.effective_at AT TIME ZONE 'UTC')::date
          WITH DATA
        """
    )
    op.execute(
        "CREATE UNIQUE INDEX uq_mv_realtime_revenue_key "
        "ON mv_realtime_revenue (tenant_id, currency, channel, revenue_date)"
    )
    op.execute(
        "COMMENT ON MATERIALIZED VIEW mv_realtime_revenue IS "
        "'Booked revenue per tenant, currency, channel and UTC day, in minor units. "
        "Holds every tenant: read it through v_realtime_revenue.'"
    )

    op.execute(
        """
        CREATE MATERIALIZED VIEW mv_reconciliation_status AS
        SELECT DISTINCT ON (r.tenant_id, r.currency)
               r.tenant_id,
               r.currency,
               r.id AS latest_run_id,
               r.status AS latest_status,
               r.period_start,
               r.period_end,
               r.expected_amount_minor,
               r.ledger_amount_minor,
               -- numeric: the difference of two bigints can overflow bigint (found by the
               -- harness's walk with amounts at the type's edges).
               r.ledger_amount_minor::numeric - r.expected_amount_minor AS discrepancy_minor,
               r.finished_at
          FROM reconciliation_runs AS r
         ORDER BY r.tenant_id, r.currency, r.period_end DESC, r.created_at DESC, r.id DESC
          WITH DATA
        """
    )
    op.execute(
        "CREATE UNIQUE INDEX uq_mv_reconciliation_status_key "
        "ON mv_reconciliation_status (tenant_id, currency)"
    )
    op.execute(
        "COMMENT ON MATERIALIZED VIEW mv_reconciliation_status IS "
        "'Latest reconciliation run per tenant and currency. "
        "Holds every tenant: read it through v_reconciliation_status.'"
    )


def downgrade() -> None:
    op.execute("DROP MATERIALIZED VIEW mv_reconciliation_status")
    op.execute("DROP MATERIALIZED VIEW mv_realtime_revenue")

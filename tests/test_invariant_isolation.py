"""Tenant isolation on a real PostgreSQL: the classic holes are caught, correct setups are not.

Roles are cluster-wide and tests may run in parallel on one server, so every role is created
with a random name and dropped after the test.
"""

from __future__ import annotations

import contextlib
import secrets
from typing import Callable, Iterator

import psycopg
import pytest
from psycopg import sql

from harness.errors import HarnessError
from harness.invariants import acting
from harness.invariants.acting import Attempt, attempt, attempt_all
from harness.invariants.data import check_step
from harness.invariants.row_reader import capture_rows
from harness.invariants.isolation import IsolationSetup, check_isolation, detect
from harness.settings import Settings
from harness.violations import Violation

A = "00000000-0000-0000-0000-00000000000a"
B = "00000000-0000-0000-0000-00000000000b"
C = "00000000-0000-0000-0000-00000000000c"
CURRENT_TENANT = "NULLIF(current_setting('app.current_tenant', true), '')::uuid"

# Tenant A has the most rows, so the check acts as A; C has no events at all.
BASE = f"""
CREATE TABLE tenants (id uuid PRIMARY KEY, name text NOT NULL);
CREATE TABLE events (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_id uuid NOT NULL REFERENCES tenants,
    idempotency_key text NOT NULL,
    amount numeric(10,2),
    UNIQUE (tenant_id, idempotency_key)
);
INSERT INTO tenants VALUES ('{A}', 'a'), ('{B}', 'b'), ('{C}', 'c');
INSERT INTO events (tenant_id, idempotency_key, amount)
VALUES ('{A}', 'a1', 1), ('{A}', 'a2', 2), ('{A}', 'a3', 3), ('{B}', 'b1', 10), ('{B}', 'b2', 20);
ALTER TABLE tenants ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY;
ALTER TABLE events ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON tenants USING (id = {CURRENT_TENANT});
CREATE POLICY tenant_isolation ON events USING (tenant_id = {CURRENT_TENANT});
GRANT SELECT, INSERT, UPDATE, DELETE ON tenants, events TO {{app}};
"""

REFUNDS = f"""
CREATE TABLE refunds (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_id uuid NOT NULL REFERENCES tenants,
    amount numeric(10,2) NOT NULL
);
INSERT INTO refunds (tenant_id, amount) VALUES ('{A}', 1), ('{B}', 2), ('{B}', 3);
"""

OWNER_RIGHTS_VIEW = """
    CREATE VIEW v_events AS SELECT * FROM events;
    GRANT SELECT ON v_events TO {app}
"""

ALL_WRITES = {"select", "select_unset", "insert", "update_tenant", "update", "delete"}
READS = {"select", "select_unset"}

HOLES = [
    # (id, SQL after BASE, operations caught, relation)
    ("policy-without-enable",
     "ALTER TABLE events NO FORCE ROW LEVEL SECURITY, DISABLE ROW LEVEL SECURITY",
     ALL_WRITES, "public.events"),
    ("owner-as-app-role-without-force",
     "ALTER TABLE events OWNER TO {app}; ALTER TABLE events NO FORCE ROW LEVEL SECURITY",
     ALL_WRITES, "public.events"),
    ("using-true",
     "DROP POLICY tenant_isolation ON events; CREATE POLICY everyone ON events USING (true)",
     ALL_WRITES, "public.events"),
    ("with-check-true", "ALTER POLICY tenant_isolation ON events WITH CHECK (true)",
     {"insert", "update_tenant"}, "public.events"),
    ("permissive-insert-policy", "CREATE POLICY inserts ON events FOR INSERT WITH CHECK (true)",
     {"insert"}, "public.events"),
    ("permissive-delete-policy", "CREATE POLICY deletes ON events FOR DELETE USING (true)",
     {"delete"}, "public.events"),
    ("permissive-update-policy", "CREATE POLICY updates ON events FOR UPDATE USING (true)",
     {"update", "update_tenant"}, "public.events"),
    ("materialized-view-granted", """
        CREATE MATERIALIZED VIEW mv_revenue AS
            SELECT tenant_id, sum(amount) AS revenue FROM events GROUP BY tenant_id;
        GRANT SELECT ON mv_revenue TO {app}
     """, READS, "public.mv_revenue"),
    ("owner-rights-view", OWNER_RIGHTS_VIEW, READS, "public.v_events"),
    ("new-tenant-table-without-rls",
     REFUNDS + "GRANT SELECT, INSERT, UPDATE, DELETE ON refunds TO {app}",
     ALL_WRITES, "public.refunds"),
    ("revoke-select-keeps-column-update", REFUNDS + """
        GRANT SELECT, UPDATE (amount) ON refunds TO {app};
        REVOKE SELECT ON refunds FROM {app}
     """, {"update"}, "public.refunds"),
    # Functions run with their owner's rights (the superuser here): RLS filters nothing.
    ("definer-function-returns-every-tenants-totals", """
        CREATE FUNCTION tenant_totals() RETURNS TABLE (tenant_id uuid, total numeric)
            SECURITY DEFINER LANGUAGE sql AS
            'SELECT tenant_id, sum(amount) FROM events GROUP BY tenant_id'
     """, {"execute"}, "tenant_totals()"),
    ("definer-function-returns-the-grand-total", """
        CREATE FUNCTION grand_total() RETURNS numeric SECURITY DEFINER LANGUAGE sql AS
            'SELECT sum(amount) FROM events'
     """, {"execute"}, "grand_total()"),
    ("definer-function-takes-the-tenant-as-argument", """
        CREATE FUNCTION events_of(t uuid, since date) RETURNS SETOF events SECURITY DEFINER
            LANGUAGE sql AS 'SELECT * FROM events WHERE tenant_id = t'
     """, {"execute"}, "events_of(uuid,date)"),
]

HOLES_BY_ID = {hole[0]: hole[1] for hole in HOLES}

CORRECT = [
    ("rls-forced-with-tenants-policy-on-id", ""),
    ("security-invoker-view", """
        CREATE VIEW v_events WITH (security_invoker = true) AS SELECT * FROM events;
        GRANT SELECT, INSERT, UPDATE, DELETE ON v_events TO {app}
     """),
    ("security-barrier-view-filtering-by-tenant", f"""
        CREATE VIEW v_mine WITH (security_barrier) AS
            SELECT * FROM events WHERE tenant_id = {CURRENT_TENANT};
        GRANT SELECT ON v_mine TO {{app}}
     """),
    ("owner-as-app-role-with-force", "ALTER TABLE events OWNER TO {app}"),
    ("revoke-removes-column-grants",
     REFUNDS + "GRANT SELECT, UPDATE (amount) ON refunds TO {app};"
               "REVOKE SELECT, UPDATE ON refunds FROM {app}"),
    ("materialized-view-not-granted", """
        CREATE MATERIALIZED VIEW mv_revenue AS
            SELECT tenant_id, sum(amount) AS revenue FROM events GROUP BY tenant_id
     """),
    ("definer-function-filtering-by-the-tenant-setting", f"""
        CREATE FUNCTION my_total() RETURNS TABLE (tenant_id uuid, total numeric)
            SECURITY DEFINER LANGUAGE sql AS
            $$SELECT tenant_id, sum(amount) FROM events
               WHERE tenant_id = {CURRENT_TENANT} GROUP BY tenant_id$$
     """),
    ("invoker-function", """
        CREATE FUNCTION tenant_totals() RETURNS TABLE (tenant_id uuid, total numeric)
            LANGUAGE sql AS 'SELECT tenant_id, sum(amount) FROM events GROUP BY tenant_id'
     """),
    ("definer-function-not-executable-by-the-app-role", """
        CREATE FUNCTION grand_total() RETURNS numeric SECURITY DEFINER LANGUAGE sql AS
            'SELECT sum(amount) FROM events';
        REVOKE EXECUTE ON FUNCTION grand_total() FROM PUBLIC
     """),
    ("definer-function-with-volatile-or-tenant-free-results", """
        CREATE TABLE currencies (code text PRIMARY KEY);
        INSERT INTO currencies VALUES ('EUR'), ('USD');
        CREATE FUNCTION currencies() RETURNS SETOF text SECURITY DEFINER LANGUAGE sql AS
            'SELECT code FROM currencies';
        CREATE FUNCTION token() RETURNS uuid SECURITY DEFINER LANGUAGE sql AS
            'SELECT gen_random_uuid()';
        CREATE FUNCTION touch(n integer) RETURNS void SECURITY DEFINER LANGUAGE sql AS
            'DELETE FROM events'
     """),
]


@pytest.fixture
def make_role(pg_conn: psycopg.Connection) -> Iterator[Callable[..., str]]:
    """Create roles with unique names; afterwards hand back what they own and drop them."""
    created: list[str] = []

    def make(options: str = "") -> str:
        name = f"harness_test_{secrets.token_hex(4)}"
        pg_conn.execute(sql.SQL("CREATE ROLE {} " + options).format(sql.Identifier(name)))
        created.append(name)
        return name

    yield make
    pg_conn.execute("RESET ROLE")
    for name in created:
        role = sql.Identifier(name)
        pg_conn.execute(sql.SQL(
            "REASSIGN OWNED BY {0} TO CURRENT_USER; DROP OWNED BY {0}; DROP ROLE {0}"
        ).format(role))


@pytest.fixture
def app(pg_conn: psycopg.Connection, make_role: Callable[..., str]) -> str:
    role = make_role()
    pg_conn.execute(BASE.format(app=role))
    return role


def _check(conn: psycopg.Connection, overrides: Settings | None = None) -> list[Violation]:
    setup = detect(conn, overrides)
    assert setup is not None
    return check_isolation(conn, setup, revision="0042")


def _found(conn: psycopg.Connection) -> set[tuple[str, str]]:
    return {(v.evidence["operation"], v.evidence["relation"]) for v in _check(conn)}


@pytest.mark.parametrize(("hole", "operations", "relation"),
                         [h[1:] for h in HOLES], ids=[h[0] for h in HOLES])
def test_holes_are_caught(pg_conn: psycopg.Connection, app: str, hole: str,
                          operations: set[str], relation: str) -> None:
    pg_conn.execute(hole.format(app=app))
    assert _found(pg_conn) == {(operation, relation) for operation in operations}


@pytest.mark.parametrize("setup_sql", [c[1] for c in CORRECT], ids=[c[0] for c in CORRECT])
def test_correct_setups_stay_silent(pg_conn: psycopg.Connection, app: str, setup_sql: str) -> None:
    if setup_sql:
        pg_conn.execute(setup_sql.format(app=app))
    assert _found(pg_conn) == set()


@pytest.mark.parametrize("change", [
    "",
    # With only the tenants table's policy left, the most common policy column is its id; the
    # foreign keys still say which column holds the tenant.
    "DROP POLICY tenant_isolation ON events; CREATE POLICY everyone ON events USING (true)",
], ids=["every-policy", "only-the-tenants-policy"])
def test_detects_setting_column_tenants_table_and_roles(
    pg_conn: psycopg.Connection, app: str, make_role: Callable[..., str], change: str
) -> None:
    pg_conn.execute(change)
    for options in ("BYPASSRLS", "SUPERUSER"):
        privileged = sql.Identifier(make_role(options))
        pg_conn.execute(sql.SQL("GRANT SELECT ON events TO {}").format(privileged))
    owner = sql.Identifier(make_role())
    pg_conn.execute(sql.SQL("ALTER TABLE tenants OWNER TO {}").format(owner))
    assert detect(pg_conn) == IsolationSetup(
        tenant_setting="app.current_tenant", tenant_column="tenant_id", app_roles=(app,),
        tenants_tables=(("public", "tenants", "id"),),
    )


def test_the_tenants_table_is_found_through_the_foreign_key_without_its_policy(
    pg_conn: psycopg.Connection, app: str
) -> None:
    pg_conn.execute("DROP POLICY tenant_isolation ON tenants")
    setup = detect(pg_conn)
    assert setup is not None and setup.tenants_tables == (("public", "tenants", "id"),)
    assert _found(pg_conn) == set()
    pg_conn.execute("ALTER TABLE tenants DISABLE ROW LEVEL SECURITY")
    assert ("select", "public.tenants") in _found(pg_conn)


@pytest.mark.parametrize("undo", [
    "DROP POLICY tenant_isolation ON events; DROP POLICY tenant_isolation ON tenants",
    "REVOKE ALL ON events, tenants FROM {app}",
], ids=["no-policies", "no-grants"])
def test_nothing_detected_means_not_applicable(
    pg_conn: psycopg.Connection, app: str, undo: str
) -> None:
    pg_conn.execute(undo.format(app=app))
    assert detect(pg_conn) is None


def test_settings_override_detection(pg_conn: psycopg.Connection, app: str,
                                     make_role: Callable[..., str]) -> None:
    # The owner holds no grant, so only the setting names it as an application role.
    owner = make_role()
    pg_conn.execute(sql.SQL(
        "ALTER TABLE events OWNER TO {}; ALTER TABLE events NO FORCE ROW LEVEL SECURITY"
    ).format(sql.Identifier(owner)))
    overrides = Settings(app_roles=(owner, "harness_no_such_role"), tenant_column="tenant_id")
    found = {(v.evidence["role"], v.evidence["operation"]) for v in _check(pg_conn, overrides)}
    assert found == {(owner, operation) for operation in ALL_WRITES}
    assert detect(pg_conn, Settings(tenant_setting="app.other")) is None


def test_message_and_evidence_name_role_tenants_relation_and_rows(
    pg_conn: psycopg.Connection, app: str
) -> None:
    pg_conn.execute(OWNER_RIGHTS_VIEW.format(app=app))
    select, unset = _check(pg_conn)
    assert select.property == "tenant_isolation" and select.revision == "0042"
    assert select.message == (
        f"role {app} with app.current_tenant={A} reads 2 rows of tenant {B} from public.v_events")
    assert select.evidence["rows_by_tenant"] == {B: 2}
    assert sorted(row["idempotency_key"] for row in select.evidence["rows"]) == ["b1", "b2"]
    assert unset.message == (
        f"role {app} with app.current_tenant unset reads 5 rows of 2 tenants from public.v_events")
    assert (unset.evidence["tenant"], unset.evidence["operation"]) == (None, "select_unset")


def test_insert_stopped_only_by_a_constraint_says_so(pg_conn: psycopg.Connection, app: str) -> None:
    pg_conn.execute("ALTER POLICY tenant_isolation ON events WITH CHECK (true)")
    [insert] = [v for v in _check(pg_conn) if v.evidence["operation"] == "insert"]
    assert insert.message.startswith(
        f"role {app} with app.current_tenant={A} inserts a row of tenant {B} into public.events"
        " (only a constraint stopped it: duplicate key")
    assert insert.evidence["row"]["tenant_id"] == B


def test_the_check_leaves_every_row_and_setting_as_it_was(
    pg_conn: psycopg.Connection, app: str
) -> None:
    pg_conn.execute(HOLES_BY_ID["new-tenant-table-without-rls"].format(app=app))
    before = capture_rows(pg_conn)
    assert _check(pg_conn)
    assert check_step(before, capture_rows(pg_conn), revision="0042", direction="upgrade") == []
    assert pg_conn.execute(
        "SELECT current_user = session_user, current_setting('session_replication_role'),"
        " coalesce(current_setting('app.current_tenant', true), '')"
    ).fetchone() == (True, "origin", "")


def test_a_second_check_on_a_clean_schema_is_silent_too(pg_conn: psycopg.Connection, app: str) -> None:
    setup = detect(pg_conn)
    assert setup is not None
    assert check_isolation(pg_conn, setup, revision="0042") == []
    assert check_isolation(pg_conn, setup, revision="0042") == [], "a second check sees the same"


def test_a_connection_that_cannot_switch_roles_fails_loudly(
    pg_conn: psycopg.Connection, app: str
) -> None:
    setup = detect(pg_conn)
    assert setup is not None
    pg_conn.execute("SET ROLE pg_read_all_data")
    with pytest.raises(HarnessError, match="superuser"):
        check_isolation(pg_conn, setup, revision="0042")


@pytest.mark.parametrize("in_transaction", [False, True], ids=["alone", "in-a-transaction"])
def test_attempts_together_give_what_each_gives_alone(pg_conn: psycopg.Connection, in_transaction: bool,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """Reads sent as one string: the same outcomes as one at a time, a failing one in the
    middle included (the rest of the string goes unrun, then each goes again alone), and
    nothing left behind."""
    sent: list[int] = []
    run = acting._run
    monkeypatch.setattr(acting, "_run", lambda conn, attempts, **kw: sent.append(len(attempts)) or run(
        conn, attempts, **kw))
    pg_conn.execute("CREATE TABLE t (tenant text, n int); INSERT INTO t VALUES ('a', 1), ('b', 2), ('b', 3)")
    count = sql.SQL("SELECT tenant, count(*) FROM t WHERE tenant <> %s GROUP BY 1 ORDER BY 1")
    attempts = [
        Attempt(count, ["a"]),
        Attempt(sql.SQL("SELECT current_setting('app.tenant'), current_user = session_user"),
                setting=("app.tenant", "b"), role="pg_read_all_data"),
        Attempt(sql.SQL("SELECT 1 / (SELECT count(*) - 3 FROM t)")),
        Attempt(sql.SQL("SELECT '100%'")),
    ]
    with pg_conn.transaction(force_rollback=True) if in_transaction else contextlib.nullcontext():
        alone = [attempt(pg_conn, a.query, a.params, setting=a.setting, role=a.role) for a in attempts]
        together = attempt_all(pg_conn, attempts)
        sent.clear()
        without_the_failure = attempt_all(pg_conn, attempts[:2] + attempts[3:])
        assert sent == [3], "one string for the three"
        assert pg_conn.execute("SELECT current_user = session_user, "
                               "coalesce(current_setting('app.tenant', true), '')").fetchone() == (True, "")
    assert [(o.rows, o.rowcount) for o in alone] == [
        ([("b", 2)], 1), ([("b", False)], 1), ([], 0), ([("100%",)], 1)]
    assert isinstance(alone[2].error, psycopg.errors.DivisionByZero)
    assert [(o.rows, o.rowcount, type(o.error)) for o in together] == [
        (o.rows, o.rowcount, type(o.error)) for o in alone]
    assert [(o.rows, o.rowcount) for o in without_the_failure] == [
        (o.rows, o.rowcount) for o in alone[:2] + alone[3:]]

"""Schema snapshots against a real server: every object kind's one-thing differences are named,
and histories that build the same schema (clones, another server, different statement orders,
grant-then-revoke, ...) compare equal.

Each difference case builds :data:`BASE`, snapshots, applies one change and snapshots again: the
same as two databases that differ in exactly that change. The expected differences are exact, so
a case also proves that nothing else is reported.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Iterator, Sequence

import psycopg
import pytest

from harness.prepared import settle
from harness.server import Server
from harness.snapshot import Snapshot, diff_snapshots, format_diff, take_snapshot
from harness.snapshot.reader import WHOLE, plan_snapshot

ROLES = ("snap_app", "snap_other")

BASE = """
CREATE SCHEMA app;
CREATE TYPE app.status AS ENUM ('new', 'paid');
CREATE TYPE app.color AS ENUM ('red', 'green');
CREATE TYPE app.pair AS (x int, y text);
CREATE TYPE app.span AS RANGE (subtype = int4);
CREATE DOMAIN app.email AS text CONSTRAINT email_at CHECK (VALUE LIKE '%@%');
CREATE TABLE app.tenants (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name text NOT NULL,
    email app.email,
    created_at timestamptz DEFAULT now()
);
CREATE TABLE app.invoices (
    id serial PRIMARY KEY,
    tenant_id bigint NOT NULL REFERENCES app.tenants (id),
    amount numeric(12, 2) CHECK (amount >= 0),
    status app.status DEFAULT 'new',
    total numeric GENERATED ALWAYS AS (amount * 2) STORED
);
CREATE TABLE app.wide (a int, b int, c int);
CREATE TABLE app.priced (price numeric(12, 2));
CREATE TABLE app.events (id int, day date) PARTITION BY RANGE (day);
CREATE TABLE app.events_2025 PARTITION OF app.events FOR VALUES FROM ('2025-01-01') TO ('2026-01-01');
CREATE TABLE app.base_t (a int);
CREATE TABLE app.child_t (a int, b int);
CREATE INDEX ix_invoices_tenant ON app.invoices (tenant_id) WHERE status = 'new';
CREATE INDEX ix_tenants_name ON app.tenants (lower(name));
ALTER TABLE app.invoices ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON app.invoices USING (tenant_id = 1);
CREATE FUNCTION app.touch() RETURNS trigger LANGUAGE plpgsql AS $$BEGIN RETURN NEW; END$$;
CREATE PROCEDURE app.tidy() LANGUAGE sql AS $$SELECT 1$$;
CREATE TRIGGER invoices_touch BEFORE UPDATE ON app.invoices FOR EACH ROW EXECUTE FUNCTION app.touch();
CREATE VIEW app.v_invoices AS SELECT id, amount FROM app.invoices;
CREATE MATERIALIZED VIEW app.m_totals AS
    SELECT tenant_id, sum(amount) AS total FROM app.invoices GROUP BY tenant_id;
CREATE SEQUENCE app.counter;
CREATE FUNCTION app.on_ddl() RETURNS event_trigger LANGUAGE plpgsql AS $$BEGIN END$$;
CREATE EVENT TRIGGER snap_ddl ON ddl_command_end EXECUTE FUNCTION app.on_ddl();
GRANT USAGE ON SCHEMA app TO snap_app;
GRANT SELECT ON app.tenants TO snap_app;
"""

# What the equality tests build on top of BASE: one of nearly every kind the snapshot reads.
RICH = """
CREATE EXTENSION citext SCHEMA app;
CREATE EXTENSION postgres_fdw;
CREATE SERVER snap_remote FOREIGN DATA WRAPPER postgres_fdw OPTIONS (host 'localhost', dbname 'x');
CREATE FOREIGN TABLE app.remote_things (id int OPTIONS (column_name 'thing_id'))
    SERVER snap_remote OPTIONS (table_name 'things');
CREATE COLLATION app.bytes (provider = libc, locale = 'C');
CREATE TABLE app.notes (body app.citext, tag text COLLATE "C", pair app.pair);
CREATE UNLOGGED TABLE app.scratch (id int);
CREATE RULE no_delete AS ON DELETE TO app.notes DO INSTEAD NOTHING;
CREATE STATISTICS app.st_invoices ON tenant_id, status FROM app.invoices;
CREATE UNIQUE INDEX ix_m_totals ON app.m_totals (tenant_id);
CREATE VIEW app.v_secure WITH (security_invoker = true, security_barrier = true) AS
    SELECT id FROM app.invoices WHERE amount > 0 WITH LOCAL CHECK OPTION;
CREATE POLICY strict_amount ON app.invoices AS RESTRICTIVE FOR UPDATE TO snap_app, snap_other
    USING (amount < 1000) WITH CHECK (amount < 2000);
CREATE AGGREGATE app.total_len(text) (sfunc = textcat, stype = text, initcond = '');
CREATE FUNCTION app.add(a int, b int DEFAULT 1) RETURNS int LANGUAGE sql IMMUTABLE STRICT
    SET search_path = app RETURN a + b;
ALTER TABLE app.child_t INHERIT app.base_t;
ALTER TABLE app.invoices FORCE ROW LEVEL SECURITY;
ALTER TABLE app.wide SET (fillfactor = 70, autovacuum_enabled = false);
ALTER TABLE app.tenants ALTER COLUMN name SET STATISTICS 500;
ALTER TABLE app.invoices ADD CONSTRAINT positive_id CHECK (id > 0) NOT VALID;
ALTER TABLE app.invoices CLUSTER ON invoices_pkey;
ALTER SEQUENCE app.counter INCREMENT BY 5 MAXVALUE 1000 CYCLE OWNED BY app.wide.a;
GRANT UPDATE (name), INSERT ON app.tenants TO snap_app;
GRANT SELECT ON app.v_secure TO snap_other WITH GRANT OPTION;
GRANT USAGE ON SEQUENCE app.counter TO snap_app;
REVOKE EXECUTE ON FUNCTION app.add(int, int) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION app.add(int, int) TO snap_app;
REVOKE USAGE ON TYPE app.status FROM PUBLIC;
GRANT USAGE ON FOREIGN SERVER snap_remote TO snap_app;
ALTER DEFAULT PRIVILEGES IN SCHEMA app GRANT SELECT ON TABLES TO snap_app;
ALTER DEFAULT PRIVILEGES REVOKE EXECUTE ON FUNCTIONS FROM PUBLIC;
COMMENT ON SCHEMA app IS 'the application';
COMMENT ON TABLE app.tenants IS 'who pays';
COMMENT ON COLUMN app.tenants.name IS 'display name';
COMMENT ON POLICY tenant_isolation ON app.invoices IS 'one tenant at a time';
COMMENT ON TYPE app.status IS 'invoice state';
COMMENT ON FUNCTION app.touch() IS 'keeps rows fresh';
COMMENT ON TRIGGER invoices_touch ON app.invoices IS 'fires on update';
COMMENT ON INDEX app.ix_invoices_tenant IS 'open invoices';
COMMENT ON CONSTRAINT email_at ON DOMAIN app.email IS 'has an at';
COMMENT ON EVENT TRIGGER snap_ddl IS 'watches';
ALTER EVENT TRIGGER snap_ddl DISABLE;
ALTER TABLE app.invoices DISABLE TRIGGER invoices_touch;
"""


@pytest.fixture(scope="module")
def server(pg_server: Server) -> Server:
    """The session's server, with the roles these tests grant to (roles are cluster-wide)."""
    _create_roles(pg_server)
    return pg_server


def _create_roles(server: Server) -> None:
    with psycopg.connect(server.dsn("postgres"), autocommit=True) as conn:
        for name in ROLES:
            conn.execute(f"DO $$ BEGIN CREATE ROLE {name}; EXCEPTION WHEN duplicate_object THEN NULL; END $$")


def _run(conn: psycopg.Connection, statements: str | Sequence[str]) -> None:
    """Run a script, or a sequence of statements one by one (for CONCURRENTLY)."""
    for statement in [statements] if isinstance(statements, str) else statements:
        if statement.strip():
            conn.execute(statement)


@pytest.fixture
def built(server: Server) -> Iterator[psycopg.Connection]:
    with server.scratch() as database, psycopg.connect(database.dsn, autocommit=True) as conn:
        _run(conn, BASE)
        yield conn


def snapshot_of(server: Server, *scripts: str | Sequence[str]) -> Snapshot:
    with server.scratch() as database, psycopg.connect(database.dsn, autocommit=True) as conn:
        for script in scripts:
            _run(conn, script)
        return take_snapshot(conn)


# --- one thing differs -------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Case:
    id: str
    change: str
    expected: tuple[tuple[str, str, frozenset[str] | None], ...]
    """(object, change, changed attributes or None for added/removed)."""
    may_also: tuple[str, ...] = ()
    """Objects some server versions also report (PostgreSQL 18 keeps NOT NULL as constraints)."""
    kind: str = "schema"


def changed(obj: str, *attributes: str) -> tuple[str, str, frozenset[str]]:
    return (obj, "changed", frozenset(attributes))


def added(obj: str) -> tuple[str, str, None]:
    return (obj, "added", None)


def removed(obj: str) -> tuple[str, str, None]:
    return (obj, "removed", None)


COMMENTS = [
    ("SCHEMA app", "schema app"),
    ("TABLE app.tenants", "table app.tenants"),
    ("COLUMN app.tenants.name", "column app.tenants.name"),
    ("VIEW app.v_invoices", "view app.v_invoices"),
    ("COLUMN app.v_invoices.amount", "column app.v_invoices.amount"),
    ("MATERIALIZED VIEW app.m_totals", "materialized view app.m_totals"),
    ("SEQUENCE app.counter", "sequence app.counter"),
    ("INDEX app.ix_invoices_tenant", "index app.ix_invoices_tenant"),
    ("CONSTRAINT invoices_amount_check ON app.invoices", "constraint invoices_amount_check on app.invoices"),
    ("CONSTRAINT email_at ON DOMAIN app.email", "constraint email_at on domain app.email"),
    ("POLICY tenant_isolation ON app.invoices", "policy tenant_isolation on app.invoices"),
    ("TRIGGER invoices_touch ON app.invoices", "trigger invoices_touch on app.invoices"),
    ("FUNCTION app.touch()", "function app.touch()"),
    ("PROCEDURE app.tidy()", "procedure app.tidy()"),
    ("TYPE app.status", "type app.status"),
    ("DOMAIN app.email", "type app.email"),
    ("EVENT TRIGGER snap_ddl", "event trigger snap_ddl"),
    ("EXTENSION plpgsql", "extension plpgsql"),
]

CASES = [
    *(Case(f"comment on {target}", f"COMMENT ON {target} IS 'noted'", (changed(key, "comment"),))
      for target, key in COMMENTS),
    # privileges, one grant each
    Case("table grant", "GRANT INSERT ON app.tenants TO snap_app",
         (added("grant INSERT on table app.tenants to snap_app"),)),
    Case("column grant", "GRANT UPDATE (name) ON app.tenants TO snap_app",
         (added("grant UPDATE(name) on table app.tenants to snap_app"),)),
    Case("grant option", "GRANT SELECT ON app.tenants TO snap_app WITH GRANT OPTION",
         (changed("grant SELECT on table app.tenants to snap_app", "grantable"),)),
    Case("grant to PUBLIC", "GRANT SELECT ON app.invoices TO PUBLIC",
         (added("grant SELECT on table app.invoices to PUBLIC"),)),
    Case("view grant", "GRANT SELECT ON app.v_invoices TO snap_other",
         (added("grant SELECT on view app.v_invoices to snap_other"),)),
    Case("sequence grant", "GRANT USAGE ON SEQUENCE app.counter TO snap_app",
         (added("grant USAGE on sequence app.counter to snap_app"),)),
    Case("schema grant", "GRANT CREATE ON SCHEMA app TO snap_app",
         (added("grant CREATE on schema app to snap_app"),)),
    Case("schema revoke", "REVOKE USAGE ON SCHEMA app FROM snap_app",
         (removed("grant USAGE on schema app to snap_app"),)),
    Case("function revoke from PUBLIC", "REVOKE EXECUTE ON FUNCTION app.touch() FROM PUBLIC",
         (added("revoke EXECUTE on function app.touch() from PUBLIC"),)),
    Case("procedure grant", "GRANT EXECUTE ON PROCEDURE app.tidy() TO snap_app",
         (added("grant EXECUTE on procedure app.tidy() to snap_app"),)),
    Case("type revoke", "REVOKE USAGE ON TYPE app.status FROM PUBLIC",
         (added("revoke USAGE on type app.status from PUBLIC"),)),
    Case("owner revokes own privilege", "REVOKE DELETE ON app.wide FROM postgres",
         (added("revoke DELETE on table app.wide from postgres"),)),
    Case("grant by another grantor",
         "GRANT SELECT ON app.wide TO snap_app WITH GRANT OPTION;"
         "SET ROLE snap_app; GRANT SELECT ON app.wide TO snap_other; RESET ROLE",
         (added("grant SELECT on table app.wide to snap_app"),
          added("grant SELECT on table app.wide to snap_other granted by snap_app"))),
    Case("default privilege in schema",
         "ALTER DEFAULT PRIVILEGES IN SCHEMA app GRANT SELECT ON TABLES TO snap_app",
         (added("default privileges for role postgres in schema app: grant SELECT on tables to snap_app"),)),
    Case("global default privilege revoked", "ALTER DEFAULT PRIVILEGES REVOKE EXECUTE ON FUNCTIONS FROM PUBLIC",
         (added("default privileges for role postgres: revoke EXECUTE on functions from PUBLIC"),)),
    # policies and row-level security
    Case("policy role list", "ALTER POLICY tenant_isolation ON app.invoices TO snap_app, snap_other",
         (changed("policy tenant_isolation on app.invoices", "roles"),)),
    Case("policy USING", "ALTER POLICY tenant_isolation ON app.invoices USING (tenant_id = 2)",
         (changed("policy tenant_isolation on app.invoices", "USING"),)),
    Case("policy WITH CHECK", "ALTER POLICY tenant_isolation ON app.invoices WITH CHECK (tenant_id > 0)",
         (changed("policy tenant_isolation on app.invoices", "WITH CHECK"),)),
    Case("policy restrictive",
         "DROP POLICY tenant_isolation ON app.invoices;"
         "CREATE POLICY tenant_isolation ON app.invoices AS RESTRICTIVE USING (tenant_id = 1)",
         (changed("policy tenant_isolation on app.invoices", "permissive"),)),
    Case("policy command",
         "DROP POLICY tenant_isolation ON app.invoices;"
         "CREATE POLICY tenant_isolation ON app.invoices FOR SELECT USING (tenant_id = 1)",
         (changed("policy tenant_isolation on app.invoices", "command"),)),
    Case("row level security enabled", "ALTER TABLE app.tenants ENABLE ROW LEVEL SECURITY",
         (changed("table app.tenants", "row level security"),)),
    Case("row level security forced", "ALTER TABLE app.invoices FORCE ROW LEVEL SECURITY",
         (changed("table app.invoices", "force row level security"),)),
    # types
    Case("enum label order", "DROP TYPE app.color; CREATE TYPE app.color AS ENUM ('green', 'red')",
         (changed("type app.color", "labels"),)),
    Case("enum value added", "ALTER TYPE app.status ADD VALUE 'void'",
         (changed("type app.status", "labels"),)),
    Case("domain check", "ALTER DOMAIN app.email DROP CONSTRAINT email_at;"
         "ALTER DOMAIN app.email ADD CONSTRAINT email_at CHECK (VALUE LIKE '%@%.%')",
         (changed("constraint email_at on domain app.email", "definition"),)),
    Case("domain default", "ALTER DOMAIN app.email SET DEFAULT 'a@b'",
         (changed("type app.email", "default"),)),
    Case("composite attribute", "ALTER TYPE app.pair ADD ATTRIBUTE z int",
         (changed("type app.pair", "attributes"),)),
    Case("range subtype", "DROP TYPE app.span; CREATE TYPE app.span AS RANGE (subtype = int8)",
         (changed("type app.span", "subtype", "subtype operator class"),)),
    Case("type left behind", "CREATE TYPE app.mood AS ENUM ('ok')", (added("type app.mood"),)),
    # columns
    Case("column type", "ALTER TABLE app.wide ALTER COLUMN a TYPE bigint",
         (changed("column app.wide.a", "type"),)),
    Case("column type modifier", "ALTER TABLE app.priced ALTER COLUMN price TYPE numeric(14, 2)",
         (changed("column app.priced.price", "type"),)),
    Case("column nullability", "ALTER TABLE app.wide ALTER COLUMN a SET NOT NULL",
         (changed("column app.wide.a", "not null"),), may_also=("constraint wide_a_not_null on app.wide",)),
    Case("column default", "ALTER TABLE app.tenants ALTER COLUMN created_at SET DEFAULT clock_timestamp()",
         (changed("column app.tenants.created_at", "default"),)),
    Case("column identity", "ALTER TABLE app.tenants ALTER COLUMN id SET GENERATED BY DEFAULT",
         (changed("column app.tenants.id", "identity"),)),
    Case("generated expression",
         "ALTER TABLE app.invoices DROP COLUMN total;"
         "ALTER TABLE app.invoices ADD COLUMN total numeric GENERATED ALWAYS AS (amount * 3) STORED",
         (changed("column app.invoices.total", "generated"),)),
    Case("column collation", "ALTER TABLE app.tenants ALTER COLUMN name TYPE text COLLATE \"C\"",
         (changed("column app.tenants.name", "collation"),)),
    Case("column statistics", "ALTER TABLE app.wide ALTER COLUMN a SET STATISTICS 500",
         (changed("column app.wide.a", "statistics"),)),
    Case("column storage", "ALTER TABLE app.tenants ALTER COLUMN name SET STORAGE EXTERNAL",
         (changed("column app.tenants.name", "storage"),)),
    Case("column removed", "ALTER TABLE app.wide DROP COLUMN b", (removed("column app.wide.b"),)),
    Case("column order", "ALTER TABLE app.wide DROP COLUMN b; ALTER TABLE app.wide ADD COLUMN b int",
         (changed("column app.wide.b", "position"),), kind="column_order"),
    # tables
    Case("reloptions", "ALTER TABLE app.wide SET (fillfactor = 70)", (changed("table app.wide", "options"),)),
    Case("toast reloptions", "ALTER TABLE app.tenants SET (toast.autovacuum_enabled = false)",
         (changed("table app.tenants", "toast options"),)),
    Case("unlogged", "ALTER TABLE app.wide SET UNLOGGED", (changed("table app.wide", "unlogged"),)),
    Case("replica identity", "ALTER TABLE app.wide REPLICA IDENTITY FULL",
         (changed("table app.wide", "replica identity"),)),
    Case("partition detached", "ALTER TABLE app.events DETACH PARTITION app.events_2025",
         (changed("table app.events_2025", "inherits", "partition bound"),)),
    Case("inheritance", "ALTER TABLE app.child_t INHERIT app.base_t",
         (changed("table app.child_t", "inherits"),)),
    Case("table owner", "ALTER TABLE app.wide OWNER TO snap_app", (changed("table app.wide", "owner"),)),
    Case("table left behind", "CREATE TABLE app.leftover (id int)",
         (added("table app.leftover"), added("column app.leftover.id"))),
    # constraints and indexes
    Case("check definition behind the same name",
         "ALTER TABLE app.invoices DROP CONSTRAINT invoices_amount_check,"
         " ADD CONSTRAINT invoices_amount_check CHECK (amount > 0)",
         (changed("constraint invoices_amount_check on app.invoices", "definition"),)),
    Case("constraint not validated",
         "ALTER TABLE app.invoices DROP CONSTRAINT invoices_amount_check,"
         " ADD CONSTRAINT invoices_amount_check CHECK (amount >= 0) NOT VALID",
         (changed("constraint invoices_amount_check on app.invoices", "definition", "validated"),)),
    Case("foreign key deferrable",
         "ALTER TABLE app.invoices ALTER CONSTRAINT invoices_tenant_id_fkey DEFERRABLE INITIALLY DEFERRED",
         (changed("constraint invoices_tenant_id_fkey on app.invoices",
                  "definition", "deferrable", "initially deferred"),)),
    Case("foreign key action",
         "ALTER TABLE app.invoices DROP CONSTRAINT invoices_tenant_id_fkey, ADD CONSTRAINT invoices_tenant_id_fkey"
         " FOREIGN KEY (tenant_id) REFERENCES app.tenants (id) ON DELETE CASCADE",
         (changed("constraint invoices_tenant_id_fkey on app.invoices", "definition"),)),
    Case("primary key added",
         "ALTER TABLE app.wide ADD CONSTRAINT wide_pkey PRIMARY KEY (c)",
         (added("constraint wide_pkey on app.wide"), added("index app.wide_pkey"),
          changed("column app.wide.c", "not null")),
         may_also=("constraint wide_c_not_null on app.wide",)),
    Case("index predicate", "DROP INDEX app.ix_invoices_tenant;"
         "CREATE INDEX ix_invoices_tenant ON app.invoices (tenant_id) WHERE status = 'paid'",
         (changed("index app.ix_invoices_tenant", "definition"),)),
    Case("index unique", "DROP INDEX app.ix_invoices_tenant;"
         "CREATE UNIQUE INDEX ix_invoices_tenant ON app.invoices (tenant_id) WHERE status = 'new'",
         (changed("index app.ix_invoices_tenant", "definition"),)),
    Case("index expression",
         "DROP INDEX app.ix_tenants_name; CREATE INDEX ix_tenants_name ON app.tenants (upper(name))",
         (changed("index app.ix_tenants_name", "definition"),)),
    Case("index method", "DROP INDEX app.ix_tenants_name;"
         "CREATE INDEX ix_tenants_name ON app.tenants USING hash (lower(name))",
         (changed("index app.ix_tenants_name", "definition"),)),
    Case("index clustered", "ALTER TABLE app.invoices CLUSTER ON invoices_pkey",
         (changed("index app.invoices_pkey", "clustered"),)),
    Case("index on materialized view", "CREATE UNIQUE INDEX ix_m_totals ON app.m_totals (tenant_id)",
         (added("index app.ix_m_totals"),)),
    # views
    Case("view definition",
         "CREATE OR REPLACE VIEW app.v_invoices AS SELECT id, amount FROM app.invoices WHERE amount > 0",
         (changed("view app.v_invoices", "definition"),)),
    Case("view security_invoker", "ALTER VIEW app.v_invoices SET (security_invoker = true)",
         (changed("view app.v_invoices", "options"),)),
    Case("view security_barrier", "ALTER VIEW app.v_invoices SET (security_barrier = true)",
         (changed("view app.v_invoices", "options"),)),
    Case("view check option", "ALTER VIEW app.v_invoices SET (check_option = local)",
         (changed("view app.v_invoices", "options"),)),
    Case("materialized view definition",
         "DROP MATERIALIZED VIEW app.m_totals; CREATE MATERIALIZED VIEW app.m_totals AS"
         " SELECT tenant_id, max(amount) AS total FROM app.invoices GROUP BY tenant_id",
         (changed("materialized view app.m_totals", "definition"),)),
    # sequences
    Case("sequence increment", "ALTER SEQUENCE app.counter INCREMENT BY 5",
         (changed("sequence app.counter", "increment"),)),
    Case("sequence bounds and cycle", "ALTER SEQUENCE app.counter MAXVALUE 1000 CYCLE",
         (changed("sequence app.counter", "maximum", "cycle"),)),
    Case("sequence type", "ALTER SEQUENCE app.counter AS integer",
         (changed("sequence app.counter", "type", "maximum"),)),
    Case("sequence owned by", "ALTER SEQUENCE app.counter OWNED BY app.wide.a",
         (changed("sequence app.counter", "owned by"),)),
    Case("sequence owner", "ALTER SEQUENCE app.counter OWNER TO snap_app",
         (changed("sequence app.counter", "owner"),)),
    # routines and triggers
    Case("function body", "CREATE OR REPLACE FUNCTION app.touch() RETURNS trigger LANGUAGE plpgsql"
         " AS $$BEGIN NEW.amount = 0; RETURN NEW; END$$", (changed("function app.touch()", "body"),)),
    Case("function volatility", "ALTER FUNCTION app.touch() STABLE",
         (changed("function app.touch()", "volatility"),)),
    Case("function security definer", "ALTER FUNCTION app.touch() SECURITY DEFINER",
         (changed("function app.touch()", "security definer"),)),
    Case("function configuration", "ALTER FUNCTION app.touch() SET search_path = app",
         (changed("function app.touch()", "configuration"),)),
    Case("function owner", "ALTER FUNCTION app.touch() OWNER TO snap_app",
         (changed("function app.touch()", "owner"),)),
    Case("function overload", "CREATE FUNCTION app.touch(int) RETURNS int LANGUAGE sql AS 'SELECT 1'",
         (added("function app.touch(integer)"),)),
    Case("procedure body", "CREATE OR REPLACE PROCEDURE app.tidy() LANGUAGE sql AS $$SELECT 2$$",
         (changed("procedure app.tidy()", "body"),)),
    Case("trigger enabled state", "ALTER TABLE app.invoices DISABLE TRIGGER invoices_touch",
         (changed("trigger invoices_touch on app.invoices", "enabled"),)),
    Case("trigger definition", "DROP TRIGGER invoices_touch ON app.invoices; CREATE TRIGGER invoices_touch"
         " AFTER UPDATE ON app.invoices FOR EACH ROW EXECUTE FUNCTION app.touch()",
         (changed("trigger invoices_touch on app.invoices", "definition"),)),
    Case("event trigger enabled state", "ALTER EVENT TRIGGER snap_ddl DISABLE",
         (changed("event trigger snap_ddl", "enabled"),)),
    Case("rule", "CREATE RULE no_delete AS ON DELETE TO app.wide DO INSTEAD NOTHING",
         (added("rule no_delete on app.wide"),)),
    Case("extended statistics", "CREATE STATISTICS app.st ON tenant_id, status FROM app.invoices",
         (added("statistics app.st"),)),
    # schemas and extensions
    Case("schema left behind", "CREATE SCHEMA extra", (added("schema extra"),)),
    Case("schema owner", "ALTER SCHEMA app OWNER TO snap_other",
         (changed("schema app", "owner"),)),
    Case("extension, not its members", "CREATE EXTENSION citext SCHEMA app", (added("extension citext"),)),
    Case("function absorbed by an extension", "ALTER EXTENSION plpgsql ADD PROCEDURE app.tidy()",
         (removed("procedure app.tidy()"),)),
]


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_one_difference_is_named(built: psycopg.Connection, case: Case) -> None:
    before = take_snapshot(built)
    _run(built, case.change)
    differences = diff_snapshots(before, take_snapshot(built))
    found = {
        (d.object, d.change, frozenset(a for a, _, _ in d.details) if d.change == "changed" else None)
        for d in differences
        if d.object not in case.may_also
    }
    assert found == set(case.expected), format_diff(differences)
    assert {d.kind for d in differences if d.object not in case.may_also} == {case.kind}
    report = format_diff(differences)
    for obj, _, _ in case.expected:
        assert obj in report


def test_extension_update_is_a_version_change_only(built: psycopg.Connection) -> None:
    _run(built, "CREATE EXTENSION hstore VERSION '1.7'")
    before = take_snapshot(built)
    _run(built, "ALTER EXTENSION hstore UPDATE TO '1.8'")
    differences = diff_snapshots(before, take_snapshot(built))
    assert [(d.object, d.details) for d in differences] == [("extension hstore", (("version", "1.7", "1.8"),))]


def test_report_reads_like_the_issue(built: psycopg.Connection) -> None:
    before = take_snapshot(built)
    _run(built, "ALTER POLICY tenant_isolation ON app.invoices USING (tenant_id = 2);"
                "GRANT SELECT ON app.wide TO snap_app")
    report = format_diff(diff_snapshots(before, take_snapshot(built)))
    assert report.splitlines() == [
        "grant SELECT on table app.wide to snap_app: present after, absent before",
        "policy tenant_isolation on app.invoices: USING changed: (tenant_id = 1) -> (tenant_id = 2)",
    ]


# --- the same schema, whatever the history ------------------------------------------------------

EQUAL_HISTORIES = [
    ("grant then revoke",
     "GRANT INSERT ON app.tenants TO snap_app; REVOKE INSERT ON app.tenants FROM snap_app", ""),
    ("table REVOKE that also removed column grants",
     "GRANT UPDATE (name) ON app.tenants TO snap_app; REVOKE UPDATE ON app.tenants FROM snap_app", ""),
    ("explicit ACL equal to the default",
     "REVOKE ALL ON FUNCTION app.touch() FROM PUBLIC; GRANT EXECUTE ON FUNCTION app.touch() TO PUBLIC", ""),
    ("default privileges granted then revoked",
     "ALTER DEFAULT PRIVILEGES GRANT SELECT ON TABLES TO snap_app;"
     "ALTER DEFAULT PRIVILEGES REVOKE SELECT ON TABLES FROM snap_app", ""),
    ("ACL entry order", "GRANT SELECT ON app.wide TO snap_app; GRANT SELECT ON app.wide TO snap_other",
     "GRANT SELECT ON app.wide TO snap_other; GRANT SELECT ON app.wide TO snap_app"),
    ("policy role order", "CREATE POLICY p ON app.wide TO snap_app, snap_other USING (true)",
     "CREATE POLICY p ON app.wide TO snap_other, snap_app USING (true)"),
    ("option order", "ALTER TABLE app.wide SET (fillfactor = 70, autovacuum_enabled = false)",
     "ALTER TABLE app.wide SET (autovacuum_enabled = false); ALTER TABLE app.wide SET (fillfactor = 70)"),
    ("function setting order",
     "ALTER FUNCTION app.touch() SET work_mem = '8MB'; ALTER FUNCTION app.touch() SET search_path = app",
     "ALTER FUNCTION app.touch() SET search_path = app; ALTER FUNCTION app.touch() SET work_mem = '8MB'"),
    ("index built concurrently or not", ["CREATE INDEX CONCURRENTLY ix_wide_a ON app.wide (a)"],
     "CREATE INDEX ix_wide_a ON app.wide (a)"),
    ("security_invoker set at creation or later",
     "CREATE VIEW app.v2 WITH (security_invoker = true) AS SELECT a FROM app.wide",
     "CREATE VIEW app.v2 AS SELECT a FROM app.wide; ALTER VIEW app.v2 SET (security_invoker = true)"),
    ("a dropped column leaves no gap", "ALTER TABLE app.wide DROP COLUMN b",
     "DROP TABLE app.wide; CREATE TABLE app.wide (a int, c int)"),
    ("enum value inserted later", "CREATE TYPE app.level AS ENUM ('low', 'mid', 'high')",
     "CREATE TYPE app.level AS ENUM ('low', 'high'); ALTER TYPE app.level ADD VALUE 'mid' BEFORE 'high'"),
    ("NOT VALID then VALIDATE",
     "ALTER TABLE app.wide ADD CONSTRAINT a_pos CHECK (a > 0) NOT VALID;"
     "ALTER TABLE app.wide VALIDATE CONSTRAINT a_pos",
     "ALTER TABLE app.wide ADD CONSTRAINT a_pos CHECK (a > 0)"),
    ("creation order", "CREATE TABLE app.t1 (id int); CREATE TABLE app.t2 (id int)",
     "CREATE TABLE app.t2 (id int); CREATE TABLE app.t1 (id int)"),
    ("comment set then removed", "COMMENT ON TABLE app.wide IS 'x'; COMMENT ON TABLE app.wide IS NULL", ""),
    ("sequence values and rows are data",
     "SELECT nextval('app.counter'); INSERT INTO app.tenants (name) VALUES ('a')", ""),
    ("the session's settings",
     ["SET search_path = app", "SET TimeZone = 'America/New_York'", "SET DateStyle = 'SQL, DMY'",
      "CREATE VIEW v3 AS SELECT id FROM tenants WHERE created_at > '2020-01-02 03:00+00'"],
     "CREATE VIEW app.v3 AS SELECT id FROM app.tenants WHERE created_at > '2020-01-02 03:00+00'"),
    ("a temporary table", "CREATE TEMPORARY TABLE scratch_rows (id int)", ""),
]


@pytest.mark.parametrize(("history_a", "history_b"), [h[1:] for h in EQUAL_HISTORIES],
                         ids=[h[0] for h in EQUAL_HISTORIES])
def test_same_schema_by_another_history_is_equal(server: Server, history_a, history_b) -> None:
    a = snapshot_of(server, BASE, history_a)
    b = snapshot_of(server, BASE, history_b)
    assert diff_snapshots(a, b) == [], format_diff(diff_snapshots(a, b))
    assert a.objects == b.objects


def test_a_clone_is_equal(server: Server) -> None:
    template = server.create_database()
    try:
        with psycopg.connect(template.dsn, autocommit=True) as conn:
            _run(conn, [BASE, RICH])
            original = take_snapshot(conn)
        with server.scratch(template=template.name) as clone, psycopg.connect(clone.dsn) as conn:
            copy = take_snapshot(conn)
    finally:
        server.drop_database(template.name)
    assert diff_snapshots(original, copy) == []
    assert original == copy


def test_another_server_of_the_same_version_is_equal(server: Server) -> None:
    from harness.server.binaries import find_binaries
    from harness.server.embedded import EmbeddedServer

    here = snapshot_of(server, BASE, RICH)
    # Whatever backend the fixture uses, the second server is embedded, of the same major
    # version; without such programs on the machine the test fails rather than skips.
    other = EmbeddedServer(find_binaries(server.version))
    try:
        _create_roles(other)
        there = snapshot_of(other, "CREATE TABLE public.filler (id int); DROP TABLE public.filler", BASE, RICH)
    finally:
        other.close()
    assert diff_snapshots(here, there) == [], format_diff(diff_snapshots(here, there))


def test_rich_schema_reads_every_family(server: Server) -> None:
    snap = snapshot_of(server, BASE, RICH)
    families = {key.split(" ", 1)[0] for key in snap.objects}
    assert families >= {
        "schema", "extension", "table", "column", "constraint", "index", "view", "materialized",
        "sequence", "type", "function", "procedure", "aggregate", "trigger", "event", "policy",
        "rule", "statistics", "collation", "server", "foreign", "grant", "revoke", "default",
    }
    # Extension members belong to their extension.
    assert not any("citext" in key for key in snap.objects if not key.startswith(("extension", "column")))
    assert snap.roles >= {"postgres", "snap_app", "snap_other"}
    assert snap.objects["column app.tenants.id"]["identity"] == "ALWAYS"
    assert snap.objects["sequence app.tenants_id_seq"]["owned by"] == "app.tenants.id"
    assert snap.objects["sequence app.invoices_id_seq"]["owned by"] == "app.invoices.id"
    assert snap.objects["index app.invoices_pkey"]["constraint"] == "invoices_pkey"
    assert snap.objects["policy strict_amount on app.invoices"]["roles"] == ["snap_app", "snap_other"]
    assert {key: snap.tables.get(key) for key in (
        "table app.tenants", "column app.tenants.name", "index app.invoices_pkey",
        "policy tenant_isolation on app.invoices", "grant UPDATE(name) on table app.tenants to snap_app",
        "sequence app.counter", "type app.status",
    )} == {
        "table app.tenants": "app.tenants", "column app.tenants.name": "app.tenants",
        "index app.invoices_pkey": "app.invoices", "policy tenant_isolation on app.invoices": "app.invoices",
        "grant UPDATE(name) on table app.tenants to snap_app": "app.tenants",
        "sequence app.counter": "app.counter", "type app.status": None,
    }


def test_json_round_trip(server: Server) -> None:
    snap = snapshot_of(server, BASE, RICH)
    assert Snapshot.from_json(json.loads(json.dumps(snap.to_json()))) == snap


def test_version_table_is_reported_apart(server: Server) -> None:
    version_table = """
        CREATE TABLE public.alembic_version (version_num varchar(32) PRIMARY KEY);
        INSERT INTO public.alembic_version VALUES ('b2'), ('a1');
        GRANT SELECT ON public.alembic_version TO snap_app;
    """
    with_versions = snapshot_of(server, BASE, version_table)
    without = snapshot_of(server, BASE)
    assert with_versions.versions == (("a1",), ("b2",))
    assert without.versions == ()
    assert diff_snapshots(without, with_versions) == []
    with server.scratch() as database, psycopg.connect(database.dsn, autocommit=True) as conn:
        _run(conn, version_table)
        unset = take_snapshot(conn, version_table=None)
    assert "table public.alembic_version" in unset.objects and unset.versions == ()


QUOTED_VERSION_TABLE = ("Ops.Log", "Alembic Version")
QUOTED_VERSIONS = """
    CREATE SCHEMA "Ops.Log";
    CREATE TABLE "Ops.Log"."Alembic Version" (version_num varchar(32) PRIMARY KEY);
    INSERT INTO "Ops.Log"."Alembic Version" VALUES ('a1');
"""
"""A version table whose schema and name need quotes, holding one version."""


def test_a_version_table_whose_names_need_quotes_is_set_apart(server: Server) -> None:
    with server.scratch() as database, psycopg.connect(database.dsn, autocommit=True) as conn:
        _run(conn, QUOTED_VERSIONS)
        snap = take_snapshot(conn, version_table=QUOTED_VERSION_TABLE)
    assert snap.versions == (("a1",),)
    assert not [key for key in snap.objects if "Alembic Version" in key]


def test_a_session_holding_the_settings_reads_what_any_session_reads(server: Server) -> None:
    """A watch's session holds the snapshot's settings (plan_snapshot) and sets only the scope
    with each read: it reads what a session with other settings reads, its quoted version table
    set apart, and a version table created or dropped after the settings were pinned too."""
    with server.scratch() as database, psycopg.connect(database.dsn, autocommit=True) as other, \
            psycopg.connect(database.dsn, autocommit=True) as watch:
        _run(other, BASE)
        plan_snapshot(watch, WHOLE)
        settle(watch)
        assert watch.execute("SHOW search_path").fetchone() == ("pg_catalog",)
        for setting in ("SET search_path = app", "SET TimeZone = 'America/New_York'", "SET DateStyle = 'SQL, DMY'"):
            other.execute(setting)
        for script, rows in ((RICH, ()), (QUOTED_VERSIONS, (("a1",),)), ('DROP TABLE "Ops.Log"."Alembic Version"', ())):
            _run(other, script)
            held, fresh = take_snapshot(watch, QUOTED_VERSION_TABLE), take_snapshot(other, QUOTED_VERSION_TABLE)
            assert held == fresh, format_diff(diff_snapshots(fresh, held))
            assert held.versions == rows and not [key for key in held.objects if "Alembic Version" in key]


def test_snapshot_leaves_the_session_as_it_was(built: psycopg.Connection) -> None:
    built.execute("SET search_path = app")
    take_snapshot(built)
    assert built.execute("SHOW search_path").fetchone() == ("app",)

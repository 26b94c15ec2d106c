"""The mutant corpus: small Alembic histories with one deliberate defect each, and correct ones.

Every mutant is a base history (a plain table family, or a tenant-isolated one with fixture rows)
plus the revision(s) carrying the defect, with what a harness run must report: the property, the
revision to blame and text naming the object. The defects are the ones real histories hold (see
``/work/shared/notes/field-notes.md``): leftovers of downgrades, lossy steps, steps that fail only
on data, isolation holes.

Revision bodies are Python source run by Alembic. :data:`APP` stands for the application role:
roles are cluster-wide and tests share one server, so each test substitutes a name of its own
(:func:`with_role`). Migrations create it idempotently and never drop it: a downgrade dropping a
role would break every other database on the server that still refers to it.
"""

from __future__ import annotations

import dataclasses
from typing import Literal

from harness.violations import Property

from projects import Rev

APP = "__app_role__"
"""Placeholder for the application role's name in revision bodies."""

Run = Literal["sweep", "walk"]
BOTH: tuple[Run, ...] = ("sweep", "walk")

_CREATE_APP = f'''op.execute("""
DO $$ BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{APP}') THEN CREATE ROLE {APP}; END IF;
END $$
""")'''


@dataclasses.dataclass(frozen=True)
class Mutant:
    """A history with one defect, and what must be reported about it."""

    id: str
    revisions: tuple[Rev, ...]
    property: Property
    blamed: tuple[str | None, ...]
    """Revisions a correct report may blame: one, except where the defect is an interaction
    (two branches)."""
    names: str
    """Text the violation's message must contain: the object that is wrong."""
    runs: tuple[Run, ...]
    """The runs that must catch it: both, since the sweep fills every table with the
    deterministic filler's rows; only the walk for defects of paths the sweep never takes."""
    settings: dict = dataclasses.field(default_factory=dict)
    env: str = "cookbook"


@dataclasses.dataclass(frozen=True)
class Correct:
    """A history with no defect, however suspicious it looks: every run must stay silent."""

    id: str
    revisions: tuple[Rev, ...]
    settings: dict = dataclasses.field(default_factory=dict)
    env: str = "cookbook"


def with_role(revisions: tuple[Rev, ...], role: str) -> list[Rev]:
    """The revisions with :data:`APP` replaced by ``role`` in their bodies."""
    return [
        dataclasses.replace(
            rev,
            upgrade=rev.upgrade and rev.upgrade.replace(APP, role),
            downgrade=rev.downgrade and rev.downgrade.replace(APP, role),
        )
        for rev in revisions
    ]


# ---------------------------------------------------------------------------------------------
# The plain family: a parent and a child table carrying one object of each kind a downgrade can
# get wrong (primary key, foreign key, unique index, check, NOT NULL, default). `memo` is last
# so that dropping and re-adding it keeps its position; `note` is not. `amount` carries no CHECK:
# a type round trip rewrites a CHECK's expression with a cast, a schema difference that would
# be found before the data loss a lossy type change is meant to show.
# ---------------------------------------------------------------------------------------------

PLAIN_BASE = Rev(
    "r1",
    upgrade='''
op.create_table("parent", sa.Column("id", sa.Integer, primary_key=True))
op.create_table(
    "t",
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("parent_id", sa.Integer, sa.ForeignKey("parent.id", name="fk_t_parent")),
    sa.Column("code", sa.String(20)),
    sa.Column("name", sa.String(50), nullable=False, server_default="x"),
    sa.Column("note", sa.Text),
    sa.Column("amount", sa.Numeric(10, 2)),
    sa.Column("memo", sa.Text),
    sa.CheckConstraint("code <> ''", name="ck_t_code"),
)
op.create_index("ux_t_code", "t", ["code"], unique=True)
''',
    downgrade='op.drop_table("t")\nop.drop_table("parent")',
)


def plain(id: str, property: Property, names: str, upgrade: str, downgrade: str = "pass", *,
          runs: tuple[Run, ...] = ("sweep",), before: tuple[Rev, ...] = (), **extra) -> Mutant:
    """A mutant of the plain family: ``before`` revisions, then the defective one."""
    revisions = (PLAIN_BASE, *before)
    defect = Rev(f"r{len(revisions) + 1}", down=revisions[-1].id, upgrade=upgrade, downgrade=downgrade)
    return Mutant(id, (*revisions, defect), property, (defect.id,), names, runs, **extra)


_ENUM_STATUS = Rev(
    "r2", down="r1",
    upgrade='op.execute("CREATE TYPE status AS ENUM (\'new\', \'done\')")\n'
            'op.execute("ALTER TABLE t ADD COLUMN status status")',
    downgrade='op.drop_column("t", "status")\nop.execute("DROP TYPE status")',
)

_VIEW = Rev(
    "r2", down="r1",
    upgrade='op.execute("CREATE VIEW v_t AS SELECT id, name FROM t")',
    downgrade='op.execute("DROP VIEW v_t")',
)

_TOUCH = '''op.execute("""
CREATE FUNCTION touch() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN NEW.memo := 'touched'; RETURN NEW; END $$
""")
op.execute("CREATE TRIGGER t_touch BEFORE UPDATE ON t FOR EACH ROW EXECUTE FUNCTION touch()")'''

# Two branches off the base that both set the default of t.name: the state with both applied
# depends on which came last.
_BRANCH_DEFAULTS = tuple(
    Rev(branch, down="r1",
        upgrade=f'op.alter_column("t", "name", server_default="{branch}")',
        downgrade='op.alter_column("t", "name", server_default="x")')
    for branch in ("b1", "b2")
)

PLAIN_MUTANTS = [
    plain("enum-type-left-behind", "schema", "type public.mood",
          'op.execute("CREATE TYPE mood AS ENUM (\'calm\', \'busy\')")\n'
          'op.execute("ALTER TABLE t ADD COLUMN mood mood")',
          'op.drop_column("t", "mood")'),
    plain("enum-value-never-removed", "schema", "type public.status",
          'op.execute("ALTER TYPE status ADD VALUE \'archived\'")', before=(_ENUM_STATUS,)),
    plain("policy-left-behind", "schema", "policy p_t on public.t",
          'op.execute("CREATE POLICY p_t ON t USING (amount >= 0)")'),
    plain("grant-left-behind", "schema", f"grant SELECT on table public.t to {APP}",
          f'{_CREATE_APP}\nop.execute("GRANT SELECT ON t TO {APP}")'),
    # REVOKE SELECT on the table leaves a column-level UPDATE grant in place.
    plain("column-grant-left-behind", "schema", f"grant UPDATE(note) on table public.t to {APP}",
          f'{_CREATE_APP}\nop.execute("GRANT SELECT ON t TO {APP}")\n'
          f'op.execute("GRANT UPDATE (note) ON t TO {APP}")',
          f'op.execute("REVOKE SELECT ON t FROM {APP}")'),
    plain("comment-left-behind", "schema", "column public.t.note",
          'op.execute("COMMENT ON COLUMN t.note IS \'free text\'")'),
    plain("server-default-changed", "schema", "column public.t.name",
          'op.alter_column("t", "name", server_default="y")',
          'op.alter_column("t", "name", server_default="z")'),
    plain("not-null-lost", "schema", "column public.t.name",
          'op.alter_column("t", "name", nullable=True)'),
    plain("primary-key-back-as-unique", "schema", "constraint t_pkey on public.t",
          'op.drop_constraint("t_pkey", "t", type_="primary")',
          'op.create_unique_constraint("t_pkey", "t", ["id"])'),
    plain("unique-index-back-as-plain", "schema", "index public.ux_t_code",
          'op.drop_index("ux_t_code", "t")',
          'op.create_index("ux_t_code", "t", ["code"])'),
    plain("foreign-key-lost", "schema", "constraint fk_t_parent on public.t",
          'op.drop_constraint("fk_t_parent", "t", type_="foreignkey")'),
    plain("constraint-recreated-under-another-name", "schema", "constraint ck_t_code on public.t",
          'op.drop_constraint("ck_t_code", "t", type_="check")',
          'op.create_check_constraint("ck_code_not_empty", "t", "code <> \'\'")'),
    plain("index-left-behind", "schema", "index public.ix_t_note",
          'op.create_index("ix_t_note", "t", ["note"])'),
    plain("function-left-behind", "schema", "function public.touch()", _TOUCH,
          'op.execute("DROP TRIGGER t_touch ON t")'),
    plain("trigger-left-behind", "schema", "trigger t_touch on public.t", _TOUCH,
          'op.execute("CREATE OR REPLACE FUNCTION touch() RETURNS trigger LANGUAGE plpgsql '
          'AS $$ BEGIN RETURN NEW; END $$")'),
    plain("rls-force-left", "schema", "table public.t",
          'op.execute("ALTER TABLE t ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY")',
          'op.execute("ALTER TABLE t DISABLE ROW LEVEL SECURITY")'),
    plain("rls-enable-left", "schema", "table public.t",
          'op.execute("ALTER TABLE t ENABLE ROW LEVEL SECURITY")'),
    plain("view-definition-changed", "schema", "view public.v_t",
          'op.execute("CREATE OR REPLACE VIEW v_t AS SELECT id, name, note FROM t")',
          'op.execute("DROP VIEW v_t")\nop.execute("CREATE VIEW v_t AS SELECT id, code AS name FROM t")',
          before=(_VIEW,)),
    plain("column-dropped-and-re-added", "column_order", "column public.t.note",
          'op.drop_column("t", "note")',
          'op.add_column("t", sa.Column("note", sa.Text))'),
    plain("downgrade-fails-on-unnamed-constraint", "migration_error", "downgrade",
          'op.create_unique_constraint(None, "t", ["name", "code"])',
          'op.drop_constraint(None, "t", type_="unique")'),
    plain("downgrade-drops-what-does-not-exist", "migration_error", "ix_t_missing",
          'op.create_index("ix_t_name", "t", ["name"])',
          'op.drop_index("ix_t_missing", "t")'),
    plain("migration-hangs", "migration_error", "statement timeout",
          'op.execute("SELECT pg_sleep(5)")', settings={"statement_timeout_ms": 300}),
    # Stuck in Python, not in SQL: a retry loop that swallows every Exception, around a sleep.
    plain("migration-hangs-in-python", "migration_error", "step_timeout",
          "import time\nwhile True:\n    try:\n        time.sleep(0.2)\n"
          "        raise ConnectionError('the service never answers')\n"
          "    except Exception:\n        pass",
          runs=("sweep", "walk"), settings={"step_timeout": 1}),
    plain("migration-calls-sys-exit", "migration_error", "SystemExit",
          'op.add_column("t", sa.Column("flag", sa.Boolean))\nimport sys\nsys.exit(3)',
          runs=("sweep", "walk")),
    # Data-dependent: only rows make these fail. The sweep's filler gives t its NULLs, mixed
    # case, zero, fractions, maximal lengths and repeated values; the walk starts on them too.
    plain("rows-deleted-by-a-grants-revision", "data", "public.t",
          f'{_CREATE_APP}\nop.execute("GRANT SELECT ON t TO {APP}")\n'
          f'op.execute("DELETE FROM t WHERE note IS NULL")',
          f'op.execute("REVOKE SELECT ON t FROM {APP}")', runs=BOTH),
    # Reference rows an upgrade inserted may go on downgrade, rows held before may not: a walk
    # starting on a filled state knows the upgrades' rows from the rows they left.
    plain("downgrade-deletes-more-than-its-reference-rows", "data", "public.t",
          'op.execute("INSERT INTO t (id, name) VALUES (777777, \'reference\')")\n'
          'op.execute("SELECT setval(\'t_id_seq\', (SELECT max(id) FROM t))")',
          'op.execute("DELETE FROM t")', runs=BOTH),
    # Not numeric to integer: NaN, which numeric admits, makes that one fail first. Cut, not
    # rounded, and to as many integer digits: the filler's largest amounts must neither
    # overflow the upgrade nor make the downgrade fail, a defect of its own.
    plain("numeric-scale-reduced-loses-cents", "data", "public.t",
          'op.alter_column("t", "amount", type_=sa.Numeric(8, 0), postgresql_using="trunc(amount)")',
          'op.alter_column("t", "amount", type_=sa.Numeric(10, 2))', runs=BOTH),
    plain("varchar-shortened-truncates", "data", "public.t",
          'op.alter_column("t", "name", type_=sa.String(3), postgresql_using="left(name, 3)")',
          'op.alter_column("t", "name", type_=sa.String(50))', runs=BOTH),
    plain("downgrade-loses-a-column", "data", "public.t",
          'op.drop_column("t", "memo")',
          'op.add_column("t", sa.Column("memo", sa.Text))', runs=BOTH),
    plain("not-null-column-without-default", "migration_error", "public.t",
          'op.add_column("t", sa.Column("status", sa.Text, nullable=False))',
          'op.drop_column("t", "status")', runs=BOTH),
    plain("unique-index-over-duplicates", "migration_error", "ux_t_name",
          'op.create_index("ux_t_name", "t", ["name"], unique=True)',
          'op.drop_index("ux_t_name", "t")', runs=BOTH),
    # Revisions that change no table yet change rows, each only on some values.
    plain("rows-deleted-by-a-policy-revision", "data", "public.t",
          'op.execute("CREATE POLICY p_t ON t USING (true)")\n'
          'op.execute("DELETE FROM t WHERE status = \'done\'")',
          'op.execute("DROP POLICY p_t ON t")', before=(_ENUM_STATUS,), runs=BOTH),
    plain("values-lower-cased-by-a-grants-revision", "data", "public.t",
          f'{_CREATE_APP}\nop.execute("GRANT SELECT ON t TO {APP}")\n'
          f'op.execute("UPDATE t SET note = lower(note)")',
          f'op.execute("REVOKE SELECT ON t FROM {APP}")', runs=BOTH),
    plain("zero-amounts-voided-by-a-policy-revision", "data", "public.t",
          'op.execute("CREATE POLICY p_t ON t USING (true)")\n'
          'op.execute("UPDATE t SET status = \'done\' WHERE amount = 0")',
          'op.execute("DROP POLICY p_t ON t")', before=(_ENUM_STATUS,), runs=BOTH),
    # Either branch may be blamed, or none when one `upgrade heads` applied both.
    Mutant("branch-order-dependence", (PLAIN_BASE, *_BRANCH_DEFAULTS), "schema", ("b1", "b2", None),
           "column public.t.name", ("walk",)),
]

# ---------------------------------------------------------------------------------------------
# The tenant family: tenants and their items, isolated by row-level security (ENABLE and FORCE,
# a policy on the tenant setting) and granted to the application role. The base inserts rows
# of two tenants, as seed-data migrations do, so the sweep's isolation check has rows to act on.
# ---------------------------------------------------------------------------------------------

TENANT = "NULLIF(current_setting('app.tenant', true), '')::uuid"
_A, _B = "00000000-0000-0000-0000-00000000000a", "00000000-0000-0000-0000-00000000000b"
_ITEMS_POLICY = f"CREATE POLICY tenant_isolation ON items USING (tenant_id = {TENANT})"


def _tenant_table(name: str, *, rls: bool, policy: bool, rows_from: str | None) -> str:
    """SQL creating a tenant-scoped table, granted to the app role, optionally isolated."""
    statements = [
        f"CREATE TABLE {name} (id uuid PRIMARY KEY DEFAULT gen_random_uuid(), "
        f"tenant_id uuid NOT NULL REFERENCES tenants, body text)",
        f"GRANT SELECT, INSERT, UPDATE, DELETE ON {name} TO {APP}",
    ]
    if rls:
        statements.append(f"ALTER TABLE {name} ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY")
    if policy:
        statements.append(f"CREATE POLICY tenant_isolation ON {name} USING (tenant_id = {TENANT})")
    if rows_from:
        statements.append(f"INSERT INTO {name} (tenant_id, body) SELECT tenant_id, body FROM {rows_from}")
    return _sql(*statements)


def _sql(*statements: str) -> str:
    return "\n".join(f'op.execute("""{s}""")' for s in statements)


TENANT_BASE = Rev(
    "r1",
    upgrade=_CREATE_APP + "\n" + _sql(
        "CREATE TABLE tenants (id uuid PRIMARY KEY, name text NOT NULL)",
        "ALTER TABLE tenants ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY",
        f"CREATE POLICY tenant_isolation ON tenants USING (id = {TENANT})",
        f"GRANT SELECT ON tenants TO {APP}",
        f"INSERT INTO tenants VALUES ('{_A}', 'a'), ('{_B}', 'b')",
    ) + "\n" + _tenant_table("items", rls=True, policy=True, rows_from=None) + "\n" + _sql(
        f"INSERT INTO items (tenant_id, body) VALUES ('{_A}', 'a1'), ('{_A}', 'a2'), "
        f"('{_A}', 'a3'), ('{_B}', 'b1'), ('{_B}', 'b2')",
    ),
    downgrade='op.drop_table("items")\nop.drop_table("tenants")',
)


def tenant(id: str, names: str, upgrade: str, downgrade: str, *,
           runs: tuple[Run, ...] = ("sweep",), blamed: tuple[str | None, ...] = ("r2",)) -> Mutant:
    """A tenant-isolation hole opened by revision r2 on top of the tenant base."""
    defect = Rev("r2", down="r1", upgrade=upgrade, downgrade=downgrade)
    return Mutant(id, (TENANT_BASE, defect), "tenant_isolation", blamed, names, runs)


TENANT_MUTANTS = [
    tenant("policy-without-enable-rls", "public.notes",
           _tenant_table("notes", rls=False, policy=True, rows_from="items"),
           'op.drop_table("notes")'),
    tenant("app-role-owns-table-without-force", "public.items",
           _sql(f"ALTER TABLE items OWNER TO {APP}", "ALTER TABLE items NO FORCE ROW LEVEL SECURITY"),
           _sql("ALTER TABLE items OWNER TO CURRENT_USER", "ALTER TABLE items FORCE ROW LEVEL SECURITY")),
    tenant("policy-using-true", "public.items",
           _sql("CREATE POLICY everyone ON items USING (true)"),
           _sql("DROP POLICY everyone ON items")),
    tenant("policy-with-check-true", "public.items",
           _sql("ALTER POLICY tenant_isolation ON items WITH CHECK (true)"),
           _sql("DROP POLICY tenant_isolation ON items", _ITEMS_POLICY)),
    tenant("materialized-view-granted", "public.mv_items",
           _sql("CREATE MATERIALIZED VIEW mv_items AS "
                "SELECT tenant_id, count(*) AS n FROM items GROUP BY tenant_id",
                f"GRANT SELECT ON mv_items TO {APP}"),
           _sql("DROP MATERIALIZED VIEW mv_items")),
    tenant("owner-rights-view-granted", "public.v_items",
           _sql("CREATE VIEW v_items AS SELECT * FROM items", f"GRANT SELECT ON v_items TO {APP}"),
           _sql("DROP VIEW v_items")),
    tenant("new-tenant-table-without-rls", "public.notes",
           _tenant_table("notes", rls=False, policy=False, rows_from="items"),
           'op.drop_table("notes")'),
    # A function runs with its owner's rights: row-level security filters nothing it reads.
    tenant("security-definer-function-returns-every-tenants-totals", "tenant_totals()",
           _sql("CREATE FUNCTION tenant_totals() RETURNS TABLE (tenant_id uuid, n bigint) "
                "SECURITY DEFINER LANGUAGE sql "
                "AS 'SELECT tenant_id, count(*) FROM items GROUP BY tenant_id'"),
           _sql("DROP FUNCTION tenant_totals()")),
    # The same holes with no rows from the migration: the sweep's filler and the walk must
    # give the new table rows of two tenants themselves. A hole seen right after a walk's seed
    # step is still r2's: the revision that made the table and its grants.
    tenant("new-tenant-table-without-rls-seeded", "public.notes",
           _tenant_table("notes", rls=False, policy=False, rows_from=None),
           'op.drop_table("notes")', runs=BOTH),
    tenant("policy-without-enable-rls-seeded", "public.notes",
           _tenant_table("notes", rls=False, policy=True, rows_from=None),
           'op.drop_table("notes")', runs=BOTH),
]

# An identity with rows behind it: the next plain INSERT must still find a free key.
_IDENTITY_BASE = Rev(
    "r1",
    upgrade=_sql("CREATE TABLE orders (id integer GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY, "
                 "note text)", "INSERT INTO orders (note) VALUES ('a'), ('b'), ('c')"),
    downgrade='op.drop_table("orders")',
)
_DROP_IDENTITY = _sql("ALTER TABLE orders ALTER COLUMN id DROP IDENTITY")
_ADD_IDENTITY = _sql("ALTER TABLE orders ALTER COLUMN id ADD GENERATED BY DEFAULT AS IDENTITY")

SEQUENCE_MUTANTS = [
    Mutant("identity-restarted-under-existing-rows",
           (_IDENTITY_BASE, Rev("r2", down="r1", upgrade=_DROP_IDENTITY, downgrade=_ADD_IDENTITY)),
           "data", ("r2",), "public.orders_id_seq", ("sweep",)),
]

MUTANTS = PLAIN_MUTANTS + TENANT_MUTANTS + SEQUENCE_MUTANTS

# ---------------------------------------------------------------------------------------------
# Correct histories: shapes of graph, and revisions that look wrong to a reader or a linter.
# ---------------------------------------------------------------------------------------------


def _table(id: str, down: str | None, refs: tuple[str, ...] = (), **links) -> Rev:
    """A revision creating ``t_<id>``, with a foreign key to ``t_<r>`` for each of ``refs``."""
    columns = "".join(f', sa.Column("{r}_id", sa.Integer, sa.ForeignKey("t_{r}.id"))' for r in refs)
    return Rev(id, down=down,
               upgrade=f'op.create_table("t_{id}", sa.Column("id", sa.Integer, primary_key=True), '
                       f'sa.Column("label", sa.String(30), nullable=False){columns})',
               downgrade=f'op.drop_table("t_{id}")', **links)


_ENUM_REBUILD = Rev(
    "r3", down="r2",
    upgrade='op.execute("ALTER TYPE status ADD VALUE \'archived\'")',
    # PostgreSQL cannot drop an enum value: the downgrade maps it away (a declared data
    # migration) and rebuilds the type under its own name.
    downgrade=_sql(
        "UPDATE t SET status = 'done' WHERE status = 'archived'",
        "ALTER TYPE status RENAME TO status_old",
        "CREATE TYPE status AS ENUM ('new', 'done')",
        "ALTER TABLE t ALTER COLUMN status TYPE status USING status::text::status",
        "DROP TYPE status_old",
    ),
)

# Invoices split into lines; the downgrade folds the lines back into each invoice's amount, so
# lines added meanwhile (the walk seeds them) legitimately change the amounts it gives back.
_LINES_FOLDED_BACK = (
    Rev("r1", upgrade='op.create_table("invoices", sa.Column("id", sa.Integer, primary_key=True), '
                      'sa.Column("amount", sa.Numeric))',
        downgrade='op.drop_table("invoices")'),
    Rev("r2", down="r1",
        upgrade='op.create_table("invoice_lines", sa.Column("id", sa.Integer, primary_key=True), '
                'sa.Column("invoice_id", sa.Integer, sa.ForeignKey("invoices.id"), nullable=False), '
                'sa.Column("amount", sa.Numeric))\n'
                + _sql("INSERT INTO invoice_lines (invoice_id, amount) SELECT id, amount FROM invoices")
                + '\nop.drop_column("invoices", "amount")',
        downgrade='op.add_column("invoices", sa.Column("amount", sa.Numeric))\n'
                  + _sql("UPDATE invoices i SET amount = (SELECT sum(l.amount) "
                         "FROM invoice_lines l WHERE l.invoice_id = i.id)")
                  + '\nop.drop_table("invoice_lines")'),
)

# A declared backfill on one branch rewrites rows while a revision of the other branch, which
# changes no rows, is applied: that revision's round trip must not be charged with the backfill.
_BACKFILL_BESIDE_A_BRANCH = (
    PLAIN_BASE,
    Rev("backfill", down="r1", upgrade=_sql("UPDATE t SET name = lower(name), note = NULL"),
        downgrade="pass"),
    _table("n", "r1"),
)

# Reference rows inserted idempotently and deleted by the downgrade: added rows are no loss.
_REFERENCE_ROWS = (
    Rev("r1", upgrade='op.create_table("statuses", '
                      'sa.Column("code", sa.String(20), primary_key=True), '
                      'sa.Column("label", sa.Text, nullable=False))',
        downgrade='op.drop_table("statuses")'),
    Rev("r2", down="r1",
        upgrade=_sql("INSERT INTO statuses (code, label) VALUES ('archived', 'Archived'), "
                     "('void', 'Void') ON CONFLICT (code) DO NOTHING"),
        downgrade=_sql("DELETE FROM statuses WHERE code IN ('archived', 'void')")),
)

CORRECT = [
    Correct("linear", (_table("a", None), _table("b", "a", refs=("a",)), _table("c", "b"))),
    Correct("branched", (_table("a", None), _table("b", "a"), _table("c", "a", refs=("a",)))),
    Correct("merged", (_table("a", None), _table("b", "a"), _table("c", "a"),
                       Rev("m", down=("b", "c"), upgrade="pass", downgrade="pass"),
                       _table("d", "m", refs=("b", "c")))),
    # d lives on its own branch but needs b's table: depends_on orders them without a merge.
    Correct("depends-on", (_table("a", None), _table("b", "a"),
                           _table("d", None, refs=("b",), depends_on="b", branch_labels="other"))),
    Correct("declared-data-migration",
            (PLAIN_BASE, Rev("r2", down="r1", upgrade='op.execute("UPDATE t SET name = lower(name)")',
                             downgrade="pass")),
            settings={"data_migrations": ("r2",)}),
    # A table-level REVOKE UPDATE takes the column-level UPDATE grants with it.
    Correct("revoke-removes-column-grants",
            (PLAIN_BASE, Rev("r2", down="r1",
                             upgrade=f'{_CREATE_APP}\nop.execute("GRANT SELECT ON t TO {APP}")\n'
                                     f'op.execute("GRANT UPDATE (note) ON t TO {APP}")',
                             downgrade=f'op.execute("REVOKE SELECT, UPDATE ON t FROM {APP}")'))),
    Correct("index-concurrently-in-autocommit-block",
            (PLAIN_BASE, Rev("r2", down="r1",
                             upgrade='with op.get_context().autocommit_block():\n'
                                     '    op.create_index("ix_t_note", "t", ["note"], '
                                     'postgresql_concurrently=True)',
                             downgrade='with op.get_context().autocommit_block():\n'
                                       '    op.drop_index("ix_t_note", "t", '
                                       'postgresql_concurrently=True)')),
            env="per_migration"),
    Correct("security-invoker-view-over-rls",
            (TENANT_BASE, Rev("r2", down="r1",
                              upgrade=_sql("CREATE VIEW v_items WITH (security_invoker = true) "
                                           "AS SELECT * FROM items",
                                           f"GRANT SELECT ON v_items TO {APP}"),
                              downgrade=_sql("DROP VIEW v_items")))),
    Correct("security-definer-function-filtering-by-the-tenant",
            (TENANT_BASE, Rev("r2", down="r1",
                              upgrade=_sql("CREATE FUNCTION my_count() RETURNS bigint "
                                           "SECURITY DEFINER LANGUAGE sql AS $$SELECT count(*) "
                                           f"FROM items WHERE tenant_id = {TENANT}$$"),
                              downgrade=_sql("DROP FUNCTION my_count()")))),
    Correct("identity-re-added-and-moved-past-existing-rows",
            (_IDENTITY_BASE, Rev("r2", down="r1", upgrade=_DROP_IDENTITY, downgrade=_ADD_IDENTITY
                                 + "\n" + _sql("SELECT setval(pg_get_serial_sequence('orders', "
                                                "'id'), (SELECT max(id) FROM orders))")))),
    # Not called since, a restarted sequence's next value is the one it was given, not its start.
    Correct("identity-restarted-past-existing-rows",
            (_IDENTITY_BASE, Rev("r2", down="r1",
                                 upgrade=_sql("ALTER TABLE orders ALTER COLUMN id RESTART WITH 1000000"),
                                 downgrade="pass"))),
    Correct("enum-value-added-and-rebuilt-on-downgrade",
            (PLAIN_BASE, _ENUM_STATUS, _ENUM_REBUILD), settings={"data_migrations": ("r3",)}),
    Correct("downgrade-folds-rows-added-in-between", _LINES_FOLDED_BACK),
    Correct("declared-backfill-beside-a-branch", _BACKFILL_BESIDE_A_BRANCH,
            settings={"data_migrations": ("backfill",)}),
    Correct("reference-rows-inserted-and-removed", _REFERENCE_ROWS),
]

DATA_SILENCE = ("downgrade-folds-rows-added-in-between", "declared-backfill-beside-a-branch",
                "reference-rows-inserted-and-removed")
"""Correct histories the data invariant once reported: walked on several seeds each."""

"""A long history full of old defects: one sweep must report every one of them, not the first.

120 generated revisions, each creating its own table, with a dozen defective ones spread over
them, of different kinds. A broken downgrade must not hide the next one, and a column moved to
the end of its table is reported apart from real drift.
"""

from __future__ import annotations

from pathlib import Path

from harness import commands
from harness.settings import load_settings
from projects import Rev, make_project, numbered
from projects import numbered_id as _rid

LENGTH = 120

# revision number -> (upgrade, downgrade, property expected); {t} is the previous revision's table.
DEFECTS = {
    7: ('op.create_index("ix_left", "{t}", ["id"])', "pass", "schema"),
    15: ('op.execute("COMMENT ON TABLE {t} IS \'left behind\'")', "pass", "schema"),
    23: ('op.execute("CREATE TYPE mood AS ENUM (\'ok\', \'sad\')")', "pass", "schema"),
    31: ('op.execute("GRANT SELECT ON {t} TO PUBLIC")', "pass", "schema"),
    39: ('op.execute("CREATE FUNCTION f() RETURNS int LANGUAGE sql AS \'SELECT 1\'")', "pass", "schema"),
    47: ('op.execute("CREATE POLICY p ON {t} USING (true)")', "pass", "schema"),
    55: ('op.execute("ALTER TABLE {t} ENABLE ROW LEVEL SECURITY")', "pass", "schema"),
    63: ('op.create_check_constraint("ck_left", "{t}", "id > 0")', "pass", "schema"),
    71: ('op.create_table("s71", sa.Column("id", sa.Integer))', 'op.drop_table("no_such_table")',
         "migration_error"),
    79: ('op.execute("CREATE SEQUENCE seq_left")', "pass", "schema"),
    87: ('op.execute("CREATE VIEW v_left AS SELECT * FROM {t}")', "pass", "schema"),
    # 94 makes w(id, a, b); 95 drops a and its downgrade re-adds it, at the end.
    95: ('op.drop_column("w", "a")', 'op.add_column("w", sa.Column("a", sa.Integer))', "column_order"),
}
ALSO = {("data", "r095")}
"""Found beside: 95's downgrade re-adds a empty, losing the values the sweep's filler gave it."""


def _history() -> list[Rev]:
    # {t} is the previous revision's table; 94 makes w(id, a, b) for 95.
    bodies = {i: (up.format(t=f"t_{_rid(i - 1)}"), down.format(t=f"t_{_rid(i - 1)}"))
              for i, (up, down, _) in DEFECTS.items()}
    bodies[94] = ('op.create_table("w", sa.Column("id", sa.Integer), sa.Column("a", sa.Integer), '
                  'sa.Column("b", sa.Integer))', 'op.drop_table("w")')
    return numbered(LENGTH, bodies)


def test_one_sweep_reports_every_defect_of_a_long_history(tmp_path: Path, pg_server) -> None:
    ini = make_project(tmp_path, _history())
    result = commands.sweep(load_settings(ini), server=pg_server)
    found = {(v.property, v.revision) for v in result.violations}
    assert found == {(prop, _rid(i)) for i, (_, _, prop) in DEFECTS.items()} | ALSO
    assert result.not_reached == {}
    # Every other revision was swept to the end: upgraded twice and downgraded once.
    clean = [_rid(i) for i in range(1, LENGTH + 1) if i not in DEFECTS]
    assert all(result.coverage["revisions"][r] == {"upgrade": 2, "downgrade": 1} for r in clean)


def test_column_order_can_be_accepted(tmp_path: Path, pg_server) -> None:
    ini = make_project(tmp_path, _history())
    result = commands.sweep(load_settings(ini, accept_column_order=True), server=pg_server)
    assert "column_order" not in {v.property for v in result.violations}
    assert len(result.violations) == len(DEFECTS) - 1 + len(ALSO)

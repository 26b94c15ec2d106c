"""The report's static parts, without a database: source scans, the graph drawing, lock modes.

These are the parts that read files rather than execute them; each is tested on what it must
find and on the look-alikes it must not flag, since a scan that cries wolf gets ignored.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
from alembic.config import Config

from harness.graph import RevisionGraph
from harness.report import credentials, destructive, lockprobe
from harness.report.dependencies import draw, mermaid, revisions_named

from projects import Rev, chain, make_project

ROOT = Path(__file__).resolve().parent.parent


def _upgrade_file(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "rev.py"
    path.write_text(
        '"""A revision."""\nfrom alembic import op\nimport sqlalchemy as sa\n\n\n'
        "def upgrade():\n" + textwrap.indent(textwrap.dedent(body).strip(), "    ") + "\n\n\n"
        "def downgrade():\n    op.drop_table('t')\n    op.execute('TRUNCATE t')\n"
    )
    return path


@pytest.mark.parametrize("body, expected", [
    ("op.drop_table('accounts')", ["drop table 'accounts'"]),
    ("op.drop_column('accounts', 'note')", ["drop column 'accounts', 'note'"]),
    ("with op.batch_alter_table('t') as batch:\n    batch.drop_column('c')", ["drop column 'c'"]),
    ("op.alter_column('t', 'c', type_=sa.Integer())", ["column type change 't', 'c'"]),
    ("op.execute('TRUNCATE audit_log')", ["TRUNCATE"]),
    ("table = 'ledger'\nop.execute(f'DELETE FROM {table} WHERE id < 0')", ["DELETE"]),
    ("op.execute(sa.text('UPDATE accounts SET balance = 0'))", ["UPDATE"]),
    ("op.execute('ALTER TABLE t ALTER COLUMN c TYPE int')", ["column type change"]),
    ("op.execute('ALTER TABLE t DROP COLUMN c')", ["DROP COLUMN"]),
])
def test_scan_finds_destructive_upgrades_with_their_line(tmp_path, body, expected):
    found = destructive.scan_upgrade("r1", _upgrade_file(tmp_path, body), str)
    assert [op.operation for op in found] == expected
    assert all(op.revision == "r1" and op.line >= 7 for op in found)


@pytest.mark.parametrize("body", [
    '"""Drops nothing; no DELETE FROM or TRUNCATE here."""\nop.create_table("t")',
    "op.execute('GRANT UPDATE (name) ON accounts TO app')",
    "op.execute('ALTER TABLE t ADD CONSTRAINT fk FOREIGN KEY (a) REFERENCES u ON UPDATE CASCADE')",
    "op.execute('SELECT * FROM t FOR UPDATE')",
    "op.execute('CREATE TRIGGER tr AFTER DELETE ON t FOR EACH ROW EXECUTE FUNCTION f()')",
])
def test_scan_ignores_look_alikes_and_downgrades(tmp_path, body):
    assert destructive.scan_upgrade("r1", _upgrade_file(tmp_path, body), str) == []


def test_bundled_upgrades_are_not_destructive():
    for path in sorted((ROOT / "alembic" / "versions").glob("*.py")):
        assert destructive.scan_upgrade(path.stem, path, str) == [], path


@pytest.mark.parametrize("line, kind", [
    ("op.execute(\"CREATE ROLE app LOGIN PASSWORD 'hunter2'\")", "password in SQL"),
    ("op.execute(\"ALTER ROLE app PASSWORD E'it''s'\")", "password in SQL"),
    ('URL = "postgresql+psycopg://deploy:Sup3r@db.internal:5432/app"', "URL with credentials"),
    ('DB_PASSWORD = "hunter2"', "secret in DB_PASSWORD"),
    ("config = {'api_key': 'k-123'}", "secret in api_key"),
])
def test_credential_shapes_are_found_and_masked(tmp_path, line, kind):
    path = tmp_path / "rev.py"
    path.write_text(f"x = 1\n{line}\n")
    [finding] = credentials.scan(path, shown="rev.py")
    assert (finding.path, finding.line, finding.kind) == ("rev.py", 2, kind)
    assert "***" in finding.excerpt
    for secret in ("hunter2", "Sup3r", "k-123", "it''s"):
        assert secret not in finding.excerpt


@pytest.mark.parametrize("line", [
    "op.execute(f\"CREATE ROLE app PASSWORD '{password}'\")",
    "op.execute(\"CREATE ROLE app PASSWORD '%(password)s'\")",
    'password = os.environ["DB_PASSWORD"]',
    'url = f"postgresql://{user}:{password}@{host}/db"',
    '"""The role is NOLOGIN, so no password lives in a migration."""',
    'TOKEN_COLUMN = sa.Column("token", sa.Text())',
])
def test_credential_look_alikes_are_not_flagged(tmp_path, line):
    path = tmp_path / "rev.py"
    path.write_text(line + "\n")
    assert credentials.scan(path, shown="rev.py") == []


def test_ini_secrets_and_alembics_own_template(tmp_path):
    ini = tmp_path / "alembic.ini"
    ini.write_text(
        "[alembic]\n"
        "# sqlalchemy.url = driver://user:pass@localhost/dbname\n"
        "sqlalchemy.url = postgresql://app:s3cr3t@prod-db/app\n"
        "db_password = %(DB_PASSWORD)s\n"
        "db_password = hunter2\n"
    )
    found = credentials.scan(ini, shown="alembic.ini")
    assert [(f.line, f.kind) for f in found] == [(3, "URL with credentials"), (5, "secret in db_password")]


def test_bundled_files_hold_no_credentials():
    files = [ROOT / "alembic.ini", ROOT / "alembic" / "env.py",
             *sorted((ROOT / "alembic" / "versions").glob("*.py"))]
    assert [f for path in files for f in credentials.scan(path, shown=path.name)] == []


def test_drawing_a_branched_and_merged_history(tmp_path):
    revs = [*chain("a", "b"), Rev("c", down="a"), Rev("m", down=("b", "c")), Rev("z", down="m"),
            Rev("x", down="a")]
    graph = RevisionGraph.load(Config(str(make_project(tmp_path, revs))))
    assert draw(graph) == [
        "● a Revision a. (base)",
        "├─● b Revision b.",
        "│   ↳ merged into m",
        "├─● c Revision c.",
        "│ ● m Revision m. (merge of b, c)",
        "│ ● z Revision z. (head)",
        "└─● x Revision x. (head)",
    ]


def test_mermaid_diagram_of_a_branched_and_merged_history_marks_the_violated_revisions(tmp_path):
    revs = [*chain("a", "b"), Rev("c", down="a"), Rev("m", down=("b", "c")), Rev("z", down="m")]
    graph = RevisionGraph.load(Config(str(make_project(tmp_path, revs))))
    node = {rev: f"r{i}" for i, rev in enumerate(graph.revisions)}

    lines = mermaid(graph, violated=["c"])

    assert lines[0] == "flowchart TD"
    assert f'    {node["a"]}(["a Revision a. (base)"])' in lines
    assert f'    {node["b"]}["b Revision b."]' in lines
    assert f'    {node["m"]}{{{{"m Revision m. (merge of b, c)"}}}}' in lines
    edges = {line.strip() for line in lines if "-->" in line}
    assert edges == {f"{node[p]} --> {node[c]}" for p, c in
                     [("a", "b"), ("a", "c"), ("b", "m"), ("c", "m"), ("m", "z")]}
    assert lines[-1] == f"    class {node['c']} violated"
    assert not any("class " in line for line in mermaid(graph)), "nothing marked without violations"


def test_revisions_blamed_by_a_section_are_those_with_problems_not_those_walked():
    evidence = {
        "problems": {"b": "takes ACCESS EXCLUSIVE"},
        "violations": [{"property": "schema", "revision": "c", "steps": [{"op": "upgrade", "revision": "a"}]}],
        "static": [{"operation": "drop table", "revision": "d"}, {"operation": "DELETE", "revision": "e"}],
        "data_migrations": ["e"],
        "revisions": {"a": [{"step": "alembic upgrade a"}]},
    }
    assert revisions_named(evidence) == {"b", "c", "d"}


def test_drawing_a_linear_history_stays_in_one_column(tmp_path):
    graph = RevisionGraph.load(Config(str(make_project(tmp_path, chain("a", "b", "c")))))
    assert draw(graph) == ["● a Revision a. (base)", "● b Revision b.", "● c Revision c. (head)"]


def test_lock_modes_and_what_they_block():
    assert lockprobe.strongest(frozenset({"AccessShareLock", "ShareLock"})) == "SHARE"
    assert lockprobe.BLOCKS["ACCESS EXCLUSIVE"] == "reads and writes"
    assert "SHARE UPDATE EXCLUSIVE" not in lockprobe.BLOCKS  # VACUUM-like: neither reads nor writes
    assert lockprobe.holder_mode("ACCESS EXCLUSIVE") == "ACCESS SHARE"
    assert lockprobe.holder_mode("SHARE") == "ROW EXCLUSIVE"


@pytest.mark.parametrize("setting, ms", [("0", 0), ("500ms", 500), ("5s", 5000), ("1min", 60_000),
                                         ("2h", 7_200_000), ("250", 250)])
def test_timeout_settings_as_postgresql_shows_them(setting, ms):
    assert lockprobe.duration_ms(setting) == ms

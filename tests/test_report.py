"""``harness report`` on real PostgreSQL: every check turns violated on the project that breaks it.

Each test builds a small Alembic project with one defect, runs the whole report on the session's
server, and checks that the section about that defect -- and only the sections it concerns --
says violated, with the evidence naming the revision, the file and line or the figures. The
bundled history is reported on too: the document committed in docs/ comes from it.
"""

from __future__ import annotations

import dataclasses
import json
import re
import time
from pathlib import Path
from typing import Any, Iterator

import psycopg
import pytest

from harness.report import NOT_APPLICABLE, VERIFIED, VIOLATED, Report, build_report
from harness.settings import load_settings

from projects import ENV_SHAPES, ENV_VAR_NAME, Rev, chain, make_project

ROOT = Path(__file__).resolve().parent.parent
SMALL = {"rows_per_table": 20, "walk_examples": 2, "walk_steps": 4, "lock_wait_s": 1.0}
"""Enough rows and walking to exercise every check, in seconds rather than minutes."""

SECTIONS = ["schema", "rollback", "reversibility", "destructive_operations", "credentials",
            "dependency_graph", "lock_safety", "statement_time", "backup_restore",
            "tenant_isolation", "cluster_changes"]

ACCOUNTS = Rev("a", upgrade=(
    'op.create_table("accounts", sa.Column("id", sa.Integer, primary_key=True),'
    ' sa.Column("amount", sa.Numeric(10, 2)), sa.Column("note", sa.Text()))'
), downgrade='op.drop_table("accounts")')


def report_on(tmp_path, pg_server, revisions, *, url=None, settings=None, **options) -> Report:
    """The report on a project of ``revisions``; ``settings`` as in [tool.harness]."""
    ini = make_project(tmp_path, revisions, url=url)
    report = build_report(load_settings(ini, **(settings or {})), server=pg_server, **{**SMALL, **options})
    assert_renderings_agree(report)
    return report


_REVISION_ROW = re.compile(r"^\| `?([^ |`]+)`?(?: \([^|]*\))? \|", re.M)
"""A table row whose first cell is a revision (with a note in parentheses)."""


def assert_renderings_agree(report: Report) -> None:
    """The Markdown and the JSON are two renderings of one value (``report/model.py``): for
    every section they agree on the status, the summary and the commands, on the revisions of
    its table (one row each), and the Markdown shows every violation, problem and located
    finding (file and line) the JSON holds; reversibility's rows show each revision's steps and
    result, and each sweep finding's violations in one block. Every report the tests build is
    held to it."""
    data = json.loads(json.dumps(report.to_json()))
    parts = report.to_markdown().split("\n## ")[1:]
    known = {revision["id"] for revision in data["project"]["revisions"]}
    assert len(parts) == len(data["sections"])
    for text, found in zip(parts, data["sections"]):
        key, evidence = found["key"], found["evidence"]
        assert text.split("\n", 1)[0].endswith(f"{found['title']}: {found['status']}"), key
        assert f"**{found['status'].capitalize()}**: {found['summary']}" in text, key
        assert all(f"$ {command}" in text for command in found["commands"]), key
        if isinstance(evidence.get("revisions"), dict):
            rows = [rev for rev in _REVISION_ROW.findall(text) if rev in known]
            assert sorted(rows) == sorted(evidence["revisions"]), (key, rows)
        for item in _items(evidence):
            if isinstance(item.get("property"), str) and isinstance(item.get("message"), str):
                assert item["message"].splitlines()[0] in text, (key, item)
            if isinstance(item.get("path"), str) and isinstance(item.get("line"), int):
                assert f"{item['path']}:{item['line']}" in text, (key, item)
        assert all(why in text for why in (evidence.get("problems") or {}).values()), key
        if key == "reversibility":  # each revision's steps and result, each sweep finding as one block
            for rev, row in evidence["revisions"].items():
                assert f"| {rev} | {' | '.join(row['steps'].values())} | {row['result']} |" in text, (key, rev)
            for finding in evidence["findings"]:
                block = [line for v in finding["violations"] for line in v["message"].splitlines()]
                assert "\n".join(["```", *block, "```"]) in text, (key, finding)


def _items(evidence: Any) -> Iterator[dict]:
    """Every mapping in ``evidence``, however deep."""
    if isinstance(evidence, dict):
        yield evidence
        for value in evidence.values():
            yield from _items(value)
    elif isinstance(evidence, list):
        for item in evidence:
            yield from _items(item)


def test_renderings_agree_catches_a_section_that_renders_another_value(pg_server, tmp_path):
    """The agreement check is no formality: a Markdown table that lost a revision's row, a
    violation shown in the JSON only, a reversibility row showing another result or a sweep
    finding shown only by its headline is caught."""
    report = report_on(tmp_path, pg_server, [Rev("a"), Rev("b", down="a", upgrade='op.execute("SELECT 1/0")',
                                                       downgrade="pass")])
    rollback, reversibility = section(report, "rollback"), section(report, "reversibility")
    assert reversibility.evidence["findings"][0]["revision"] == "b"
    without_row = "\n".join(line for line in rollback.body.splitlines() if not line.startswith("| a |"))
    violation = {"property": "schema", "revision": "a", "message": "a difference shown nowhere"}
    table_only = reversibility.body.split("\n\n```")[0]
    for original, broken in (
            (rollback, dataclasses.replace(rollback, body=without_row)),
            (rollback, dataclasses.replace(rollback, evidence={**rollback.evidence, "extra": [violation]})),
            (reversibility, dataclasses.replace(reversibility, body=table_only)),
            (reversibility, dataclasses.replace(reversibility, body=reversibility.body.replace(
                "| a | ok | ok | ok |", "| a | ok | ok | **violated** |")))):
        sections = tuple(broken if s is original else s for s in report.sections)
        with pytest.raises(AssertionError):
            assert_renderings_agree(dataclasses.replace(report, sections=sections))


def section(report: Report, key: str):
    return next(s for s in report.sections if s.key == key)


def statuses(report: Report) -> dict[str, str]:
    return {s.key: s.status for s in report.sections}


SEED_DOCUMENT_EXPECTS = [
    *(f"table public.{t}" for t in ("tenants", "attribution_events", "dead_events",
                                    "attribution_allocations", "revenue_ledger", "reconciliation_runs")),
    "materialized view public.mv_realtime_revenue", "materialized view public.mv_reconciliation_status",
]
"""The seed document's "Expected Tables" and "Expected Materialized Views"."""


def test_bundled_history(pg_server):
    report = build_report(load_settings(ROOT / "alembic.ini"), server=pg_server,
                          expected_objects=SEED_DOCUMENT_EXPECTS, **SMALL)
    assert_renderings_agree(report)
    assert [s.key for s in report.sections] == SECTIONS
    assert statuses(report) == dict.fromkeys(SECTIONS, VERIFIED)
    assert "all 8 expected objects present" in section(report, "schema").summary
    # 202511131120 turns on row-level security with ALTER TABLE (ACCESS EXCLUSIVE) on six tables
    # that exist before it; env.py's lock_timeout makes it fail fast behind a reader instead
    # of queueing every query on those tables.
    locks = section(report, "lock_safety")
    assert locks.evidence["problems"] == {}
    assert locks.evidence["revisions"]["202511131120"]["probe"]["outcome"] == "fails fast"
    isolation = section(report, "tenant_isolation").evidence
    assert isolation["setup"]["app_roles"] == ["attribution_app"]
    assert isolation["revisions"]["202511131121"]["tenants"] > 1
    rollback = section(report, "rollback").evidence
    assert rollback["rollback_order"] == ["202511131121", "202511131120", "202511131119",
                                          "202511131115", "202511121302"]
    assert [loss["kind"] for loss in rollback["revisions"]["202511131115"][1]["losses"]] == \
        ["table dropped"] * 6
    backup = section(report, "backup_restore").evidence
    assert backup["pg_restore_exit"] == 0 and not backup["schema_differences"]
    assert all(v["original"] > 0 for v in backup["materialized_view_rows"].values())


def test_output_forms(pg_server, tmp_path):
    refused = Rev("c", down="b", upgrade='op.execute("CREATE TABLE refused (id serial PRIMARY KEY, CHECK (false))")',
                  downgrade='op.execute("DROP TABLE refused")')
    report = report_on(tmp_path, pg_server, [*chain("a", "b"), refused])
    document = report.to_markdown()
    for s in report.sections:
        assert f"## {s.heading()}" in document
    data = json.loads(json.dumps(report.to_json()))
    assert data["ok"] is report.ok is True
    assert [s["key"] for s in data["sections"]] == SECTIONS
    assert report.summary_line().startswith("harness report: ok: 10 verified, 0 violated, 1 not applicable")
    # A table no row fits is named in the header rather than measured silently empty.
    assert report.project["seeding_shortfalls"] == {"public.refused": "0 rows: the database refused the others"}
    assert "**Seeded below the requested size**: `public.refused`" in document
    # No policy, no application role: nothing to isolate, and the report says why.
    assert section(report, "tenant_isolation").status == NOT_APPLICABLE
    assert "nothing to isolate" in section(report, "tenant_isolation").summary


def test_hard_coded_password(pg_server, tmp_path):
    role = Rev("a", upgrade='''
        op.execute("""DO $$ BEGIN
            IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'report_reader') THEN
                CREATE ROLE report_reader LOGIN PASSWORD 'hunter2-report';
            END IF;
        END $$""")
    ''', downgrade="pass")
    report = report_on(tmp_path, pg_server, [role], url="postgresql://deploy:Sup3rSecret@db.internal/app")
    found = section(report, "credentials")
    assert found.status == VIOLATED
    assert [(f["path"].rsplit("/", 1)[-1], f["line"], f["kind"]) for f in found.evidence["findings"]] == [
        ("alembic.ini", 4, "URL with credentials"), ("a_.py", 14, "password in SQL"),
    ]
    assert "hunter2-report" not in report.to_markdown() + json.dumps(report.to_json())
    assert "Sup3rSecret" not in report.to_markdown() + json.dumps(report.to_json())
    assert statuses(report)["schema"] == VERIFIED


def test_destructive_revision(pg_server, tmp_path):
    revisions = [
        ACCOUNTS,
        Rev("b", down="a", upgrade='''
            op.drop_column("accounts", "note")
            op.alter_column("accounts", "amount", type_=sa.Integer())
        ''', downgrade='''
            op.alter_column("accounts", "amount", type_=sa.Numeric(10, 2))
            op.add_column("accounts", sa.Column("note", sa.Text()))
        '''),
        Rev("c", down="b", upgrade='op.execute(f"DELETE FROM {\'accounts\'} WHERE id < 0")',
            downgrade="pass"),
    ]
    report = report_on(tmp_path, pg_server, revisions, settings={"data_migrations": ("c",)})
    found = section(report, "destructive_operations")
    assert found.status == VIOLATED
    static = [(op["revision"], op["line"], op["operation"]) for op in found.evidence["static"]]
    assert static == [("b", 12, "drop column 'accounts', 'note'"),
                      ("b", 13, "column type change 'accounts', 'amount'"),
                      ("c", 12, "DELETE")]
    observed = {(loss["column"], loss["kind"]) for loss in found.evidence["observed"]["b"]}
    assert observed == {("note", "column dropped"), ("amount", "values changed")}
    assert found.summary.startswith("destructive upgrade(s) in b:")  # c is a declared data migration
    assert "c (declared in data_migrations)" in found.body
    assert "public.accounts.note: column dropped" in found.body


def test_access_exclusive_without_lock_timeout(pg_server, tmp_path):
    revisions = [ACCOUNTS, Rev("b", down="a", upgrade='op.add_column("accounts", sa.Column("x", sa.Integer()))',
                               downgrade='op.drop_column("accounts", "x")')]
    report = report_on(tmp_path, pg_server, revisions)
    locks = section(report, "lock_safety")
    assert locks.status == VIOLATED
    run = locks.evidence["revisions"]["b"]
    assert run["locks"] == [{"relation": "public.accounts", "kind": "table", "mode": "ACCESS EXCLUSIVE",
                             "modes": ["ACCESS EXCLUSIVE"], "blocks": "reads and writes"}]
    assert run["probe"]["outcome"] == "waits" and run["probe"]["held"] == {"public.accounts": "ACCESS SHARE"}
    assert run["lock_timeout"] == "0"
    assert locks.evidence["revisions"]["a"]["locks"] == []  # creating a table blocks nobody
    others = {k: v for k, v in statuses(report).items() if k not in ("lock_safety", "tenant_isolation")}
    assert set(others.values()) == {VERIFIED}


def test_a_slow_start_does_not_hide_the_wait(pg_server, tmp_path, monkeypatch):
    """The probe's bound runs from the moment the migration waits, not from before Alembic
    starts: a start slower than the bound (a loaded machine) once let the other session go
    before the migration asked for its lock, and an upgrade that waits read as not blocked."""
    from harness.project import Project

    runner = Project.runner

    def slow_probe_runner(self, database, statement_timeout_ms=None):
        if statement_timeout_ms is not None:  # the lock probe's runner
            time.sleep(SMALL["lock_wait_s"] * 1.5)
        return runner(self, database, statement_timeout_ms)

    monkeypatch.setattr(Project, "runner", slow_probe_runner)
    revisions = [ACCOUNTS, Rev("b", down="a", upgrade='op.add_column("accounts", sa.Column("x", sa.Integer()))',
                               downgrade='op.drop_column("accounts", "x")')]
    locks = section(report_on(tmp_path, pg_server, revisions), "lock_safety")
    assert locks.status == VIOLATED and locks.evidence["revisions"]["b"]["probe"]["outcome"] == "waits"


@pytest.mark.parametrize("env", ["per_migration", "generic", "env_var"])
def test_locks_are_seen_whatever_the_env_py(pg_server, tmp_path, env):
    # env.py may commit per migration, or build its own engine from alembic.ini or from an
    # environment variable instead of using the connection the harness hands it.
    revisions = [ACCOUNTS, Rev("b", down="a", upgrade='op.add_column("accounts", sa.Column("x", sa.Integer()))',
                               downgrade='op.drop_column("accounts", "x")')]
    ini = make_project(tmp_path, revisions, env=env)
    settings = load_settings(ini, env_var=ENV_VAR_NAME if env == "env_var" else None)
    report = build_report(settings, server=pg_server, **SMALL)
    assert_renderings_agree(report)
    locks = section(report, "lock_safety").evidence["revisions"]["b"]
    assert [lock["mode"] for lock in locks["locks"]] == ["ACCESS EXCLUSIVE"]
    assert locks["probe"]["outcome"] == "waits"
    assert statuses(report)["rollback"] == VERIFIED


def test_lock_timeout_makes_the_same_migration_fail_fast(pg_server, tmp_path):
    revisions = [ACCOUNTS, Rev("b", down="a", upgrade='''
        op.execute("SET LOCAL lock_timeout = '200ms'")
        op.add_column("accounts", sa.Column("x", sa.Integer()))
    ''', downgrade='op.drop_column("accounts", "x")')]
    report = report_on(tmp_path, pg_server, revisions)
    locks = section(report, "lock_safety")
    assert locks.status == VERIFIED
    probe = locks.evidence["revisions"]["b"]["probe"]
    assert probe["outcome"] == "fails fast" and probe["waited_s"] < 1.0
    assert "lock timeout" in probe["error"]


def test_lock_timeout_set_in_env_py_counts(pg_server, tmp_path):
    env_py = ENV_SHAPES["cookbook"].replace(
        "    with context.begin_transaction():\n",
        "    with context.begin_transaction():\n        context.execute(\"SET LOCAL lock_timeout = '200ms'\")\n",
    )
    revisions = [ACCOUNTS, Rev("b", down="a", upgrade='op.create_index("ix_amount", "accounts", ["amount"])',
                               downgrade='op.drop_index("ix_amount", "accounts")')]
    ini = make_project(tmp_path, revisions, env_py=env_py)
    locks = section(build_report(load_settings(ini), server=pg_server, **SMALL), "lock_safety")
    assert locks.status == VERIFIED
    run = locks.evidence["revisions"]["b"]
    assert [(lock["mode"], lock["blocks"]) for lock in run["locks"]] == [("SHARE", "writes")]
    assert run["lock_timeout"] == "200ms"
    assert run["probe"]["held"] == {"public.accounts": "ROW EXCLUSIVE"}  # a writer's lock
    assert run["probe"]["outcome"] == "fails fast"


def test_restore_that_fails(pg_server, tmp_path):
    # A CHECK calling a function that reads a table without naming its schema: fine in the
    # application's search_path, broken in pg_restore's empty one.
    revisions = [Rev("a", upgrade='''
        op.execute("CREATE TABLE limits (id int PRIMARY KEY)")
        op.execute("CREATE FUNCTION within_limits(v int) RETURNS boolean LANGUAGE sql STABLE"
                   " AS 'SELECT v > (SELECT min(id) - 1000000 FROM limits)'")
        op.execute("CREATE TABLE items (id int PRIMARY KEY, v int CHECK (within_limits(v)))")
    ''', downgrade='''
        op.execute("DROP TABLE items")
        op.execute("DROP FUNCTION within_limits(int)")
        op.execute("DROP TABLE limits")
    ''')]
    report = report_on(tmp_path, pg_server, revisions)
    backup = section(report, "backup_restore")
    assert backup.status == VIOLATED
    assert backup.evidence["pg_restore_exit"] != 0
    assert any('relation "limits" does not exist' in line for line in backup.evidence["errors"])
    assert "public.items" in backup.evidence["data_differences"]
    assert statuses(report)["rollback"] == VERIFIED


ONE_WAY = [ACCOUNTS, Rev("b", down="a", upgrade='op.execute("UPDATE accounts SET note = upper(note)")',
                         downgrade='raise NotImplementedError("upper-casing cannot be undone")')]


def test_downgrade_that_fails(pg_server, tmp_path):
    report = report_on(tmp_path, pg_server, ONE_WAY, settings={"data_migrations": ("b",)})
    rollback = section(report, "rollback")
    assert rollback.status == VIOLATED
    assert rollback.evidence["problems"].keys() == {"b"}
    assert "NotImplementedError: upper-casing cannot be undone" in rollback.summary
    assert "b_.py:16" in rollback.body  # the line of the downgrade that raised
    assert "1. `b` Revision b.: downgrade fails" in rollback.body
    assert section(report, "reversibility").status == VIOLATED


def test_declared_irreversible_revision_is_not_downgraded(pg_server, tmp_path):
    report = report_on(tmp_path, pg_server, ONE_WAY, settings={
        "data_migrations": ("b",), "irreversible": {"b": "upper-casing is lossy"}})
    rollback = section(report, "rollback")
    assert rollback.status == VERIFIED
    assert "declared irreversible, never downgraded: b (upper-casing is lossy)" in rollback.summary
    assert "cannot be rolled back, declared irreversible" in rollback.body
    assert section(report, "reversibility").status == VERIFIED
    # Changing every row on purpose is still reported, as a declared data migration.
    assert section(report, "destructive_operations").status == VERIFIED
    assert "b (declared in data_migrations) | UPDATE" in section(report, "destructive_operations").body


def test_multiple_heads(pg_server, tmp_path):
    report = report_on(tmp_path, pg_server, [*chain("a", "b"), Rev("c", down="a")])
    graph = section(report, "dependency_graph")
    assert graph.status == VIOLATED
    assert graph.evidence["heads"] == ["b", "c"] and graph.evidence["branch_points"] == {"a": ["b", "c"]}
    assert "alembic merge heads" in graph.summary


def test_the_graph_is_drawn_in_mermaid_with_branches_merges_and_the_violated_revision(pg_server, tmp_path):
    leaky = Rev("c", down="a", upgrade='op.add_column("t_a", sa.Column("x", sa.Integer))', downgrade="pass")
    report = report_on(tmp_path, pg_server, [Rev("a"), Rev("b", down="a"), leaky,
                                             Rev("m", down=("b", "c"), upgrade="pass", downgrade="pass")])
    graph = section(report, "dependency_graph")
    assert graph.status == VERIFIED and graph.evidence["violated"] == ["c"]
    diagram = graph.body.split("```mermaid\n")[1].split("```")[0]
    assert diagram.startswith("flowchart TD\n")
    assert '{{"m Revision m. (merge of b, c; head)"}}' in diagram and diagram.count(" --> ") == 4
    node_c = next(line.split("[")[0].strip() for line in diagram.splitlines() if '"c Revision c."' in line)
    assert diagram.rstrip().endswith(f"class {node_c} violated")
    assert "● a Revision a. (base)" in graph.body, "the text tree stays for terminals"
    assert "```mermaid" in report.to_markdown()
    assert section(report, "cluster_changes").summary.startswith("no migration creates, alters or drops roles")


def test_cluster_wide_changes_are_named_per_revision_and_direction(pg_server, tmp_path):
    create = Rev("a", upgrade=(
        'op.execute("DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = \'probe_role\') '
        'THEN CREATE ROLE probe_role NOLOGIN; END IF; END $$")'), downgrade='op.execute("DROP ROLE probe_role")')
    alter = Rev("b", down="a", upgrade='op.execute("ALTER ROLE probe_role CONNECTION LIMIT 5")',
                downgrade='op.execute("ALTER ROLE probe_role CONNECTION LIMIT -1")')
    report = report_on(tmp_path, pg_server, [create, alter, Rev("c", down="b")])
    cluster = section(report, "cluster_changes")
    assert cluster.status == VERIFIED
    assert cluster.evidence["changes"] == {
        "upgrade a": ["role probe_role created (NOLOGIN)"],
        "upgrade b": ["role probe_role altered (NOLOGIN -> NOLOGIN CONNECTION LIMIT 5)"],
        "downgrade b": ["role probe_role altered (NOLOGIN CONNECTION LIMIT 5 -> NOLOGIN)"],
        "downgrade a": ["role probe_role dropped"],
    }
    assert "| a | upgrade | role probe_role created (NOLOGIN) |" in cluster.body
    with psycopg.connect(pg_server.dsn(), autocommit=True) as conn:
        conn.execute("DROP ROLE IF EXISTS probe_role")


def test_migration_past_the_statement_timeout(pg_server, tmp_path):
    revisions = [ACCOUNTS, Rev("b", down="a", upgrade='op.execute("SELECT pg_sleep(2)")', downgrade="pass")]
    report = report_on(tmp_path, pg_server, revisions, settings={"statement_timeout_ms": 300})
    timing = section(report, "statement_time")
    assert timing.status == VIOLATED
    assert "b" in timing.evidence["problems"]
    assert set(timing.evidence["revisions"]["a"]["seconds"]) == {"upgrade", "downgrade", "upgrade again"}
    assert timing.evidence["revisions"]["b"]["seconds"]["upgrade"] < 1  # stopped at 300 ms


def test_missing_expected_object_and_policy_without_rls(pg_server, tmp_path):
    revisions = [ACCOUNTS, Rev("b", down="a", upgrade='op.execute("CREATE POLICY own ON accounts USING (true)")',
                               downgrade='op.execute("DROP POLICY own ON accounts")')]
    report = report_on(tmp_path, pg_server, revisions,
                       expected_objects=["table public.accounts", "table public.ledger"])
    schema = section(report, "schema")
    assert schema.status == VIOLATED
    assert schema.evidence["missing"] == ["table public.ledger"]
    assert schema.evidence["policies_without_rls"] == ["policy own on public.accounts"]


def test_tenant_leak(pg_server, tmp_path):
    revisions = [Rev("a", upgrade='''
        op.execute("CREATE TABLE tenants (id uuid PRIMARY KEY DEFAULT gen_random_uuid())")
        for table in ("notes", "secrets"):
            op.execute(f"CREATE TABLE {table} (id serial PRIMARY KEY,"
                       " tenant_id uuid NOT NULL REFERENCES tenants, body text)")
        op.execute("ALTER TABLE notes ENABLE ROW LEVEL SECURITY")
        op.execute("ALTER TABLE notes FORCE ROW LEVEL SECURITY")
        op.execute("CREATE POLICY tenant ON notes"
                   " USING (tenant_id = NULLIF(current_setting('app.tenant', true), '')::uuid)")
        op.execute("""DO $$ BEGIN
            IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'report_leaky_app') THEN
                CREATE ROLE report_leaky_app NOLOGIN;
            END IF;
        END $$""")
        op.execute("GRANT SELECT ON notes, secrets TO report_leaky_app")
    ''', downgrade='op.execute("DROP TABLE notes, secrets, tenants")')]
    report = report_on(tmp_path, pg_server, revisions)
    isolation = section(report, "tenant_isolation")
    assert isolation.status == VIOLATED
    assert isolation.evidence["setup"] == {"tenant_setting": "app.tenant", "tenant_column": "tenant_id",
                                           "app_roles": ["report_leaky_app"]}
    leaks = isolation.evidence["revisions"]["a"]["violations"]
    assert leaks and all("public.secrets" in v["message"] for v in leaks)


def test_a_failing_revision_is_named_by_every_check_that_needed_it(pg_server, tmp_path):
    report = report_on(tmp_path, pg_server, [Rev("a"), Rev("b", down="a", upgrade='op.execute("SELECT 1/0")',
                                                       downgrade="pass")])
    assert statuses(report) == {
        "schema": VIOLATED, "rollback": VIOLATED, "reversibility": VIOLATED,
        "destructive_operations": VIOLATED, "credentials": VERIFIED, "dependency_graph": VERIFIED,
        "lock_safety": VIOLATED, "statement_time": VIOLATED, "backup_restore": NOT_APPLICABLE,
        "tenant_isolation": NOT_APPLICABLE, "cluster_changes": VIOLATED,
    }
    for s in report.sections:
        if s.status != VERIFIED:
            assert "DivisionByZero" in s.summary and "b_.py:12" in s.summary, s.key


# A catalog write no event trigger sees, left behind by the downgrade: the sweep finds it only in
# the whole snapshot at the end of its trial, a finding of no single revision.
_UNSEEN = [
    Rev("a", upgrade='op.create_table("t", sa.Column("id", sa.Integer, primary_key=True))\n'
                     'op.create_table("u", sa.Column("id", sa.Integer, primary_key=True))',
        downgrade='op.drop_table("u")\nop.drop_table("t")'),
    Rev("b", down="a", upgrade='op.create_index("ix_u", "u", ["id"])',
        downgrade='op.drop_index("ix_u", "u")\n'
                  'op.execute("UPDATE pg_class SET relrowsecurity = true WHERE oid = \'t\'::regclass")'),
]


def test_a_finding_of_no_single_revision_is_reported(pg_server, tmp_path):
    reversibility = section(report_on(tmp_path, pg_server, _UNSEEN), "reversibility")
    assert reversibility.status == VIOLATED
    assert "whole snapshot at the end" in reversibility.summary
    assert "table public.t" in reversibility.body
    assert [f["revision"] for f in reversibility.evidence["findings"]] == [None]

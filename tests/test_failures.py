"""Failures a person can act on: the same seed prints the same minimal counterexample, once per
defect, at its revision, with rows as INSERT statements that paste into psql.

The walks here run the ``ci`` profile on one mutant of each class of :mod:`mutants`; how long they
take is measured by ``python -m benchmarks failures``, never here.
"""

from __future__ import annotations

import json
import re
import secrets
import subprocess
import sys

import pytest

from harness.failures import Failure, defects
from harness.pasteable import insert_statement, literal
from harness.session import open_session
from harness.settings import load_settings
from harness.trial import LoggedStep, Trial, insert_rows
from harness.violations import Violation

from harness.seeding import read_catalog
from harness.simplest import needed_by, simplest_rows

from mutants import MUTANTS, PLAIN_BASE, TENANT_BASE, _sql, _tenant_table, with_role
from projects import Rev, make_project

SEEDS = {"round trip": 7, "data": 7, "isolation": 3, "error with data": 1}
"""Seeds that catch each mutant; catching is test_mutants' business, the failure's shape ours.
Seed 3 finds the isolation hole right after a filled start (rows of eight tenants in three
tables), which once printed 24 rows."""
CLASSES = {
    "round trip": "index-left-behind",
    "data": "rows-deleted-by-a-grants-revision",
    "isolation": "new-tenant-table-without-rls-seeded",
    "error with data": "unique-index-over-duplicates",
}


def _busy() -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", "while True: pass"])


def _walk(ini, server, seed: int) -> dict:
    """``harness walk`` as a person runs it, in a process of its own: a seed's promise is about
    a fresh run, whatever ran before in the same process."""
    out = ini.parent / f"walk-{secrets.token_hex(4)}.json"
    done = subprocess.run([sys.executable, "-m", "harness", "walk", "-c", str(ini), "--seed", str(seed),
                           "--database-url", server.dsn("postgres"), "--json", str(out)],
                          capture_output=True, text=True)
    assert done.returncode == 1, done.stdout + done.stderr
    return json.loads(out.read_text())


@pytest.mark.parametrize("klass", list(CLASSES))
def test_one_seed_gives_one_minimal_defect_at_its_revision_twice(klass, tmp_path, pg_server):
    mutant = next(m for m in MUTANTS if m.id == CLASSES[klass])
    ini = make_project(tmp_path, with_role(mutant.revisions, f"harness_app_{secrets.token_hex(4)}"))

    first = _walk(ini, pg_server, SEEDS[klass])
    # The second run competes with busy processes for the CPU: shrinking is bounded by work,
    # so the load changes how long it takes, never where it stops.
    load = [_busy(), _busy()] if klass == "data" else []
    try:
        again = _walk(ini, pg_server, SEEDS[klass])
    finally:
        for process in load:
            process.kill()
            process.wait()

    assert _masked(first["failures"]) == _masked(again["failures"])
    assert first["defects"] == 1, first["failures"]
    failure = first["failures"][0]
    assert failure["property"] == mutant.property
    assert failure["revision"] in mutant.blamed and failure["revision"] is not None
    migrations = [c for c in failure["commands"] if c.startswith("alembic")]
    rows = [row for step in failure["steps"] for row in step.get("rows", ())]
    assert len(migrations) <= 4 and len(rows) <= 4, failure["commands"]


_RANDOM_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}")


def _masked(failures: list) -> str:
    """The failures as JSON, with the random keys the tenant family's migrations themselves
    make (``gen_random_uuid()`` in an INSERT of r1) masked: no seed can repeat those."""
    return _RANDOM_UUID.sub("<random uuid>", json.dumps(failures))


_QUIET = Rev("r2", down="r1", upgrade="pass", downgrade="pass")
_DELETES = Rev("r3", down="r2", upgrade='op.execute("DELETE FROM t WHERE note IS NULL")', downgrade="pass")
_QUIET_TOO = Rev("r4", down="r3", upgrade="pass", downgrade="pass")


def test_a_violation_found_across_a_jump_is_narrowed_to_its_revision(tmp_path, pg_server):
    ini = make_project(tmp_path, [PLAIN_BASE, _QUIET, _DELETES, _QUIET_TOO])
    with open_session(load_settings(ini), pg_server) as session:
        trial = Trial(session)
        try:
            assert trial.upgrade("r1") == []
            assert trial.seed(lambda conn: insert_rows(conn, [("public.t", {"id": "1", "name": "x"})])) == []
            violations = trial.jump("upgrade", "r4")
            log = [step.as_command() for step in trial.log]
        finally:
            trial.close()

    assert violations and {v.revision for v in violations} == {"r3"}
    assert log[-2:] == ["alembic upgrade r2", "alembic upgrade r3"]


def test_a_jump_whose_steps_are_fine_one_by_one_keeps_its_violations(tmp_path, pg_server):
    """Nothing to narrow on a correct history: the jump is as silent as its steps."""
    ini = make_project(tmp_path, [PLAIN_BASE, _QUIET, Rev("r3", down="r2", upgrade="pass", downgrade="pass")])
    with open_session(load_settings(ini), pg_server) as session:
        trial = Trial(session)
        try:
            assert trial.upgrade("r1") == []
            assert trial.seed(lambda conn: insert_rows(conn, [("public.t", {"id": "1", "name": "x"})])) == []
            assert trial.jump("upgrade", "r3") == []
        finally:
            trial.close()


def test_violations_of_one_property_at_one_revision_are_one_defect():
    found = [Violation("data", "r2", "rows of public.a changed"), Violation("data", "r2", "rows of public.b changed"),
             Violation("tenant_isolation", "r2", "role app sees b")]
    failures = defects(found, frozenset(), ())

    assert [(f.violations[0].property, len(f.violations)) for f in failures] == [("data", 2), ("tenant_isolation", 1)]
    text = failures[0].render()
    assert text.startswith("[data] at r2: 2 pieces of evidence") and "public.b" in text
    assert json.loads(json.dumps(failures[0].to_json()))["revision"] == "r2"


def test_rows_print_as_inserts_that_paste_into_psql(pg_conn):
    pg_conn.execute('CREATE TABLE "order" (id int, "user" text, note text, blob bytea, doc jsonb)')
    record = {"id": "1", "user": "it's\nme", "note": "x" * 500, "blob": "\\x" + "00" * 3000, "doc": {"a": [1]}}

    statement = insert_statement("public.order", record)
    pg_conn.execute(statement)

    assert statement.startswith('INSERT INTO public."order" (id, "user", note, blob, doc) VALUES (1, E\'it\'\'s\\nme\'')
    assert "/* 500 characters, cut */" in statement and "/* 3000 bytes, cut */" in statement
    assert pg_conn.execute('SELECT "user", length(note) FROM "order"').fetchone() == ("it's\nme", 40)
    assert literal(None) == "NULL" and literal("007") == "'007'" and literal("-1.50") == "-1.50"


def test_replay_inserts_rows_in_the_order_they_went_in_across_a_cycle(pg_conn):
    pg_conn.execute("CREATE TABLE a (id int PRIMARY KEY, b_id int)")
    pg_conn.execute("CREATE TABLE b (id int PRIMARY KEY, a_id int REFERENCES a)")
    pg_conn.execute("ALTER TABLE a ADD FOREIGN KEY (b_id) REFERENCES b")
    rows = (("public.a", {"id": "1", "b_id": None}), ("public.b", {"id": "1", "a_id": "1"}),
            ("public.a", {"id": "2", "b_id": "1"}))
    step = LoggedStep.from_json(json.loads(json.dumps(LoggedStep("seed", rows=rows).to_json())))

    insert_rows(pg_conn, step.rows)

    assert step.rows == rows
    assert pg_conn.execute("SELECT count(*) FROM a").fetchone() == (2,)


def test_a_failure_file_of_the_first_format_still_replays_its_rows():
    old = {"op": "seed", "rows": {"public.parent": [{"id": "1"}], "public.t": [{"id": "1", "parent_id": "1"}]}}
    step = LoggedStep.from_json(old)
    assert step.rows == (("public.parent", {"id": "1"}), ("public.t", {"id": "1", "parent_id": "1"}))
    assert Failure.from_json({"violations": [{"property": "data", "revision": "r2", "message": "m",
                                              "evidence": {}, "steps": [old]}], "steps": [old]}).steps == (step,)


_QUIET_TENANT = Rev("r3", down="r2", upgrade='op.execute("CREATE INDEX ix_notes_body ON notes (body)")',
                    downgrade='op.execute("DROP INDEX ix_notes_body")')
_UNRELATED = Rev("r4", down="r3", upgrade='op.execute("CREATE TABLE other (id int)")',
                 downgrade='op.execute("DROP TABLE other")')


@pytest.mark.parametrize(("opened", "blamed"), [
    # A table made without row-level security: its maker is blamed, not the revisions after it.
    (_tenant_table("notes", rls=False, policy=False, rows_from=None), "r2"),
    # A table made safe, then opened by a revision that only changes its flags.
    (_tenant_table("notes", rls=True, policy=True, rows_from=None), "r5"),
])
def test_a_hole_seen_after_a_seed_step_names_the_revision_that_opened_it(opened, blamed, tmp_path, pg_server):
    role = f"harness_app_{secrets.token_hex(4)}"
    disable = Rev("r5", down="r4", upgrade=_sql("ALTER TABLE notes DISABLE ROW LEVEL SECURITY"),
                  downgrade=_sql("ALTER TABLE notes ENABLE ROW LEVEL SECURITY"))
    history = [TENANT_BASE, Rev("r2", down="r1", upgrade=opened, downgrade='op.drop_table("notes")'),
               _QUIET_TENANT, _UNRELATED, disable]
    ini = make_project(tmp_path, with_role(history, role))
    a, b = "00000000-0000-0000-0000-00000000000a", "00000000-0000-0000-0000-00000000000b"
    rows = [("public.notes", {"tenant_id": a, "body": "x"}), ("public.notes", {"tenant_id": b, "body": "y"})]
    with open_session(load_settings(ini), pg_server) as session:
        trial = Trial(session)
        try:
            assert all(trial.upgrade(revision) == [] for revision in ("r1", "r2", "r3", "r4", "r5"))
            violations = trial.seed(lambda conn: insert_rows(conn, rows))
        finally:
            trial.close()

    assert violations and {v.revision for v in violations} == {blamed}
    assert {v.evidence["relation"] for v in violations} == {"public.notes"}


def test_values_become_the_simplest_the_schema_accepts(pg_conn):
    pg_conn.execute("CREATE TYPE mood AS ENUM ('calm', 'busy')")
    pg_conn.execute("CREATE TABLE p (id int PRIMARY KEY)")
    pg_conn.execute("CREATE TABLE c (id int PRIMARY KEY, p_id int REFERENCES p, must_p int NOT NULL REFERENCES p, "
                    "code text NOT NULL UNIQUE, name text NOT NULL, note text, at date NOT NULL, "
                    "m mood NOT NULL, ok boolean NOT NULL, amount numeric(10, 2) NOT NULL)")
    catalog = read_catalog(pg_conn)
    parent = ("public.p", {"id": "7"})
    child = {"id": "9", "p_id": "7", "must_p": "7", "code": "zz", "name": "Ünï", "note": "n",
             "at": "2931-04-05", "m": "busy", "ok": "true", "amount": "12.34"}
    rows = (parent, ("public.c", child), ("public.c", {**child, "id": "10", "code": "yy"}))

    simpler = simplest_rows(catalog, rows, {"public.c": 1})
    only_amount = simplest_rows(catalog, rows, {}, ("public.c", "amount"))

    assert simpler[0] == parent  # referenced: its children find it by that value
    assert simpler[1][1] == {"id": "1", "p_id": None, "must_p": "7", "code": "a", "name": "", "note": None,
                             "at": "2000-01-01", "m": "calm", "ok": "false", "amount": "0"}
    assert simpler[2][1]["id"] == "2" and simpler[2][1]["code"] == "b"
    assert only_amount[1][1] == {**child, "amount": "0"}
    insert_rows(pg_conn, simpler)
    assert needed_by(catalog, rows, 2) == {0, 2} and needed_by(catalog, rows, 0) == {0}

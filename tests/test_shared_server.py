"""Left as found: roles are cluster-wide, so the roles a URL-mode run's migrations create are
dropped at its end, and roles that were there before are never touched; Hypothesis's own files
go under .harness/, not into a .hypothesis/ of the current directory.
"""

from __future__ import annotations

import psycopg
import pytest

from harness.cli import main
from harness.server import Server
from projects import Rev, make_project

# a creates a role of its own and grants to one that existed before the run (keeper); the sweep's
# last step is a's upgrade again, so without the clean-up harness_test_fresh would remain.
GRANTING = Rev("a", upgrade='''
    op.create_table("notes", sa.Column("id", sa.Integer, primary_key=True))
    op.execute("CREATE ROLE harness_test_fresh NOLOGIN")
    op.execute("GRANT SELECT ON notes TO harness_test_fresh, harness_test_keeper")
''', downgrade='''
    op.drop_table("notes")
    op.execute("DROP ROLE harness_test_fresh")
''')


def roles(server: Server) -> dict[str, tuple]:
    with psycopg.connect(server.dsn(), autocommit=True) as conn:
        return {name: rest for name, *rest in conn.execute(
            "SELECT rolname, rolcanlogin, rolsuper, rolcreatedb, rolconnlimit FROM pg_roles")}


@pytest.fixture
def keeper(pg_server):
    with psycopg.connect(pg_server.dsn(), autocommit=True) as conn:
        conn.execute("CREATE ROLE harness_test_keeper LOGIN CONNECTION LIMIT 3")
    yield "harness_test_keeper"
    with psycopg.connect(pg_server.dsn(), autocommit=True) as conn:
        conn.execute("DROP ROLE IF EXISTS harness_test_keeper")


def test_after_a_url_mode_run_the_servers_roles_are_those_it_had_before(tmp_path, pg_server, keeper, capsys):
    ini = make_project(tmp_path, [GRANTING, Rev("b", down="a")])
    before = roles(pg_server)

    assert main(["sweep", "-c", str(ini), "--database-url", pg_server.dsn()]) == 0, capsys.readouterr()

    assert roles(pg_server) == before
    assert "harness_test_fresh" not in roles(pg_server) and keeper in roles(pg_server)


def test_a_role_another_run_may_use_is_left_and_said(tmp_path, pg_server, capsys):
    ini = make_project(tmp_path, [Rev("a", upgrade='op.execute("CREATE ROLE harness_test_other NOLOGIN")',
                                                      downgrade='op.execute("DROP ROLE harness_test_other")')])
    try:
        with pg_server.scratch():  # another harness run's database, on the same server
            assert main(["sweep", "-c", str(ini), "--database-url", pg_server.dsn()]) == 0
        assert "harness_test_other" in roles(pg_server)
        assert "left roles harness_test_other on the server: another harness run" in capsys.readouterr().err
    finally:
        with psycopg.connect(pg_server.dsn(), autocommit=True) as conn:
            conn.execute("DROP ROLE IF EXISTS harness_test_other")


def test_a_walk_keeps_hypothesis_files_under_dot_harness(tmp_path, pg_server, monkeypatch):
    monkeypatch.delenv("HYPOTHESIS_STORAGE_DIRECTORY", raising=False)
    monkeypatch.chdir(tmp_path)
    make_project(tmp_path, [Rev("a"), Rev("b", down="a")])

    assert main(["walk", "-c", "alembic.ini", "--seed", "1", "--max-examples", "3", "--steps", "3",
                 "--database-url", pg_server.dsn()]) == 0

    # Hypothesis writes its own files (a constants cache) only on some runs; wherever it did,
    # it was under .harness/, never in the current directory.
    assert not (tmp_path / ".hypothesis").exists()

"""The env.py shapes real projects have, each walked and swept, or refused with the setting to use.

Every project here has the same history, chosen to touch what env.py shapes get wrong: objects
in a second schema, ``CREATE INDEX CONCURRENTLY`` inside ``autocommit_block()``, a branch and a
merge. A shape is supported when ``sweep`` and ``walk`` find nothing to report on it; a shape
the harness cannot run as it is must stop the run with one error naming the setting that makes
it work (exit 2 from the command line), never a migration failure per revision.
"""

from __future__ import annotations

import os
import sys

import psycopg
import pytest
import sqlalchemy as sa

from harness import cli
from harness.commands import sweep, walk
from harness.errors import HarnessError
from harness.session import open_session
from harness.settings import load_settings

from projects import APP_URL_NAME, ENV_VAR_NAME, SETTINGS_MODULE, Rev, make_project

SQLALCHEMY_2 = int(sa.__version__.split(".")[0]) >= 2

HISTORY = [
    Rev("r1"),
    Rev("r2", down="r1", upgrade="""
        op.execute("CREATE SCHEMA billing")
        op.create_table("invoices", sa.Column("id", sa.Integer, primary_key=True),
                        sa.Column("amount", sa.Numeric, nullable=False), schema="billing")
    """, downgrade="""
        op.drop_table("invoices", schema="billing")
        op.execute("DROP SCHEMA billing")
    """),
    Rev("r3", down="r2", upgrade="""
        with op.get_context().autocommit_block():
            op.execute("CREATE INDEX CONCURRENTLY ix_r1 ON t_r1 (id)")
    """, downgrade="""
        with op.get_context().autocommit_block():
            op.execute("DROP INDEX CONCURRENTLY ix_r1")
    """),
    Rev("b1", down="r1"),
    Rev("m", down=("r3", "b1"), upgrade="pass", downgrade="pass"),
]


def check_supported(ini, pg_server, **options):
    """Sweep and walk the project: both must succeed and reach every revision."""
    settings = load_settings(ini, **options)
    swept = sweep(settings, server=pg_server)
    assert swept.ok, (swept.not_reached, [f.render() for f in swept.failures])
    assert swept.coverage["unvisited"] == []
    walked = walk(settings, server=pg_server, seed=1, max_examples=3, steps=8)
    assert walked.ok, [f.render() for f in walked.failures]


def refused(ini, pg_server, **options) -> HarnessError:
    with pytest.raises(HarnessError) as info:
        sweep(load_settings(ini, **options), server=pg_server)
    return info.value


@pytest.mark.parametrize("shape, options", [
    ("cookbook", {}),
    ("per_migration", {}),
    ("generic", {}),
    ("env_var", {"env_var": ENV_VAR_NAME}),
    ("engine", {"connection_attribute": "engine"}),
    ("custom_version_table", {"version_table": "meta.revisions"}),
    ("flask", {"env": "builtin"}),
    ("flask", {"env": "builtin", "transaction_per_migration": True,
               "version_table": "meta.revisions"}),
])
def test_shape_is_walked_and_swept(tmp_path, pg_server, shape, options):
    ini = make_project(tmp_path, HISTORY, env=shape,
                       url="postgresql://nobody@127.0.0.1:1/production")
    check_supported(ini, pg_server, **options)


def test_builtin_env_keeps_the_configured_version_table(tmp_path, pg_server):
    ini = make_project(tmp_path, HISTORY, env="flask")
    settings = load_settings(ini, env="builtin", version_table="meta.revisions")
    with open_session(settings, pg_server) as session:
        name = session.references.template(frozenset({"m"}))
        with psycopg.connect(pg_server.dsn(name)) as conn:
            assert conn.execute("SELECT version_num FROM meta.revisions").fetchall() == [("m",)]
            assert conn.execute("SELECT to_regclass('public.alembic_version')").fetchone() == (None,)


def test_async_env(tmp_path, pg_server):
    # Alembic's async template, with the project's asyncpg URL; without a URL the default
    # driver serves it where SQLAlchemy can run it async (psycopg 3, SQLAlchemy 2; on 1.4 it is
    # refused, see below)
    ini = make_project(tmp_path / "asyncpg", HISTORY, env="async",
                       url="postgresql+asyncpg://nobody@127.0.0.1:1/production")
    check_supported(ini, pg_server)
    if SQLALCHEMY_2:
        check_supported(make_project(tmp_path / "default", HISTORY, env="async"), pg_server)


def test_migrations_import_the_projects_own_code(tmp_path, pg_server, monkeypatch):
    # one module beside alembic.ini through prepend_sys_path, one from an installed package
    installed = tmp_path / "site-packages"
    (installed / "shapes_installed").mkdir(parents=True)
    (installed / "shapes_installed" / "__init__.py").write_text(
        "def audit_table():\n    return 'audit'\n")
    monkeypatch.syspath_prepend(str(installed))
    for name in ("shapes_local", "shapes_installed"):
        monkeypatch.delitem(sys.modules, name, raising=False)
    history = [*HISTORY, Rev("r4", down="m", upgrade="""
        from shapes_installed import audit_table
        from shapes_local.tables import columns
        op.create_table(audit_table(), *columns())
    """, downgrade="""
        from shapes_installed import audit_table
        op.drop_table(audit_table())
    """)]
    ini = make_project(
        tmp_path / "project", history, ini_options={"prepend_sys_path": "."},
        files={"shapes_local/__init__.py": "",
               "shapes_local/tables.py": "import sqlalchemy as sa\n\n\ndef columns():\n"
                                         "    return [sa.Column('id', sa.Integer)]\n"})
    check_supported(ini, pg_server)


@pytest.mark.parametrize("shape, options, hint", [
    ("flask", {}, 'env = "builtin"'),
    ("env_var", {}, f'env_var = "{ENV_VAR_NAME}"'),
    ("custom_version_table", {}, 'version_table = "meta.revisions"'),
    # SQLAlchemy 1.4's default driver, psycopg2, cannot run async; and its Connection still
    # has the .connect() an env.py expecting an Engine calls
    *([("engine", {}, 'connection_attribute = "engine"'),
       ("cookbook", {"connection_attribute": "engine"}, 'connection_attribute = "connection"')]
      if SQLALCHEMY_2 else [("async", {}, 'driver = "asyncpg"')]),
])
def test_shape_that_cannot_work_names_the_setting(tmp_path, pg_server, shape, options, hint):
    ini = make_project(tmp_path, HISTORY, env=shape)
    error = refused(ini, pg_server, **options)
    assert hint in str(error), str(error)


def test_settings_module_read_once(tmp_path, pg_server, monkeypatch):
    # The URL is read when the settings module is first imported: without env_var it is
    # missing; with it, the module keeps the first scratch database's URL for every later run,
    # which the harness notices before anything is migrated there.
    monkeypatch.delitem(sys.modules, "appsettings", raising=False)
    ini = make_project(tmp_path, HISTORY, env="settings_module",
                       ini_options={"prepend_sys_path": "."},
                       files={"appsettings.py": SETTINGS_MODULE})
    assert f'env_var = "{APP_URL_NAME}"' in str(refused(ini, pg_server))
    error = refused(ini, pg_server, env_var=APP_URL_NAME)
    # The first URL is of a database the harness has since dropped, or of one it did not hand
    # to this run: either way the run is refused before anything is migrated there.
    assert ("not to the scratch database" in str(error) or "does not exist" in str(error))
    assert 'env = "builtin"' in str(error)
    assert APP_URL_NAME not in os.environ
    check_supported(ini, pg_server, env="builtin")


def test_command_line_exits_2_with_the_setting(tmp_path, pg_server, capsys):
    ini = make_project(tmp_path, HISTORY, env="flask")
    code = cli.main(["sweep", "-c", str(ini), "--database-url", pg_server.dsn("postgres")])
    err = capsys.readouterr().err
    assert code == 2, err
    assert "harness: error:" in err and "flask" in err and 'env = "builtin"' in err
    assert len(err.strip().splitlines()) == 1

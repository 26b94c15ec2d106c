"""A revision upgrades under the harness exactly when it upgrades under plain ``alembic``.

Migrations run on the connection the project's own stack gives them: on SQLAlchemy 1.4 a
legacy one, where a plain string goes to ``execute()``, ``engine.execute()`` exists and DDL
commits by itself, unless the project opts in to ``future`` (``sqlalchemy.future = true`` in
alembic.ini, or ``future=True`` in its env.py). The same history is run by plain ``alembic
upgrade`` and by the sweep, and both must agree. On SQLAlchemy 2 there is no legacy style, so
the same test asserts what 2.x does: both refuse the string alike. Run it on the old stack with
``tox -e sqla14 -- tests/test_legacy_stack.py``.
"""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.config import Config

from harness.commands import sweep
from harness.settings import load_settings

from projects import DRIVER, ENV_SHAPES, Rev, make_project

SQLALCHEMY_2 = int(sa.__version__.split(".")[0]) >= 2

# Written as 1.4-era projects write them.
LEGACY_STYLE = [
    Rev("r1"),
    Rev("r2", down="r1",
        upgrade='op.get_bind().execute("ALTER TABLE t_r1 ADD COLUMN note text")',
        downgrade='op.get_bind().execute("ALTER TABLE t_r1 DROP COLUMN note")'),
    # Another connection of the same engine: its DDL and DML commit at once (autocommit), so
    # the migration's own connection sees the row.
    Rev("r3", down="r2", upgrade="""
        engine = op.get_bind().engine
        engine.execute("CREATE TABLE side_log (id integer)")
        engine.execute("INSERT INTO side_log VALUES (1)")
        assert op.get_bind().execute("SELECT count(*) FROM side_log").scalar() == 1
    """, downgrade='op.get_bind().engine.execute("DROP TABLE side_log")'),
]

_FUTURE_ENV = ENV_SHAPES["cookbook"].replace(
    "poolclass=pool.NullPool,", "poolclass=pool.NullPool,\n        future=True,")

OPT_INS = {
    "legacy": ({}, None),
    "future_in_ini": ({"sqlalchemy.future": "true"}, None),
    "future_in_env_py": ({}, _FUTURE_ENV),
}


@pytest.mark.parametrize("opt_in", OPT_INS)
def test_harness_upgrades_what_alembic_upgrades(opt_in, tmp_path, pg_server):
    ini_options, env_py = OPT_INS[opt_in]
    assert env_py is None or "future=True" in env_py
    ini = make_project(tmp_path, LEGACY_STYLE, env_py=env_py, ini_options=ini_options)
    legacy = not SQLALCHEMY_2 and opt_in == "legacy"

    with pg_server.scratch() as db:
        config = Config(str(ini))
        config.set_main_option("sqlalchemy.url", db.sqlalchemy_url(DRIVER))
        if legacy:
            command.upgrade(config, "head")
        else:
            with pytest.raises(sa.exc.ObjectNotExecutableError):
                command.upgrade(config, "head")

    result = sweep(load_settings(ini, driver=DRIVER), server=pg_server)
    if legacy:
        assert result.ok, [v.message for v in result.violations]
        assert not result.not_reached
    else:
        [violation] = result.violations
        assert (violation.property, violation.revision) == ("migration_error", "r2")
        assert "ObjectNotExecutableError" in violation.message

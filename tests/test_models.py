"""Property ``models`` (pytest-alembic's "model definitions match the DDL") and the ``heads``
rule: a model that drifts from the migrations is a violation naming each difference; a model
that matches is silent; without metadata the property is off, and says so.
"""

from __future__ import annotations

import itertools
import textwrap

import pytest

from harness import commands
from harness.errors import HarnessError
from harness.settings import load_settings
from projects import Rev, cookbook_env, make_project

ACCOUNTS = Rev("a", upgrade=(
    'op.create_table("accounts", sa.Column("id", sa.Integer, primary_key=True),'
    ' sa.Column("amount", sa.Numeric(10, 2), nullable=False))'
), downgrade='op.drop_table("accounts")')

MATCHING = """
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("amount", sa.Numeric(10, 2), nullable=False),
"""
DRIFTING = """
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("amount", sa.Integer, nullable=False),
    sa.Column("note", sa.Text),
"""

_modules = itertools.count()


def project(tmp_path, columns: str, *, from_env: bool = True, revisions=(ACCOUNTS,), settings: str = ""):
    """A project whose models module declares ``accounts`` with ``columns``.

    Every test gets its own module name: Python caches imported modules for the session.
    """
    module = f"app_models_{next(_modules)}"
    models = ("import sqlalchemy as sa\n\nmetadata = sa.MetaData()\n"
              f"accounts = sa.Table(\"accounts\", metadata,{textwrap.dedent(columns)})\n")
    env_py = cookbook_env(", compare_type=True")
    if from_env:
        env_py = env_py.replace("target_metadata=None", f"target_metadata=__import__({module!r}).metadata")
    ini = make_project(tmp_path, list(revisions), env_py=env_py,
                       ini_options={"prepend_sys_path": "."}, files={f"{module}.py": models})
    setting = f'target_metadata = "{module}:metadata"\n' if not from_env else ""
    (tmp_path / "pyproject.toml").write_text(f"[tool.harness]\n{setting}{settings}")
    return ini


def sweep(ini, pg_server):
    return commands.sweep(load_settings(ini), server=pg_server)


def test_a_model_that_drifts_is_a_models_violation_naming_each_difference(tmp_path, pg_server):
    result = sweep(project(tmp_path, DRIFTING), pg_server)

    (violation,) = [v for v in result.violations if v.property == "models"]
    assert violation.revision == "a"
    differences = {d["object"]: d["change"] for d in violation.evidence["differences"]}
    assert differences["column accounts.note"] == "in the models (TEXT), no migration creates it"
    assert differences["column accounts.amount"] == (
        "type: the migrations give NUMERIC(10, 2), the models INTEGER")
    assert "column accounts.note: in the models (TEXT)" in violation.message
    assert not result.ok and "models" in result.coverage["properties"]


def test_a_matching_model_is_silent(tmp_path, pg_server):
    result = sweep(project(tmp_path, MATCHING), pg_server)
    assert result.ok, [v.headline() for v in result.violations]
    assert "models" in result.coverage["properties"]


def test_a_table_the_migrations_create_but_no_model_declares_is_named(tmp_path, pg_server):
    extra = Rev("b", down="a", upgrade='op.create_table("audit", sa.Column("id", sa.Integer, primary_key=True))',
                downgrade='op.drop_table("audit")')
    result = sweep(project(tmp_path, MATCHING, revisions=(ACCOUNTS, extra)), pg_server)
    (violation,) = result.violations
    assert violation.revision == "b"
    assert violation.evidence["differences"] == [
        {"object": "table audit", "change": "created by the migrations, absent from the models"}]


def test_the_setting_names_the_metadata_when_env_py_passes_none(tmp_path, pg_server):
    result = sweep(project(tmp_path, DRIFTING, from_env=False), pg_server)
    objects = {d["object"] for v in result.violations if v.property == "models" for d in v.evidence["differences"]}
    assert "column accounts.note" in objects


def test_without_metadata_the_property_is_off(tmp_path, pg_server):
    result = sweep(make_project(tmp_path, [ACCOUNTS]), pg_server)
    assert result.ok and "models" not in result.coverage["properties"]


def test_a_setting_that_names_nothing_is_one_clear_error(tmp_path, pg_server):
    ini = make_project(tmp_path, [ACCOUNTS])
    (tmp_path / "pyproject.toml").write_text('[tool.harness]\ntarget_metadata = "no_such_module:metadata"\n')
    with pytest.raises(HarnessError, match="target_metadata = 'no_such_module:metadata'"):
        sweep(ini, pg_server)


def test_the_single_head_rule(tmp_path, pg_server):
    branched = [Rev("a"), Rev("b", down="a"), Rev("c", down="a")]
    ini = make_project(tmp_path, branched)
    (tmp_path / "pyproject.toml").write_text("[tool.harness]\nheads = 1\n")
    (violation,) = sweep(ini, pg_server).violations
    assert violation.property == "heads" and "2 heads (b, c), at most 1 allowed" in violation.message

    merged = make_project(tmp_path / "merged", [*branched, Rev("m", down=("b", "c"), upgrade="pass", downgrade="pass")])
    (tmp_path / "merged" / "pyproject.toml").write_text("[tool.harness]\nheads = 1\n")
    result = sweep(merged, pg_server)
    assert result.ok and "heads" in result.coverage["properties"]

"""Settings: sources, precedence, and errors that name the bad key."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.errors import HarnessError
from harness.settings import Settings, load_settings


def _project(tmp_path: Path, harness_table: str = "") -> Path:
    ini = tmp_path / "alembic.ini"
    ini.write_text("[alembic]\nscript_location = alembic\n")
    if harness_table:
        (tmp_path / "pyproject.toml").write_text("[tool.harness]\n" + harness_table)
    return ini


def test_defaults_start_an_embedded_server() -> None:
    assert Settings().server == "embedded"


def test_pyproject_table_is_read_and_options_win(tmp_path: Path) -> None:
    ini = _project(tmp_path, 'tenant_column = "org_id"\napp_roles = ["app"]\nstatement-timeout-ms = 5000\n')
    settings = load_settings(ini, tenant_column="tenant_id")
    assert settings.alembic_ini == ini.resolve()
    assert settings.tenant_column == "tenant_id"
    assert settings.app_roles == ("app",)
    assert settings.statement_timeout_ms == 5000


def test_unknown_keys_are_named(tmp_path: Path) -> None:
    ini = _project(tmp_path, 'tenant_colum = "x"\nappp_roles = []\n')
    with pytest.raises(HarnessError, match="unknown settings in .*pyproject.toml: appp_roles, tenant_colum"):
        load_settings(ini)


def test_wrong_types_are_named(tmp_path: Path) -> None:
    ini = _project(tmp_path, 'server = "docker"\n')
    with pytest.raises(HarnessError, match="setting server .* must be 'embedded' / 'url' / 'container'"):
        load_settings(ini)


def test_durations_take_seconds_or_units(tmp_path: Path) -> None:
    ini = _project(tmp_path, 'duration = "1h30m"\nstep_timeout = 45\n')
    settings = load_settings(ini)
    assert (settings.duration, settings.step_timeout_s) == (5400, 45)
    assert load_settings(ini, duration="2.5s").duration == 2.5
    assert Settings(statement_timeout_ms=2000).step_timeout_s == 10  # five statement timeouts
    for bad in ("soon", "-5m", "0", "10x"):
        with pytest.raises(HarnessError, match="setting duration in options must be"):
            load_settings(ini, duration=bad)


def test_missing_alembic_ini_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(HarnessError, match="no alembic.ini at"):
        load_settings(tmp_path / "alembic.ini")


def test_harness_database_url_selects_the_url_server_and_database_url_is_ignored(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("DATABASE_URL", "postgresql://prod@db/prod")
    monkeypatch.delenv("HARNESS_DATABASE_URL", raising=False)
    assert load_settings().server == "embedded"
    monkeypatch.setenv("HARNESS_DATABASE_URL", "postgresql://ci@localhost/postgres")
    settings = load_settings()
    assert settings.server == "url"
    assert settings.database_url == "postgresql://ci@localhost/postgres"

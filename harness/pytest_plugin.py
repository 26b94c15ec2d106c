"""The pytest face: two lines in a project's tests walk its migrations.

    from harness.pytest_plugin import sweep_test, walk_test

    test_migrations_sweep = sweep_test("alembic.ini")
    test_migrations_walk = walk_test("alembic.ini")

Options: ``--harness-profile dev|ci|nightly`` (default: ``$HARNESS_PROFILE`` or ``ci``),
``--harness-seed N`` (``--hypothesis-seed`` is honoured too), ``--harness-database-url URL``.
One server per test session (per worker under pytest-xdist), started on first use.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest

from .errors import HarnessError
from .server import Server, open_server
from .settings import Settings, load_settings


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("harness", "migration walks on real PostgreSQL")
    group.addoption("--harness-profile", choices=["dev", "ci", "nightly"],
                    default=os.environ.get("HARNESS_PROFILE", "ci"), help="walk budget")
    group.addoption("--harness-seed", type=int, default=None, help="seed of the walk to repeat")
    group.addoption("--harness-database-url", default=None,
                    help="an existing server; only scratch databases are created there")


@pytest.fixture(scope="session")
def harness_server(pytestconfig: pytest.Config) -> Iterator[Server]:
    """The PostgreSQL server every walk of this test session runs on."""
    url = pytestconfig.getoption("harness_database_url")
    settings = load_settings().with_options(database_url=url)
    with open_server(settings) as server:
        yield server


def walk_test(alembic_ini: str | os.PathLike[str], **options: Any) -> Callable[..., None]:
    """A test function that walks the project of ``alembic_ini`` and fails with the evidence."""

    def test_walk(harness_server: Server, pytestconfig: pytest.Config) -> None:
        from . import commands

        seed = pytestconfig.getoption("harness_seed")
        if seed is None and pytestconfig.getoption("hypothesis_seed", None) is not None:
            seed = int(pytestconfig.getoption("hypothesis_seed"))
        settings = _settings(alembic_ini, options)
        result = commands.walk(
            settings, profile=pytestconfig.getoption("harness_profile"), seed=seed,
            database_dir=Path(settings.alembic_ini).parent / ".harness" / "examples",
            server=harness_server,
        )
        _report(result)

    return test_walk


def sweep_test(alembic_ini: str | os.PathLike[str], **options: Any) -> Callable[..., None]:
    """A test function that sweeps every revision of ``alembic_ini``'s project."""

    def test_sweep(harness_server: Server) -> None:
        from . import commands

        _report(commands.sweep(_settings(alembic_ini, options), server=harness_server))

    return test_sweep


def _settings(alembic_ini: str | os.PathLike[str], options: dict[str, Any]) -> Settings:
    try:
        return load_settings(alembic_ini, **options)
    except HarnessError as exc:
        pytest.fail(f"harness: {exc}", pytrace=False)


def _report(result) -> None:
    if result.ok:
        return
    text = [failure.render() for failure in result.failures]
    text += [f"not reached: {rev}: {why}" for rev, why in result.not_reached.items()]
    pytest.fail("\n\n".join(text), pytrace=False)

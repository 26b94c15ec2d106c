"""The pytest face: two lines in a project's tests walk its migrations.

    from harness.pytest_plugin import sweep_test, walk_test

    test_migrations_sweep = sweep_test("alembic.ini")
    test_migrations_walk = walk_test("alembic.ini")

Options (each also from the environment, so that tox and CI set them without touching the
command line):

* ``--harness-profile dev|ci|nightly`` (``HARNESS_PROFILE``, default ``ci``): the walk budget.
* ``--harness-seed N`` (``--hypothesis-seed`` is honoured too): repeat a walk.
* ``--harness-database-url URL`` (``HARNESS_DATABASE_URL``): an existing server.
* ``--harness-pg-versions 15,18`` (``HARNESS_PG_VERSIONS``): every test once per PostgreSQL
  major, each on an embedded server of that version.
* ``--harness-walkers N`` (``HARNESS_WALKERS``): N independent walks. Under the nightly profile
  it defaults to the number of pytest-xdist workers, so ``pytest -n auto`` keeps every core
  busy; walker ``i`` uses seed ``base + i`` when a base seed is given.

One server per test session and version -- per worker under pytest-xdist, so workers never
share scratch databases -- started on first use and stopped with every scratch database at the
end of the session.
"""

from __future__ import annotations

import contextlib
import os
from typing import Any, Callable, Iterator

import pytest

from .errors import HarnessError
from .server import Server, open_server
from .settings import Settings, harness_path, load_settings



def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("harness", "migration walks on real PostgreSQL")
    group.addoption("--harness-profile", default=os.environ.get("HARNESS_PROFILE", "ci"),
                    metavar="dev|ci|nightly", help="walk budget")
    group.addoption("--harness-seed", type=int, default=None, help="seed of the walk to repeat")
    group.addoption("--harness-database-url", default=None,
                    help="an existing server; only scratch databases are created there")
    group.addoption("--harness-pg-versions", default=os.environ.get("HARNESS_PG_VERSIONS", ""),
                    metavar="15,18", help="run every harness test once per PostgreSQL major")
    group.addoption("--harness-walkers", type=int, default=_int_env("HARNESS_WALKERS"), metavar="N",
                    help="independent walks (nightly default: one per xdist worker)")


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Spread harness tests over PostgreSQL versions and, for walks, over walkers."""
    if not getattr(metafunc.function, "_harness_test", False):
        return
    config = metafunc.config
    versions = _versions(config)
    if versions and config.getoption("harness_database_url"):
        raise pytest.UsageError("harness: PostgreSQL versions are chosen for embedded servers, not with a URL")
    if versions:
        metafunc.parametrize("harness_pg_version", versions, ids=[f"pg{v}" for v in versions],
                             scope="session")
    if "harness_walker" in metafunc.fixturenames:
        walkers = config.getoption("harness_walkers")
        if walkers is None:
            nightly = config.getoption("harness_profile") == "nightly"
            walkers = _int_env("PYTEST_XDIST_WORKER_COUNT") if nightly else None
        walkers = walkers or 1
        metafunc.parametrize("harness_walker", range(walkers), ids=[f"walker{i}" for i in range(walkers)])


@pytest.fixture(scope="session")
def harness_pg_version() -> int | None:
    """The PostgreSQL major of this test; None: the server's settings decide."""
    return None


@pytest.fixture
def harness_walker() -> int:
    return 0


@pytest.fixture(scope="session")
def harness_server(pytestconfig: pytest.Config, harness_pg_version: int | None) -> Iterator[Server]:
    """The PostgreSQL server every harness test of this session (and version) runs on."""
    url = pytestconfig.getoption("harness_database_url")
    settings = _run(lambda: load_settings().with_options(database_url=url, pg_version=harness_pg_version))
    with contextlib.ExitStack() as stack:
        yield _run(lambda: stack.enter_context(open_server(settings)))


def walk_test(alembic_ini: str | os.PathLike[str], **options: Any) -> Callable[..., None]:
    """A test function that walks the project of ``alembic_ini`` and fails with the evidence."""

    def test_walk(harness_server: Server, harness_walker: int, pytestconfig: pytest.Config) -> None:
        from . import commands

        base = pytestconfig.getoption("harness_seed")
        if base is None and pytestconfig.getoption("hypothesis_seed", None) is not None:
            base = int(pytestconfig.getoption("hypothesis_seed"))
        settings = _settings(alembic_ini, options)
        _report(_run(lambda: commands.walk(
            settings, profile=pytestconfig.getoption("harness_profile"),
            seed=None if base is None else base + harness_walker,
            database_dir=harness_path(settings.alembic_ini, "examples"),
            server=harness_server, progress=False,
        )))

    test_walk._harness_test = True  # type: ignore[attr-defined]
    return test_walk


def sweep_test(alembic_ini: str | os.PathLike[str], **options: Any) -> Callable[..., None]:
    """A test function that sweeps every revision of ``alembic_ini``'s project."""

    def test_sweep(harness_server: Server) -> None:
        from . import commands

        _report(_run(lambda: commands.sweep(_settings(alembic_ini, options), server=harness_server)))

    test_sweep._harness_test = True  # type: ignore[attr-defined]
    return test_sweep


def _versions(config: pytest.Config) -> list[int]:
    text = config.getoption("harness_pg_versions") or ""
    try:
        return [int(v) for v in text.replace(" ", "").split(",") if v]
    except ValueError:
        raise pytest.UsageError(f"harness: HARNESS_PG_VERSIONS={text!r}: expected majors like 15,18") from None


def _int_env(name: str) -> int | None:
    value = os.environ.get(name, "")
    return int(value) if value.isdigit() else None


def _settings(alembic_ini: str | os.PathLike[str], options: dict[str, Any]) -> Settings:
    return _run(lambda: load_settings(alembic_ini, **options))


def _run(action: Callable[[], Any]) -> Any:
    """``action()``, with the harness's one-line errors as test failures without a traceback."""
    try:
        return action()
    except HarnessError as exc:
        pytest.fail(f"harness: {exc}", pytrace=False)


def _report(result) -> None:
    if result.ok:
        return
    text = [failure.render() for failure in result.failures]
    text += [f"not reached: {rev}: {why}" for rev, why in result.not_reached.items()]
    pytest.fail("\n\n".join(text), pytrace=False)

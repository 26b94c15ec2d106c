"""The pytest face: two lines in a project's tests walk its migrations.

    from harness.pytest_plugin import sweep_test, walk_test

    test_migrations_sweep = sweep_test("alembic.ini")
    test_migrations_walk = walk_test("alembic.ini")

Options (each also from the environment, so that tox and CI set them without touching the
command line):

* ``--harness-profile dev|ci|nightly`` (``HARNESS_PROFILE``, default ``ci``): the walk budget.
* ``--harness-seed N`` (``--hypothesis-seed`` is honoured too): repeat a walk.
* ``--harness-duration 90m`` (``HARNESS_DURATION``): stop each walk after the example running
  when this is spent (the nightly profile has a duration of its own).
* ``--harness-shard I/N`` (``HARNESS_SHARD``): each walk is the I-th of N shares of the work,
  one per CI job of a matrix (as ``harness walk --shard``).
* ``--harness-database-url URL`` (``HARNESS_DATABASE_URL``): an existing server.
* ``--harness-pg-versions 15,18`` (``HARNESS_PG_VERSIONS``): every test once per PostgreSQL
  major, each on an embedded server of that version.
* ``--harness-walkers N`` (``HARNESS_WALKERS``): N independent walks. Under the nightly profile
  it defaults to the number of pytest-xdist workers, so ``pytest -n auto`` keeps every core
  busy; walker ``i`` uses seed ``base + i`` when a base seed is given.

After the tests, a ``harness`` section of the terminal summary says what each harness test did
(examples, steps, states, revisions and edges exercised, rows seeded, properties checked, time);
the same lines go into ``--junitxml`` as the test's ``harness`` property, and into a failing
test's message. Under ``GITHUB_ACTIONS=true`` each violation becomes a workflow annotation and
the runs a job summary, as with the command line.

One server per test session and version -- per worker under pytest-xdist, so workers never
share scratch databases -- started on first use and stopped with every scratch database at the
end of the session.
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import json
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
    group.addoption("--harness-duration", default=os.environ.get("HARNESS_DURATION"), metavar="90m",
                    help="stop each walk after the example running when this is spent")
    group.addoption("--harness-shard", default=os.environ.get("HARNESS_SHARD"), metavar="I/N",
                    help="walk the I-th of N shares of the work (one per CI job, from 1)")
    group.addoption("--harness-database-url", default=None,
                    help="an existing server; only scratch databases are created there")
    group.addoption("--harness-pg-versions", default=os.environ.get("HARNESS_PG_VERSIONS", ""),
                    metavar="15,18", help="run every harness test once per PostgreSQL major")
    group.addoption("--harness-walkers", type=int, default=_int_env("HARNESS_WALKERS"), metavar="N",
                    help="independent walks (nightly default: one per xdist worker)")


def pytest_configure(config: pytest.Config) -> None:
    if not config.pluginmanager.has_plugin("harness-summary"):
        config.pluginmanager.register(_Summary(), "harness-summary")


class _Summary:
    """Collects what each harness test did (from xdist workers too) and prints it at the end."""

    def __init__(self) -> None:
        self.runs: list[tuple[str, str]] = []
        self.findings: list[dict[str, Any]] = []
        self.markdown: list[str] = []

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if report.when != "call":
            return
        for name, value in report.user_properties:
            if name == "harness":
                self.runs.append((report.nodeid, value))
            elif name == "harness_findings":
                self.findings += json.loads(value)
            elif name == "harness_markdown":
                self.markdown.append(value)

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        if not self.runs:
            return
        terminalreporter.write_sep("=", "harness")
        for nodeid, text in self.runs:
            terminalreporter.write_line(nodeid)
            for line in text.splitlines():
                terminalreporter.write_line(f"  {line}")
        if os.environ.get("GITHUB_ACTIONS") == "true":
            from . import faces
            from .faces.annotations import RULES

            out = io.StringIO()
            faces.publish([faces.Annotation(**f) for f in self.findings], summary="\n\n".join(self.markdown),
                          rules=RULES, stream=out)
            for line in out.getvalue().splitlines():
                terminalreporter.write_line(line)


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

    def test_walk(harness_server: Server, harness_walker: int, pytestconfig: pytest.Config,
                  request: pytest.FixtureRequest) -> None:
        from . import commands

        base = pytestconfig.getoption("harness_seed")
        if base is None and pytestconfig.getoption("hypothesis_seed", None) is not None:
            base = int(pytestconfig.getoption("hypothesis_seed"))
        duration = pytestconfig.getoption("harness_duration")
        settings = _settings(alembic_ini, {"duration": duration, **options})
        shard = pytestconfig.getoption("harness_shard")
        _report(_run(lambda: commands.walk(
            settings, profile=pytestconfig.getoption("harness_profile"),
            seed=None if base is None else base + harness_walker,
            database_dir=harness_path(settings.alembic_ini, "examples"),
            server=harness_server, progress=False,
            shard=commands.parse_shard(shard) if shard else None,
        )), request)

    test_walk._harness_test = True  # type: ignore[attr-defined]
    return test_walk


def sweep_test(alembic_ini: str | os.PathLike[str], **options: Any) -> Callable[..., None]:
    """A test function that sweeps every revision of ``alembic_ini``'s project."""

    def test_sweep(harness_server: Server, request: pytest.FixtureRequest) -> None:
        from . import commands

        _report(_run(lambda: commands.sweep(_settings(alembic_ini, options), server=harness_server)),
                request)

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


def _report(result, request: pytest.FixtureRequest) -> None:
    """Record what the run did (terminal summary, junit XML); fail with the readable evidence;
    a walk stopped by a signal then ends the session, as Ctrl-C does."""
    from .faces import from_run
    from .faces.summary import run_lines

    lines = run_lines(result)
    properties = request.node.user_properties
    properties.append(("harness", "\n".join(lines)))
    if os.environ.get("GITHUB_ACTIONS") == "true":
        found = [dataclasses.asdict(f) for f in from_run(result)]
        properties += [("harness_findings", json.dumps(found)), ("harness_markdown", result.to_markdown())]
    text = [failure.render() for failure in result.failures]
    text += [f"not reached: {rev}: {why}" for rev, why in result.not_reached.items()]
    if not result.ok:
        pytest.fail("\n\n".join(text + ["\n".join(lines)]), pytrace=False)
    if result.problem:
        pytest.fail(f"harness: {result.problem}", pytrace=False)
    if result.stop_signal:
        pytest.exit(f"harness: walk stopped by {result.to_json()['signal']}",
                    returncode=128 + result.stop_signal)

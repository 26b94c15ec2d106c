"""The walk as CI and nightly runs depend on it: a seed repeats a walk, failures are kept between
runs whatever Hypothesis's own CI profile says, an infrastructure error stops the walk at once
instead of being shrunk, and the pytest face spreads walks over workers and PostgreSQL versions.
"""

from __future__ import annotations

import io
import os
import subprocess
import sys

import pytest

from harness import commands, trial
from harness.server import Server
from harness.settings import load_settings
from projects import Rev, chain, make_project

pytest_plugins = ["pytester"]


def walk(ini, server: Server, seed: int, **options):
    return commands.walk(load_settings(ini), seed=seed, max_examples=4, steps=8, server=server, **options)


def test_the_same_seed_gives_the_same_walk(tmp_path, pg_server):
    ini = make_project(tmp_path, chain("a", "b", "c"))

    first, again, other = (walk(ini, pg_server, seed).coverage for seed in (11, 11, 12))

    assert first == again
    assert first != other
    # Every insert the seeding sent is counted, refused or not (the filler's rows of a filled
    # start are seeded rows too, but no attempts of the walk's own seeding).
    for coverage in (first, other):
        assert coverage["seed_attempts"] - coverage["seed_refused"] <= coverage["seeded_rows"]
    assert first["seed_attempts"] + other["seed_attempts"] > 0


def test_failures_are_kept_between_runs_under_ci_true(tmp_path, pg_server):
    """Hypothesis's own ``ci`` profile (loaded under CI=true) keeps no examples; ours must."""
    ini = make_project(tmp_path, [Rev("a"), Rev("b", down="a", upgrade='op.add_column("t_a", sa.Column("x", sa.Integer))',
                                                downgrade="pass")])
    env = {**os.environ, "CI": "true"}
    done = subprocess.run(
        [sys.executable, "-m", "harness", "walk", "-c", str(ini), "--database-url", pg_server.dsn(),
         "--max-examples", "10", "--steps", "4"], capture_output=True, text=True, env=env,
    )
    assert done.returncode == 1, done.stderr
    assert any((tmp_path / ".harness" / "examples").rglob("*")), "no example database written"


def test_an_infrastructure_error_stops_the_walk_at_once(tmp_path, pg_server, monkeypatch):
    calls = []

    def broken_seed(self, insert):
        calls.append(1)
        raise RuntimeError("the server went away")

    monkeypatch.setattr(trial.Trial, "seed", broken_seed)
    ini = make_project(tmp_path, chain("a"))

    with pytest.raises(RuntimeError, match="went away"):
        commands.walk(load_settings(ini), seed=1, max_examples=50, steps=20, server=pg_server)

    assert len(calls) == 1, "the error was retried or shrunk"


@pytest.mark.parametrize("options, expected", [
    ([], ["test_walk[walker0]"]),
    (["--harness-profile=nightly", "--harness-walkers=3"],
     ["test_walk[walker0]", "test_walk[walker1]", "test_walk[walker2]"]),
    (["--harness-pg-versions=15,18"], ["test_walk[pg15-walker0]", "test_walk[pg18-walker0]"]),
])
def test_walks_spread_over_walkers_and_versions(pytester, options, expected):
    pytester.makepyfile("from harness.pytest_plugin import walk_test\ntest_walk = walk_test('alembic.ini')\n")
    result = pytester.runpytest("--collect-only", "-q", *options)
    assert [line.split("::")[-1] for line in result.outlines if "::" in line] == expected


def test_nightly_walkers_default_to_the_xdist_workers(pytester, monkeypatch):
    monkeypatch.setenv("PYTEST_XDIST_WORKER_COUNT", "2")
    pytester.makepyfile("from harness.pytest_plugin import walk_test\ntest_walk = walk_test('alembic.ini')\n")
    result = pytester.runpytest("--collect-only", "-q", "--harness-profile=nightly")
    assert sum("walker" in line for line in result.outlines) == 2


def test_progress_is_drawn_on_a_terminal_only_and_the_summary_names_the_gaps():
    from harness.progress import Progress, coverage_summary
    from harness.session import Coverage

    coverage = Coverage()
    coverage.steps[("upgrade", "a")] += 3
    terminal, log = io.StringIO(), io.StringIO()
    Progress(["a", "b"], stream=terminal, interval=0, enabled=True).example(coverage)
    Progress(["a", "b"], stream=log, interval=0).example(coverage)  # a StringIO is no terminal

    assert "1 examples, 3 steps" in terminal.getvalue() and "revisions 1/2, edges 1/4" in terminal.getvalue()
    assert log.getvalue() == ""
    summary = coverage_summary(coverage.to_json(["a", "b"], {}))
    assert summary[1].split() == ["a", "up", "3", "(0", "on", "rows)", "down", "0", "(0", "on", "rows)", "never", "downgraded"]
    assert summary[2].endswith("never upgraded nor downgraded")

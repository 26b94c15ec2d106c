"""Every ending of a walk is reported: its examples done, its duration spent, a signal from a CI
runner, or too many examples discarded to trust it.
"""

from __future__ import annotations

import argparse
import json
import signal
import subprocess
import sys
import time

import psycopg
import pytest
from hypothesis import strategies as st

from harness import cli, commands
from harness.seeding import Overrides
from harness.server import Server
from harness.server.base import SCRATCH_PREFIX
from harness.settings import load_settings
from projects import Rev, chain, make_project

pytest_plugins = ["pytester"]


def scratch_databases(server: Server) -> set[str]:
    with psycopg.connect(server.dsn(), autocommit=True) as conn:
        rows = conn.execute("SELECT datname FROM pg_database WHERE datname LIKE %s",
                            (SCRATCH_PREFIX + "%",))
        return {name for (name,) in rows}


def test_the_duration_stops_a_walk_after_the_current_example(tmp_path, pg_server):
    ini = make_project(tmp_path, chain("a", "b", "c"))
    started = time.monotonic()
    result = commands.walk(load_settings(ini, duration=3), seed=5, max_examples=100_000, steps=6,
                           server=pg_server)
    elapsed = time.monotonic() - started

    assert result.ok and result.stopped == "duration"
    assert 3 <= elapsed < 60, elapsed
    assert result.health["examples"] >= 1 and result.coverage["steps"] >= 1
    assert result.to_json()["stopped"] == "duration"


def test_a_walk_that_runs_its_examples_says_so(tmp_path, pg_server):
    ini = make_project(tmp_path, chain("a", "b"))
    result = commands.walk(load_settings(ini), seed=5, max_examples=3, steps=4, server=pg_server)
    document = result.to_json()
    assert document["stopped"] == "examples"
    assert document["health"]["examples"] == 3 and document["health"]["problem"] is None


def walk_until_signal(ini, server: Server, sent: signal.Signals, *options: str):
    """``harness walk`` in a process of its own, sent ``sent`` once its first example began."""
    before = scratch_databases(server)
    walk = subprocess.Popen(
        [sys.executable, "-m", "harness", "walk", "-c", str(ini), "--database-url", server.dsn(),
         "--max-examples", "100000", "--steps", "6", *options],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        # The walk has begun once its first example's database exists.
        deadline = time.monotonic() + 120
        while not scratch_databases(server) - before:
            assert walk.poll() is None and time.monotonic() < deadline, walk.communicate()
            time.sleep(0.05)
        walk.send_signal(sent)
        out, err = walk.communicate(timeout=300)
    finally:
        if walk.poll() is None:
            walk.kill()
    assert "internal error" not in err and "Flaky" not in err
    assert scratch_databases(server) == before
    return walk.returncode, out, err


@pytest.mark.parametrize("sent, code", [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_a_signal_mid_walk_reports_what_was_walked(tmp_path, pg_server, sent, code):
    ini = make_project(tmp_path, chain("a", "b", "c"))
    report = tmp_path / "walk.json"

    returncode, out, err = walk_until_signal(ini, pg_server, sent, "--json", str(report))

    assert returncode == code, err
    document = json.loads(report.read_text())
    assert document["stopped"] == "signal" and document["signal"] == sent.name
    assert document["ok"] and document["coverage"]["states"] >= 1
    assert "coverage:" in out and f"stopped by {sent.name}" in out


def test_a_violation_found_before_the_signal_exits_1(tmp_path, pg_server):
    """Hypothesis's first example, its simplest, already finds this defect: the walk stops after
    it (or later), and reports it."""
    ini = make_project(tmp_path, [Rev("a"), Rev("b", down="a", upgrade='op.add_column("t_a", sa.Column("x", sa.Integer))',
                                                downgrade="pass")])

    returncode, out, err = walk_until_signal(ini, pg_server, signal.SIGTERM, "--seed", "3")

    assert returncode == 1, err
    assert "[schema]" in out and "stopped by SIGTERM" in out


WIDE = Rev("w", upgrade=(
    'op.create_table("wide", sa.Column("id", sa.Integer, primary_key=True), '
    + ", ".join(f'sa.Column("c{i}", sa.Text)' for i in range(30)) + ")"
), downgrade='op.drop_table("wide")')


def test_a_walk_whose_seeding_overruns_is_not_trusted(tmp_path, pg_server, capsys):
    """A column override drawing texts of 3 000 characters overruns Hypothesis's budget."""
    ini = make_project(tmp_path, [WIDE])
    overrides = Overrides({"public.wide": {"c0": st.text("ab", min_size=3000, max_size=3000)}})
    result = commands.walk(load_settings(ini), seed=2, max_examples=10, steps=10,
                           overrides=overrides, server=pg_server)
    report = tmp_path / "walk.json"

    code = cli._finish(result, argparse.Namespace(config=ini, json=report, report=None))

    err = capsys.readouterr().err
    health = json.loads(report.read_text())["health"]
    assert code == 2, err
    assert health["overrun"] > 0.1 * (health["examples"] + health["discarded"])
    assert "discarded" in err and "overran" in err and "seed_rows" in err


def test_seeding_stays_inside_the_budget_of_a_nightly_example(tmp_path, pg_server):
    """60 steps on a wide table: seed steps draw fewer rows as an example's budget runs low."""
    ini = make_project(tmp_path, [WIDE])
    result = commands.walk(load_settings(ini), seed=2, max_examples=10, steps=60, server=pg_server)
    assert result.ok and result.problem is None, result.health
    assert result.health["overrun"] == 0 and result.coverage["seeded_rows"] > 0


def test_pytest_walks_stop_at_harness_duration(pytester, pg_server):
    make_project(pytester.path, chain("a", "b"))
    pytester.makepyfile("from harness.pytest_plugin import walk_test\ntest_walk = walk_test('alembic.ini')\n")
    started = time.monotonic()
    result = pytester.runpytest_subprocess("--harness-profile=nightly", "--harness-duration=2s",
                                           f"--harness-database-url={pg_server.dsn()}", "-p", "no:cacheprovider")
    assert result.ret == 0, result.outlines
    assert time.monotonic() - started < 120

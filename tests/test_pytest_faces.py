"""pytest says what it did: a terminal summary after harness tests, the readable failure instead
of a traceback wall, the same text in junit XML, and GitHub annotations from pytest too.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest

from projects import Rev, make_project

pytest_plugins = ["pytester"]

LEAKY = Rev("b", down="a", upgrade='op.add_column("t_a", sa.Column("x", sa.Integer))', downgrade="pass")
TESTS = (
    "from harness.pytest_plugin import sweep_test, walk_test\n"
    "test_sweep = sweep_test('alembic.ini')\n"
    "test_walk = walk_test('alembic.ini')\n"
)


@pytest.fixture
def run(pytester, pg_server, monkeypatch):
    monkeypatch.delenv("GITHUB_ACTIONS", raising=False)

    def run(revisions, *args):
        make_project(pytester.path, revisions)
        pytester.makepyfile(test_migrations=TESTS)
        result = pytester.runpytest("-p", "no:cacheprovider", "--harness-profile=dev", "--harness-seed=5",
                                    f"--harness-database-url={pg_server.dsn()}",
                                    "--junitxml=junit.xml", *args)
        junit = ET.parse(pytester.path / "junit.xml").getroot()
        return result, "\n".join(result.outlines), junit

    return run


def test_a_green_run_says_what_was_walked_and_checked(run):
    result, out, junit = run([Rev("a"), Rev("b", down="a")])

    result.assert_outcomes(passed=2)
    summary = out.split("= harness =")[1]
    assert "test_migrations.py::test_walk" in summary and "test_migrations.py::test_sweep" in summary
    assert "harness walk, seed 5: ok in " in summary and "harness sweep: ok in " in summary
    assert " examples, " in summary and " rows seeded" in summary
    assert "revisions 2/2, edges 4/4 exercised" in summary
    assert "properties checked: schema, column_order, migration_error, data" in summary
    properties = {p.get("name"): p.get("value") for p in junit.iter("property")}
    assert "steps over" in properties["harness"] and "properties checked" in properties["harness"]


def test_edges_never_exercised_are_named(run):
    # b's upgrade always fails: neither it nor its downgrade ever completes.
    result, out, _ = run([Rev("a"), Rev("b", down="a", upgrade='op.execute("SELECT 1/0")')], "-k", "sweep")
    result.assert_outcomes(failed=1)
    summary = out.split("= harness =")[1]
    assert "revisions 1/2, edges 2/4 exercised" in summary
    assert "never exercised: upgrade b, downgrade b" in summary


def test_a_failing_test_shows_the_evidence_not_a_traceback_and_junit_carries_it(run):
    result, out, junit = run([Rev("a"), LEAKY], "-k", "sweep")

    result.assert_outcomes(failed=1)
    assert "[schema] at b: after alembic downgrade b@-1" in out and "alembic downgrade b@-1" in out
    assert "Traceback" not in out and "site-packages" not in out
    assert "harness sweep: FAILED (1 violations)" in out
    (failure,) = junit.iter("failure")
    assert "[schema] at b" in failure.get("message") and "steps over" in failure.text


def test_under_github_actions_pytest_annotates_and_writes_the_job_summary(pytester, pg_server, monkeypatch):
    step_summary = pytester.path / "summary.md"
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(step_summary))
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    monkeypatch.chdir(pytester.path)
    make_project(pytester.path, [Rev("a"), LEAKY])
    pytester.makepyfile(test_migrations=TESTS)

    result = pytester.runpytest("-p", "no:cacheprovider", "-k", "sweep", f"--harness-database-url={pg_server.dsn()}")

    result.assert_outcomes(failed=1)
    line = next(n for n, text in enumerate((pytester.path / "migrations/versions/b_.py").read_text().splitlines(), 1)
                if text.startswith("def downgrade"))
    assert any(text.startswith(f"::error file=migrations/versions/b_.py,line={line},title=[schema] at b::")
               for text in result.outlines), result.outlines
    assert f"| `schema` | `b` | `migrations/versions/b_.py:{line}` |" in step_summary.read_text()



def test_two_shards_of_one_seed_walk_different_examples_under_pytest(run):
    """``--harness-shard I/N`` (``HARNESS_SHARD`` from tox) makes each walk test one share."""
    history = [Rev("a"), Rev("b", down="a"), Rev("c", down="b"), Rev("d", down="c")]

    def walked(*args: str) -> str:
        result, _, junit = run(history, "-k", "walk", *args)
        result.assert_outcomes(passed=1)
        (text,) = (p.get("value") for p in junit.iter("property") if p.get("name") == "harness")
        return text

    def walk_of(text: str) -> list[str]:  # examples, steps, states, rows; edges
        return text.splitlines()[1:3]

    first, second = walked("--harness-shard=1/2"), walked("--harness-shard=2/2")
    assert first.startswith("harness walk, seed 5, shard 1/2: ok")
    assert second.startswith("harness walk, seed 5, shard 2/2: ok")
    assert walk_of(first) != walk_of(second)
    assert walk_of(walked("--harness-shard=1/2")) == walk_of(first)


def test_a_shard_that_is_not_i_of_n_fails_the_walk_in_one_line(run):
    result, out, _ = run([Rev("a")], "-k", "walk", "--harness-shard=3")
    result.assert_outcomes(failed=1)
    assert "harness: shard '3' is not I/N (write the share as 1/4, 2/4, ...)" in out
    assert "Traceback" not in out

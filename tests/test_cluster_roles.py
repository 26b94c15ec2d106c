"""Roles are cluster-wide, scratch databases are many: each database sees the roles its own
migrations made (:mod:`harness.server.role_ledger`), and a failure that does not repeat is said
to be one (:mod:`harness.unrepeated`), never a crash.

Roles are shared by the tests running in parallel on one server, so each test makes its own.
"""

from __future__ import annotations

import secrets

import psycopg
import pytest

from harness.commands import sweep, walk
from harness.graph import Step
from harness.settings import load_settings

from projects import Rev, make_project
from test_correct_histories import assert_silent

WALK_SEEDS = (1, 7, 9, 10)
"""With a transaction per migration, seeds 7, 9 and 10 take a jump through ``a`` that fails
there after committing the steps before it (measured: without going on from there, they fail)."""


@pytest.fixture
def role(pg_server):
    name = f"harness_made_{secrets.token_hex(4)}"
    yield name
    with psycopg.connect(pg_server.dsn(), autocommit=True) as conn:
        conn.execute(f"DROP ROLE IF EXISTS {name}")


def _plain(role: str, downgrade: str | None = None) -> list[Rev]:
    """A role made and dropped by ``a``, with revisions on both sides for jumps to cross."""
    return [
        Rev("z"),
        Rev("a", down="z", upgrade=f'op.execute("CREATE ROLE {role} NOLOGIN")',
            downgrade=downgrade or f'op.execute("DROP ROLE {role}")'),
        Rev("b", down="a"),
        Rev("c", down="b"),
    ]


@pytest.mark.parametrize("env", ["cookbook", "per_migration"])
@pytest.mark.parametrize("seed", WALK_SEEDS)
def test_a_plain_create_role_is_made_once_per_database_in_a_walk(seed, env, role, tmp_path, pg_server):
    """A template at ``a`` made the role, so a trial upgrading from base would find it, and a
    trial that downgraded dropped it, so the next downgrade from a copy of the template would
    miss it: neither is the history's doing. With a transaction per migration, a jump through
    ``a`` has committed the steps before it when it fails: it goes on from there."""
    ini = make_project(tmp_path, _plain(role), env=env)
    assert_silent(walk(load_settings(ini), profile="dev", seed=seed, server=pg_server))


@pytest.mark.parametrize("env", ["cookbook", "per_migration"])
def test_a_downgrade_that_leaves_its_role_is_still_caught(env, role, tmp_path, pg_server):
    """The role the database's own upgrade made is still there when the upgrade runs again:
    on a server of its own too, so that failure stands, in the walk and in the sweep."""
    ini = make_project(tmp_path, _plain(role, downgrade="pass"), env=env)
    for result in (walk(load_settings(ini), profile="dev", seed=1, server=pg_server),
                   sweep(load_settings(ini), server=pg_server)):
        [failure] = result.failures
        assert (failure.violations[0].property, failure.violations[0].revision) == ("migration_error", "a")
        assert "already exists" in failure.violations[0].message
        assert "cluster-wide" not in failure.violations[0].message
        assert failure.repeated


def test_runs_in_other_databases_neither_make_nor_drop_a_database_s_roles(role, tmp_path, pg_server):
    """The ledger itself: a role made in one database is not there for another one's upgrade;
    a copy of the first still has it (with its options) after the first's downgrade dropped it."""
    ini = make_project(tmp_path, [
        Rev("a", upgrade=f'op.execute("CREATE ROLE {role} LOGIN CONNECTION LIMIT 3")',
            downgrade=f'op.execute("DROP ROLE {role}")'),
    ])
    from harness.project import Project

    project = Project(load_settings(ini))
    up, down = [Step("upgrade", "a")], [Step("downgrade", "a")]
    first = pg_server.create_database()
    other = pg_server.create_database()
    made = [first, other]
    try:
        with project.runner(first) as runner:
            assert runner.run(up).ok
        copy = pg_server.create_database(template=first.name)
        made.append(copy)
        with project.runner(other) as runner:
            assert runner.run(up).ok
            assert runner.run(down).ok
        with project.runner(first) as runner:
            assert runner.run(down).ok
        with project.runner(copy) as runner:
            assert runner.run(down).ok, "the copy's role, dropped by its template's downgrade"
            assert runner.run(up).ok
        with psycopg.connect(pg_server.dsn(), autocommit=True) as conn:
            assert conn.execute("SELECT rolcanlogin, rolconnlimit FROM pg_roles WHERE rolname = %s",
                                (role,)).fetchone() == (True, 3)
    finally:
        for database in made:
            pg_server.drop_database(database.name)


def test_a_role_another_database_holds_grants_to_is_explained(role, tmp_path, pg_server):
    """Where the role cannot be dropped (a template holds grants to it), the harness cannot run
    the step as a server of its own would: whatever it reports says so, and nothing crashes."""
    ini = make_project(tmp_path, [
        Rev("a"),
        Rev("b", down="a", upgrade=f'op.execute("CREATE ROLE {role} NOLOGIN"); op.execute("GRANT SELECT ON t_a TO {role}")',
            downgrade=f'op.execute("REVOKE SELECT ON t_a FROM {role}"); op.execute("DROP ROLE {role}")'),
        Rev("c", down="b"),
    ])
    result = walk(load_settings(ini), profile="dev", seed=1, server=pg_server)
    for failure in result.failures:
        assert all("roles are cluster-wide" in v.message for v in failure.violations), failure.render()


def test_a_failure_that_does_not_repeat_is_reported_as_such(tmp_path, pg_server):
    """A migration that fails once, on the fifth time it runs: Hypothesis, or the fresh replay
    that confirms every reported failure, runs the same steps again and they pass."""
    counter = tmp_path / "runs"
    counter.write_text("0")
    once = (f'n = int(open("{counter}").read()); open("{counter}", "w").write(str(n + 1)); '
            f'assert n != 4, "the fifth time"')
    ini = make_project(tmp_path, [Rev("a"), Rev("b", down="a", upgrade=once, downgrade="pass"), Rev("c", down="b")])
    failures = []
    for seed in (3, 4):
        counter.write_text("0")
        failures += walk(load_settings(ini), profile="dev", seed=seed, server=pg_server).failures
    assert failures, "the failing run was no trial's step: pick seeds where it is"
    for failure in failures:
        assert not failure.repeated
        assert failure.to_json()["repeated"] is False
        assert "did not repeat" in failure.render() and "Steps that showed it once" in failure.render()


def test_hypothesis_s_flaky_errors_give_back_the_failures_they_carry():
    """Hypothesis ends a run on a failure that did not repeat in two ways: an exception group
    of the failures (``FlakyFailure``), or an error raised while it handled the failure
    (``FlakyStrategyDefinition``, when the draws changed). Both give the failure back, marked;
    a ``Flaky`` without one is a clear error, not a traceback."""
    from hypothesis.errors import FlakyFailure, FlakyStrategyDefinition

    from harness.errors import HarnessError
    from harness.machine import PropertyViolated
    from harness.unrepeated import unrepeated
    from harness.violations import Violation

    def violated() -> PropertyViolated:
        return PropertyViolated([Violation("migration_error", "a", "it failed")], [], [])

    grouped = violated()
    assert unrepeated(FlakyFailure("did not reproduce", [grouped])) == [grouped]
    assert not grouped.repeated
    handled = violated()
    try:
        try:
            raise handled
        except PropertyViolated:
            raise FlakyStrategyDefinition("inconsistent data generation")
    except FlakyStrategyDefinition as flaky:
        assert unrepeated(flaky) == [handled]
    with pytest.raises(HarnessError, match="behaved differently on the same draws"):
        unrepeated(FlakyStrategyDefinition("inconsistent data generation"))

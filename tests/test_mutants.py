"""Every invariant catches real defects: each mutant of the corpus is reported by the runs it
must be, with the right property, the right revision and a message naming the object.

The corpus lives in :mod:`mutants`. The sweep fills every table with the deterministic filler's
rows; the walk gets the ``ci`` profile's budget and a seed of its own per mutant (the CRC-32 of
its id).
"""

from __future__ import annotations

import secrets
import zlib
from typing import Callable

import hypothesis
import pytest
from hypothesis.stateful import run_state_machine_as_test

from harness.commands import sweep
from harness.hypothesis_env import without_local_constants
from harness.machine import PropertyViolated, build_machine
from harness.server import Server
from harness.session import open_session
from harness.settings import PROFILES, Settings, load_settings
from harness.violations import Violation

from mutants import MUTANTS, Mutant, with_role
from projects import make_project

def run_sweep(settings: Settings, server: Server, name: str) -> list[Violation]:
    return sweep(settings, server=server).violations


def run_walk(settings: Settings, server: Server, name: str) -> list[Violation]:
    """The walk's own machine at the ``ci`` budget, stopped at its first failure, unshrunk.

    Shrinking is the machine's business and says nothing about detection, yet Hypothesis spends
    up to 300 s shrinking each failure (2-4 minutes per mutant here), and ``commands.walk``
    has no option to skip it. The violations of the failing step are what shrinking keeps anyway.
    Like every walk, it draws from an empty pool of Hypothesis's local constants: the mutants
    walked before in this process must not change what a seed draws.
    """
    budget = PROFILES["ci"]
    run_settings = hypothesis.settings(
        max_examples=budget.max_examples, stateful_step_count=budget.steps,
        phases=[hypothesis.Phase.generate], deadline=None, database=None,
        suppress_health_check=list(hypothesis.HealthCheck), report_multiple_bugs=False,
    )
    with open_session(settings, server) as session, without_local_constants():
        machine = hypothesis.seed(zlib.crc32(name.encode()))(build_machine(session))
        try:
            run_state_machine_as_test(machine, settings=run_settings)
        except PropertyViolated as failure:
            return list(failure.violations)
    return []


RUNS: dict[str, Callable[[Settings, Server, str], list[Violation]]] = {
    "sweep": run_sweep, "walk": run_walk,
}


@pytest.fixture
def app_role() -> str:
    """A role name no other test uses: roles are cluster-wide, the server is shared.

    The role is created by the migrations and left in place: the server lives for the test
    session only, and a role still referred to by another test's database cannot be dropped.
    """
    return f"harness_app_{secrets.token_hex(4)}"


@pytest.mark.parametrize(
    ("mutant", "run"),
    [pytest.param(m, run, id=f"{m.id}-{run}") for m in MUTANTS for run in m.runs],
)
def test_mutant_is_caught(mutant: Mutant, run: str, tmp_path, pg_server, app_role):
    ini = make_project(tmp_path, with_role(mutant.revisions, app_role), env=mutant.env)
    violations = RUNS[run](load_settings(ini, **mutant.settings), pg_server, mutant.id)

    names = mutant.names.replace("__app_role__", app_role)
    found = [v for v in violations if v.property == mutant.property
             and v.revision in mutant.blamed and names in v.message]
    assert found, (
        f"{run} missed {mutant.id}: expected [{mutant.property}] at {mutant.blamed} naming "
        f"{names!r}; reported:\n" + "\n".join(v.headline() for v in violations)
    )
    if {"statement_timeout_ms", "step_timeout"} & set(mutant.settings):
        assert all(v.evidence["timed_out"] for v in found)


def test_the_corpus_covers_every_property_and_run():
    properties = {m.property for m in MUTANTS}
    assert properties == {"schema", "column_order", "migration_error", "data", "tenant_isolation"}
    assert len(MUTANTS) >= 25
    assert {run for m in MUTANTS for run in m.runs} == {"sweep", "walk"}

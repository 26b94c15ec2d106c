"""Checkpoints: steps a trial took before, to where it ended or to where trials parted, are a
clone the next time, not a replay, and the trial goes on from the clone exactly as a replay
would have (findings, round trips, the log).

Each test runs real migrations on the test server and counts the env.py runs a trial makes: the
steps a checkpoint stands for make none. Counting runs, never timing them.
"""

from __future__ import annotations

import secrets
import zlib
from typing import Callable, Iterator

import pytest

from harness.commands import walk
from harness.machine import run_walk
from harness.runner import Runner
from harness.schema_watch import SchemaWatch
from harness.server import Server
from harness.session import Session, open_session
from harness.settings import load_settings
from harness.trial import Trial
from harness.violations import Violation

from mutants import MUTANTS, PLAIN_BASE, with_role
from projects import Rev, make_project

LOSES_A_COLUMN = next(m for m in MUTANTS if m.id == "downgrade-loses-a-column")
"""Its upgrade passes; only the downgrade, judged against the rows the upgrade started from,
shows that rows lost their ``memo``."""
ADDS_A_COLUMN = (PLAIN_BASE, Rev("r2", down="r1", upgrade='op.add_column("t", sa.Column("extra", sa.Text))',
                                 downgrade='op.drop_column("t", "extra")'))
"""The same round trip, correct: the column the upgrade adds goes, the rows come back whole."""

FILLED_R1 = frozenset({"r1"})
"""Every trial here starts from the filled template at r1: ``t`` holds the filler's rows."""


@pytest.fixture
def runs(monkeypatch) -> list[int]:
    """env.py runs so far (single steps and jumps alike)."""
    count = [0]
    execute = Runner._execute

    def counted(self, *args):
        count[0] += 1
        return execute(self, *args)

    monkeypatch.setattr(Runner, "_execute", counted)
    return count


def _session(tmp_path, server: Server, revisions) -> Iterator[Session]:
    role = f"harness_app_{secrets.token_hex(4)}"
    ini = make_project(tmp_path, with_role(revisions, role))
    with open_session(load_settings(ini), server) as session:
        session.checkpoints.start()
        yield session


@pytest.fixture
def losing(tmp_path, pg_server: Server) -> Iterator[Session]:
    yield from _session(tmp_path, pg_server, LOSES_A_COLUMN.revisions)


@pytest.fixture
def correct(tmp_path, pg_server: Server) -> Iterator[Session]:
    yield from _session(tmp_path, pg_server, ADDS_A_COLUMN)


def up(trial: Trial) -> list[Violation]:
    return trial.upgrade("r2")


def down(trial: Trial) -> list[Violation]:
    return trial.downgrade("r2")


def to_base(trial: Trial) -> list[Violation]:
    return trial.jump("downgrade", "base")


Move = Callable[[Trial], list[Violation]]


def _walk(session: Session, moves: list[Move]) -> tuple[list[list[str]], list[str], frozenset[str]]:
    """Each move's findings (headlines), the trial's log as commands, and where it ended."""
    trial = Trial(session, FILLED_R1, filled=True)
    try:
        found = [[v.headline() for v in move(trial)] for move in moves]
        return found, [step.as_command() for step in trial.log], trial.state
    finally:
        trial.close()


@pytest.mark.parametrize("history", ["losing", "correct"])
def test_a_trial_runs_only_what_differs_from_where_trials_parted(history: str, request,
                                                                 runs: list[int]) -> None:
    """Two trials part after the upgrade: the second keeps a copy there before it goes on. A
    third that takes the same upgrade clones the copy and runs the downgrade alone, which judges
    the round trip as after the upgrade replayed (the checkpoint carries the rows it started
    from): the loss found, the correct round trip silent."""
    session: Session = request.getfixturevalue(history)
    _walk(session, [up, to_base])
    replayed = _walk(session, [up, down, up])
    before = runs[0]
    resumed = _walk(session, [up, down])
    assert runs[0] - before == 1, "only the downgrade runs"
    assert session.checkpoints.served == 1
    assert resumed[0] == replayed[0][:2] and resumed[1] == replayed[1][:-1]
    assert bool(resumed[0][1]) == (history == "losing")


def test_a_trial_that_ends_keeps_its_database_for_the_same_steps(losing: Session, runs: list[int]) -> None:
    first = _walk(losing, [up])
    before = runs[0]
    again = _walk(losing, [up])
    assert runs[0] - before == 0
    assert losing.checkpoints.served == 1
    assert again == first


def test_the_end_of_a_trial_leaves_its_watch_as_the_steps_left_it(correct: Session, monkeypatch) -> None:
    """A trial kept as a checkpoint after its end goes on from there as a replay would: the
    whole snapshot that ends it changes nothing the next step relies on (a second end reads
    whole again, as the first did)."""
    whole_reads: list[bool] = []
    read = SchemaWatch._read

    def counted(self, *, whole: bool, **kwargs):
        whole_reads.append(whole)
        return read(self, whole=whole, **kwargs)

    monkeypatch.setattr(SchemaWatch, "_read", counted)
    correct.checkpoints.on = False  # no cached ends: each end reads
    trial = Trial(correct, FILLED_R1, filled=True)
    try:
        for move in (up, down, up):  # r2 again: read scoped, so a whole read ends the trial
            move(trial)
        whole_reads.clear()
        assert trial.finish() == [] and trial.finish() == []
        assert whole_reads == [True, True]
    finally:
        trial.close()


class _Stopped(Exception):
    """Hypothesis stopping an example in the middle of a seed's draws."""


def test_a_step_cut_short_keeps_no_checkpoint(losing: Session) -> None:
    """A seed stopped after its first row leaves the database at no key: the trial's database
    is dropped, not kept as the checkpoint of the steps before the seed."""
    trial = Trial(losing, FILLED_R1, filled=True)
    try:
        up(trial)
        counts = trial.rows().counts()

        def cut_short(conn):
            conn.execute("INSERT INTO t (id, name) VALUES (424242, 'half seeded')")
            raise _Stopped

        with pytest.raises(_Stopped):
            trial.seed(cut_short)
    finally:
        trial.close()
    again = Trial(losing, FILLED_R1, filled=True)
    try:
        up(again)
        assert losing.checkpoints.served == 0
        assert again.rows().counts() == counts
    finally:
        again.close()


def test_a_passing_walk_keeps_no_checkpoint(tmp_path, pg_server: Server) -> None:
    """Before a failure nothing is kept: a walk that finds none runs as it would without them."""
    ini = make_project(tmp_path, with_role(ADDS_A_COLUMN, f"harness_app_{secrets.token_hex(4)}"))
    with open_session(load_settings(ini), pg_server) as session:
        assert not run_walk(session, seed_value=1, profile="dev").failures
        assert not session.checkpoints.on and session.checkpoints.served == 0


@pytest.mark.parametrize("mutant_id", [m.id for m in MUTANTS if "walk" in m.runs])
def test_a_shrunk_walk_prints_the_same_with_and_without_checkpoints(mutant_id: str, tmp_path,
                                                                    pg_server: Server) -> None:
    """The seed's promise holds across the setting: the same failures, shrunk and cut to the
    same steps, with fewer steps run, each shown again by the fresh replay that confirms it;
    the checkpoints' databases are gone with the run."""
    mutant = next(m for m in MUTANTS if m.id == mutant_id)
    ini = make_project(tmp_path, with_role(mutant.revisions, f"harness_app_{secrets.token_hex(4)}"),
                       env=mutant.env)
    before = pg_server.scratch_names()
    results = [walk(load_settings(ini, checkpoints=limit, **mutant.settings), profile="ci",
                    seed=zlib.crc32(mutant.id.encode()), server=pg_server) for limit in (0, 24)]
    assert pg_server.scratch_names() <= before
    without, with_them = ([f.to_json() for f in result.failures] for result in results)
    assert without == with_them and without, f"the walk finds {mutant_id}"
    assert all(failure["repeated"] for failure in without), "a deterministic defect shows again afresh"
    assert results[0].coverage["from_checkpoints"] == 0 < results[1].coverage["from_checkpoints"]
    assert results[1].coverage["steps"] <= results[0].coverage["steps"]

"""The read a step's check runs meanwhile, in a thread (see harness.step_check)."""

from __future__ import annotations

import threading

import pytest

from harness.errors import HarnessError
from harness.step_check import _meanwhile


def test_the_read_runs_while_the_block_does_and_is_over_when_it_ends():
    started, release = threading.Event(), threading.Event()
    done = []

    def read():
        started.set()
        release.wait(5)
        done.append(True)

    with _meanwhile(read) as reading:
        assert started.wait(5), "the read did not start before the block's own work"
        release.set()
    assert done == [True]
    assert reading.error is None


def test_the_read_s_error_is_handed_back_not_lost():
    def read():
        raise HarnessError("cannot read every row")

    with _meanwhile(read) as reading:
        pass
    assert isinstance(reading.error, HarnessError)


def test_without_a_read_no_thread_starts():
    before = threading.active_count()
    with _meanwhile(None) as reading:
        assert threading.active_count() == before
    assert reading.error is None


def test_the_block_s_own_error_waits_for_the_read():
    finished = []

    def read():
        threading.Event().wait(0.05)
        finished.append(True)

    with pytest.raises(ValueError):
        with _meanwhile(read):
            raise ValueError("the schema check failed")
    assert finished == [True]

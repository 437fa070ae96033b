"""The stall clock (localcloud/stalls.py): time in which the machine stopped this process is left
out of deadlines, and only that time. The pauses are real: the process tree gets SIGSTOP and,
seconds later, SIGCONT, as a paused virtual machine stops everything."""
import os
import time

import pytest

from localcloud import stalls


def test_a_stopped_process_records_the_stop_and_its_deadline_moves_by_it():
    deadline = stalls.Deadline(1.0)
    stalls.pause_tree(os.getpid(), seconds=3.0, after=0.1).wait()
    assert 2.5 <= deadline.stalled() <= 3.5
    assert not deadline.expired(), f"{deadline.remaining():.2f} s left"  # 3.1+ s of wall time, < 1 s running
    time.sleep(deadline.remaining() + 0.05)
    assert deadline.expired()


def test_a_process_that_runs_records_no_stall_and_expires_on_time():
    deadline = stalls.Deadline(0.6)
    time.sleep(0.7)
    assert deadline.stalled() == 0.0
    assert deadline.expired()


def test_wait_for_returns_the_first_true_value_and_names_what_it_waited_for():
    started = time.time()
    assert stalls.wait_for(lambda: time.time() - started > 0.3 and "ok", timeout=5, every=0.05) == "ok"
    with pytest.raises(TimeoutError, match="the queue empty not met within 0 s"):
        stalls.wait_for(lambda: False, timeout=0.3, what="the queue empty", every=0.05)


def test_a_gap_counts_only_where_it_overlaps_the_window():
    clock = stalls.StallClock(tick_s=0.25, stall_s=2.0)
    clock._gaps = [(100.0, 110.0), (200.0, 203.0)]
    assert clock.stalled(0.0, 300.0) == 13.0
    assert clock.stalled(105.0, 201.0) == 6.0
    assert clock.stalled(110.0, 200.0) == 0.0

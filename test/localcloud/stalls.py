"""Time this process did not run: the local cloud's deadlines do not count it.

The local cloud, its Lambda processes and the tests that drive them share one machine, and the
machine can stop: a CI virtual machine is paused while it is snapshotted (on 2026-12-03 one CI
run's machine stopped for about seven minutes right after a deploy, its kernel logging
``random: crng reseeded due to virtual machine fork`` on resuming; every wait of the test in
progress had expired when it ran again, and the test failed with nothing wrong in the breaker).
When the machine runs again the wall clock has jumped: every timeout measured on it has passed at
once, although no code ran in between. AWS does not stop; a stopped machine is not a property of
the system under test, so the deadlines of the stand-in and of the tests leave it out, and still
expire on time when the machine runs.

A daemon thread ticks every ``TICK_S``; a tick that comes more than ``STALL_S`` late records the
gap (minus one tick) as a stall. ``stalled(since, until)`` is the stalled time in that window, and
a ``Deadline`` moves by it. A thread starved by another that holds the interpreter (a C call that
never releases the GIL) is stopped too, as far as this process's timeouts go, and counts the same.
``pause_tree`` stops a process and its descendants for a while, as a paused machine does (the
tests of this module and of the runtime host use it).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from typing import Callable, Optional, TypeVar

TICK_S = 0.25
STALL_S = 2.0  # a tick this late means the process did not run (a busy machine delays a tick by far less)

T = TypeVar("T")


class StallClock:
    """Records the gaps in which this process did not run (see the module doc)."""

    def __init__(self, tick_s: float = TICK_S, stall_s: float = STALL_S):
        self.tick_s = tick_s
        self.stall_s = stall_s
        self._gaps: list[tuple[float, float]] = []  # (start, end) wall times, oldest first
        self._lock = threading.Lock()
        self._last = time.time()
        self._thread: Optional[threading.Thread] = None

    def start(self) -> "StallClock":
        with self._lock:
            if self._thread is None:
                self._last = time.time()
                self._thread = threading.Thread(target=self._run, daemon=True, name="stall-clock")
                self._thread.start()
        return self

    def _run(self) -> None:
        while True:
            time.sleep(self.tick_s)
            self.tick()

    def tick(self) -> None:
        """Compare now with the previous tick; a late one records its gap."""
        now = time.time()
        with self._lock:
            late = now - self._last
            if late > self.stall_s:
                self._gaps.append((self._last + self.tick_s, now))
            self._last = now

    def stalled(self, since: float, until: Optional[float] = None) -> float:
        """Seconds of stall between the wall times ``since`` and ``until`` (now). A stall still
        in progress cannot be seen; ``Deadline.expired`` ticks before it answers."""
        until = time.time() if until is None else until
        with self._lock:
            gaps = list(self._gaps)
        return sum(max(0.0, min(end, until) - max(start, since)) for start, end in gaps)


CLOCK = StallClock()


def stalled(since: float, until: Optional[float] = None) -> float:
    """Seconds this process did not run between ``since`` and ``until`` (wall times)."""
    CLOCK.start()
    return CLOCK.stalled(since, until)


class Deadline:
    """``timeout`` seconds of running time from now: expires that long after it was made, plus
    whatever time the process was stopped in between."""

    def __init__(self, timeout: float):
        CLOCK.start()
        self.started = time.time()
        self.timeout = timeout

    def remaining(self) -> float:
        CLOCK.tick()  # a stall that just ended counts before the answer
        return self.started + self.timeout + CLOCK.stalled(self.started) - time.time()

    def expired(self) -> bool:
        return self.remaining() <= 0

    def stalled(self) -> float:
        return CLOCK.stalled(self.started)

    def within(self) -> str:
        """``within N s`` for a timeout message, with the stopped time when there was some."""
        stopped = self.stalled()
        return f"within {self.timeout:.0f} s" + (f" (plus {stopped:.0f} s in which the machine was stopped)" if stopped else "")


def wait_for(cond: Callable[[], T], timeout: float, what: str = "condition", every: float = 0.2) -> T:
    """``cond()``'s first true value, checked every ``every`` s for ``timeout`` s of running
    time; ``TimeoutError`` naming ``what`` when it stays false."""
    deadline = Deadline(timeout)
    while True:
        value = cond()
        if value:
            return value
        if deadline.expired():
            raise TimeoutError(f"{what} not met {deadline.within()}")
        time.sleep(every)


def _descendants(pid: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(ppid, []).append(int(entry))
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(children.get(p, []))
    return out


def _signal_tree(tree: list[int], sig: int) -> None:
    for p in tree:
        try:
            os.kill(p, sig)
        except ProcessLookupError:
            pass


def _pause(pid: int, seconds: float, after: float) -> None:
    """The helper's work (``python -m localcloud.stalls PID SECONDS AFTER``)."""
    time.sleep(after)
    tree = [p for p in _descendants(pid) if p != os.getpid()]
    _signal_tree(tree, signal.SIGSTOP)
    time.sleep(seconds)
    _signal_tree(tree, signal.SIGCONT)


def pause_tree(pid: int, seconds: float, after: float = 0.0) -> subprocess.Popen:
    """Stop ``pid`` and its descendants with SIGSTOP ``after`` s from now, for ``seconds``, then
    SIGCONT them, as a paused machine stops everything (the helper runs in its own session and is
    never stopped itself). Returns the helper; ``wait()`` on it for the pause to be over."""
    test_dir = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    return subprocess.Popen([sys.executable, "-m", "localcloud.stalls", str(pid), str(seconds), str(after)],
                            cwd=test_dir, start_new_session=True)


if __name__ == "__main__":
    _pause(int(sys.argv[1]), float(sys.argv[2]), float(sys.argv[3]))

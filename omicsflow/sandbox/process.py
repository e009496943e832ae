"""Killing an attempt as a whole: its process group plus every descendant, via /proc.

A process group alone is not enough: bwrap's init and anything that calls setsid() leave the
group, and Prefect's cancel under `serve` kills only the flow process (DESIGN.md). So we
follow the parent links from the group's members and track every process found by
(pid, start time), which makes pid reuse harmless. Linux only, like bwrap.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import time
from dataclasses import dataclass

from omicsflow.sandbox.spec import EXIT_SIGNAL_BASE

log = logging.getLogger(__name__)

_POLL_SECONDS = 0.02
# After SIGKILL only uninterruptible sleep (D state, e.g. NFS) can delay the exit.
_AFTER_KILL_SECONDS = 10.0


@dataclass(frozen=True)
class ProcInfo:
    pid: int
    ppid: int
    pgrp: int
    state: str
    start_time: int  # clock ticks since boot: (pid, start_time) names one process forever


def _read_stat(pid: int) -> ProcInfo | None:
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            raw = fh.read().decode("ascii", errors="replace")
    except OSError:
        return None
    # comm (field 2) may contain spaces and parens: split after the last ')'.
    fields = raw[raw.rindex(")") + 2 :].split()
    return ProcInfo(
        pid=pid,
        ppid=int(fields[1]),
        pgrp=int(fields[2]),
        state=fields[0],
        start_time=int(fields[19]),
    )


def process_table() -> dict[int, ProcInfo]:
    """Live processes (zombies excluded: they are dead, only waiting to be reaped)."""
    table: dict[int, ProcInfo] = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        info = _read_stat(int(name))
        if info is not None and info.state not in ("Z", "X", "x"):
            table[info.pid] = info
    return table


class _Tracker:
    """The live members of a group and all their descendants, remembered across polls."""

    def __init__(self, pgid: int) -> None:
        self.pgid = pgid
        self.known: dict[int, int] = {}  # pid -> start_time

    def refresh(self) -> list[int]:
        table = process_table()
        alive = {
            pid
            for pid, info in table.items()
            if info.pgrp == self.pgid or self.known.get(pid) == info.start_time
        }
        children: dict[int, list[int]] = {}
        for info in table.values():
            children.setdefault(info.ppid, []).append(info.pid)
        stack = list(alive)
        while stack:
            for child in children.get(stack.pop(), ()):
                if child not in alive:
                    alive.add(child)
                    stack.append(child)
        self.known = {pid: table[pid].start_time for pid in alive}
        return sorted(alive)


def _signal_all(pgid: int, pids: list[int], sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, sig)


def _wait_gone(tracker: _Tracker, seconds: float) -> list[int]:
    deadline = time.monotonic() + seconds
    while True:
        alive = tracker.refresh()
        if not alive or time.monotonic() >= deadline:
            return alive
        time.sleep(_POLL_SECONDS)


def kill_process_group(pgid: int, grace_seconds: float = 5.0) -> None:
    """SIGTERM the group and its descendants, SIGKILL what is left after the grace period.

    Returns once nothing is left (or after a bounded wait for unkillable D-state processes);
    an already-dead group is fine. Safe to call from another process than the one that
    started the pipeline (the ledger stores the pgid for that).
    In a sandbox, SIGTERM ends bwrap at once and its pid namespace goes with it: the grace
    period only matters for direct mode, where the pipeline's own trap handlers can run.
    """
    if pgid <= 1 or pgid == os.getpgrp():
        # killpg(0) or our own group would kill the orchestrator itself.
        raise ValueError(f"refusing to kill process group {pgid}")
    tracker = _Tracker(pgid)
    alive = tracker.refresh()
    if not alive:
        return
    _signal_all(pgid, alive, signal.SIGTERM)
    alive = _wait_gone(tracker, grace_seconds)
    if not alive:
        return
    _signal_all(pgid, alive, signal.SIGKILL)
    alive = _wait_gone(tracker, _AFTER_KILL_SECONDS)
    if alive:
        log.warning("processes %s of group %d survived SIGKILL (D state?)", alive, pgid)


def shell_exit_code(returncode: int) -> int:
    """Popen's -N (killed by signal N) becomes 128+N, as bash and bwrap report it."""
    return EXIT_SIGNAL_BASE - returncode if returncode < 0 else returncode

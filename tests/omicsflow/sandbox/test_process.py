"""kill_process_group: the group and every descendant die, even ones that left the group."""

from __future__ import annotations

import os
import subprocess
import uuid
from pathlib import Path

import pytest

from omicsflow.sandbox.process import kill_process_group, shell_exit_code

from .conftest import group_members, processes_with_token, wait_until


def test_kills_group_and_setsid_descendants_then_tolerates_dead(tmp_path: Path) -> None:
    token = uuid.uuid4().hex
    ready = tmp_path / "ready"
    proc = subprocess.Popen(
        # A plain background child (same group) and a setsid one (its own session/group):
        # both must die.
        ["bash", "-c", f"sleep 300 & setsid sleep 301 & touch {ready}; wait"],
        env={"PATH": os.environ["PATH"], "OMICSFLOW_TEST_TOKEN": token},
        start_new_session=True,
    )
    try:
        wait_until(ready.exists, "the pipeline to start")
        wait_until(lambda: len(processes_with_token(token)) == 3, "three processes")
        kill_process_group(proc.pid, grace_seconds=5.0)
        assert processes_with_token(token) == []
        assert proc.wait() == -15
        assert group_members(proc.pid) == []
        kill_process_group(proc.pid)  # already dead: no error
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_sigkill_after_grace_when_sigterm_is_ignored(tmp_path: Path) -> None:
    token = uuid.uuid4().hex
    ready = tmp_path / "ready"
    proc = subprocess.Popen(
        ["bash", "-c", f"trap '' TERM; touch {ready}; while :; do read -t 0.05 || true; done"],
        env={"PATH": os.environ["PATH"], "OMICSFLOW_TEST_TOKEN": token},
        stdin=subprocess.PIPE,
        start_new_session=True,
    )
    try:
        wait_until(ready.exists, "the pipeline to start")
        kill_process_group(proc.pid, grace_seconds=0.2)
        assert proc.wait() == -9
        assert processes_with_token(token) == []
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_refuses_to_kill_our_own_group() -> None:
    with pytest.raises(ValueError):
        kill_process_group(os.getpgrp())
    with pytest.raises(ValueError):
        kill_process_group(0)


@pytest.mark.parametrize(("returncode", "expected"), [(0, 0), (75, 75), (-9, 137), (-15, 143)])
def test_shell_exit_code(returncode: int, expected: int) -> None:
    assert shell_exit_code(returncode) == expected

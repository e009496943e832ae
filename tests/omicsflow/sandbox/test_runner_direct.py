"""PipelineRunner with the sandbox off: real dirs, same env allowlist, same kill guarantees."""

from __future__ import annotations

import threading
from dataclasses import replace

import pytest

from omicsflow.sandbox import PipelineResult, PipelineRunner

from .conftest import Workspace, group_members, processes_with_token, wait_until

pytestmark = pytest.mark.sandbox


def _runner(ws: Workspace) -> PipelineRunner:
    return PipelineRunner(ws.scratch_root, sandbox=False, kill_grace_seconds=2.0)


def test_direct_mode_uses_the_real_dirs_and_the_env_allowlist(
    ws: Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OMICSFLOW_TEST_SECRET", "s3cr3t")
    (ws.base).mkdir(parents=True)
    (ws.base / "in.txt").write_text("input\n")
    spec = ws.spec(
        """
set -eu
cat "$LOMI_BASE_DIR/in.txt" > "$LOMI_USER_DIR/copy.txt"
env > "$LOMI_BASE_DIR/env.txt"
echo repo-write > output/debug.html
pwd
"""
    )
    result = _runner(ws).run(spec, "direct")
    assert result.exit_code == 0, result.log_tail
    assert not result.sandboxed
    assert (ws.user / "copy.txt").read_text() == "input\n"
    env = (ws.base / "env.txt").read_text()
    assert "s3cr3t" not in env
    assert f"LOMI_BASE_DIR={ws.base}\n" in env
    assert (ws.repo / "output" / "debug.html").read_text() == "repo-write\n"
    assert result.log_tail.splitlines()[0].endswith("sandbox=off")
    assert str(ws.repo) in result.log_tail
    assert not ws.scratch_root.exists()


def test_direct_cancel_kills_group_and_setsid_children_after_sigterm(ws: Workspace) -> None:
    spec = ws.spec(
        """
trap 'echo trapped > "$LOMI_BASE_DIR/trapped"; exit 0' TERM
sleep 300 &
setsid sleep 301 &
echo started > "$LOMI_BASE_DIR/started"
wait
"""
    )
    cancel = threading.Event()
    results: list[PipelineResult] = []
    pgids: list[int] = []
    thread = threading.Thread(
        target=lambda: results.append(
            _runner(ws).run(spec, "dcancel", on_start=pgids.append, cancel_event=cancel)
        )
    )
    thread.start()
    wait_until((ws.base / "started").exists, "the pipeline to start")
    wait_until(lambda: len(processes_with_token(ws.token)) == 3, "bash and two sleeps")
    cancel.set()
    thread.join(timeout=60)
    [result] = results
    assert result.cancelled
    assert result.exit_code == 0  # the pipeline's TERM trap ran and chose its exit code
    assert (ws.base / "trapped").exists()  # SIGTERM came first: the trap had its chance
    assert processes_with_token(ws.token) == []
    assert group_members(pgids[0]) == []


def test_direct_timeout_and_leftover_background_children(ws: Workspace) -> None:
    result = _runner(ws).run(ws.spec("sleep 300 & wait", timeout_seconds=0.5), "dtimeout")
    assert result.timed_out and result.exit_code == 124
    assert processes_with_token(ws.token) == []
    # A pipeline that exits leaving a child behind: the child does not outlive the attempt.
    result = _runner(ws).run(ws.spec("sleep 300 &\nexit 0"), "dleftover")
    assert result.exit_code == 0 and not result.timed_out
    assert processes_with_token(ws.token) == []


@pytest.mark.parametrize(
    ("body", "code"),
    [("exit 0", 0), ("exit 75", 75), ("kill -9 $$", 137), ("no-such-command-omicsflow", 127)],
)
def test_direct_exit_codes(ws: Workspace, body: str, code: int) -> None:
    assert _runner(ws).run(ws.spec(body), "dcodes").exit_code == code


def test_direct_missing_executable_is_127_with_a_log_line(ws: Workspace) -> None:
    spec = replace(ws.spec("true"), argv=(str(ws.repo / "missing.sh"),))
    result = _runner(ws).run(spec, "dmissing")
    assert result.exit_code == 127
    assert "cannot start" in result.log_tail

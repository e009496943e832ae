"""PipelineRunner with the real bwrap and small real bash pipelines."""

from __future__ import annotations

import threading
import uuid
from dataclasses import replace
from pathlib import Path

import pytest

from omicsflow.errors import SandboxError
from omicsflow.sandbox import PipelineResult, PipelineRunner, kill_process_group
from omicsflow.sandbox.bwrap import bwrap_available
from omicsflow.sandbox.spec import PipelineSpec

from .conftest import Workspace, group_members, processes_with_token, wait_until

pytestmark = [pytest.mark.sandbox, pytest.mark.usefixtures("require_bwrap")]

# Starts a background child, tells the host (via a file in the scratch base, which the host
# can see) that it is running, then waits forever.
LONG_RUNNING = """
sleep 300 &
echo started > "$LOMI_BASE_DIR/started"
echo "pipeline started"
wait
"""


def _runner(ws: Workspace) -> PipelineRunner:
    return PipelineRunner(ws.scratch_root, sandbox=True, kill_grace_seconds=2.0)


def test_writes_outside_the_scratch_fail_with_erofs_and_the_log_names_the_path(
    ws: Workspace,
) -> None:
    victim = Path("/etc") / f"omicsflow-erofs-{uuid.uuid4().hex}"
    spec = ws.spec(
        f"""
echo note > notes.txt
touch {victim}
python3 -c 'open("{ws.repo}/py-out.txt", "w")'
echo "after"
exit 0
"""
    )
    try:
        result = _runner(ws).run(spec, "erofs")
    finally:
        victim.unlink(missing_ok=True)
    assert result.exit_code == 0
    assert result.sandboxed
    assert not (ws.repo / "notes.txt").exists()
    assert not (ws.repo / "py-out.txt").exists()
    log = spec.log_path.read_text()
    assert "Read-only file system" in log
    assert (
        "[omicsflow] sandbox: the pipeline tried to write outside its scratch: "
        f"{ws.repo}/notes.txt; add 'notes.txt' to sandbox_write_whitelist" in log
    )
    assert f"outside its scratch: {ws.repo}/py-out.txt; add 'py-out.txt'" in log
    assert f"outside its scratch: {victim}; only paths inside the pipeline repo" in log
    assert "sandbox_write_whitelist" in result.log_tail


def test_inputs_visible_outputs_copied_back_scratch_removed(ws: Workspace) -> None:
    (ws.base / "lab").mkdir(parents=True)
    (ws.base / "lab" / "in.csv").write_text("a,b\n")
    (ws.base / "changed.txt").write_text("old\n")
    (ws.base / "deleted.txt").write_text("keep me\n")
    # ws.user does not exist yet: the runner creates it.
    spec = ws.spec(
        """
set -eu
cat "$LOMI_BASE_DIR/lab/in.csv" > "$LOMI_BASE_DIR/seen-input.txt"
echo new > "$LOMI_BASE_DIR/changed.txt"
rm "$LOMI_BASE_DIR/deleted.txt"
mkdir -p "$LOMI_USER_DIR/report/figs"
echo png > "$LOMI_USER_DIR/report/figs/f1.png"
echo cached > "$HOME/.cache/warm"
echo tmp > /tmp/private
pwd > "$LOMI_BASE_DIR/pwd.txt"
"""
    )
    result = _runner(ws).run(spec, "roundtrip")
    assert result.exit_code == 0, result.log_tail
    assert (ws.base / "seen-input.txt").read_text() == "a,b\n"
    assert (ws.base / "changed.txt").read_text() == "new\n"
    assert (ws.base / "deleted.txt").read_text() == "keep me\n"  # deletions not propagated
    assert (ws.user / "report" / "figs" / "f1.png").read_text() == "png\n"
    assert (ws.base / "pwd.txt").read_text().strip() == str(ws.repo)
    assert (ws.cache / "warm").read_text() == "cached\n"
    assert list(ws.scratch_root.iterdir()) == []
    log = spec.log_path.read_text()
    assert log.startswith("[omicsflow] attempt start ")
    assert f"argv=bash {ws.repo}/run.sh sandbox=on" in log.splitlines()[0]
    assert "copied back 4 new or changed file(s)" in log


def test_concurrent_runs_of_one_service_do_not_see_each_other(ws: Workspace) -> None:
    (ws.repo / "output" / "debug.html").write_text("original\n")
    body = """
set -eu
cat output/debug.html > "$LOMI_BASE_DIR/initial-debug.txt"
echo "$RUN_ID" > output/debug.html
echo "$RUN_ID" > "$LOMI_BASE_DIR/result.txt"
echo "$RUN_ID" > /tmp/fixed-name
touch "$HOME/.cache/ready-$RUN_ID"
# Rendezvous through the shared cache dir so both runs are alive at the same time.
for _ in $(seq 1 600); do [ -e "$HOME/.cache/ready-$OTHER_ID" ] && break; sleep 0.05; done
[ -e "$HOME/.cache/ready-$OTHER_ID" ] || { echo "peer never started"; exit 3; }
cat output/debug.html > "$LOMI_BASE_DIR/seen-debug.txt"
cat /tmp/fixed-name > "$LOMI_BASE_DIR/seen-tmp.txt"
"""
    base_spec = ws.spec(body)
    runner = _runner(ws)
    results: dict[str, PipelineResult] = {}
    errors: list[BaseException] = []

    def run(me: str, other: str) -> None:
        spec = replace(
            base_spec,
            base_dir=ws.root / "patient-base" / me,
            user_dir=ws.root / "user-data" / me,
            log_path=ws.logs / f"{me}.log",
            extra_env={"RUN_ID": me, "OTHER_ID": other},
        )
        try:
            results[me] = runner.run(spec, f"run-{me}")
        except BaseException as exc:
            errors.append(exc)

    threads = [
        threading.Thread(target=run, args=("A", "B")),
        threading.Thread(target=run, args=("B", "A")),
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors
    for me in ("A", "B"):
        base = ws.root / "patient-base" / me
        assert results[me].exit_code == 0, results[me].log_tail
        assert (base / "initial-debug.txt").read_text() == "original\n"
        assert (base / "seen-debug.txt").read_text() == f"{me}\n"
        assert (base / "seen-tmp.txt").read_text() == f"{me}\n"
        assert (base / "result.txt").read_text() == f"{me}\n"
    # Whitelisted repo writes stay in the scratch: the real repo is untouched.
    assert (ws.repo / "output" / "debug.html").read_text() == "original\n"


def test_orchestrator_secrets_do_not_reach_the_pipeline(
    ws: Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OMICSFLOW_TEST_SECRET", "s3cr3t")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "aws-s3cr3t")
    monkeypatch.setenv("PREFECT_API_KEY", "pnu_s3cr3t")
    spec = ws.spec(
        """
env > "$LOMI_BASE_DIR/env.txt"
tr '\\0' '\\n' < /proc/self/environ > "$LOMI_BASE_DIR/self-environ.txt"
tr '\\0' '\\n' < /proc/1/environ > "$LOMI_BASE_DIR/init-environ.txt"
""",
        extra_env={"SERVICE_SETTING": "on"},
    )
    result = _runner(ws).run(spec, "secrets")
    assert result.exit_code == 0, result.log_tail
    for name in ("env.txt", "self-environ.txt", "init-environ.txt"):
        text = (ws.base / name).read_text()
        assert "s3cr3t" not in text
        assert "AWS_" not in text
        assert "PREFECT_API_KEY" not in text
    env = (ws.base / "env.txt").read_text().splitlines()
    assert "SERVICE_SETTING=on" in env
    assert "PYTHONDONTWRITEBYTECODE=1" in env
    assert f"LOMI_BASE_DIR={ws.scratch_root}/run-secrets/base" in env
    assert f"LOMI_USER_DIR={ws.scratch_root}/run-secrets/user-data" in env


def test_timeout_kills_the_whole_tree(ws: Workspace) -> None:
    spec = ws.spec(LONG_RUNNING, timeout_seconds=1.0)
    pgids: list[int] = []
    result = _runner(ws).run(spec, "timeout", on_start=pgids.append)
    assert result.timed_out and not result.cancelled
    assert result.exit_code == 124
    assert processes_with_token(ws.token) == []
    assert group_members(pgids[0]) == []
    # It did start (the marker is copied back like any output) and the log says why it ended.
    assert (ws.base / "started").exists()
    assert "timeout after 1s: killing" in result.log_tail


def _start_in_thread(
    runner: PipelineRunner, spec: PipelineSpec, key: str, cancel: threading.Event | None = None
) -> tuple[threading.Thread, list[PipelineResult], list[int]]:
    results: list[PipelineResult] = []
    pgids: list[int] = []

    def target() -> None:
        results.append(runner.run(spec, key, on_start=pgids.append, cancel_event=cancel))

    thread = threading.Thread(target=target)
    thread.start()
    return thread, results, pgids


def test_cancel_kills_the_whole_tree_and_keeps_the_active_scratch(ws: Workspace) -> None:
    runner = _runner(ws)
    cancel = threading.Event()
    thread, results, pgids = _start_in_thread(runner, ws.spec(LONG_RUNNING), "cancel", cancel)
    marker = ws.scratch_root / "run-cancel" / "base" / "started"
    wait_until(marker.exists, "the pipeline to start")
    # The log is appended live at its real path while the sandbox runs.
    wait_until(lambda: "pipeline started" in ws.spec(LONG_RUNNING).log_path.read_text(), "log")
    assert len(processes_with_token(ws.token)) >= 2  # bash and sleep: the check can see them
    assert runner.sweep_orphans([]) == []  # an active run's scratch is never swept
    cancel.set()
    thread.join(timeout=60)
    [result] = results
    assert result.cancelled and not result.timed_out
    assert result.exit_code == 143  # bwrap ended by SIGTERM
    assert processes_with_token(ws.token) == []
    assert group_members(pgids[0]) == []
    assert not (ws.scratch_root / "run-cancel").exists()


def test_kill_by_pgid_from_elsewhere_ends_the_run(ws: Workspace) -> None:
    """What a cancel from another process does with the pgid the ledger stored."""
    runner = _runner(ws)
    thread, results, pgids = _start_in_thread(runner, ws.spec(LONG_RUNNING), "external")
    wait_until((ws.scratch_root / "run-external" / "base" / "started").exists, "start")
    kill_process_group(pgids[0], grace_seconds=2.0)
    assert processes_with_token(ws.token) == []
    thread.join(timeout=60)
    [result] = results
    assert result.exit_code == 143
    assert not result.cancelled and not result.timed_out


@pytest.mark.parametrize(
    ("body", "code"),
    [("exit 0", 0), ("exit 75", 75), ("kill -9 $$", 137), ("no-such-command-omicsflow", 127)],
)
def test_exit_codes(ws: Workspace, body: str, code: int) -> None:
    result = _runner(ws).run(ws.spec(body), "codes")
    assert result.exit_code == code
    assert not result.timed_out and not result.cancelled


def test_bwrap_setup_failure_is_a_sandbox_error(ws: Workspace) -> None:
    fake = ws.root / "fake-bwrap"
    fake.write_text('#!/bin/sh\necho "bwrap: Can\'t mount proc on /newroot/proc" >&2\nexit 1\n')
    fake.chmod(0o755)
    runner = PipelineRunner(ws.scratch_root, sandbox=True, bwrap=str(fake))
    with pytest.raises(SandboxError, match="Can't mount proc"):
        runner.run(ws.spec("true"), "setup")
    assert list(ws.scratch_root.iterdir()) == []
    missing = PipelineRunner(ws.scratch_root, bwrap=str(ws.root / "no-bwrap"))
    with pytest.raises(SandboxError, match="cannot start"):
        missing.run(ws.spec("true"), "missing")


def test_bad_whitelist_fails_before_anything_runs(ws: Workspace) -> None:
    spec = ws.spec("touch started", write_whitelist=("../../etc",))
    with pytest.raises(SandboxError, match=r"'\.\./\.\./etc'"):
        _runner(ws).run(spec, "bad")
    assert not spec.log_path.exists()


def test_missing_whitelisted_paths_are_created_as_mount_points(ws: Workspace) -> None:
    spec = ws.spec(
        """
set -eu
echo d > reports/new/debug.html
echo c > style.css
ls reports/new > "$LOMI_BASE_DIR/listing.txt"
""",
        write_whitelist=("reports/new/debug.html", "style.css"),
    )
    result = _runner(ws).run(spec, "mounts")
    assert result.exit_code == 0, result.log_tail
    assert (ws.base / "listing.txt").read_text() == "debug.html\n"
    # Only the empty mount points exist in the repo; the writes went to the scratch.
    assert (ws.repo / "reports" / "new" / "debug.html").read_text() == ""
    assert (ws.repo / "style.css").read_text() == ""


def test_sweep_orphans_removes_only_stale_scratch_dirs(ws: Workspace) -> None:
    root = ws.scratch_root
    for name in ("run-active", "run-stale", "not-ours"):
        (root / name / "base").mkdir(parents=True)
    (root / "run-stale" / "base" / "f").write_text("x")
    (root / "run-file").write_text("not a dir")
    removed = _runner(ws).sweep_orphans(["active"])
    assert removed == [root / "run-stale"]
    assert sorted(p.name for p in root.iterdir()) == ["not-ours", "run-active", "run-file"]


def test_bwrap_available_reports_both_ways(ws: Workspace) -> None:
    ok, message = bwrap_available()
    assert ok and "works" in message
    ok, message = bwrap_available(str(ws.root / "no-bwrap"))
    assert not ok and "install bubblewrap" in message


def test_failing_on_start_kills_the_pipeline_and_propagates(ws: Workspace) -> None:
    def ledger_down(pgid: int) -> None:
        raise RuntimeError("ledger write failed")

    with pytest.raises(RuntimeError, match="ledger write failed"):
        _runner(ws).run(ws.spec(LONG_RUNNING), "onstart", on_start=ledger_down)
    assert processes_with_token(ws.token) == []
    assert list(ws.scratch_root.iterdir()) == []

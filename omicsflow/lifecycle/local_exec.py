"""Running a local attempt: the sandbox spec for a row, plus heartbeat and cancel watching."""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from pathlib import Path

from ledger.models import Run
from ledger.repo import Ledger
from omicsflow.domain.states import RunState
from omicsflow.sandbox.runner import PipelineRunner, kill_process_group
from omicsflow.sandbox.spec import PipelineResult, PipelineSpec
from omicsflow.services import ServiceConfig
from omicsflow.settings import Settings

log = logging.getLogger(__name__)

PARENT_CHECK_SECONDS = 1.0


def report_dirs(settings: Settings, report_id: str) -> tuple[Path, Path]:
    """The report's real input/output ("patient base") and user-data dirs."""
    return settings.data_dir / "base" / report_id, settings.data_dir / "user" / report_id


def log_path_for(settings: Settings, run: Run) -> Path:
    return settings.logs_dir / run.report_id / f"run.log.{run.attempt}"


def build_spec(settings: Settings, svc: ServiceConfig, run: Run) -> PipelineSpec:
    base_dir, user_dir = report_dirs(settings, run.report_id)
    base_dir.mkdir(parents=True, exist_ok=True)
    user_dir.mkdir(parents=True, exist_ok=True)
    # The report's fields travel as a file, never through argv or a shell.
    (base_dir / "report.json").write_text(
        json.dumps({"report_id": run.report_id, **(run.report_data or {})}, indent=2, default=str)
    )
    assert svc.workdir is not None
    return PipelineSpec(
        argv=svc.command,
        workdir=svc.workdir,
        base_dir=base_dir,
        user_dir=user_dir,
        env_names={"base_dir": svc.base_dir_env, "user_dir": svc.user_dir_env},
        extra_env={
            **svc.environment,
            "OMICSFLOW_REPORT_ID": run.report_id,
            "OMICSFLOW_ATTEMPT": str(run.attempt),
            "OMICSFLOW_RUN_ID": str(run.id),
        },
        write_whitelist=svc.sandbox_write_whitelist,
        log_path=log_path_for(settings, run),
        timeout_seconds=float(svc.timeout_seconds),
        cache_dir=settings.cache_dir,
    )


def run_local(settings: Settings, ledger: Ledger, svc: ServiceConfig, run: Run) -> PipelineResult:
    """Run the pipeline; beat the heartbeat; stop it when an operator closes the row."""
    assert run.id is not None
    run_id = run.id
    spec = build_spec(settings, svc, run)
    ledger.update_fields(run_id, log_path=str(spec.log_path))
    runner = PipelineRunner(
        settings.scratch_dir, sandbox=settings.sandbox_enabled, bwrap=settings.bwrap
    )
    cancel = threading.Event()
    done = threading.Event()
    started: dict[str, int] = {}
    parent = os.getppid()

    def on_start(pgid: int) -> None:
        started["pgid"] = pgid
        ledger.update_fields(run_id, pgid=pgid)

    def watch() -> None:
        # The heartbeat tells recovery this process is alive; the re-read notices a cancel
        # made by another process (CLI, UI hook) and stops the pipeline here too.
        next_beat = time.monotonic() + settings.heartbeat_seconds
        while not done.wait(PARENT_CHECK_SECONDS):
            if os.getppid() != parent:
                # The runner (serve) died. Nobody could cancel or report this attempt any more:
                # stop the pipeline and leave the row running for recovery to retry.
                log.error("runner process died; stopping run %s for recovery", run_id)
                if "pgid" in started:
                    kill_process_group(started["pgid"], grace_seconds=2)
                os._exit(70)
            if time.monotonic() < next_beat:
                continue
            next_beat = time.monotonic() + settings.heartbeat_seconds
            try:
                ledger.heartbeat(run_id)
                row = ledger.get(run_id)
            except Exception as exc:  # a locked DB must not kill the attempt
                log.warning("heartbeat failed for run %s: %s", run_id, exc)
                continue
            if row is not None and row.state != RunState.RUNNING.value:
                log.info("run %s is now %s; stopping its pipeline", run_id, row.state)
                cancel.set()
                return

    watcher = threading.Thread(target=watch, name=f"heartbeat-{run_id}", daemon=True)
    watcher.start()
    try:
        return runner.run(
            spec,
            run_key=str(run_id),
            on_start=on_start,
            cancel_event=cancel,
        )
    finally:
        done.set()
        watcher.join(timeout=5)

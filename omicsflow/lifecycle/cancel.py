"""Operator cancel: from the CLI or the Prefect UI, Firestore first, then the ledger, then the
pipeline's whole process group."""

from __future__ import annotations

import enum
import logging
import time
from dataclasses import dataclass

from ledger.models import Run
from ledger.repo import Ledger
from omicsflow.domain.routing import CANCELLED_REASON
from omicsflow.domain.states import ACTIVE_STATES, RunState
from omicsflow.lifecycle.scheduling import FlowRuns
from omicsflow.lifecycle.terminal import WriteResult, write_terminal
from omicsflow.services import ServicePolicy, ServicesFile
from omicsflow.stores.base import ReportStore

log = logging.getLogger(__name__)


def _cancel_remote(services: ServicesFile, run: Run) -> None:
    from omicsflow.backends.factory import backend_for
    from omicsflow.lifecycle.remote import handle_of

    svc = services.get(run.service)
    handle = handle_of(run)
    if svc is None or handle is None:
        return
    try:
        backend_for(svc).cancel(handle)
    except Exception as exc:  # the ledger says cancelled; the remote run is reported
        log.error("could not cancel remote run %s of run %s: %s", handle.run_id, run.id, exc)


class CancelResult(str, enum.Enum):
    CANCELLED = "cancelled"
    NOT_ACTIVE = "not_active"  # finished meanwhile (or never existed): left alone
    QUEUED_WRITE = "queued_write"  # store unreachable: the cancel write waits in the outbox
    NOT_FOUND = "not_found"


@dataclass(frozen=True)
class CancelReport:
    result: CancelResult
    state: str | None
    detail: str = ""


def cancel_run(
    ledger: Ledger,
    store: ReportStore,
    services: ServicesFile,
    run_id: int,
    actor: str,
    flow_runs: FlowRuns | None,
    grace_seconds: float,
    kill_group: bool = True,
) -> CancelReport:
    if ledger.get(run_id) is None:
        ledger.audit(actor, "cancel", "not_found", run_id=run_id)
        return CancelReport(CancelResult.NOT_FOUND, None, f"no run {run_id}")
    # Clicks are human-paced: give a run that is just finishing the chance to finish.
    if grace_seconds > 0:
        time.sleep(grace_seconds)
    run = ledger.get(run_id)
    assert run is not None and run.id is not None
    if RunState(run.state) not in ACTIVE_STATES:
        ledger.audit(
            actor,
            "cancel",
            "abandoned",
            run_id=run_id,
            report_id=run.report_id,
            detail=f"run already {run.state}",
        )
        return CancelReport(CancelResult.NOT_ACTIVE, run.state, f"run already {run.state}")
    policy = services.get(run.service) or ServicePolicy()
    res = write_terminal(
        ledger, store, run, RunState.CANCELLED, CANCELLED_REASON, policy, ACTIVE_STATES
    )
    if kill_group and run.state == RunState.RUNNING.value and run.pgid:
        from omicsflow.sandbox.runner import kill_process_group

        kill_process_group(run.pgid)
    if run.backend_handle and res.result is not WriteResult.SUPERSEDED:
        _cancel_remote(services, run)
    if flow_runs is not None and run.flow_run_id:
        try:
            flow_runs.request_cancel(run.flow_run_id, CANCELLED_REASON)
        except Exception as exc:  # the ledger already says cancelled; the UI catches up
            log.warning("could not cancel flow run %s: %s", run.flow_run_id, exc)
    final = ledger.get(run_id)
    state = final.state if final else None
    if res.result is WriteResult.OUTAGE:
        ledger.audit(
            actor,
            "cancel",
            "queued",
            run_id=run_id,
            report_id=run.report_id,
            detail="report store unreachable; cancel write queued",
        )
        return CancelReport(CancelResult.QUEUED_WRITE, state, "report store unreachable")
    if res.result is WriteResult.FAILED_SYNC:
        detail = (
            "cancelled in the ledger, but the report store refused the write: the report "
            "still shows its old status there; fix it in the store or it may run again"
        )
        ledger.audit(
            actor, "cancel", "store_refused", run_id=run_id, report_id=run.report_id, detail=detail
        )
        return CancelReport(CancelResult.CANCELLED, state, detail)
    if res.result is WriteResult.SUPERSEDED:
        ledger.audit(
            actor,
            "cancel",
            "abandoned",
            run_id=run_id,
            report_id=run.report_id,
            detail=f"run finished meanwhile as {state}",
        )
        return CancelReport(CancelResult.NOT_ACTIVE, state, f"run finished meanwhile as {state}")
    ledger.audit(actor, "cancel", "ok", run_id=run_id, report_id=run.report_id)
    return CancelReport(CancelResult.CANCELLED, state)

"""The attempt flow: one ledger row, one flow run. Orchestration only.

Local attempts run their pipeline in this process. Remote attempts submit, record the handle
and suspend (the process exits); the serve process's poller resumes the flow run when the
remote run ends, and the flow re-executes from the top: every step before the suspend is
idempotent (the claim is skipped for our own running row, the submit reuses the handle).
"""

from __future__ import annotations

import uuid
from typing import Any

from prefect import flow, get_run_logger
from prefect.context import get_run_context
from prefect.flow_runs import suspend_flow_run
from prefect.states import Cancelled, Completed, Failed, State

from classifiers.classify import classify
from classifiers.evidence import Evidence
from flows.hooks import on_attempt_cancellation, on_attempt_crashed
from ledger.models import Run
from omicsflow.backends.factory import REMOTE_BACKENDS
from omicsflow.domain.outcomes import (
    failure_outcome,
    failure_reason,
    local_evidence,
    local_outcome_kind,
)
from omicsflow.domain.routing import Outcome, OutcomeKind
from omicsflow.domain.states import PREFECT_STATE_FOR, RunState
from omicsflow.errors import OmicsflowError, TransientError
from omicsflow.lifecycle import remote
from omicsflow.lifecycle.evidence import evidence_of
from omicsflow.lifecycle.finish import Finished
from omicsflow.runtime import get_runtime
from omicsflow.services import ServiceConfig, ServicePolicy
from tasks.artifact_tasks import publish_failure_card
from tasks.event_tasks import announce_failure
from tasks.ledger_tasks import claim_run, record_exit, record_failure
from tasks.outcome_tasks import apply_outcome, schedule_successor
from tasks.pipeline_tasks import run_local_pipeline
from tasks.remote_tasks import publish_remote_link, submit_remote


def prefect_state_for(state: RunState, message: str, pending_write: bool = False) -> State[Any]:
    """Mirror a ledger state into a final Prefect state with a custom name."""
    if pending_write:
        message = f"{message} (report store unreachable: terminal write queued and retried)"
    kind, name = PREFECT_STATE_FOR.get(state, ("CANCELLED", "Cancelled"))
    if kind == "COMPLETED":
        return Completed(name=name, message=message)
    if kind == "CANCELLED":
        return Cancelled(message=message)
    return Failed(name=name, message=message)


def _current_flow_run_id() -> str | None:
    ctx = get_run_context()
    fr = getattr(ctx, "flow_run", None)
    return str(fr.id) if fr is not None else None


def _mirror(run_id: int, why: str) -> State[Any]:
    row = get_runtime().ledger.get(run_id)
    state = RunState(row.state) if row else RunState.CANCELLED
    return prefect_state_for(state, f"{why}: run is {state.value}")


def _fail(run_id: int, evidence: Evidence, reason: str) -> Finished:
    """Classify (deterministically, inline), record, route, explain, announce."""
    classification = classify(evidence)
    record_failure(run_id, evidence, classification)
    finished: Finished = apply_outcome(run_id, failure_outcome(classification, reason))
    publish_failure_card(run_id)
    # After the status write: the LLM enrichment this triggers can never delay it.
    announce_failure(run_id, finished.state.value)
    get_run_logger().info(
        "failure: owner=%s category=%s -> %s",
        classification.owner.value,
        classification.category,
        finished.state.value,
    )
    return finished


def _finish(run_id: int, finished: Finished) -> State[Any]:
    if finished.successor is not None and finished.successor.id is not None:
        schedule_successor(finished.successor.id)
    final = get_runtime().ledger.get(run_id)
    message = (final.summary or final.reason or "") if final else ""
    return prefect_state_for(finished.state, message, finished.pending_write)


def _local(run: Run, policy: ServicePolicy) -> Finished:
    assert run.id is not None
    result = run_local_pipeline(run.id)
    record_exit(run.id, result.exit_code, result.elapsed_seconds)
    kind = local_outcome_kind(result, policy)
    if kind is OutcomeKind.FAILED:
        return _fail(run.id, local_evidence(result, policy), failure_reason(result))
    reason = "pipeline exited 0" if kind is OutcomeKind.SUCCEEDED else failure_reason(result)
    done: Finished = apply_outcome(run.id, Outcome(kind, reason=reason))
    return done


def _remote(run: Run, svc: ServiceConfig) -> Finished | None:
    """Submit, then suspend until the poller has seen the remote run end (None: suspended;
    the process exits). Only the poller talks to the platform's status API, so one rate
    limiter in one process keeps every in-flight run within the quota."""
    assert run.id is not None
    try:
        handle = submit_remote(run.id)
    except OmicsflowError as exc:
        if isinstance(exc, TransientError):
            raise  # the flow fails; the poller restarts it and requestId dedups the submit
        return _fail(run.id, remote.submission_evidence(svc, exc), f"submission refused: {exc}")
    publish_remote_link(run.id, handle)
    current = get_runtime().ledger.get(run.id) or run
    state = remote.ended(current)
    if state is None:
        get_run_logger().info(
            "%s run %s submitted (%s); suspending until it ends",
            handle.backend,
            handle.run_id,
            current.remote_status or "not polled yet",
        )
        # A fresh key each time: a resume before the remote end (an operator's Resume) just
        # suspends again instead of being taken for the earlier suspension.
        suspend_flow_run(timeout=svc.timeout_seconds, key=uuid.uuid4().hex)
        return None
    if remote.outcome_kind(state) is OutcomeKind.SUCCEEDED:
        done: Finished = apply_outcome(
            run.id, Outcome(OutcomeKind.SUCCEEDED, reason="remote run succeeded")
        )
        return done
    # The poller recorded the evidence field by field before it resumed this flow.
    return _fail(run.id, evidence_of(current), remote.failure_reason(current))


@flow(
    name="omicsflow-attempt",
    log_prints=False,
    on_cancellation=[on_attempt_cancellation],
    on_crashed=[on_attempt_crashed],
)
def attempt_flow(run_id: int) -> State[Any]:
    logger = get_run_logger()
    rt = get_runtime()
    run = rt.ledger.get(run_id)
    if run is None:
        return Failed(name="NotFound", message=f"run {run_id} is not in the ledger")
    me = _current_flow_run_id()
    resumed = (
        run.state == RunState.RUNNING.value
        and run.backend in REMOTE_BACKENDS
        and (run.flow_run_id == me)
    )
    if not resumed:
        if run.state not in (RunState.QUEUED.value, RunState.WAITING_COOLDOWN.value):
            # Re-executed after the row moved on (withdrawn, cancelled, finished): mirror it.
            return _mirror(run_id, "nothing to do")
        if not claim_run(run_id, me):
            return _mirror(run_id, "moved before it started")
        run = rt.ledger.get(run_id) or run

    svc = rt.services.get(run.service)
    if svc is None:
        return Failed(name="SystemError", message=f"service {run.service!r} is not configured")
    logger.info("running %s for report %s (attempt %s)", run.service, run.report_id, run.attempt)
    if svc.backend in REMOTE_BACKENDS:
        finished = _remote(run, svc)
        if finished is None:  # pragma: no cover - suspend_flow_run exits the process
            return _mirror(run_id, "suspended")
    else:
        finished = _local(run, svc)
    return _finish(run_id, finished)

"""The attempt flow: one ledger row, one flow run. Orchestration only."""

from __future__ import annotations

from typing import Any

from classifiers.classify import classify
from prefect import flow, get_run_logger
from prefect.context import get_run_context
from prefect.states import Cancelled, Completed, Failed, State

from flows.hooks import on_attempt_cancellation, on_attempt_crashed
from omicsflow.domain.outcomes import (
    failure_outcome,
    failure_reason,
    local_evidence,
    local_outcome_kind,
)
from omicsflow.domain.routing import Outcome, OutcomeKind
from omicsflow.domain.states import PREFECT_STATE_FOR, RunState
from omicsflow.lifecycle.finish import Finished
from omicsflow.runtime import get_runtime
from omicsflow.services import ServicePolicy
from tasks.artifact_tasks import publish_failure_card
from tasks.event_tasks import announce_failure
from tasks.ledger_tasks import claim_run, record_exit, record_failure
from tasks.outcome_tasks import apply_outcome, schedule_successor
from tasks.pipeline_tasks import run_local_pipeline


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
    if run.state not in (RunState.QUEUED.value, RunState.WAITING_COOLDOWN.value):
        # Re-executed after the row moved on (withdrawn, cancelled, finished): mirror it.
        logger.info("run %s is already %s; nothing to do", run_id, run.state)
        return prefect_state_for(RunState(run.state), f"run already {run.state}")
    if not claim_run(run_id, _current_flow_run_id()):
        now = rt.ledger.get(run_id)
        state = RunState(now.state) if now else RunState.CANCELLED
        return prefect_state_for(state, f"run moved to {state.value} before it started")

    policy = rt.services.get(run.service) or ServicePolicy()
    logger.info("running %s for report %s (attempt %s)", run.service, run.report_id, run.attempt)
    result = run_local_pipeline(run_id)
    record_exit(run_id, result.exit_code, result.elapsed_seconds)
    kind = local_outcome_kind(result, policy)

    if kind is OutcomeKind.FAILED:
        evidence = local_evidence(result, policy)
        classification = classify(evidence)
        record_failure(run_id, evidence, classification)
        finished: Finished = apply_outcome(run_id, failure_outcome(classification, failure_reason(result)))
        publish_failure_card(run_id)
        announce_failure(run_id, finished.state.value)
        logger.info("failure: owner=%s category=%s", classification.owner.value, classification.category)
    else:
        reason = "pipeline exited 0" if kind is OutcomeKind.SUCCEEDED else failure_reason(result)
        finished = apply_outcome(run_id, Outcome(kind, reason=reason))

    if finished.successor is not None and finished.successor.id is not None:
        schedule_successor(finished.successor.id)
    final = rt.ledger.get(run_id)
    message = (final.summary or final.reason or "") if final else ""
    return prefect_state_for(finished.state, message, finished.pending_write)

"""Remote attempts (HealthOmics, Seqera): submit once, remember the handle, turn the remote
end into an Outcome. No Prefect here; the attempt flow and the poller call these."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from classifiers.evidence import Evidence
from ledger.models import Run
from ledger.repo import Ledger
from omicsflow.backends.base import (
    TERMINAL_REMOTE_STATES,
    AttemptIdentity,
    PollResult,
    RemoteBackend,
    RemoteState,
    RunHandle,
    SubmitRequest,
)
from omicsflow.backends.factory import parameters_template
from omicsflow.domain.parameters import render_parameters
from omicsflow.domain.routing import OutcomeKind
from omicsflow.lifecycle.evidence import evidence_columns, platform_of
from omicsflow.services import ServiceConfig


def identity_of(run: Run) -> AttemptIdentity:
    assert run.id is not None
    return AttemptIdentity(
        run_id=run.id,
        report_id=run.report_id,
        service=run.service,
        generation=run.generation,
        attempt=run.attempt,
        seq=run.seq,
    )


def handle_of(run: Run) -> RunHandle | None:
    h = run.backend_handle
    if not h:
        return None
    return RunHandle(
        backend=str(h["backend"]),
        run_id=str(h["run_id"]),
        key=str(h["key"]),
        console_url=h.get("console_url"),
        extra={str(k): str(v) for k, v in (h.get("extra") or {}).items()},
    )


def _record(handle: RunHandle) -> dict[str, Any]:
    return {
        "backend": handle.backend,
        "run_id": handle.run_id,
        "key": handle.key,
        "console_url": handle.console_url,
        "extra": dict(handle.extra),
    }


def submit_attempt(
    ledger: Ledger, backend: RemoteBackend, svc: ServiceConfig, run: Run
) -> RunHandle:
    """Start the attempt's remote run once. A handle already in the ledger is reused; without
    one, the backend's own idempotency (requestId / run-name lookup) prevents a second run
    even when a previous process died between submitting and recording."""
    assert run.id is not None
    existing = handle_of(run)
    if existing is not None:
        return existing
    params = render_parameters(parameters_template(svc), run.report_id, run.report_data or {})
    handle = backend.submit(SubmitRequest(identity_of(run), params))
    ledger.update_fields(
        run.id,
        backend_run_id=handle.run_id,
        backend_run_key=handle.key,
        backend_console_url=handle.console_url,
        backend_handle=_record(handle),
    )
    return handle


def record_poll(ledger: Ledger, run_id: int, result: PollResult) -> None:
    status = result.raw_status or result.state.value
    ledger.update_fields(
        run_id,
        remote_status=status[:64],
        remote_state=result.state.value,
        remote_checked_at=datetime.now(UTC),
    )


def record_evidence(ledger: Ledger, run_id: int, evidence: Evidence) -> None:
    """Keep each evidence field apart, exactly as the platform said it."""
    ledger.update_fields(run_id, **evidence_columns(evidence))


def ended(run: Run) -> RemoteState | None:
    """The remote run's terminal state as the poller recorded it, or None while in flight."""
    if run.remote_state is None:
        return None
    state = RemoteState(run.remote_state)
    return state if state in TERMINAL_REMOTE_STATES else None


def outcome_kind(state: RemoteState) -> OutcomeKind:
    """A remote run that ended any other way than success is a failure to classify; a remote
    cancel we did not ask for (someone used the AWS console) is evidence too."""
    return OutcomeKind.SUCCEEDED if state is RemoteState.SUCCEEDED else OutcomeKind.FAILED


def failure_reason(run: Run) -> str:
    text = f"remote run {run.backend_run_id} ended {run.remote_status or run.remote_state}"
    detail = run.ev_failure_reason or run.ev_error_message
    return f"{text}: {detail}" if detail else text


def submission_evidence(svc: ServiceConfig, error: Exception) -> Evidence:
    """The platform refused the submission itself (validation, access, quota)."""
    return Evidence(
        platform=platform_of(svc.backend),
        status_message=f"{type(error).__name__}: {error}"[:4000],
    )

"""Prefect tasks that write the ledger: one side effect each."""

from __future__ import annotations

from datetime import UTC, datetime

from prefect import task

from classifiers.evidence import Evidence
from classifiers.taxonomy import Classification
from omicsflow.lifecycle.evidence import evidence_columns
from omicsflow.runtime import get_runtime


@task(name="claim-run", retries=0)
def claim_run(run_id: int, flow_run_id: str | None) -> bool:
    """Move the row to running; False when it is no longer waiting (withdrawn, cancelled)."""
    return get_runtime().ledger.claim(run_id, flow_run_id, datetime.now(UTC))


@task(name="record-failure")
def record_failure(run_id: int, evidence: Evidence, classification: Classification) -> None:
    """Keep each evidence field apart; set the classification unless one is already there."""
    ledger = get_runtime().ledger
    row = ledger.get(run_id)
    values = evidence_columns(evidence)
    if row is not None and not row.classified_by:
        values.update(classification.as_record())
    ledger.update_fields(run_id, **values)


@task(name="record-exit")
def record_exit(run_id: int, exit_code: int, elapsed_seconds: float) -> None:
    get_runtime().ledger.update_fields(
        run_id, exit_code=exit_code, ev_elapsed_seconds=elapsed_seconds
    )

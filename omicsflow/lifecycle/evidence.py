"""Failure evidence and the ledger row's ev_* columns, both ways, field by field.

One place for the mapping: the attempt flow (local failures), the remote poller and the
enrichment flow all read or write the same columns.
"""

from __future__ import annotations

import logging
from typing import Any

from pydantic import ValidationError

from classifiers.evidence import Evidence, Platform, TaskEvidence
from ledger.models import Run

log = logging.getLogger(__name__)

_PLATFORM_OF_BACKEND: dict[str, Platform] = {
    "local": Platform.LOCAL,
    "healthomics": Platform.HEALTHOMICS,
    "seqera": Platform.SEQERA,
    "elastic-blast": Platform.BLAST,
    "blast": Platform.BLAST,
}


def platform_of(backend: str) -> Platform:
    return _PLATFORM_OF_BACKEND.get(backend, Platform.LOCAL)


def evidence_columns(evidence: Evidence) -> dict[str, Any]:
    """The ledger values that keep each evidence field apart, exactly as it was reported."""
    return {
        "exit_code": evidence.exit_code,
        "ev_failure_reason": evidence.failure_reason,
        "ev_status_message": evidence.status_message,
        "ev_error_message": evidence.error_message,
        "ev_error_report": evidence.error_report,
        "ev_tasks": [t.model_dump() for t in evidence.tasks] or None,
        "ev_log_tail": evidence.log_tail,
        "ev_elapsed_seconds": evidence.elapsed_seconds,
    }


def evidence_of(run: Run, temp_fail_exit_code: int | None = None) -> Evidence:
    """The Evidence the attempt recorded, rebuilt field by field from the ledger row."""
    tasks: list[TaskEvidence] = []
    for raw in run.ev_tasks or []:
        try:
            tasks.append(TaskEvidence.model_validate(raw))
        except ValidationError:
            log.warning("run %s: unreadable task evidence ignored", run.id)
    return Evidence(
        platform=platform_of(run.backend),
        exit_code=run.exit_code,
        failure_reason=run.ev_failure_reason,
        status_message=run.ev_status_message,
        error_message=run.ev_error_message,
        error_report=run.ev_error_report,
        tasks=tuple(tasks),
        log_tail=run.ev_log_tail,
        elapsed_seconds=run.ev_elapsed_seconds,
        temp_fail_exit_code=temp_fail_exit_code,
    )

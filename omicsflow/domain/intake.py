"""Intake rules: is a report document acceptable, and does it need a new run?

Pure: the caller supplies the services, the report's existing rows and the clock.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from omicsflow.domain.states import RunState, blocks_new_run, is_active
from omicsflow.services import ServiceConfig

MAX_REPORT_ID_LENGTH = 256
MAX_DOCUMENT_FIELDS = 500


@dataclass(frozen=True)
class Reject:
    reason: str


@dataclass(frozen=True)
class Ignore:
    reason: str


@dataclass(frozen=True)
class Create:
    service: ServiceConfig
    generation: int
    state: RunState
    scheduled_at: datetime


IntakeDecision = Reject | Ignore | Create


@dataclass(frozen=True)
class ExistingRow:
    generation: int
    state: RunState


def is_safe_report_id(report_id: str) -> bool:
    """Report ids name directories and log files: refuse anything that could traverse."""
    return (
        0 < len(report_id) <= MAX_REPORT_ID_LENGTH
        and report_id not in {".", ".."}
        and not any(c in report_id for c in "/\\")
        and all(c.isprintable() for c in report_id)
    )


def validate_document(
    report_id: str, doc: Mapping[str, Any], services: Mapping[str, ServiceConfig]
) -> ServiceConfig | Reject:
    """Return the report's service, or why the document cannot become a run."""
    if not is_safe_report_id(report_id):
        return Reject(
            f"report id {report_id[:80]!r} is not usable: it must be 1-256 characters, "
            "not '.' or '..', without '/', '\\', NUL or control characters"
        )
    if len(doc) > MAX_DOCUMENT_FIELDS:
        return Reject(f"document has {len(doc)} fields, more than {MAX_DOCUMENT_FIELDS}")
    service = doc.get("service")
    if service is None:
        return Reject("document has no 'service' field")
    if not isinstance(service, str):
        return Reject(f"'service' must be a string, got {type(service).__name__}")
    svc = services.get(service)
    if svc is None:
        known = ", ".join(sorted(services)) or "none"
        return Reject(f"unknown service {service[:64]!r} (configured: {known})")
    hold = doc.get("manualHoldRelease", False)
    if not isinstance(hold, bool):
        return Reject(f"'manualHoldRelease' must be true or false, got {type(hold).__name__}")
    return svc


def decide_intake(
    report_id: str,
    doc: Mapping[str, Any],
    services: Mapping[str, ServiceConfig],
    existing: Sequence[ExistingRow],
    now: datetime,
) -> IntakeDecision:
    checked = validate_document(report_id, doc, services)
    if isinstance(checked, Reject):
        return checked
    # `existing` lists the report's rows oldest first (the ledger's id order). A row that
    # handed over to a successor (failed_retrying, temp_failed, failed_sync) is history once
    # the successor exists: the newest row is the report's state, plus any active row.
    current = [r.state for r in existing if is_active(r.state)]
    if existing:
        current.append(existing[-1].state)
    blocking = [s for s in current if blocks_new_run(s)]
    if blocking:
        return Ignore(f"report already has a {blocking[0].value} run")
    # Only finished-and-failed rows remain: resetting the store to Data Ready is a manual
    # retry, which opens a fresh generation.
    generation = max((r.generation for r in existing), default=0) + 1
    skip_cooldown = doc.get("manualHoldRelease") is True
    if checked.cooldown_seconds > 0 and not skip_cooldown:
        return Create(
            checked,
            generation,
            RunState.WAITING_COOLDOWN,
            now + timedelta(seconds=checked.cooldown_seconds),
        )
    return Create(checked, generation, RunState.QUEUED, now)

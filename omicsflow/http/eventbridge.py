"""Parsing a HealthOmics "Run Status Change" event from EventBridge. Pure."""

from __future__ import annotations

import json
from dataclasses import dataclass

MAX_EVENT_BYTES = 256 * 1024  # EventBridge's own event size limit


class BadEvent(ValueError):
    """The body is not a HealthOmics run status event; the message says why."""


@dataclass(frozen=True)
class RunStatusChange:
    run_id: str
    status: str
    uuid: str | None


def parse_run_status_change(body: bytes) -> RunStatusChange:
    if len(body) > MAX_EVENT_BYTES:
        raise BadEvent(f"event is {len(body)} bytes, over {MAX_EVENT_BYTES}")
    try:
        event = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise BadEvent(f"body is not JSON: {exc}") from exc
    if not isinstance(event, dict):
        raise BadEvent("event must be a JSON object")
    if event.get("source") != "aws.omics":
        raise BadEvent(f"source must be 'aws.omics', got {str(event.get('source'))[:40]!r}")
    if event.get("detail-type") != "Run Status Change":
        raise BadEvent(
            f"detail-type must be 'Run Status Change', got {str(event.get('detail-type'))[:40]!r}"
        )
    detail = event.get("detail")
    if not isinstance(detail, dict):
        raise BadEvent("event has no 'detail' object")
    run_id = detail.get("runId")
    status = detail.get("status")
    if not isinstance(run_id, str) or not run_id.isdigit() or len(run_id) > 18:
        raise BadEvent("detail.runId must be a HealthOmics run id (digits)")
    if not isinstance(status, str):
        raise BadEvent("detail.status must be a string")
    uuid = detail.get("uuid") if isinstance(detail.get("uuid"), str) else None
    return RunStatusChange(run_id, status[:32], uuid)

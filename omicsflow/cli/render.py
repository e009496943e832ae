"""Rendering ledger rows for people (rich tables) and for scripts (JSON)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from ledger.models import Run

JSON_FIELDS = (
    "id",
    "report_id",
    "service",
    "generation",
    "attempt",
    "seq",
    "state",
    "scheduled_run_at",
    "started_at",
    "finished_at",
    "exit_code",
    "error_type",
    "owner",
    "category",
    "summary",
    "action",
    "classified_by",
    "rule",
    "backend",
    "backend_run_id",
    "flow_run_id",
    "log_path",
    "reason",
    "notes",
)


def _plain(value: Any) -> Any:
    return value.isoformat() if isinstance(value, datetime) else value


def run_json(run: Run, detail: bool = False) -> dict[str, Any]:
    out = {k: _plain(getattr(run, k)) for k in JSON_FIELDS}
    if detail:
        out["evidence"] = {
            "exit_code": run.exit_code,
            "failure_reason": run.ev_failure_reason,
            "status_message": run.ev_status_message,
            "error_message": run.ev_error_message,
            "error_report": run.ev_error_report,
            "tasks": run.ev_tasks,
            "log_tail": run.ev_log_tail,
            "elapsed_seconds": run.ev_elapsed_seconds,
        }
        out["system_retries"] = run.system_retries
        out["created_at"] = _plain(run.created_at)
        out["backend_console_url"] = run.backend_console_url
    return out


def short_time(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%S") if value else "-"

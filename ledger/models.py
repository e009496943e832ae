"""Ledger tables: one row per attempt, the store-write outbox, the audit trail, intake rejects."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import JSON, Column, Index, Text, UniqueConstraint, text
from sqlmodel import Field, SQLModel

from ledger.types import UTCDateTime
from omicsflow.domain.states import ACTIVE_STATES


def utcnow() -> datetime:
    return datetime.now(UTC)


_ACTIVE_SQL = "state IN (" + ", ".join(f"'{s.value}'" for s in sorted(ACTIVE_STATES)) + ")"


class Run(SQLModel, table=True):
    """One attempt of one report. Evidence and classification columns are kept apart."""

    __tablename__ = "runs"
    __table_args__ = (
        UniqueConstraint("report_id", "generation", "attempt", "seq", name="uq_runs_position"),
        # At most one active row per report: two intake processes can never both create one.
        Index(
            "uq_runs_one_active_per_report",
            "report_id",
            unique=True,
            sqlite_where=text(_ACTIVE_SQL),
            postgresql_where=text(_ACTIVE_SQL),
        ),
        Index("ix_runs_state_scheduled", "state", "scheduled_run_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    report_id: str = Field(index=True, max_length=256)
    service: str = Field(max_length=64)
    generation: int = 1
    attempt: int = 1
    seq: int = 0
    system_retries: int = 0
    state: str = Field(max_length=32)
    backend: str = Field(default="local", max_length=32)

    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    scheduled_run_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    started_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    finished_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    heartbeat_at: datetime | None = Field(default=None, sa_type=UTCDateTime)

    exit_code: int | None = None
    # Evidence, field by field, exactly as the platform said it.
    ev_failure_reason: str | None = Field(default=None, sa_column=Column(Text))
    ev_status_message: str | None = Field(default=None, sa_column=Column(Text))
    ev_error_message: str | None = Field(default=None, sa_column=Column(Text))
    ev_error_report: str | None = Field(default=None, sa_column=Column(Text))
    ev_tasks: list[dict[str, Any]] | None = Field(default=None, sa_column=Column(JSON))
    ev_log_tail: str | None = Field(default=None, sa_column=Column(Text))
    ev_elapsed_seconds: float | None = None

    # Classification: never overwritten once set, except by an explicit reclassify.
    error_type: str | None = Field(default=None, max_length=16)
    owner: str | None = Field(default=None, max_length=32)
    category: str | None = Field(default=None, max_length=64)
    summary: str | None = Field(default=None, sa_column=Column(Text))
    action: str | None = Field(default=None, sa_column=Column(Text))
    classified_by: str | None = Field(default=None, max_length=16)
    rule: str | None = Field(default=None, max_length=100)

    backend_run_id: str | None = Field(default=None, max_length=256)
    backend_run_key: str | None = Field(default=None, max_length=256)
    backend_console_url: str | None = Field(default=None, sa_column=Column(Text))
    # The full remote handle (run id, uuid/key, extras) so a restarted serve re-attaches.
    backend_handle: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON))
    remote_status: str | None = Field(default=None, max_length=64)  # as the platform says
    remote_state: str | None = Field(default=None, max_length=16)  # normalised RemoteState
    remote_checked_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    flow_run_id: str | None = Field(default=None, index=True, max_length=64)
    log_path: str | None = Field(default=None, sa_column=Column(Text))
    pgid: int | None = None
    reason: str | None = Field(default=None, sa_column=Column(Text))
    notes: str | None = Field(default=None, sa_column=Column(Text))
    report_data: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON))


class PendingStoreWrite(SQLModel, table=True):
    """A terminal write recorded before it is tried, so a crash cannot lose it (outbox)."""

    __tablename__ = "pending_store_writes"

    id: int | None = Field(default=None, primary_key=True)
    run_id: int = Field(unique=True, foreign_key="runs.id")
    report_id: str = Field(max_length=256)
    target_state: str = Field(max_length=32)
    fields: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    tries: int = 0
    last_error: str | None = Field(default=None, sa_column=Column(Text))
    last_try_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class AuditEntry(SQLModel, table=True):
    """Every operator command (cancel, retry, reclassify...) with who, what and the result."""

    __tablename__ = "audit_log"

    id: int | None = Field(default=None, primary_key=True)
    at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    actor: str = Field(max_length=128)
    command: str = Field(max_length=64)
    run_id: int | None = None
    report_id: str | None = Field(default=None, max_length=256)
    result: str = Field(max_length=32)
    detail: str | None = Field(default=None, sa_column=Column(Text))


class IntakeRejection(SQLModel, table=True):
    """A report document intake could not accept: recorded and skipped, never a crash."""

    __tablename__ = "intake_rejections"

    id: int | None = Field(default=None, primary_key=True)
    at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    report_id: str = Field(max_length=256, index=True)
    reason: str = Field(sa_column=Column(Text, nullable=False))
    document: str | None = Field(default=None, sa_column=Column(Text))


class SystemFlag(SQLModel, table=True):
    """Process-independent switches, e.g. the report-store outage flag intake obeys."""

    __tablename__ = "system_flags"

    key: str = Field(primary_key=True, max_length=64)
    value: str = Field(max_length=256)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)

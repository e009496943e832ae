"""Tables of the local report store, kept in the ledger database.

`local_reports` holds the documents; `local_report_changes` is an append-only log of status
changes, written in the same transaction as the change itself, that the watch tails by id.
They live on the default `SQLModel.metadata` so the ledger's alembic migrations include them.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import JSON, Column, DateTime, ForeignKey, String
from sqlmodel import Field, SQLModel


def utcnow() -> datetime:
    return datetime.now(UTC)


class LocalReport(SQLModel, table=True):
    __tablename__ = "local_reports"

    id: str = Field(sa_column=Column(String(200), primary_key=True))
    # Indexed: the watch's snapshot and resync select every "Data Ready" report.
    status: str = Field(sa_column=Column(String(64), nullable=False, index=True))
    # Every field except the status, exactly as `create`/`write_failed` were given them.
    data: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    created_at: datetime = Field(
        default_factory=utcnow, sa_column=Column(DateTime(timezone=True), nullable=False)
    )
    updated_at: datetime = Field(
        default_factory=utcnow, sa_column=Column(DateTime(timezone=True), nullable=False)
    )


class LocalReportChange(SQLModel, table=True):
    __tablename__ = "local_report_changes"
    # Without AUTOINCREMENT SQLite may hand out an id again once the highest row is deleted
    # (the ledger's cleanup prunes this log), and a reused id would sit behind the cursor.
    __table_args__ = {"sqlite_autoincrement": True}

    id: int | None = Field(default=None, primary_key=True)
    report_id: str = Field(
        sa_column=Column(
            String(200),
            ForeignKey("local_reports.id", ondelete="CASCADE"),
            nullable=False,
            index=True,
        )
    )
    # The status the report entered with this change.
    status: str = Field(sa_column=Column(String(64), nullable=False))
    changed_at: datetime = Field(
        default_factory=utcnow, sa_column=Column(DateTime(timezone=True), nullable=False)
    )

"""What a platform said about a failure, field by field. Fields are never merged."""

from __future__ import annotations

from enum import Enum

from pydantic import BaseModel, ConfigDict, Field


class Platform(str, Enum):
    LOCAL = "local"
    HEALTHOMICS = "healthomics"
    SEQERA = "seqera"
    BLAST = "blast"


class TaskEvidence(BaseModel):
    """One failing task (HealthOmics run task, Seqera/Nextflow task)."""

    model_config = ConfigDict(frozen=True)

    name: str | None = None
    status: str | None = None
    failure_reason: str | None = None
    status_message: str | None = None
    exit_code: int | None = None
    log_location: str | None = None


class Evidence(BaseModel):
    """Raw failure evidence. Each field holds exactly what its source said."""

    model_config = ConfigDict(frozen=True)

    platform: Platform = Platform.LOCAL
    exit_code: int | None = None
    # HealthOmics GetRun fields, kept apart.
    failure_reason: str | None = None
    status_message: str | None = None
    # Seqera workflow fields, kept apart.
    error_message: str | None = None
    error_report: str | None = None
    tasks: tuple[TaskEvidence, ...] = Field(default_factory=tuple)
    log_tail: str | None = None
    elapsed_seconds: float | None = None
    # Service policy facts the rules need (e.g. the service's temp-fail exit code).
    temp_fail_exit_code: int | None = None

"""The backend contract: submit returns a handle; the handle is polled, cancelled, explained.

Remote backends (HealthOmics, Seqera, ElasticBLAST) never hold a process while a run is in
flight: the attempt flow submits, records the handle in the ledger and suspends; one poller
calls `poll_many` for all in-flight handles and resumes the flow when a run is terminal.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from classifiers.evidence import Evidence


class RemoteState(str, enum.Enum):
    """Normalised remote run state. Platform enums map onto these; unknown values → UNKNOWN."""

    PENDING = "pending"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"
    UNKNOWN = "unknown"


TERMINAL_REMOTE_STATES: frozenset[RemoteState] = frozenset(
    {RemoteState.SUCCEEDED, RemoteState.FAILED, RemoteState.CANCELLED}
)


@dataclass(frozen=True)
class AttemptIdentity:
    """Which attempt a submission belongs to; the source of every idempotency token."""

    run_id: int
    report_id: str
    service: str
    generation: int
    attempt: int
    seq: int

    @property
    def token(self) -> str:
        """Deterministic, platform-safe name/token for this attempt (≤ 128 chars)."""
        safe = "".join(c if c.isalnum() or c in "-_" else "-" for c in self.report_id)[:60]
        suffix = f"g{self.generation}-a{self.attempt}-s{self.seq}"
        return f"omicsflow-{self.service[:30]}-{safe}-{suffix}"


@dataclass(frozen=True)
class SubmitRequest:
    identity: AttemptIdentity
    # Parameters already rendered from the service's template and the report's fields.
    parameters: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class RunHandle:
    """What identifies a submitted remote run. `key` is unique forever (HealthOmics: uuid)."""

    backend: str
    run_id: str
    key: str
    console_url: str | None = None
    extra: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class PollResult:
    handle: RunHandle
    state: RemoteState
    raw_status: str
    message: str | None = None

    @property
    def terminal(self) -> bool:
        return self.state in TERMINAL_REMOTE_STATES


class RemoteBackend(Protocol):
    name: str

    def submit(self, request: SubmitRequest) -> RunHandle:
        """Start the run, or return the existing one for the same attempt (never two)."""
        ...

    def poll_many(self, handles: Sequence[RunHandle]) -> list[PollResult]:
        """Current state of each handle, within the platform's API quota."""
        ...

    def cancel(self, handle: RunHandle) -> None: ...

    def collect_evidence(self, handle: RunHandle) -> Evidence:
        """Failure evidence field by field, including failing tasks."""
        ...

    def list_outputs(self, handle: RunHandle) -> list[str]: ...

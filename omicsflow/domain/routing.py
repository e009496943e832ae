"""Outcome routing: what an attempt's outcome does to its row and which row comes next.

Pure: no clock, no I/O. The caller passes `now` and applies the decision.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime, timedelta

from classifiers.taxonomy import ErrorType
from omicsflow.domain.states import RunState, terminal_failure_state
from omicsflow.services import ServicePolicy

CANCELLED_REASON = "Cancelled by operator"
WITHDRAWN_REASON = "Withdrawn from Firestore"


class OutcomeKind(str, enum.Enum):
    SUCCEEDED = "succeeded"
    TEMP_FAILED = "temp_failed"
    FAILED = "failed"
    CANCELLED = "cancelled"


@dataclass(frozen=True)
class Outcome:
    kind: OutcomeKind
    error_type: ErrorType | None = None  # set when kind is FAILED
    reason: str = ""


@dataclass(frozen=True)
class AttemptPosition:
    """Where a row stands in its report's series."""

    generation: int
    attempt: int
    seq: int
    system_retries: int


@dataclass(frozen=True)
class NextRow:
    generation: int
    attempt: int
    seq: int
    system_retries: int
    scheduled_at: datetime
    notes: str


@dataclass(frozen=True)
class Decision:
    state: RunState
    next_row: NextRow | None
    # Terminal failures are written to the report store first (Firestore first).
    write_store: bool
    reason: str


def route(pos: AttemptPosition, outcome: Outcome, policy: ServicePolicy, now: datetime) -> Decision:
    if outcome.kind is OutcomeKind.SUCCEEDED:
        return Decision(RunState.SUCCEEDED, None, False, outcome.reason)
    if outcome.kind is OutcomeKind.CANCELLED:
        return Decision(RunState.CANCELLED, None, True, outcome.reason or CANCELLED_REASON)
    if outcome.kind is OutcomeKind.TEMP_FAILED:
        # Inputs not there yet: same attempt number, no retry consumed, no upper bound (seed 004).
        nxt = NextRow(
            pos.generation,
            pos.attempt,
            pos.seq + 1,
            pos.system_retries,
            now + timedelta(seconds=policy.temp_fail_retry_delay_seconds),
            "temp_fail_retry",
        )
        return Decision(RunState.TEMP_FAILED, nxt, False, outcome.reason)
    error_type = outcome.error_type or ErrorType.USER
    if error_type is ErrorType.SYSTEM and pos.system_retries < policy.max_system_retries:
        # Infrastructure failures retry with exponential backoff on their own budget, so a
        # flaky platform never spends the lab's retries.
        delay = policy.system_retry_delay_seconds * (2**pos.system_retries)
        nxt = NextRow(
            pos.generation,
            pos.attempt,
            pos.seq + 1,
            pos.system_retries + 1,
            now + timedelta(seconds=delay),
            "system_retry",
        )
        return Decision(RunState.FAILED_RETRYING, nxt, False, outcome.reason)
    if error_type is ErrorType.USER and pos.attempt < policy.max_retries:
        nxt = NextRow(
            pos.generation,
            pos.attempt + 1,
            0,
            pos.system_retries,
            now + timedelta(seconds=policy.retry_delay_seconds),
            "retry",
        )
        return Decision(RunState.FAILED_RETRYING, nxt, False, outcome.reason)
    return Decision(terminal_failure_state(error_type), None, True, outcome.reason)


def sync_retry_row(pos: AttemptPosition, policy: ServicePolicy, now: datetime) -> NextRow:
    """After failed_sync: a fresh series (new generation, attempt 1) after the long delay."""
    return NextRow(
        pos.generation + 1,
        1,
        0,
        0,
        now + timedelta(seconds=policy.failed_sync_retry_delay_seconds),
        "sync_retry",
    )

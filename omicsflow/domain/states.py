"""Run states of the ledger and the one table of legal transitions.

Every "is this active / terminal / blocking" question in omicsflow is answered here, and
`docs/run-states.md` is checked against TRANSITIONS by a test so the two cannot drift.
"""

from __future__ import annotations

import enum

from classifiers.taxonomy import ErrorType


class RunState(str, enum.Enum):
    RECEIVED = "received"
    MANUAL_HOLD = "manual_hold"
    WAITING_COOLDOWN = "waiting_cooldown"
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED_RETRYING = "failed_retrying"
    TEMP_FAILED = "temp_failed"
    FAILED_SYNC = "failed_sync"
    FAILED_PERMANENT = "failed_permanent"
    SYSTEM_ERROR = "system_error"
    CANCELLED = "cancelled"


S = RunState

ACTIVE_STATES: frozenset[RunState] = frozenset(
    {S.RECEIVED, S.MANUAL_HOLD, S.WAITING_COOLDOWN, S.QUEUED, S.RUNNING}
)
# Not yet started: a withdraw or cancel may end these without touching a process.
PENDING_STATES: frozenset[RunState] = frozenset(
    {S.RECEIVED, S.MANUAL_HOLD, S.WAITING_COOLDOWN, S.QUEUED}
)
# Outcomes that end the report's series and need a person (Firestore says Failed).
TERMINAL_FAILURE_STATES: frozenset[RunState] = frozenset(
    {S.FAILED_PERMANENT, S.SYSTEM_ERROR, S.CANCELLED}
)
# The report is finished or has a successor row scheduled: a replayed ADDED must be ignored.
DEDUP_BLOCKING_STATES: frozenset[RunState] = ACTIVE_STATES | frozenset(
    {S.SUCCEEDED, S.FAILED_RETRYING, S.TEMP_FAILED, S.FAILED_SYNC}
)

TRANSITIONS: dict[RunState, frozenset[RunState]] = {
    S.RECEIVED: frozenset(
        {S.MANUAL_HOLD, S.WAITING_COOLDOWN, S.QUEUED, S.FAILED_PERMANENT, S.CANCELLED}
    ),
    S.MANUAL_HOLD: frozenset({S.WAITING_COOLDOWN, S.QUEUED, S.FAILED_PERMANENT, S.CANCELLED}),
    S.WAITING_COOLDOWN: frozenset({S.QUEUED, S.RUNNING, S.FAILED_PERMANENT, S.CANCELLED}),
    S.QUEUED: frozenset({S.RUNNING, S.FAILED_PERMANENT, S.CANCELLED}),
    S.RUNNING: frozenset(
        {
            S.SUCCEEDED,
            S.FAILED_RETRYING,
            S.TEMP_FAILED,
            S.FAILED_SYNC,
            S.FAILED_PERMANENT,
            S.SYSTEM_ERROR,
            S.CANCELLED,
        }
    ),
    S.SUCCEEDED: frozenset(),
    S.FAILED_RETRYING: frozenset(),
    S.TEMP_FAILED: frozenset(),
    S.FAILED_SYNC: frozenset(),
    # A later (LLM or operator) reclassification that flips the error type moves a finished
    # failure to the other terminal state; nothing else ever leaves a terminal state.
    S.FAILED_PERMANENT: frozenset({S.SYSTEM_ERROR}),
    S.SYSTEM_ERROR: frozenset({S.FAILED_PERMANENT}),
    S.CANCELLED: frozenset(),
}


def is_active(state: RunState) -> bool:
    return state in ACTIVE_STATES


def blocks_new_run(state: RunState) -> bool:
    return state in DEDUP_BLOCKING_STATES


def can_transition(src: RunState, dst: RunState) -> bool:
    return dst in TRANSITIONS[src]


def terminal_failure_state(error_type: ErrorType) -> RunState:
    """The one rule: a system error ends as system_error, any other failure failed_permanent."""
    return S.SYSTEM_ERROR if error_type is ErrorType.SYSTEM else S.FAILED_PERMANENT


class IllegalTransition(ValueError):
    def __init__(self, src: RunState, dst: RunState) -> None:
        super().__init__(f"illegal run-state transition {src.value} -> {dst.value}")
        self.src, self.dst = src, dst


# The Prefect state each ledger outcome is mirrored to: (state type, custom name).
PREFECT_STATE_FOR: dict[RunState, tuple[str, str]] = {
    S.SUCCEEDED: ("COMPLETED", "Completed"),
    S.FAILED_RETRYING: ("FAILED", "Retrying"),
    S.TEMP_FAILED: ("FAILED", "TempFailed"),
    S.FAILED_SYNC: ("FAILED", "SyncFailed"),
    S.FAILED_PERMANENT: ("FAILED", "UserError"),
    S.SYSTEM_ERROR: ("FAILED", "SystemError"),
    S.CANCELLED: ("CANCELLED", "Cancelled"),
}

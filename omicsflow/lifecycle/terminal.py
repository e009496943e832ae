"""Terminal writes, Firestore first.

Order for every terminal failure: record the write in the outbox (survives a crash), write
the report store, then move the ledger row. Once the store says Failed the listener stops
emitting events for the report, while the still-active ledger row keeps dedup closed, so no
replay can start a parallel attempt in between.

If the store write fails but the store answers a connectivity check, the problem is with this
one document: the row becomes failed_sync and a fresh series is scheduled after a long delay.
If the store is unreachable it is an outage: the write stays in the outbox, the row stays as
it is, intake pauses (a flag in the ledger) and the outbox drainer retries until it succeeds.
"""

from __future__ import annotations

import enum
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from ledger.models import PendingStoreWrite, Run
from ledger.repo import OUTAGE_FLAG, Ledger
from omicsflow.domain.routing import AttemptPosition, sync_retry_row
from omicsflow.domain.states import PENDING_STATES, RunState
from omicsflow.errors import ReportNotFoundError, StoreUnavailableError, StoreWriteError
from omicsflow.services import ServicePolicy
from omicsflow.stores.base import ReportStore

log = logging.getLogger(__name__)

# A terminal write may close a row that is running, or one that never started (cancel).
CLOSABLE_FROM = (RunState.RUNNING, *sorted(PENDING_STATES))


class WriteResult(str, enum.Enum):
    APPLIED = "applied"  # store written (or document gone), ledger moved
    FAILED_SYNC = "failed_sync"  # store reachable but refused this document
    OUTAGE = "outage"  # store unreachable; the write waits in the outbox
    SUPERSEDED = "superseded"  # the row had already left the closable states


@dataclass(frozen=True)
class TerminalOutcome:
    result: WriteResult
    successor: Run | None = None


def store_fields(run: Run, state: RunState, reason: str, now: datetime) -> dict[str, Any]:
    """What the report document says after a terminal failure (camelCase, Firestore style)."""
    return {
        "failureReason": reason[:1000],
        "errorType": run.error_type or ("system" if state is RunState.SYSTEM_ERROR else "user"),
        "failureOwner": run.owner or "ambiguous",
        "failureSummary": (run.summary or reason)[:1000],
        "failureAction": (run.action or "")[:1000],
        "failureCategory": run.category or "",
        "failedAt": now.isoformat(),
        "attempts": run.attempt,
        "omicsflowRunId": run.id,
        "omicsflowState": state.value,
    }


def write_terminal(
    ledger: Ledger,
    store: ReportStore,
    run: Run,
    state: RunState,
    reason: str,
    policy: ServicePolicy,
    allowed_from: Iterable[RunState] = CLOSABLE_FROM,
    now: datetime | None = None,
) -> TerminalOutcome:
    assert run.id is not None
    now = now or datetime.now(UTC)
    pw = ledger.add_pending_write(
        run.id, run.report_id, state, store_fields(run, state, reason, now)
    )
    return apply_pending(ledger, store, pw, policy, allowed_from, reason=reason)


def apply_pending(
    ledger: Ledger,
    store: ReportStore,
    pw: PendingStoreWrite,
    policy: ServicePolicy | None,
    allowed_from: Iterable[RunState] = CLOSABLE_FROM,
    reason: str | None = None,
) -> TerminalOutcome:
    """Try one recorded write and, if it landed, move the ledger row. Safe to repeat."""
    run = ledger.get(pw.run_id)
    if run is None or run.state not in {s.value for s in allowed_from}:
        ledger.drop_pending_write(pw.run_id)
        return TerminalOutcome(WriteResult.SUPERSEDED)
    target = RunState(pw.target_state)
    reason = reason or str(pw.fields.get("failureReason", ""))
    note: str | None = None
    try:
        store.write_failed(pw.report_id, pw.fields)
    except ReportNotFoundError:
        # Nothing left to tell: the document was deleted. The ledger still records the end.
        note = "report document no longer exists; store not written"
    except (StoreUnavailableError, StoreWriteError) as exc:
        ledger.note_write_failure(pw.id or 0, str(exc))
        if not store.check_connectivity():
            ledger.set_flag(OUTAGE_FLAG, f"since {datetime.now(UTC).isoformat()}: {exc}"[:250])
            log.warning("report store unreachable; terminal write for run %s queued", pw.run_id)
            return TerminalOutcome(WriteResult.OUTAGE)
        if isinstance(exc, StoreUnavailableError):
            # A timeout or an unavailable answer while the store is reachable again (an
            # outage just ending): not this document's fault. Keep the write and retry it.
            log.warning("terminal write for run %s timed out; retrying", pw.run_id)
            return TerminalOutcome(WriteResult.OUTAGE)
        return _failed_sync(ledger, run, pw, policy, str(exc))
    moved, _ = ledger.transition(
        pw.run_id,
        target,
        allowed_from,
        None,
        finished_at=datetime.now(UTC),
        reason=reason,
        **({"notes": _append(run.notes, note)} if note else {}),
    )
    ledger.drop_pending_write(pw.run_id)
    return TerminalOutcome(WriteResult.APPLIED if moved else WriteResult.SUPERSEDED)


def _failed_sync(
    ledger: Ledger, run: Run, pw: PendingStoreWrite, policy: ServicePolicy | None, error: str
) -> TerminalOutcome:
    if run.state != RunState.RUNNING.value:
        # A cancel of a run that never started: nothing to retry. The ledger records the
        # cancel and why the store still says otherwise; the operator is told (cancel_run).
        moved, _ = ledger.transition(
            pw.run_id,
            RunState(pw.target_state),
            PENDING_STATES,
            None,
            finished_at=datetime.now(UTC),
            reason=f"[FIRESTORE_SYNC_FAILED] {error}"[:2000],
        )
        ledger.drop_pending_write(pw.run_id)
        return TerminalOutcome(WriteResult.FAILED_SYNC if moved else WriteResult.SUPERSEDED)
    pos = AttemptPosition(run.generation, run.attempt, run.seq, run.system_retries)
    nxt = sync_retry_row(pos, policy or ServicePolicy(), datetime.now(UTC))
    moved, successor = ledger.transition(
        pw.run_id,
        RunState.FAILED_SYNC,
        [RunState.RUNNING],
        next_row=nxt,
        finished_at=datetime.now(UTC),
        reason=f"[FIRESTORE_SYNC_FAILED] {error}"[:2000],
    )
    ledger.drop_pending_write(pw.run_id)
    if not moved:
        return TerminalOutcome(WriteResult.SUPERSEDED)
    return TerminalOutcome(WriteResult.FAILED_SYNC, successor)


def _append(notes: str | None, note: str) -> str:
    return f"{notes}; {note}" if notes else note

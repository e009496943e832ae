"""Applying an attempt's outcome: route it, write the store first if terminal, move the row."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from ledger.models import Run
from ledger.repo import Ledger
from omicsflow.domain.routing import AttemptPosition, Outcome, route
from omicsflow.domain.states import RunState
from omicsflow.lifecycle.terminal import WriteResult, write_terminal
from omicsflow.services import ServicePolicy
from omicsflow.stores.base import ReportStore


@dataclass(frozen=True)
class Finished:
    state: RunState
    successor: Run | None = None
    # True when the terminal store write is waiting in the outbox (report store outage).
    pending_write: bool = False
    superseded: bool = False


def position(run: Run) -> AttemptPosition:
    return AttemptPosition(run.generation, run.attempt, run.seq, run.system_retries)


def finish_attempt(
    ledger: Ledger,
    store: ReportStore,
    run: Run,
    outcome: Outcome,
    policy: ServicePolicy,
    now: datetime | None = None,
) -> Finished:
    assert run.id is not None
    now = now or datetime.now(UTC)
    decision = route(position(run), outcome, policy, now)
    if not decision.write_store:
        moved, successor = ledger.transition(
            run.id,
            decision.state,
            [RunState.RUNNING],
            next_row=decision.next_row,
            finished_at=now,
            reason=decision.reason or None,
        )
        return _mirror(ledger, run) if not moved else Finished(decision.state, successor)
    # Re-read: the row carries the classification the store write reports.
    current = ledger.get(run.id) or run
    res = write_terminal(
        ledger, store, current, decision.state, decision.reason, policy, [RunState.RUNNING], now
    )
    if res.result is WriteResult.APPLIED:
        return Finished(decision.state)
    if res.result is WriteResult.FAILED_SYNC:
        return Finished(RunState.FAILED_SYNC, res.successor)
    if res.result is WriteResult.OUTAGE:
        return Finished(decision.state, pending_write=True)
    return _mirror(ledger, run)


def _mirror(ledger: Ledger, run: Run) -> Finished:
    """Someone else (an operator cancel, a withdraw) already closed the row."""
    assert run.id is not None
    current = ledger.get(run.id)
    return Finished(RunState(current.state) if current else RunState.CANCELLED, superseded=True)

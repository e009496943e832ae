"""Intake: report-store events become ledger rows and scheduled attempt flow runs."""

from __future__ import annotations

import enum
import logging
from collections.abc import Callable
from datetime import UTC, datetime

from ledger.models import Run
from ledger.repo import Ledger
from omicsflow.domain.intake import Create, ExistingRow, Ignore, Reject, decide_intake
from omicsflow.domain.routing import WITHDRAWN_REASON
from omicsflow.domain.states import PENDING_STATES, RunState
from omicsflow.lifecycle.scheduling import FlowRuns
from omicsflow.services import ServicesFile
from omicsflow.stores.base import ChangeKind, ReportEvent

log = logging.getLogger(__name__)


class IntakeResult(str, enum.Enum):
    CREATED = "created"
    DUPLICATE = "duplicate"  # dedup, or another intake process won the race
    REJECTED = "rejected"
    WITHDRAWN = "withdrawn"
    NOTHING = "nothing"


class Intake:
    def __init__(
        self,
        ledger: Ledger,
        services: ServicesFile,
        flow_runs: FlowRuns,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        schedule: Callable[[Run], None] | None = None,
    ) -> None:
        self.ledger = ledger
        self.services = services
        self.flow_runs = flow_runs
        self.clock = clock
        # Who creates the new row's flow run: by default at once; the intake loop batches.
        self._schedule = schedule or self.schedule

    def handle(self, event: ReportEvent) -> IntakeResult:
        if event.kind is ChangeKind.ADDED:
            return self.added(event)
        return self.removed(event)

    def added(self, event: ReportEvent) -> IntakeResult:
        existing = [
            ExistingRow(generation, RunState(state))
            for generation, state in self.ledger.intake_view(event.report_id)
        ]
        decision = decide_intake(
            event.report_id, event.data, self.services.services, existing, self.clock()
        )
        if isinstance(decision, Reject):
            self.ledger.reject(event.report_id, decision.reason, dict(event.data))
            log.warning("report %r rejected: %s", event.report_id[:80], decision.reason)
            return IntakeResult.REJECTED
        if isinstance(decision, Ignore):
            return IntakeResult.DUPLICATE
        assert isinstance(decision, Create)
        row = self.ledger.create_run(
            Run(
                report_id=event.report_id,
                service=decision.service.name,
                backend=decision.service.backend,
                generation=decision.generation,
                state=decision.state.value,
                scheduled_run_at=decision.scheduled_at,
                report_data=_jsonable(event.data),
                notes="manual_hold_release"
                if event.data.get("manualHoldRelease") is True
                else None,
            )
        )
        if row is None:
            return IntakeResult.DUPLICATE
        self._schedule(row)
        return IntakeResult.CREATED

    def schedule(self, row: Run) -> None:
        assert row.id is not None
        flow_run_id = self.flow_runs.create(row)
        self.ledger.set_flow_run(row.id, flow_run_id)

    def removed(self, event: ReportEvent) -> IntakeResult:
        """The report left "Data Ready" because an operator changed it: mirror, never write back."""
        row = self.ledger.active_for_report(event.report_id)
        if row is None or row.id is None or RunState(row.state) not in PENDING_STATES:
            # Running rows are left alone: stopping a pipeline mid-write is worse (seed 004).
            return IntakeResult.NOTHING
        moved, _ = self.ledger.transition(
            row.id,
            RunState.FAILED_PERMANENT,
            PENDING_STATES,
            finished_at=self.clock(),
            reason=WITHDRAWN_REASON,
        )
        if moved and row.flow_run_id:
            self.flow_runs.request_cancel(row.flow_run_id, WITHDRAWN_REASON)
        return IntakeResult.WITHDRAWN if moved else IntakeResult.NOTHING

    def reconcile(self) -> int:
        """Create flow runs for active rows whose creator died before doing it."""
        n = 0
        for row in self.ledger.active_without_flow_run():
            self.schedule(row)
            n += 1
        return n


def _jsonable(data: object) -> dict[str, object]:
    import json

    try:
        return dict(json.loads(json.dumps(data, default=str)))
    except (TypeError, ValueError):
        return {}

"""Recovery: rows left `running` by a process that died are closed and retried."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from classifiers.taxonomy import Classification, ClassifiedBy, ErrorType, Owner
from ledger.models import Run
from ledger.repo import Ledger
from omicsflow.domain.routing import Outcome, OutcomeKind
from omicsflow.lifecycle.finish import Finished, finish_attempt
from omicsflow.services import ServicePolicy, ServicesFile
from omicsflow.stores.base import ReportStore

log = logging.getLogger(__name__)

# Backends whose attempts hold a process (and so a heartbeat) while running.
PROCESS_BACKENDS = ("local",)

PROCESS_LOST = Classification(
    owner=Owner.PLATFORM,
    category="orchestrator_process_lost",
    summary="The process running this attempt stopped without reporting a result "
    "(host reboot, OOM kill or a crash of omicsflow serve).",
    action="No action needed for a single occurrence: omicsflow retries automatically. "
    "If it repeats, check the host's memory and the serve logs.",
    classified_by=ClassifiedBy.RULES,
    rule="omicsflow.recovery.process_lost",
)


@dataclass(frozen=True)
class Recovered:
    run_id: int
    result: Finished


def recover_stale(
    ledger: Ledger,
    store: ReportStore,
    services: ServicesFile,
    stale_after_seconds: float,
    now: datetime | None = None,
) -> list[Recovered]:
    now = now or datetime.now(UTC)
    out: list[Recovered] = []
    for run in ledger.stale_running(now - timedelta(seconds=stale_after_seconds), PROCESS_BACKENDS):
        assert run.id is not None
        res = recover_run(ledger, store, services, run, now)
        log.warning("recovered run %s (%s): %s", run.id, run.report_id, res.state.value)
        out.append(Recovered(run.id, res))
    return out


def recover_run(
    ledger: Ledger,
    store: ReportStore,
    services: ServicesFile,
    run: Run,
    now: datetime | None = None,
) -> Finished:
    """Close a running row whose process is gone as a system failure (retried on the
    platform's own budget, never the lab's)."""
    assert run.id is not None
    policy: ServicePolicy = services.get(run.service) or ServicePolicy()
    ledger.update_fields(run.id, **_classification_fields(run.classified_by))
    outcome = Outcome(OutcomeKind.FAILED, ErrorType.SYSTEM, "process lost while running")
    return finish_attempt(ledger, store, run, outcome, policy, now)


def _classification_fields(already: str | None) -> dict[str, str]:
    if already:  # never overwrite a classification once set
        return {}
    return PROCESS_LOST.as_record()

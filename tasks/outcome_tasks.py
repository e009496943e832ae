"""Tasks that apply an attempt's outcome and schedule what comes next."""

from __future__ import annotations

from prefect import task

from omicsflow.domain.routing import Outcome
from omicsflow.lifecycle.finish import Finished, finish_attempt
from omicsflow.lifecycle.scheduling import FlowRuns
from omicsflow.runtime import get_runtime
from omicsflow.services import ServicePolicy


@task(name="apply-outcome")
def apply_outcome(run_id: int, outcome: Outcome) -> Finished:
    """Route the outcome; terminal failures write the report store before the ledger."""
    rt = get_runtime()
    run = rt.ledger.get(run_id)
    assert run is not None
    policy = rt.services.get(run.service) or ServicePolicy()
    return finish_attempt(rt.ledger, rt.store, run, outcome, policy)


@task(name="schedule-successor")
def schedule_successor(successor_id: int) -> str:
    """Create the successor row's flow run (Scheduled at its retry time)."""
    rt = get_runtime()
    row = rt.ledger.get(successor_id)
    assert row is not None and row.id is not None
    flow_runs = FlowRuns()
    try:
        flow_run_id = flow_runs.create(row)
    finally:
        flow_runs.close()
    rt.ledger.set_flow_run(row.id, flow_run_id)
    return flow_run_id

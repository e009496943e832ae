"""Tasks of the enrichment flow: one side effect each."""

from __future__ import annotations

import uuid

from prefect import task
from prefect.client.orchestration import get_client
from prefect.client.schemas.actions import ArtifactCreate
from prefect.states import Failed

from blocks.llm import load_llm_config
from ledger.models import Run
from omicsflow.domain.failure_card import render_failure_card
from omicsflow.domain.states import PREFECT_STATE_FOR, RunState
from omicsflow.lifecycle.enrichment import EnrichResult, enrich_run
from omicsflow.runtime import get_runtime


class AttemptStillRunning(RuntimeError):
    """The attempt's flow run has not reached its final state yet (retried shortly)."""


@task(name="enrich-classification")
def enrich_classification(run_id: int, reclassify: bool = False) -> EnrichResult:
    """Ask the integration's LLM and write its answer: ledger, and the (already Failed) report
    document of a finished failure. Writes nothing when the LLM is off, fails or agrees."""
    rt = get_runtime()
    run = rt.ledger.get(run_id)
    policy = rt.services.get(run.service) if run is not None else None
    return enrich_run(
        rt.ledger,
        rt.store,
        run_id,
        load_llm_config,
        reclassify,
        temp_fail_exit_code=policy.temp_fail_exit_code if policy is not None else None,
        actor="reclassify-flow" if reclassify else "llm-enrichment",
    )


def failure_card_key(run_id: int) -> str:
    return f"failure-card-{run_id}"


def publish_card_for(run: Run, revised_from: str | None) -> None:
    """A new version of the attempt's failure card, attached to the attempt's flow run."""
    assert run.id is not None
    with get_client(sync_client=True) as client:
        client.create_artifact(
            ArtifactCreate(
                key=failure_card_key(run.id),
                type="markdown",
                data=render_failure_card(run, revised_from=revised_from),
                description=f"Who must fix run {run.id} ({run.report_id}) and why (revised)",
                flow_run_id=uuid.UUID(run.flow_run_id) if run.flow_run_id else None,
            )
        )


@task(name="publish-revised-failure-card")
def publish_revised_card(run_id: int, revised_from: str | None) -> None:
    run = get_runtime().ledger.get(run_id)
    if run is not None:
        publish_card_for(run, revised_from)


def mirror_state_to(flow_run_id: str, state: RunState, message: str) -> bool:
    """Force the attempt's flow run into the ledger's new terminal state (custom name), once
    the attempt itself has finished; True if the state was set."""
    _, name = PREFECT_STATE_FOR[state]
    with get_client(sync_client=True) as client:
        fr = client.read_flow_run(uuid.UUID(flow_run_id))
        if fr.state is None or not fr.state.is_final():
            raise AttemptStillRunning(f"flow run {flow_run_id} is {fr.state_name}")
        if fr.state.name == name:
            return False
        client.set_flow_run_state(
            uuid.UUID(flow_run_id), Failed(name=name, message=message[:1000]), force=True
        )
        return True


# The attempt returns its final state right after it announced the failure: a few retries
# cover the window in which enrichment could finish first.
@task(name="mirror-attempt-state", retries=20, retry_delay_seconds=1)
def mirror_attempt_state(run_id: int) -> bool:
    run = get_runtime().ledger.get(run_id)
    if run is None or not run.flow_run_id:
        return False
    state = RunState(run.state)
    message = f"Reclassified after the failure: {run.summary or ''}"
    return mirror_state_to(run.flow_run_id, state, message)

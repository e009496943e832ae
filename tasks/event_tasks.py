"""Events omicsflow emits; automations (LLM enrichment, notifications) react to them."""

from __future__ import annotations

from prefect import task
from prefect.events import emit_event

from omicsflow.settings import get_settings

RUN_FAILED_EVENT = "omicsflow.run.failed"


def run_resource(run_id: int) -> dict[str, str]:
    return {
        "prefect.resource.id": f"omicsflow.run.{run_id}",
        "omicsflow.instance": get_settings().instance,
    }


@task(name="announce-failure")
def announce_failure(run_id: int, state: str) -> None:
    """Emitted after the status write: enrichment can never delay it."""
    emit_event(
        event=RUN_FAILED_EVENT,
        resource=run_resource(run_id),
        payload={"run_id": run_id, "state": state},
    )

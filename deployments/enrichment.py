"""The enrichment deployment: run `omicsflow-enrich` whenever an attempt of this installation
announces a failure (`omicsflow.run.failed`, emitted after the status write)."""

from __future__ import annotations

from typing import Any

from omicsflow.settings import Settings

RUN_FAILED_EVENT = "omicsflow.run.failed"  # tasks.event_tasks.RUN_FAILED_EVENT (no Prefect here)


def enrich_deployment_name(settings: Settings) -> str:
    return "enrich" if settings.instance == "default" else f"enrich-{settings.instance}"


def enrichment_deployment_kwargs(settings: Settings) -> dict[str, Any]:
    """Keyword arguments for `Runner.add_flow(enrich_flow, **kwargs)`.

    Imports Prefect: call it only after `serve` configured the environment."""
    from prefect.events import DeploymentEventTrigger

    trigger = DeploymentEventTrigger(
        name=f"omicsflow-enrich-on-failure-{settings.instance}",
        expect={RUN_FAILED_EVENT},
        match={
            "prefect.resource.id": "omicsflow.run.*",
            "omicsflow.instance": settings.instance,
        },
        parameters={"run_id": "{{ event.payload.run_id }}"},
    )
    return {
        "name": enrich_deployment_name(settings),
        "tags": ["omicsflow", "enrichment"],
        "triggers": [trigger],
        "description": (
            "LLM enrichment of a failed attempt's classification, after its status write."
        ),
    }

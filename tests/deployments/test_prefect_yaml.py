"""prefect.yaml describes the same deployments `serve` creates (names, entrypoints, trigger)."""

from __future__ import annotations

import importlib
from pathlib import Path

import yaml

from deployments.enrichment import enrich_deployment_name
from omicsflow.lifecycle.scheduling import ATTEMPT_FLOW
from omicsflow.settings import Settings
from tasks.event_tasks import RUN_FAILED_EVENT

ROOT = Path(__file__).resolve().parents[2]


def test_deployments_match_what_serve_creates() -> None:
    spec = yaml.safe_load((ROOT / "prefect.yaml").read_text())
    by_name = {d["name"]: d for d in spec["deployments"]}
    settings = Settings(instance="default")
    assert set(by_name) == {settings.attempt_deployment, enrich_deployment_name(settings)}
    for dep in by_name.values():
        path, func = dep["entrypoint"].split(":")
        module = importlib.import_module(path.removesuffix(".py").replace("/", "."))
        assert callable(getattr(module, func))
    attempt = importlib.import_module("flows.attempt").attempt_flow
    assert attempt.name == ATTEMPT_FLOW
    (trigger,) = by_name[enrich_deployment_name(settings)]["triggers"]
    assert trigger["expect"] == [RUN_FAILED_EVENT]
    assert trigger["parameters"] == {"run_id": "{{ event.payload.run_id }}"}

"""The task that runs a local pipeline (the side effect: a sandboxed process)."""

from __future__ import annotations

from prefect import task
from prefect.concurrency.sync import concurrency

from omicsflow.errors import ConfigError
from omicsflow.lifecycle.local_exec import run_local
from omicsflow.runtime import get_runtime
from omicsflow.sandbox.spec import PipelineResult


@task(name="run-local-pipeline")
def run_local_pipeline(run_id: int) -> PipelineResult:
    rt = get_runtime()
    run = rt.ledger.get(run_id)
    if run is None:
        raise ConfigError(f"run {run_id} vanished from the ledger")
    svc = rt.services.get(run.service)
    if svc is None:
        raise ConfigError(f"service {run.service!r} is no longer in {rt.services.path}")
    # strict=True: a missing limit must fail loudly, not silently run unbounded.
    with concurrency(rt.settings.local_pipelines_limit, occupy=1, strict=True):
        return run_local(rt.settings, rt.ledger, svc, run)

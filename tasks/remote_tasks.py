"""Prefect tasks of remote attempts: one side effect each."""

from __future__ import annotations

from prefect import task
from prefect.artifacts import create_link_artifact

from ledger.models import Run
from omicsflow.backends.base import RunHandle
from omicsflow.backends.factory import backend_for
from omicsflow.lifecycle.remote import submit_attempt
from omicsflow.runtime import Runtime, get_runtime
from omicsflow.services import ServiceConfig


def _service(run_id: int) -> tuple[Runtime, Run, ServiceConfig]:
    rt = get_runtime()
    run = rt.ledger.get(run_id)
    assert run is not None
    svc = rt.services.get(run.service)
    if svc is None:
        raise LookupError(f"service {run.service!r} is no longer configured")
    return rt, run, svc


@task(name="submit-remote-run")
def submit_remote(run_id: int) -> RunHandle:
    rt, run, svc = _service(run_id)
    return submit_attempt(rt.ledger, backend_for(svc), svc, run)


@task(name="publish-remote-link")
def publish_remote_link(run_id: int, handle: RunHandle) -> None:
    if handle.console_url:
        create_link_artifact(
            key=f"remote-run-{run_id}",
            link=handle.console_url,
            link_text=f"{handle.backend} run {handle.run_id}",
            description="The remote run in its platform's console",
        )

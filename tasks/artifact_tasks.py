"""Artifacts on attempt flow runs: the failure card."""

from __future__ import annotations

from prefect import task
from prefect.artifacts import create_markdown_artifact

from omicsflow.domain.failure_card import render_failure_card
from omicsflow.runtime import get_runtime


@task(name="publish-failure-card")
def publish_failure_card(run_id: int) -> None:
    run = get_runtime().ledger.get(run_id)
    if run is None:
        return
    create_markdown_artifact(
        key=f"failure-card-{run_id}",
        markdown=render_failure_card(run),
        description=f"Who must fix run {run_id} ({run.report_id}) and why",
    )

"""Two intake processes replaying the same ADDED events against PostgreSQL and one Prefect
server: exactly one active row and one flow run per report."""

from __future__ import annotations

import multiprocessing as mp
import random
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text

from ledger.db import make_engine, upgrade
from tests.support.prefect_api import prefect_client
from tests.support.prefect_server import PrefectServer

pytestmark = [pytest.mark.integration, pytest.mark.postgres]

PG = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
SERVICES = """
[services.wgs]
backend = "local"
command = ["true"]
cooldown_seconds = 3600
"""
REPORTS = 60
REPLAYS = 3


@pytest.fixture
def pg_schema() -> Iterator[str]:
    schema = f"race_{uuid.uuid4().hex[:10]}"
    admin = make_engine(PG)
    with admin.begin() as conn:
        conn.execute(text(f"CREATE SCHEMA {schema}"))
    yield schema
    with admin.begin() as conn:
        conn.execute(text(f"DROP SCHEMA {schema} CASCADE"))
    admin.dispose()


def _intake_process(api_url: str, schema: str, services: str, instance: str, seed: int) -> None:
    # The spawned child inherits PREFECT_API_URL / OMICSFLOW_INSTANCE from the parent's env.
    from ledger.repo import Ledger
    from omicsflow.lifecycle.intake import Intake
    from omicsflow.lifecycle.scheduling import FlowRuns
    from omicsflow.services import load_services
    from omicsflow.stores.base import ChangeKind, ReportEvent

    engine = make_engine(PG, connect_args={"options": f"-csearch_path={schema}"})
    intake = Intake(Ledger(engine), load_services(Path(services)), FlowRuns())
    events = [
        ReportEvent(ChangeKind.ADDED, f"race-{i}", {"service": "wgs", "status": "Data Ready"})
        for i in range(REPORTS)
    ] * REPLAYS
    random.Random(seed).shuffle(events)
    for event in events:
        intake.handle(event)
    intake.flow_runs.close()


def test_two_intake_processes_race(
    prefect_server: PrefectServer, pg_schema: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterId, FlowRunFilter
    from prefect.runner import Runner

    from flows.attempt import attempt_flow

    instance = f"race{uuid.uuid4().hex[:8]}"
    services = tmp_path / "services.toml"
    services.write_text(SERVICES)
    engine = make_engine(PG, connect_args={"options": f"-csearch_path={pg_schema}"})
    upgrade(engine)
    with prefect_client(prefect_server.api_url) as client:
        from prefect.settings import PREFECT_API_URL, temporary_settings

        with temporary_settings(updates={PREFECT_API_URL: prefect_server.api_url}):
            dep_id = Runner(name=instance).add_flow(attempt_flow, name=f"attempt-{instance}")
        # Set before spawning: Prefect reads its settings once, when the child imports it.
        monkeypatch.setenv("PREFECT_API_URL", prefect_server.api_url)
        monkeypatch.setenv("OMICSFLOW_INSTANCE", instance)
        ctx = mp.get_context("spawn")
        procs = [
            ctx.Process(
                target=_intake_process,
                args=(prefect_server.api_url, pg_schema, str(services), instance, seed),
            )
            for seed in (1, 2)
        ]
        for p in procs:
            p.start()
        for p in procs:
            p.join(timeout=300)
            assert p.exitcode == 0
        with engine.connect() as conn:
            rows = conn.execute(text("SELECT report_id, state, flow_run_id FROM runs")).all()
        runs = client.read_flow_runs(
            flow_run_filter=FlowRunFilter(),
            deployment_filter=DeploymentFilter(id=DeploymentFilterId(any_=[dep_id])),
            limit=200,
        )
    assert sorted(r.report_id for r in rows) == sorted(f"race-{i}" for i in range(REPORTS))
    assert {r.state for r in rows} == {"waiting_cooldown"}
    assert all(r.flow_run_id for r in rows)
    assert len(runs) == REPORTS, "exactly one flow run per report"
    assert {str(r.id) for r in runs} == {r.flow_run_id for r in rows}
    engine.dispose()

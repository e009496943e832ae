"""Flow runs for ledger rows: bulk creation is idempotent and agrees with single creation."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from ledger.db import make_engine, upgrade
from ledger.models import Run
from ledger.repo import Ledger
from tests.support.prefect_api import prefect_client
from tests.support.prefect_server import PrefectServer

pytestmark = pytest.mark.integration


def test_bulk_creation_is_idempotent_and_matches_single_creation(
    prefect_server: PrefectServer, tmp_path: Path
) -> None:
    from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterId
    from prefect.runner import Runner
    from prefect.settings import PREFECT_API_URL, temporary_settings

    from flows.attempt import attempt_flow
    from omicsflow.lifecycle.scheduling import FlowRuns

    name = f"attempt-bulk{uuid.uuid4().hex[:8]}"
    ledger = Ledger(make_engine(f"sqlite:///{tmp_path / 'l.db'}"))
    upgrade(ledger.engine)
    later = datetime.now(UTC) + timedelta(hours=1)
    rows = [
        ledger.create_run(Run(report_id=f"bulk-{i}", service="svc", state="waiting_cooldown",
                              scheduled_run_at=later))
        for i in range(150)
    ]
    with temporary_settings(updates={PREFECT_API_URL: prefect_server.api_url}):
        dep_id = Runner(name=name).add_flow(attempt_flow, name=name)
        with prefect_client(prefect_server.api_url) as client:
            flow_runs = FlowRuns(client=client, deployment=name)
            first = flow_runs.create_many([r for r in rows if r])
            again = flow_runs.create_many([r for r in rows if r])
            single = flow_runs.create(rows[7])  # type: ignore[arg-type]
            runs = []
            for offset in (0, 200):
                runs += client.read_flow_runs(
                    deployment_filter=DeploymentFilter(id=DeploymentFilterId(any_=[dep_id])),
                    limit=200, offset=offset)
    assert len(first) == 150 and len(set(first.values())) == 150
    assert first == again, "a resend returns the same flow runs"
    assert single == first[rows[7].id]  # type: ignore[union-attr,index]
    assert len(runs) == 150
    by_id = {str(r.id): r for r in runs}
    for row in rows:
        assert row is not None and row.id is not None
        fr = by_id[first[row.id]]
        assert fr.parameters == {"run_id": row.id}
        assert fr.state is not None and fr.state.type.value == "SCHEDULED"
        assert f"doc:{row.report_id}" in fr.tags

"""Reading flow runs from the test process's side, against an explicit API URL."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager

from prefect.client.orchestration import SyncPrefectClient, get_client
from prefect.client.schemas.objects import FlowRun
from prefect.settings import PREFECT_API_URL, temporary_settings


@contextmanager
def prefect_client(api_url: str) -> Iterator[SyncPrefectClient]:
    # Prefect read its settings when first imported; point this client at the test server.
    with temporary_settings(updates={PREFECT_API_URL: api_url}), get_client(sync_client=True) as c:
        yield c


def read_flow_run(api_url: str, flow_run_id: str) -> FlowRun:
    with prefect_client(api_url) as client:
        return client.read_flow_run(uuid.UUID(flow_run_id))

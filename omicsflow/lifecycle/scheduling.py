"""Attempt flow runs in Prefect: created idempotently, cancelled, started early."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from prefect.client.orchestration import SyncPrefectClient, get_client
from prefect.client.schemas.objects import State, StateType
from prefect.exceptions import ObjectNotFound
from prefect.states import Cancelled, Scheduled

from ledger.models import Run

ATTEMPT_FLOW = "omicsflow-attempt"
FINAL_TYPES = {StateType.COMPLETED, StateType.FAILED, StateType.CANCELLED, StateType.CRASHED}


def idempotency_key(deployment: str, run: Run) -> str:
    """Unique per flow (not per deployment), so the deployment name is part of the key."""
    return f"{deployment}:{run.report_id}:{run.generation}:{run.attempt}:{run.seq}"


BULK_LIMIT = 100  # the server's limit per bulk request


def _tags(run: Run) -> list[str]:
    return [f"service:{run.service}", f"backend:{run.backend}", f"doc:{run.report_id}"]


def flow_run_name(run: Run) -> str:
    return f"{run.service}·{run.report_id}·g{run.generation}a{run.attempt}" + (
        f"s{run.seq}" if run.seq else ""
    )


class FlowRuns:
    """A thin, synchronous wrapper over the Prefect API for attempt flow runs."""

    def __init__(
        self, client: SyncPrefectClient | None = None, deployment: str | None = None
    ) -> None:
        from omicsflow.settings import get_settings

        self.deployment = deployment or get_settings().attempt_deployment
        self._client = client
        self._deployment_id: uuid.UUID | None = None

    @property
    def client(self) -> SyncPrefectClient:
        if self._client is None:
            self._client = get_client(sync_client=True)
            self._client.__enter__()
        return self._client

    def close(self) -> None:
        if self._client is not None:
            self._client.__exit__(None, None, None)
            self._client = None

    def deployment_id(self) -> uuid.UUID:
        if self._deployment_id is None:
            dep = self.client.read_deployment_by_name(f"{ATTEMPT_FLOW}/{self.deployment}")
            self._deployment_id = dep.id
        return self._deployment_id

    def _state(self, run: Run) -> State[Any]:
        when = run.scheduled_run_at
        return Scheduled(scheduled_time=max(when, datetime.now(UTC)) if when else None)

    def create(self, run: Run) -> str:
        """Create (or find, by idempotency key) the flow run of a ledger row."""
        assert run.id is not None
        fr = self.client.create_flow_run_from_deployment(
            self.deployment_id(),
            parameters={"run_id": run.id},
            state=self._state(run),
            name=flow_run_name(run),
            tags=_tags(run),
            idempotency_key=idempotency_key(self.deployment, run),
        )
        return str(fr.id)

    def create_many(self, runs: list[Run]) -> dict[int, str]:
        """Flow runs for many rows, up to 100 per request in one server transaction (the
        server's per-request cost, not the insert, is what limits intake). Idempotency keys
        make a resend safe; rows the server reports as failed are created one by one."""
        from prefect.client.schemas.actions import DeploymentFlowRunCreate
        from prefect.states import to_state_create

        out: dict[int, str] = {}
        for i in range(0, len(runs), BULK_LIMIT):
            chunk = runs[i : i + BULK_LIMIT]
            body = [
                DeploymentFlowRunCreate(
                    name=flow_run_name(r),
                    parameters={"run_id": r.id},
                    tags=_tags(r),
                    idempotency_key=idempotency_key(self.deployment, r),
                    state=to_state_create(self._state(r)),
                ).model_dump(mode="json", exclude_unset=True)
                for r in chunk
            ]
            resp = self.client.request(
                "POST",
                "/deployments/{id}/create_flow_run/bulk",  # type: ignore[arg-type]
                path_params={"id": self.deployment_id()},
                json=body,
            )
            resp.raise_for_status()
            for run, res in zip(chunk, resp.json()["results"], strict=True):
                assert run.id is not None
                if res.get("status") == "CREATED" and res.get("flow_run_id"):
                    out[run.id] = str(res["flow_run_id"])
                else:
                    out[run.id] = self.create(run)
        return out

    def state_type(self, flow_run_id: str) -> StateType | None:
        try:
            fr = self.client.read_flow_run(uuid.UUID(flow_run_id))
        except ObjectNotFound:
            return None
        return fr.state.type if fr.state else None

    def states(self, flow_run_ids: list[str]) -> dict[str, tuple[StateType, str]]:
        """(type, name) of many flow runs, in batches of the API's page size."""
        from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

        out: dict[str, tuple[StateType, str]] = {}
        for i in range(0, len(flow_run_ids), 200):
            ids = [uuid.UUID(x) for x in flow_run_ids[i : i + 200]]
            for fr in self.client.read_flow_runs(
                flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=ids)), limit=200
            ):
                if fr.state is not None:
                    out[str(fr.id)] = (fr.state.type, fr.state.name or "")
        return out

    def resume(self, flow_run_id: str) -> bool:
        """Resume a suspended flow run; False when it was not paused (yet)."""
        from prefect.client.schemas.objects import StateType as T

        fr = self.client.read_flow_run(uuid.UUID(flow_run_id))
        if fr.state is None or fr.state.type is not T.PAUSED:
            return False
        result = self.client.resume_flow_run(uuid.UUID(flow_run_id))
        return str(result.status).endswith("ACCEPT")

    def annotate_paused(self, flow_run_id: str, message: str) -> None:
        """Show the remote status on a suspended flow run (its state message in the UI),
        keeping the suspension's details so Resume still works."""
        from prefect.client.schemas.objects import State as PrefectState

        fr = self.client.read_flow_run(uuid.UUID(flow_run_id))
        if fr.state is None or fr.state.type is not StateType.PAUSED or fr.state.message == message:
            return
        state: PrefectState[Any] = PrefectState(
            type=StateType.PAUSED,
            name=fr.state.name,
            message=message,
            state_details=fr.state.state_details.model_copy(),
        )
        self.client.set_flow_run_state(uuid.UUID(flow_run_id), state, force=True)

    def restart(self, flow_run_id: str) -> None:
        """Run a crashed flow run again now (its steps are idempotent)."""
        self.client.set_flow_run_state(
            uuid.UUID(flow_run_id), Scheduled(message="re-attached by omicsflow"), force=True
        )

    def request_cancel(self, flow_run_id: str, message: str) -> None:
        """End a flow run: one not started (withdrawn, cancelled) is Cancelled at once; a
        running one is set Cancelling so its runner stops the process (the UI's Cancel)."""
        from prefect.states import Cancelling

        try:
            fr = self.client.read_flow_run(uuid.UUID(flow_run_id))
        except ObjectNotFound:
            return
        if fr.state is None or fr.state.type in FINAL_TYPES:
            return
        running = fr.state.type is StateType.RUNNING
        state: State[Any] = Cancelling(message=message) if running else Cancelled(message=message)
        self.client.set_flow_run_state(uuid.UUID(flow_run_id), state, force=True)

"""Attempt-flow hooks. They run in the runner (the `serve` process), not the flow process."""

from __future__ import annotations

import logging
from typing import Any

from omicsflow.backends.factory import REMOTE_BACKENDS
from omicsflow.domain.states import RunState
from omicsflow.lifecycle.cancel import cancel_run
from omicsflow.lifecycle.recovery import recover_run
from omicsflow.runtime import get_runtime

log = logging.getLogger(__name__)


def _run_id(flow_run: Any) -> int | None:
    try:
        return int(flow_run.parameters["run_id"])
    except (KeyError, TypeError, ValueError):
        return None


def on_attempt_cancellation(flow: Any, flow_run: Any, state: Any) -> None:
    """The Prefect UI's Cancel: kill the pipeline's group, then Firestore first, then ledger."""
    run_id = _run_id(flow_run)
    if run_id is None:
        return
    rt = get_runtime()
    rep = cancel_run(
        rt.ledger,
        rt.store,
        rt.services,
        run_id,
        actor="prefect-ui",
        flow_runs=None,
        grace_seconds=rt.settings.cancel_grace_seconds,
    )
    log.info("cancel of run %s from Prefect: %s", run_id, rep.result.value)


def on_attempt_crashed(flow: Any, flow_run: Any, state: Any) -> None:
    """The flow process died (OOM, SIGKILL): close and retry the row now, not at the next sweep."""
    run_id = _run_id(flow_run)
    if run_id is None:
        return
    rt = get_runtime()
    row = rt.ledger.get(run_id)
    if row is not None and row.backend in REMOTE_BACKENDS:
        # The remote run goes on without this process: the poller re-attaches (it restarts
        # the flow run, whose submit is idempotent) instead of declaring it lost.
        return
    if row is not None and row.state == RunState.RUNNING.value:
        res = recover_run(rt.ledger, rt.store, rt.services, row)
        log.warning("run %s crashed; now %s", run_id, res.state.value)

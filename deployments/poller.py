"""One poller for every in-flight remote run: batches of `poll_many` within each backend's
quota, then resume the suspended flow run of each run that ended.

No process waits on a remote run: between polls an in-flight run is a ledger row and a
suspended flow run. After a restart the poller simply reads the ledger again (re-attach);
nothing is ever resubmitted here.
"""

from __future__ import annotations

import logging
import threading
from collections import defaultdict
from dataclasses import dataclass, field

from prefect.client.schemas.objects import StateType

from ledger.models import Run
from omicsflow.backends.base import PollResult, RemoteState
from omicsflow.backends.factory import REMOTE_BACKENDS, backend_for
from omicsflow.domain.routing import CANCELLED_REASON
from omicsflow.lifecycle.cancel import cancel_run
from omicsflow.lifecycle.remote import ended, handle_of, record_evidence, record_poll
from omicsflow.lifecycle.scheduling import FlowRuns
from omicsflow.runtime import Runtime
from omicsflow.services import ServiceConfig

log = logging.getLogger(__name__)

ANNOTATIONS_PER_TICK = 50
DEAD = {StateType.CRASHED, StateType.FAILED}


@dataclass
class PollStats:
    ticks: int = 0
    polled: int = 0
    resumed: int = 0
    restarted: int = 0
    cancelled: int = 0
    errors: dict[str, int] = field(default_factory=dict)


class RemotePoller:
    def __init__(self, rt: Runtime, interval_seconds: float) -> None:
        self.rt = rt
        self.interval = interval_seconds
        self.stats = PollStats()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._only: set[str] = set()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._loop, name="remote-poller", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        self._thread.join(timeout=30)

    def trigger(self, backend_run_id: str | None = None) -> None:
        """Poll now (a push notification said something changed)."""
        if backend_run_id:
            with self._lock:
                self._only.add(backend_run_id)
        self._wake.set()

    def _loop(self) -> None:
        flow_runs = FlowRuns()
        try:
            while not self._stop.is_set():
                with self._lock:
                    only, self._only = self._only, set()
                try:
                    self.tick(flow_runs, only or None)
                except Exception:
                    log.exception("remote poll failed")
                self._wake.wait(self.interval)
                self._wake.clear()
        finally:
            flow_runs.close()

    def tick(self, flow_runs: FlowRuns, only: set[str] | None = None) -> None:
        self.stats.ticks += 1
        rows = self.rt.ledger.in_flight_remote(REMOTE_BACKENDS)
        if only is not None:
            rows = [r for r in rows if r.backend_run_id in only]
        if not rows:
            return
        states = flow_runs.states([r.flow_run_id for r in rows if r.flow_run_id])
        by_service: dict[str, list[Run]] = defaultdict(list)
        for row in rows:
            fr_state = states.get(row.flow_run_id or "")
            if fr_state and fr_state[0] in (StateType.CANCELLED, StateType.CANCELLING):
                self._operator_cancelled(row)
                continue
            if handle_of(row) is None:
                # Claimed but the handle was never recorded: if its flow died, run it again
                # (the backend's requestId / run-name lookup makes the submit idempotent).
                if fr_state and fr_state[0] in DEAD and row.flow_run_id:
                    flow_runs.restart(row.flow_run_id)
                    self.stats.restarted += 1
                continue
            by_service[row.service].append(row)
        for service, svc_rows in by_service.items():
            svc = self.rt.services.get(service)
            if svc is not None:
                self._poll_service(flow_runs, svc, svc_rows, states)

    def _poll_service(
        self,
        flow_runs: FlowRuns,
        svc: ServiceConfig,
        rows: list[Run],
        states: dict[str, tuple[StateType, str]],
    ) -> None:
        backend = backend_for(svc)
        # One call for the whole service: the backend pages and rate-limits internally (for
        # HealthOmics, a few ListRuns pages for all in-progress runs, then GetRun per ended run).
        results = backend.poll_many([h for r in rows if (h := handle_of(r))])
        self.stats.polled += len(results)
        changed: list[tuple[Run, PollResult]] = []
        for row, result in zip(rows, results, strict=True):
            if result.state is RemoteState.UNKNOWN and not result.raw_status:
                continue  # not polled this time (throttled): next tick
            assert row.id is not None
            if (result.raw_status, result.state.value) != (row.remote_status, row.remote_state):
                # Written on change only: a tick over 1,000 quiet runs writes nothing.
                record_poll(self.rt.ledger, row.id, result)
                changed.append((row, result))
            if not result.terminal or not row.flow_run_id:
                continue
            if result.state is not RemoteState.SUCCEEDED and ended(row) is None:
                # Evidence once, here, under this process's rate limiter.
                record_evidence(self.rt.ledger, row.id, backend.collect_evidence(result.handle))
            self._wake_flow(flow_runs, row, states.get(row.flow_run_id))
        # Cosmetic, after every wake-up: the remote status on suspended flow runs, a bounded
        # number per tick so a burst of changes never delays noticing ends.
        shown = 0
        for row, result in changed:
            if shown >= ANNOTATIONS_PER_TICK or result.terminal or not row.flow_run_id:
                continue
            self._show_status(flow_runs, row, result, states.get(row.flow_run_id))
            shown += 1

    def _show_status(
        self,
        flow_runs: FlowRuns,
        row: Run,
        result: PollResult,
        state: tuple[StateType, str] | None,
    ) -> None:
        if (
            state is None
            or state[0] is not StateType.PAUSED
            or row.remote_status == result.raw_status
        ):
            return
        assert row.flow_run_id is not None
        message = f"{result.handle.backend} run {result.handle.run_id}: {result.raw_status}"
        try:
            flow_runs.annotate_paused(row.flow_run_id, message)
        except Exception as exc:  # cosmetic: never let it stop polling
            log.debug("could not annotate flow run %s: %s", row.flow_run_id, exc)

    def _wake_flow(
        self, flow_runs: FlowRuns, row: Run, state: tuple[StateType, str] | None
    ) -> None:
        assert row.flow_run_id is not None
        if state is None:
            return
        if state[0] is StateType.PAUSED:
            if flow_runs.resume(row.flow_run_id):
                self.stats.resumed += 1
        elif state[0] in DEAD:
            # The flow process died after submitting (or serve was killed): re-attach.
            flow_runs.restart(row.flow_run_id)
            self.stats.restarted += 1

    def _operator_cancelled(self, row: Run) -> None:
        """Cancel pressed on a suspended flow run in the Prefect UI: no process exists to run
        the cancellation hook, so the poller carries out the cancel (remote run included)."""
        assert row.id is not None
        rt = self.rt
        rep = cancel_run(
            rt.ledger,
            rt.store,
            rt.services,
            row.id,
            actor="prefect-ui",
            flow_runs=None,
            grace_seconds=0,
        )
        log.info(
            "run %s cancelled from the Prefect UI: %s (%s)",
            row.id,
            rep.result.value,
            CANCELLED_REASON,
        )
        self.stats.cancelled += 1

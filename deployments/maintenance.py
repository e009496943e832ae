"""Periodic work of `serve`: outbox drain (and outage detection), reconcile, recovery."""

from __future__ import annotations

import logging
import threading
import time

from omicsflow.lifecycle.intake import Intake
from omicsflow.lifecycle.outbox import drain
from omicsflow.lifecycle.recovery import recover_stale
from omicsflow.lifecycle.scheduling import FlowRuns
from omicsflow.runtime import Runtime

log = logging.getLogger(__name__)


class Maintenance:
    def __init__(self, rt: Runtime, intake_resumed: threading.Event) -> None:
        self.rt = rt
        self.intake_resumed = intake_resumed
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="maintenance", daemon=True)

    def start(self) -> None:
        self.run_once(recovery=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=15)

    def run_once(self, recovery: bool) -> None:
        rt = self.rt
        try:
            _, outage = drain(rt.ledger, rt.store, rt.services)
            if outage and self.intake_resumed.is_set():
                log.warning("report store outage: intake paused until it is reachable again")
                self.intake_resumed.clear()
            elif not outage and not self.intake_resumed.is_set():
                log.info("report store reachable: intake resumed")
                self.intake_resumed.set()
        except Exception:
            log.exception("outbox drain failed")
        if not recovery:
            return
        flow_runs = FlowRuns()
        try:
            recovered = recover_stale(
                rt.ledger, rt.store, rt.services, rt.settings.stale_after_seconds
            )
            for r in recovered:
                log.warning("recovered orphaned run %s -> %s", r.run_id, r.result.state.value)
            Intake(rt.ledger, rt.services, flow_runs).reconcile()
        except Exception:
            log.exception("recovery/reconcile failed")
        finally:
            flow_runs.close()

    def _loop(self) -> None:
        s = self.rt.settings
        next_recovery = time.monotonic() + s.recovery_interval_seconds
        while not self._stop.wait(s.outbox_interval_seconds):
            due = time.monotonic() >= next_recovery
            self.run_once(recovery=due)
            if due:
                next_recovery = time.monotonic() + s.recovery_interval_seconds

"""The intake loop: the report-store watch feeds worker threads that create runs.

Events are sharded by report id so one report's ADDED/REMOVED are handled in order, while
different reports proceed in parallel (flow-run creation is an HTTP round trip).
"""

from __future__ import annotations

import logging
import queue
import threading
import zlib

from ledger.repo import Ledger
from omicsflow.lifecycle.intake import Intake, IntakeResult
from omicsflow.lifecycle.scheduling import FlowRuns
from omicsflow.services import ServicesFile
from omicsflow.stores.base import ReportEvent, ReportStore, Watch

log = logging.getLogger(__name__)


class IntakeLoop:
    def __init__(
        self,
        store: ReportStore,
        ledger: Ledger,
        services: ServicesFile,
        resumed: threading.Event,
        workers: int = 4,
    ) -> None:
        self.store = store
        self.ledger = ledger
        self.services = services
        # Set while intake may proceed; cleared during a report-store outage.
        self.resumed = resumed
        self.queues: list[queue.Queue[ReportEvent | None]] = [queue.Queue() for _ in range(workers)]
        self.threads: list[threading.Thread] = []
        self.watch: Watch | None = None
        self.counts: dict[str, int] = {r.value: 0 for r in IntakeResult}
        self._lock = threading.Lock()

    def start(self) -> None:
        for i, q in enumerate(self.queues):
            t = threading.Thread(target=self._work, args=(q,), name=f"intake-{i}", daemon=True)
            t.start()
            self.threads.append(t)
        self.watch = self.store.watch(self.submit, self._on_error)

    def submit(self, event: ReportEvent) -> None:
        shard = zlib.crc32(event.report_id.encode("utf-8", "replace")) % len(self.queues)
        self.queues[shard].put(event)

    def _on_error(self, exc: BaseException) -> None:
        log.warning("report store watch error (it reconnects by itself): %s", exc)

    def _work(self, q: queue.Queue[ReportEvent | None]) -> None:
        intake = Intake(self.ledger, self.services, FlowRuns())
        try:
            while True:
                event = q.get()
                if event is None:
                    return
                self.resumed.wait()
                try:
                    result = intake.handle(event)
                except Exception:
                    # One bad event must not stop intake; the reconcile loop creates any flow
                    # run this left missing, and the store re-emits ADDED on resync.
                    log.exception("intake failed for report %r", event.report_id[:80])
                    continue
                with self._lock:
                    self.counts[result.value] += 1
        finally:
            intake.flow_runs.close()

    def stop(self) -> None:
        if self.watch is not None:
            self.watch.stop()
        for q in self.queues:
            q.put(None)
        self.resumed.set()
        for t in self.threads:
            t.join(timeout=10)

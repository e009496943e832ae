"""The intake loop: the report-store watch feeds worker threads that create runs.

Events are sharded by report id so one report's ADDED/REMOVED are handled in order, while
different reports proceed in parallel (flow-run creation is an HTTP round trip).
"""

from __future__ import annotations

import logging
import queue
import threading
import time
import zlib

from ledger.models import Run
from ledger.repo import Ledger
from omicsflow.domain.states import PENDING_STATES, RunState
from omicsflow.lifecycle.intake import Intake, IntakeResult
from omicsflow.lifecycle.scheduling import BULK_LIMIT, FlowRuns
from omicsflow.services import ServicesFile
from omicsflow.stores.base import ReportEvent, ReportStore, Watch

log = logging.getLogger(__name__)


class FlowRunBatcher:
    """Creates the flow runs of new rows in batches (one bulk request for up to 100).

    Rows wait at most `flush_seconds` for company. If a batch fails, its rows keep no flow
    run and the reconcile loop creates them later; a row withdrawn while it waited gets its
    fresh flow run cancelled at once.
    """

    def __init__(self, ledger: Ledger, flush_seconds: float = 0.05) -> None:
        self.ledger = ledger
        self.flush_seconds = flush_seconds
        self.queue: queue.Queue[Run | None] = queue.Queue()
        self._thread = threading.Thread(target=self._loop, name="flow-run-batcher", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def submit(self, row: Run) -> None:
        self.queue.put(row)

    def stop(self) -> None:
        self.queue.put(None)
        self._thread.join(timeout=30)

    def _loop(self) -> None:
        flow_runs = FlowRuns()
        try:
            while True:
                first = self.queue.get()
                if first is None:
                    return
                batch, stop = [first], False
                deadline = time.monotonic() + self.flush_seconds
                while len(batch) < BULK_LIMIT:
                    try:
                        item = self.queue.get(timeout=max(0.0, deadline - time.monotonic()))
                    except queue.Empty:
                        break
                    if item is None:
                        stop = True
                        break
                    batch.append(item)
                self._create(flow_runs, batch)
                if stop:
                    return
        finally:
            flow_runs.close()

    def _create(self, flow_runs: FlowRuns, batch: list[Run]) -> None:
        try:
            created = flow_runs.create_many(batch)
        except Exception:
            log.exception("creating %d flow runs failed; reconcile will retry", len(batch))
            return
        for run_id, flow_run_id in created.items():
            self.ledger.set_flow_run(run_id, flow_run_id)
            row = self.ledger.get(run_id)
            if row is not None and RunState(row.state) not in PENDING_STATES:
                flow_runs.request_cancel(flow_run_id, f"run is already {row.state}")


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
        self.batcher = FlowRunBatcher(ledger)
        self.threads: list[threading.Thread] = []
        self.watch: Watch | None = None
        self.counts: dict[str, int] = {r.value: 0 for r in IntakeResult}
        self._lock = threading.Lock()

    def start(self) -> None:
        self.batcher.start()
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
        intake = Intake(self.ledger, self.services, FlowRuns(), schedule=self.batcher.submit)
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
        self.batcher.stop()

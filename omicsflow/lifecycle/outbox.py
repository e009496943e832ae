"""The outbox drainer: retries recorded terminal writes until the report store takes them."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

from ledger.repo import OUTAGE_FLAG, Ledger
from omicsflow.lifecycle.terminal import WriteResult, apply_pending
from omicsflow.services import ServicesFile
from omicsflow.stores.base import ReportStore

log = logging.getLogger(__name__)


def drain(
    ledger: Ledger,
    store: ReportStore,
    services: ServicesFile,
    min_age_seconds: float = 5.0,
) -> tuple[int, bool]:
    """Apply pending writes older than `min_age_seconds` (younger ones are still being tried
    by their flow). Returns (applied, outage)."""
    applied = 0
    cutoff = datetime.now(UTC) - timedelta(seconds=min_age_seconds)
    pending = [pw for pw in ledger.pending_writes() if pw.created_at <= cutoff or pw.tries > 0]
    for pw in pending:
        run = ledger.get(pw.run_id)
        policy = services.get(run.service) if run else None
        res = apply_pending(ledger, store, pw, policy)
        if res.result is WriteResult.OUTAGE:
            return applied, True
        applied += 1
    if ledger.get_flag(OUTAGE_FLAG) is not None and not ledger.pending_writes():
        if store.check_connectivity():
            ledger.set_flag(OUTAGE_FLAG, None)
            log.info("report store reachable again; intake resumes")
            return applied, False
        return applied, True
    return applied, ledger.get_flag(OUTAGE_FLAG) is not None

"""Firestore first: the report store says Failed while the ledger row is still active,
never the reverse. Checked on both real stores by recording what the ledger said at the
moment the store received the write."""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from classifiers.taxonomy import ErrorType
from ledger.db import make_engine, upgrade
from ledger.models import Run
from ledger.repo import Ledger
from omicsflow.domain.routing import Outcome, OutcomeKind
from omicsflow.domain.states import RunState
from omicsflow.errors import StoreUnavailableError
from omicsflow.lifecycle.finish import finish_attempt
from omicsflow.lifecycle.outbox import drain
from omicsflow.services import ServicePolicy, parse_services
from omicsflow.stores.base import FAILED, ReportStore
from omicsflow.stores.firestore import FirestoreReportStore
from omicsflow.stores.local import LocalReportStore
from tests.support.firestore_emulator import FirestoreEmulator

POLICY = ServicePolicy(max_retries=1, max_system_retries=0)


class RecordingStore:
    """A real store that notes the ledger row's state whenever a terminal write arrives."""

    def __init__(self, inner: ReportStore, ledger: Ledger, run_id: int) -> None:
        self.inner, self.ledger, self.run_id = inner, ledger, run_id
        self.seen: list[str] = []
        self.name = inner.name

    def write_failed(self, report_id: str, fields: Mapping[str, Any]) -> None:
        row = self.ledger.get(self.run_id)
        self.seen.append(row.state if row else "missing")
        self.inner.write_failed(report_id, fields)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


@pytest.fixture
def ledger(tmp_path: Path) -> Iterator[Ledger]:
    engine = make_engine(f"sqlite:///{tmp_path / 'l.db'}")
    upgrade(engine)
    yield Ledger(engine)
    engine.dispose()


@pytest.fixture(params=["local", pytest.param("firestore", marks=pytest.mark.integration)])
def store(request: pytest.FixtureRequest, ledger: Ledger, tmp_path: Path) -> Iterator[ReportStore]:
    if request.param == "local":
        yield LocalReportStore(ledger.engine)
        return
    em = FirestoreEmulator(log_path=tmp_path / "em.log")
    em.start()
    try:
        yield FirestoreReportStore(
            em.project, f"r-{uuid.uuid4().hex[:8]}", client=em.client(), write_timeout=2
        )
    finally:
        em.stop()


def _running_row(ledger: Ledger, store: ReportStore) -> Run:
    report_id = store.create(None, "svc", {"sample": "S1"})  # type: ignore[attr-defined]
    row = ledger.create_run(Run(report_id=report_id, service="svc", state="queued"))
    assert row is not None and row.id is not None
    assert ledger.claim(row.id, None, datetime.now(UTC))
    return row


def test_store_is_written_while_the_row_is_still_active(ledger: Ledger, store: ReportStore) -> None:
    row = _running_row(ledger, store)
    assert row.id is not None
    spy = RecordingStore(store, ledger, row.id)
    done = finish_attempt(
        ledger, spy, row, Outcome(OutcomeKind.FAILED, ErrorType.USER, "boom"), POLICY
    )
    assert done.state is RunState.FAILED_PERMANENT
    assert spy.seen == ["running"], "the store must say Failed before the ledger moves"
    assert ledger.get(row.id).state == "failed_permanent"  # type: ignore[union-attr]
    assert store.get(row.report_id)["status"] == FAILED
    assert ledger.pending_write_for(row.id) is None


class UnreachableStore:
    """The store during an outage: every write and probe fails."""

    name = "down"

    def __init__(self, inner: ReportStore) -> None:
        self.inner = inner

    def write_failed(self, report_id: str, fields: Mapping[str, Any]) -> None:
        raise StoreUnavailableError("unreachable")

    def check_connectivity(self, timeout_seconds: float = 5.0) -> bool:
        return False

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


def test_a_recorded_write_survives_and_lands_later(ledger: Ledger, store: ReportStore) -> None:
    row = _running_row(ledger, store)
    assert row.id is not None
    done = finish_attempt(
        ledger,
        UnreachableStore(store),
        row,
        Outcome(OutcomeKind.FAILED, ErrorType.SYSTEM, "infra"),
        POLICY,
    )
    assert done.pending_write and done.state is RunState.SYSTEM_ERROR
    assert ledger.get(row.id).state == "running"  # type: ignore[union-attr]
    assert ledger.get_flag("report_store_outage")
    # A new process (after a crash) drains the outbox against the reachable store.
    services = parse_services('[services.svc]\ncommand=["true"]\n', Path("/x/services.toml"))
    applied, outage = drain(ledger, store, services, min_age_seconds=0)
    assert (applied, outage) == (1, False)
    assert ledger.get(row.id).state == "system_error"  # type: ignore[union-attr]
    assert store.get(row.report_id)["errorType"] == "system"
    assert ledger.get_flag("report_store_outage") is None


class FlakyStore(UnreachableStore):
    """Answers a connectivity probe but times out on this write: an outage just ending."""

    def check_connectivity(self, timeout_seconds: float = 5.0) -> bool:
        return True


def test_a_timed_out_write_is_retried_not_turned_into_failed_sync(
    ledger: Ledger, store: ReportStore
) -> None:
    row = _running_row(ledger, store)
    assert row.id is not None
    done = finish_attempt(
        ledger, FlakyStore(store), row, Outcome(OutcomeKind.FAILED, ErrorType.USER, "x"), POLICY
    )
    assert done.pending_write, "kept in the outbox for the next try"
    assert ledger.get(row.id).state == "running"  # type: ignore[union-attr]
    assert ledger.get_flag("report_store_outage") is None, "the store is reachable: no outage"
    services = parse_services('[services.svc]\ncommand=["true"]\n', Path("/x/services.toml"))
    assert drain(ledger, store, services, min_age_seconds=0)[0] == 1
    assert ledger.get(row.id).state == "failed_permanent"  # type: ignore[union-attr]

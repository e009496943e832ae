"""The ReportStore contract, one suite for every store.

Parametrized (conftest `store`) over the local store on SQLite, on PostgreSQL (`postgres`)
and the Firestore store on the emulator (`integration`). Store-specific behaviour (the local
resync, the Firestore outage) is at the end, under the store it concerns.
"""

from __future__ import annotations

import re
import threading
import time

import pytest
from sqlalchemy import Engine, create_engine, text, update
from sqlmodel import Session

from omicsflow.errors import ReportNotFoundError, StoreUnavailableError
from omicsflow.stores.base import (
    DATA_READY,
    FAILED,
    ChangeKind,
    ReportEvent,
    ReportExistsError,
    ReportStore,
    Watch,
)
from omicsflow.stores.local import LocalReportStore
from omicsflow.stores.local_tables import LocalReport
from tests.omicsflow.stores.conftest import FIRESTORE_WRITE_TIMEOUT, Recorder, firestore_store
from tests.support.firestore_emulator import FirestoreEmulator, free_port

ADDED, REMOVED = ChangeKind.ADDED, ChangeKind.REMOVED


def live_watch(store: ReportStore, recorder: Recorder) -> None:
    """Start a watch and return once it delivers (a sentinel report's ADDED arrived)."""
    store.create("sentinel", "svc")
    store.watch(recorder.on_event, recorder.on_error)
    recorder.wait_for(ADDED, "sentinel")


def test_initial_snapshot_added_for_every_data_ready_report(
    store: ReportStore, recorder: Recorder
) -> None:
    store.create("r1", "gen-decoder", {"patient_id": "p1"})
    store.create("r2", "gen-decoder")
    store.create("r-new", "gen-decoder", status="New")

    store.watch(recorder.on_event, recorder.on_error)
    first = recorder.wait_for(ADDED, "r1")
    recorder.wait_for(ADDED, "r2")
    # A report created after the snapshot marks its end: nothing about r-new came before.
    store.create("r3", "gen-decoder")
    recorder.wait_for(ADDED, "r3")

    assert first.data["status"] == DATA_READY
    assert first.data["service"] == "gen-decoder"
    assert first.data["patient_id"] == "p1"
    assert all(e.report_id != "r-new" for e in recorder.seen)


def test_new_data_ready_report_is_added(store: ReportStore, recorder: Recorder) -> None:
    live_watch(store, recorder)
    store.create("r1", "omni-health", {"lab": "L1"})
    event = recorder.wait_for(ADDED, "r1")
    assert event == ReportEvent(
        ADDED, "r1", {"service": "omni-health", "lab": "L1", "status": DATA_READY}
    )


def test_report_created_in_another_status_then_made_ready_is_added(
    store: ReportStore, recorder: Recorder
) -> None:
    store.create("r1", "svc", status="New")
    live_watch(store, recorder)
    store.set_status("r1", DATA_READY, {"manualHoldRelease": True})
    event = recorder.wait_for(ADDED, "r1")
    assert event.data["manualHoldRelease"] is True
    assert all(e.report_id != "r1" for e in recorder.seen)


def test_status_changed_away_is_removed_and_reentering_is_added_again(
    store: ReportStore, recorder: Recorder
) -> None:
    store.create("r1", "svc")
    store.watch(recorder.on_event, recorder.on_error)
    recorder.wait_for(ADDED, "r1")

    store.set_status("r1", "In Review")
    recorder.wait_for(REMOVED, "r1")

    # The operator's manual retry: reset to "Data Ready".
    store.set_status("r1", DATA_READY)
    again = recorder.wait_for(ADDED, "r1")
    assert again.data["status"] == DATA_READY


def test_field_edit_of_a_ready_report_is_not_an_event(
    store: ReportStore, recorder: Recorder
) -> None:
    store.create("r1", "svc")
    store.watch(recorder.on_event, recorder.on_error)
    recorder.wait_for(ADDED, "r1")

    store.set_status("r1", DATA_READY, {"note": "edited"})
    store.create("r2", "svc")  # marks the point by which an event for r1 would have come
    recorder.wait_for(ADDED, "r2")

    assert [e for e in recorder.seen if e.report_id == "r1"] == []
    assert store.get("r1") == {"service": "svc", "status": DATA_READY, "note": "edited"}


def test_write_failed_sets_status_and_fields_and_removes(
    store: ReportStore, recorder: Recorder
) -> None:
    store.create("r1", "svc", {"patient_id": "p1"})
    store.watch(recorder.on_event, recorder.on_error)
    recorder.wait_for(ADDED, "r1")

    failure = {
        "errorType": "user",
        "owner": "lab",
        "summary": "FASTQ truncated",
        "reason": "exit code 3",
        "status": "ignored: write_failed decides the status",
    }
    store.write_failed("r1", failure)

    recorder.wait_for(REMOVED, "r1")
    doc = store.get("r1")
    assert doc is not None
    assert doc["status"] == FAILED
    assert {k: doc[k] for k in ("errorType", "owner", "summary", "reason")} == {
        "errorType": "user",
        "owner": "lab",
        "summary": "FASTQ truncated",
        "reason": "exit code 3",
    }
    assert doc["patient_id"] == "p1"  # untouched fields stay


def test_write_failed_on_missing_report_raises_not_found(store: ReportStore) -> None:
    with pytest.raises(ReportNotFoundError):
        store.write_failed("no-such-report", {"summary": "x"})
    assert store.get("no-such-report") is None  # and did not create it


def test_set_status_on_missing_report_raises_not_found(store: ReportStore) -> None:
    with pytest.raises(ReportNotFoundError):
        store.set_status("no-such-report", "New")


def test_create_generates_ids_and_rejects_taken_ones(store: ReportStore) -> None:
    generated = store.create(None, "svc")
    assert re.fullmatch(r"rpt-[0-9a-f]{12}", generated)
    assert store.get(generated) == {"service": "svc", "status": DATA_READY}

    store.create("r1", "svc")
    with pytest.raises(ReportExistsError):
        store.create("r1", "other")
    assert store.get("r1") == {"service": "svc", "status": DATA_READY}


def test_check_connectivity_true_when_reachable(store: ReportStore) -> None:
    assert store.check_connectivity(timeout_seconds=5) is True


def test_failing_consumer_is_reported_and_the_watch_goes_on(
    store: ReportStore, recorder: Recorder
) -> None:
    def explode_on_r1(event: ReportEvent) -> None:
        if event.report_id == "r1":
            raise RuntimeError("consumer bug")
        recorder.on_event(event)

    store.create("sentinel", "svc")
    store.watch(explode_on_r1, recorder.on_error)
    recorder.wait_for(ADDED, "sentinel")
    store.create("r1", "svc")
    error = recorder.wait_error()
    assert isinstance(error, RuntimeError)
    store.create("r2", "svc")
    recorder.wait_for(ADDED, "r2")


def test_stopped_watch_delivers_nothing_more(store: ReportStore, recorder: Recorder) -> None:
    store.create("sentinel", "svc")
    watch = store.watch(recorder.on_event, recorder.on_error)
    recorder.wait_for(ADDED, "sentinel")
    watch.stop()

    later = Recorder()
    store.watch(later.on_event, later.on_error)
    store.create("r1", "svc")
    later.wait_for(ADDED, "r1")  # by now the stopped watch would have seen it too
    assert recorder.events.empty()


def test_a_watch_can_stop_itself_from_its_callback(store: ReportStore) -> None:
    handle: list[Watch] = []
    handle_ready = threading.Event()
    stop_took: list[float] = []

    def stop_on_first_event(_event: ReportEvent) -> None:
        if stop_took or not handle_ready.wait(5):
            return
        started = time.monotonic()
        handle[0].stop()
        stop_took.append(time.monotonic() - started)

    store.create("r1", "svc")
    handle.append(store.watch(stop_on_first_event))
    handle_ready.set()
    store.create("r2", "svc")  # in case r1 was delivered before the handle was stored
    deadline = time.monotonic() + 10
    while not stop_took and time.monotonic() < deadline:
        time.sleep(0.01)  # polling interval only; the condition is stop_took
    assert stop_took and stop_took[0] < 0.5


# -- local store ----------------------------------------------------------------------------


def _sneak_status(engine: Engine, report_id: str, status: str) -> None:
    """Change a status without a change row: what the tail misses when a PostgreSQL
    transaction with a lower change id commits after the cursor has moved past it."""
    with Session(engine) as s:
        s.execute(update(LocalReport).where(LocalReport.id == report_id).values(status=status))  # type: ignore[arg-type]
        s.commit()


@pytest.mark.parametrize(
    "engine_fixture", ["sqlite_engine", pytest.param("postgres_engine", marks=pytest.mark.postgres)]
)
def test_local_resync_reemits_and_repairs_missed_changes(
    request: pytest.FixtureRequest, engine_fixture: str, recorder: Recorder
) -> None:
    engine: Engine = request.getfixturevalue(engine_fixture)
    store = LocalReportStore(engine, poll_interval=0.05, resync_seconds=0.3)
    try:
        store.create("r1", "svc")
        store.create("r2", "svc", status="New")
        store.watch(recorder.on_event, recorder.on_error)
        recorder.wait_for(ADDED, "r1")
        recorder.wait_for(ADDED, "r1")  # re-emitted by the next resync, like Firestore does

        _sneak_status(engine, "r2", DATA_READY)
        recorder.wait_for(ADDED, "r2")
        _sneak_status(engine, "r1", FAILED)
        removed = recorder.wait_for(REMOVED, "r1")
        assert removed.report_id == "r1"
        assert recorder.errors.empty()
    finally:
        store.close()


def test_local_changes_between_polls_coalesce_to_the_current_state(
    sqlite_engine: Engine, recorder: Recorder
) -> None:
    # A report that entered "Data Ready" and was failed before the watch looked must not be
    # announced: a late ADDED could resurrect a report already written Failed.
    store = LocalReportStore(sqlite_engine, poll_interval=0.05)
    try:
        live_watch(store, recorder)
        store.create("r1", "svc", status="New")
        store.set_status("r1", DATA_READY)  # may or may not be seen by a poll ...
        store.write_failed("r1", {"summary": "withdrawn"})
        store.create("r2", "svc")
        recorder.wait_for(ADDED, "r2")
        r1_events = [e.kind for e in recorder.seen if e.report_id == "r1"]
        # ... but if ADDED was announced, REMOVED follows it; never a dangling ADDED.
        assert r1_events in ([], [ADDED, REMOVED])
    finally:
        store.close()


def test_local_watch_reports_database_errors_and_recovers(
    sqlite_engine: Engine, recorder: Recorder
) -> None:
    store = LocalReportStore(sqlite_engine, poll_interval=0.05)
    try:
        live_watch(store, recorder)
        with sqlite_engine.begin() as conn:  # the change log disappears under the watch
            conn.execute(text("ALTER TABLE local_report_changes RENAME TO hidden_changes"))
        assert isinstance(recorder.wait_error(), StoreUnavailableError)
        with sqlite_engine.begin() as conn:
            conn.execute(text("ALTER TABLE hidden_changes RENAME TO local_report_changes"))
        store.create("r1", "svc")
        recorder.wait_for(ADDED, "r1")
    finally:
        store.close()


def test_local_check_connectivity_false_when_database_is_gone() -> None:
    # A PostgreSQL port nobody listens on: connection refused.
    engine = create_engine(f"postgresql+psycopg://postgres@127.0.0.1:{free_port()}/test")
    store = LocalReportStore(engine)
    started = time.monotonic()
    assert store.check_connectivity(timeout_seconds=2) is False
    assert time.monotonic() - started < 3
    with pytest.raises(StoreUnavailableError):
        store.write_failed("r1", {})
    engine.dispose()


# -- firestore store ------------------------------------------------------------------------


@pytest.mark.integration
def test_firestore_outage_is_detected_quickly_and_the_watch_resumes(
    private_emulator: FirestoreEmulator, recorder: Recorder
) -> None:
    store = firestore_store(private_emulator)
    try:
        store.create("before", "svc")
        store.watch(recorder.on_event, recorder.on_error)
        recorder.wait_for(ADDED, "before")

        private_emulator.stop()

        started = time.monotonic()
        assert store.check_connectivity(timeout_seconds=2) is False
        assert time.monotonic() - started < 2.5

        started = time.monotonic()
        with pytest.raises(StoreUnavailableError):
            store.write_failed("before", {"summary": "x"})
        assert time.monotonic() - started < FIRESTORE_WRITE_TIMEOUT + 2

        # The watch noticed, said so, and keeps trying to subscribe again.
        assert isinstance(recorder.wait_error(timeout=10), StoreUnavailableError)

        private_emulator.start()  # same port; the emulator comes back empty
        assert store.check_connectivity(timeout_seconds=5) is True
        store.create("after", "svc")
        recorder.wait_for(ADDED, "after", timeout=20)
        # "before" vanished with the emulator's memory: the new subscription's first
        # snapshot lacks it, so the watch withdrew it rather than leave it dangling.
        assert any(e.kind == REMOVED and e.report_id == "before" for e in recorder.seen)
    finally:
        store.close()

"""End to end with the Firestore report store (the emulator speaks the real wire protocol)."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from omicsflow.stores.base import DATA_READY, FAILED
from omicsflow.stores.firestore import FirestoreReportStore
from tests.deployments import helpers as h
from tests.deployments.conftest import Deployment
from tests.support.firestore_emulator import FirestoreEmulator
from tests.support.serve_process import wait_for

pytestmark = pytest.mark.integration


def fs_store(dep: Deployment, em: FirestoreEmulator) -> FirestoreReportStore:
    return FirestoreReportStore(
        em.project, dep.env["OMICSFLOW_FIRESTORE_COLLECTION"], client=em.client(), write_timeout=3
    )


def test_firestore_success_and_user_failure(
    omicsflow: Callable[..., Deployment], emulator: FirestoreEmulator
) -> None:
    dep = omicsflow(store="firestore", firestore=emulator)
    store = fs_store(dep, emulator)
    ok = store.create(None, "behave", {"mode": "ok"})
    bad = store.create(None, "behave1", {"mode": "user_fail"})
    row = h.final(dep, ok, "succeeded", timeout=60)
    assert row.flow_run_id and store.get(ok)["status"] == DATA_READY
    failed = h.final(dep, bad, "failed_permanent", timeout=60)
    doc = store.get(bad)
    assert doc["status"] == FAILED
    assert doc["failureOwner"] == "lab" and doc["errorType"] == "user" and doc["attempts"] == 1
    assert doc["failureSummary"] == failed.summary
    h.flow_ends(dep, failed.flow_run_id, "FAILED/UserError")


def test_bad_documents_are_recorded_and_skipped(
    omicsflow: Callable[..., Deployment], emulator: FirestoreEmulator
) -> None:
    dep = omicsflow(store="firestore", firestore=emulator)
    client = emulator.client()
    col = client.collection(dep.env["OMICSFLOW_FIRESTORE_COLLECTION"])
    col.document("no-service").set({"status": DATA_READY})
    col.document("unknown").set({"status": DATA_READY, "service": "does-not-exist"})
    col.document("wrong-type").set({"status": DATA_READY, "service": 42})
    good = fs_store(dep, emulator).create(None, "behave", {"mode": "ok"})
    h.final(dep, good, "succeeded", timeout=60)
    reasons = wait_for(
        lambda: (
            (r := {x.report_id: x.reason for x in dep.ledger.rejections()}) and len(r) >= 3 and r
        ),
        30,
        "three recorded rejections",
    )
    assert "no 'service' field" in reasons["no-service"]
    assert "unknown service 'does-not-exist'" in reasons["unknown"]
    assert "must be a string" in reasons["wrong-type"]
    assert not dep.ledger.rows_for_report("unknown")


def test_outage_pauses_intake_and_loses_no_terminal_write(
    omicsflow: Callable[..., Deployment], emulator: FirestoreEmulator
) -> None:
    """Firestore stops answering while a run fails: the terminal write waits in the outbox,
    the row stays running, intake pauses; when Firestore answers again the write lands
    (Firestore first, then the ledger) and intake resumes by itself."""
    dep = omicsflow(store="firestore", firestore=emulator)
    store = fs_store(dep, emulator)
    report_id = store.create(None, "behave1", {"mode": "block_then_fail"})
    wait_for(lambda: h.states(dep, report_id) == ["running"], 60, "the run to start")
    emulator.freeze()
    try:
        (dep.control / f"{report_id}.release").touch()
        pending = wait_for(
            lambda: dep.ledger.pending_write_for(h.rows(dep, report_id)[0].id or 0),
            60,
            "the terminal write to wait in the outbox",
        )
        assert pending.target_state == "failed_permanent"
        wait_for(lambda: dep.ledger.get_flag("report_store_outage"), 30, "the outage flag")
        assert h.states(dep, report_id) == ["running"], "in-flight rows stay as they are"
    finally:
        emulator.thaw()
    row = h.final(dep, report_id, "failed_permanent", timeout=60)
    assert store.get(report_id)["status"] == FAILED
    assert dep.ledger.pending_write_for(row.id or 0) is None
    wait_for(lambda: dep.ledger.get_flag("report_store_outage") is None, 30, "outage cleared")
    after = store.create(None, "behave", {"mode": "ok"})
    h.final(dep, after, "succeeded", timeout=60)


def test_emulator_restart_during_outage(
    omicsflow: Callable[..., Deployment], emulator: FirestoreEmulator
) -> None:
    """The emulator process stops and starts again (it keeps nothing): the queued write is
    still applied to the ledger, and the listener reconnects so new reports run."""
    dep = omicsflow(store="firestore", firestore=emulator)
    store = fs_store(dep, emulator)
    report_id = store.create(None, "behave1", {"mode": "block_then_fail"})
    wait_for(lambda: h.states(dep, report_id) == ["running"], 60, "the run to start")
    emulator.stop()
    (dep.control / f"{report_id}.release").touch()
    wait_for(lambda: dep.ledger.get_flag("report_store_outage"), 60, "the outage flag")
    assert h.states(dep, report_id) == ["running"]
    emulator.start()
    row = h.final(dep, report_id, "failed_permanent", timeout=60)
    assert "no longer exists" in (row.notes or ""), "the restarted emulator lost the document"
    wait_for(lambda: dep.ledger.get_flag("report_store_outage") is None, 30, "outage cleared")
    after = fs_store(dep, emulator).create(None, "behave", {"mode": "ok"})
    h.final(dep, after, "succeeded", timeout=90)

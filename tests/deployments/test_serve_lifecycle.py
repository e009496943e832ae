"""End to end through a real Prefect server and `omicsflow serve`; the core scenarios run
against both report stores (local, and Firestore on the emulator)."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from omicsflow.stores.base import DATA_READY, FAILED
from tests.deployments import helpers as h
from tests.deployments.conftest import Deployment, Lab
from tests.support.prefect_api import read_flow_run
from tests.support.serve_process import wait_for

pytestmark = pytest.mark.integration


def test_success_completes_in_ledger_and_prefect(omicsflow: Callable[..., Deployment]) -> None:
    dep = omicsflow()
    added = h.cli(dep, "reports", "add", "--service", "behave", "--field", "mode=ok")
    assert added.returncode == 0, added.stderr
    report_id = added.stdout.strip()
    row = h.final(dep, report_id, "succeeded", timeout=30)
    assert row.exit_code == 0 and row.attempt == 1 and row.flow_run_id
    h.flow_ends(dep, row.flow_run_id, "COMPLETED/Completed")
    fr = read_flow_run(dep.env["PREFECT_API_URL"], row.flow_run_id)
    assert f"doc:{report_id}" in fr.tags and "service:behave" in fr.tags
    # Outputs came back from the sandbox scratch to the report's real user-data dir.
    out = dep.home / "data" / "user" / report_id / "out" / "result.txt"
    assert out.read_text() == f"result for {report_id}\n"
    listed = h.cli(dep, "runs", "list", "--report", report_id, "--json")
    import json

    (only,) = json.loads(listed.stdout)
    for key in (
        "id",
        "report_id",
        "service",
        "generation",
        "attempt",
        "state",
        "scheduled_run_at",
        "started_at",
        "finished_at",
        "exit_code",
        "error_type",
        "owner",
        "category",
        "summary",
        "backend",
        "backend_run_id",
        "flow_run_id",
    ):
        assert key in only
    assert only["state"] == "succeeded"
    # A successful run leaves the report alone: downstream writes "Available", not us.
    assert h.local_store(dep).get(report_id)["status"] == DATA_READY


def test_user_failure_retried_to_failed_permanent(lab: Lab) -> None:
    dep, store = lab.dep, lab.store
    report_id = store.create(None, "behave", {"mode": "user_fail"})
    row = h.final(dep, report_id, "failed_permanent", timeout=90)
    rows = h.rows(dep, report_id)
    assert [r.state for r in rows] == ["failed_retrying", "failed_permanent"]
    assert [r.attempt for r in rows] == [1, 2]
    assert row.owner == "lab" and row.error_type == "user" and row.classified_by == "rules"
    doc = store.get(report_id)
    assert doc["status"] == FAILED
    assert doc["failureOwner"] == "lab" and doc["errorType"] == "user" and doc["attempts"] == 2
    assert doc["failureSummary"] and doc["failureReason"] and doc["failedAt"]
    h.flow_ends(dep, row.flow_run_id, "FAILED/UserError")
    first = read_flow_run(dep.env["PREFECT_API_URL"], rows[0].flow_run_id or "")
    assert first.state is not None and first.state.name == "Retrying"


def test_temp_fail_keeps_attempt_number(lab: Lab) -> None:
    dep, store = lab.dep, lab.store
    report_id = store.create(None, "behave", {"mode": "temp_then_ok"})
    wait_for(lambda: "temp_failed" in h.states(dep, report_id), 60, "a temp_failed row")
    (dep.control / f"{report_id}.ready").touch()
    h.final(dep, report_id, "succeeded", timeout=60)
    rows = h.rows(dep, report_id)
    assert {r.attempt for r in rows} == {1}, "a temp fail must not consume a retry"
    assert [r.seq for r in rows] == list(range(len(rows)))
    assert all(r.state == "temp_failed" for r in rows[:-1])


def test_system_error_retries_on_its_own_budget(lab: Lab) -> None:
    dep, store = lab.dep, lab.store
    report_id = store.create(None, "behave", {"mode": "system_fail"})
    row = h.final(dep, report_id, "system_error", timeout=90)
    rows = h.rows(dep, report_id)
    # max_system_retries = 1: one retry, both at attempt 1 (the lab's retries untouched).
    assert [r.state for r in rows] == ["failed_retrying", "system_error"]
    assert [r.attempt for r in rows] == [1, 1]
    assert row.owner == "platform" and row.error_type == "system"
    assert store.get(report_id)["errorType"] == "system"
    h.flow_ends(dep, row.flow_run_id, "FAILED/SystemError")


def test_withdraw_cancels_cooling_run_without_writing_store(lab: Lab) -> None:
    dep, store = lab.dep, lab.store
    report_id = store.create(None, "cooling", {"mode": "ok"})
    row = wait_for(lambda: next(iter(h.rows(dep, report_id)), None), 30, "the cooling row")
    assert row.state == "waiting_cooldown"
    wait_for(lambda: h.rows(dep, report_id)[0].flow_run_id, 30, "its scheduled flow run")
    store.set_status(report_id, "On Hold")
    final = h.final(dep, report_id, "failed_permanent", timeout=30)
    assert final.reason == "Withdrawn from Firestore"
    assert store.get(report_id)["status"] == "On Hold", "withdraw never writes the store back"
    fr = wait_for(
        lambda: (
            (f := read_flow_run(dep.env["PREFECT_API_URL"], final.flow_run_id or ""))
            and f.state
            and f.state.type.value == "CANCELLED"
            and f
        ),
        30,
        "the scheduled flow run to be cancelled",
    )
    assert fr


def test_cli_cancel_kills_the_pipeline_and_its_children(lab: Lab) -> None:
    dep, store = lab.dep, lab.store
    report_id = store.create(None, "behave", {"mode": "block"})
    marker = f"omicsflow-test-child-{report_id}"
    wait_for(lambda: h.host_processes_with(marker), 60, "the pipeline's child process")
    row = h.rows(dep, report_id)[0]
    assert row.state == "running"
    res = h.cli(dep, "runs", "cancel", str(row.id))
    assert res.returncode == 0, res.stdout + res.stderr
    assert "cancelled" in res.stdout
    final = h.final(dep, report_id, "cancelled", timeout=30)
    doc = store.get(report_id)
    assert doc["status"] == FAILED and doc["failureReason"] == "Cancelled by operator"
    wait_for(lambda: not h.host_processes_with(marker), 30, "no orphan child process")
    fr = wait_for(
        lambda: (
            (f := read_flow_run(dep.env["PREFECT_API_URL"], final.flow_run_id or ""))
            and f.state
            and f.state.is_final()
            and f
        ),
        60,
        "the flow run to end",
    )
    assert fr.state is not None and fr.state.type.value == "CANCELLED"
    audit = dep.ledger.audit_entries()
    assert any(a.command == "cancel" and a.result == "ok" and a.run_id == row.id for a in audit)


def test_sigkill_of_serve_is_recovered(lab: Lab) -> None:
    dep, store = lab.dep, lab.store
    report_id = store.create(None, "behave", {"mode": "block"})
    marker = f"omicsflow-test-child-{report_id}"
    wait_for(lambda: h.host_processes_with(marker), 60, "the pipeline to start")
    dep.serve.kill()
    # The flow process notices its runner died and takes the pipeline down with it.
    wait_for(lambda: not h.host_processes_with(marker), 30, "the orphaned pipeline to stop")
    assert h.states(dep, report_id) == ["running"]
    (dep.control / f"{report_id}.release").touch()
    dep.restart()
    row = h.final(dep, report_id, "succeeded", timeout=90)
    first = h.rows(dep, report_id)[0]
    assert first.state == "failed_retrying"
    assert first.category == "orchestrator_process_lost" and first.owner == "platform"
    assert row.attempt == 1, "a lost process is a platform failure: the lab's retries are kept"


def test_failed_sync_when_the_store_refuses_the_document(
    omicsflow: Callable[..., Deployment],
) -> None:
    """The store is reachable but refuses this one document (it would exceed the 1 MiB
    document limit): failed_sync, and a fresh series is scheduled after the long delay."""
    dep = omicsflow()
    store = h.local_store(dep)
    report_id = store.create(None, "behave1", {"mode": "user_fail", "notes": "x" * 1_048_300})
    row = h.final(dep, report_id, "waiting_cooldown", timeout=60)
    first, second = h.rows(dep, report_id)
    assert first.state == "failed_sync" and "[FIRESTORE_SYNC_FAILED]" in (first.reason or "")
    assert (second.generation, second.attempt) == (first.generation + 1, 1)
    assert second.notes == "sync_retry"
    delay = (
        second.scheduled_run_at - (first.finished_at or second.scheduled_run_at)
    ).total_seconds()
    assert 3500 < delay <= 3600
    wait_for(
        lambda: (r := dep.ledger.get(row.id or 0)) and r.flow_run_id,
        30,
        "the retry series' scheduled flow run",
    )
    assert store.get(report_id)["status"] == DATA_READY
    h.flow_ends(dep, first.flow_run_id, "FAILED/SyncFailed")


def test_prefect_ui_cancel_ends_the_run_as_cancelled(
    omicsflow: Callable[..., Deployment],
) -> None:
    """The UI's Cancel (a forced Cancelling state) kills the pipeline's group and the run
    ends cancelled, store first."""
    import uuid as _uuid

    from prefect.states import Cancelling

    from tests.support.prefect_api import prefect_client

    dep = omicsflow()
    report_id = h.local_store(dep).create(None, "behave", {"mode": "block"})
    marker = f"omicsflow-test-child-{report_id}"
    wait_for(lambda: h.host_processes_with(marker), 60, "the pipeline's child process")
    row = h.rows(dep, report_id)[0]
    with prefect_client(dep.env["PREFECT_API_URL"]) as client:
        client.set_flow_run_state(_uuid.UUID(row.flow_run_id or ""), Cancelling(), force=True)
    final = h.final(dep, report_id, "cancelled", timeout=60)
    assert final.reason == "Cancelled by operator"
    assert h.local_store(dep).get(report_id)["failureReason"] == "Cancelled by operator"
    wait_for(lambda: not h.host_processes_with(marker), 30, "no orphan child process")
    assert any(
        a.command == "cancel" and a.actor == "prefect-ui" for a in dep.ledger.audit_entries()
    )

"""HealthOmicsBackend against the wire-level fake, through the real boto3 client and SigV4."""

from __future__ import annotations

import contextlib
import json
import logging
import socket
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.awsrequest import AWSResponse, HTTPHeaders
from botocore.config import Config
from botocore.exceptions import ClientError, EndpointConnectionError

from omicsflow.backends.base import RemoteState
from omicsflow.backends.healthomics import HealthOmicsBackend, make_omics_client
from omicsflow.errors import BackendPermanentError, BackendTransientError
from tests.omicsflow.backends.helpers import (
    REGION,
    identity,
    omics_backend,
    omics_settings,
    request,
)
from tests.support.fakes.healthomics_fake import HealthOmicsFake

pytestmark = pytest.mark.integration

FAILURE_CODES = [
    entry["code"]
    for entry in json.loads(
        Path("/work/shared/reference/healthomics_failure_codes.json").read_text()
    )
]


def test_reference_lists_the_24_documented_codes() -> None:
    assert len(FAILURE_CODES) == 24
    assert len(set(FAILURE_CODES)) == 24


# -- submit & idempotency --------------------------------------------------------------------


def test_submit_starts_one_run_with_the_attempt_token(healthomics_fake: HealthOmicsFake) -> None:
    backend = omics_backend(healthomics_fake)
    ident = identity()
    handle = backend.submit(request())

    run = healthomics_fake.run(handle.run_id)
    assert handle.backend == "healthomics"
    assert handle.key == run.uuid != handle.run_id
    assert run.request_id == ident.token
    assert run.name == ident.token
    assert run.body["tags"] == {
        "omicsflow:report": "rep-1",
        "omicsflow:service": "wgs",
        "omicsflow:attempt": "g1-a1-s1",
        "omicsflow:ledger-run": "7",
    }
    assert run.body["parameters"] == {"reference": "s3://refs/hg38.fa", "sample": "rep-1"}
    assert run.body["workflowId"] == "4321987"
    assert run.body["storageType"] == "DYNAMIC"
    assert "storageCapacity" not in run.body
    assert handle.console_url == (
        f"https://{REGION}.console.aws.amazon.com/omics/home?region={REGION}#/runs/{run.id}"
    )
    assert handle.extra["arn"] == run.arn


def test_same_attempt_twice_and_after_a_crash_is_one_run(
    healthomics_fake: HealthOmicsFake,
) -> None:
    first = omics_backend(healthomics_fake).submit(request())
    again = omics_backend(healthomics_fake).submit(request())
    # A brand-new backend object: the process died between StartRun and the ledger write.
    after_crash = omics_backend(healthomics_fake).submit(request())
    assert first == again == after_crash
    assert len(healthomics_fake.runs) == 1
    assert healthomics_fake.log.count("StartRun") == 1


def test_request_id_alone_dedupes_without_the_name_lookup(
    healthomics_fake: HealthOmicsFake,
) -> None:
    a = omics_backend(healthomics_fake, lookup_by_name=False).submit(request())
    b = omics_backend(healthomics_fake, lookup_by_name=False).submit(request())
    assert a == b
    assert healthomics_fake.log.count("StartRun") == 2
    assert len(healthomics_fake.runs) == 1


def test_name_lookup_still_dedupes_once_request_ids_expired(
    healthomics_fake: HealthOmicsFake,
) -> None:
    a = omics_backend(healthomics_fake).submit(request())
    healthomics_fake.forget_request_ids()
    b = omics_backend(healthomics_fake).submit(request())
    assert a == b
    assert len(healthomics_fake.runs) == 1


def test_lost_start_run_answer_is_retried_into_the_same_run(
    healthomics_fake: HealthOmicsFake,
) -> None:
    backend = omics_backend(healthomics_fake, lookup_by_name=False)
    first = backend.submit(request())
    # Same requestId retried after a 500: the service answers with the run it already has.
    healthomics_fake.fail_next(1, {"StartRun"})
    second = backend.submit(request())
    assert first == second
    assert len(healthomics_fake.runs) == 1


def test_different_attempts_are_different_runs(healthomics_fake: HealthOmicsFake) -> None:
    backend = omics_backend(healthomics_fake)
    one = backend.submit(request(attempt=1))
    two = backend.submit(request(attempt=2))
    assert one.key != two.key
    assert len(healthomics_fake.runs) == 2


# -- lifecycle & status mapping ----------------------------------------------------------------


def test_lifecycle_pending_running_completed(healthomics_fake: HealthOmicsFake) -> None:
    token = identity().token
    healthomics_fake.script(
        token,
        [("PENDING", 1), ("STARTING", 1), ("RUNNING", 2), ("STOPPING", 1), ("COMPLETED", 1)],
    )
    backend = omics_backend(healthomics_fake)
    handle = backend.submit(request())
    states = [backend.poll_many([handle])[0] for _ in range(7)]
    assert [r.state for r in states] == [
        RemoteState.PENDING,
        RemoteState.PENDING,
        RemoteState.RUNNING,
        RemoteState.RUNNING,
        RemoteState.RUNNING,
        RemoteState.SUCCEEDED,
        RemoteState.SUCCEEDED,
    ]
    assert [r.raw_status for r in states[:3]] == ["PENDING", "STARTING", "RUNNING"]
    assert states[-1].terminal and not states[0].terminal
    assert backend.list_outputs(handle) == [f"s3://lab-results/runs/{handle.run_id}"]


def test_manual_advance_moves_only_when_told(healthomics_fake: HealthOmicsFake) -> None:
    token = identity().token
    healthomics_fake.script(token, [("PENDING", 1), ("RUNNING", 1), ("COMPLETED", 1)], auto=False)
    backend = omics_backend(healthomics_fake)
    handle = backend.submit(request())
    assert [backend.poll_many([handle])[0].state for _ in range(3)] == [RemoteState.PENDING] * 3
    assert healthomics_fake.advance(handle.run_id) == "RUNNING"
    assert backend.poll_many([handle])[0].state is RemoteState.RUNNING
    healthomics_fake.advance(token)
    assert backend.poll_many([handle])[0].state is RemoteState.SUCCEEDED


@pytest.mark.parametrize(
    ("raw", "state"),
    [
        ("PENDING", RemoteState.PENDING),
        ("STARTING", RemoteState.PENDING),
        ("RUNNING", RemoteState.RUNNING),
        ("STOPPING", RemoteState.RUNNING),
        ("COMPLETED", RemoteState.SUCCEEDED),
        ("FAILED", RemoteState.FAILED),
        ("CANCELLED", RemoteState.CANCELLED),
        ("DELETED", RemoteState.CANCELLED),
        ("HIBERNATING", RemoteState.UNKNOWN),
    ],
)
def test_status_mapping_tolerates_unknown_values(
    healthomics_fake: HealthOmicsFake, raw: str, state: RemoteState
) -> None:
    healthomics_fake.script(identity().token, [(raw, 1)])
    backend = omics_backend(healthomics_fake)
    result = backend.poll_many([backend.submit(request())])[0]
    assert (result.state, result.raw_status) == (state, raw)


def test_poll_many_keeps_input_order_across_threads(healthomics_fake: HealthOmicsFake) -> None:
    backend = omics_backend(healthomics_fake, poll_concurrency=4)
    handles = []
    for i in range(10):
        status = "COMPLETED" if i % 2 else "RUNNING"
        healthomics_fake.script(identity(f"r{i}").token, [(status, 1)])
        handles.append(backend.submit(request(f"r{i}")))
    results = backend.poll_many(handles)
    assert [r.handle for r in results] == handles
    assert [r.raw_status for r in results] == [
        "COMPLETED" if i % 2 else "RUNNING" for i in range(10)
    ]


# -- failures & evidence -----------------------------------------------------------------------


@pytest.mark.parametrize("code", FAILURE_CODES)
def test_failed_run_evidence_keeps_fields_apart(
    healthomics_fake: HealthOmicsFake, code: str
) -> None:
    message = f"Run failed: task align-{code.lower()} reported {code}; see its log"
    tasks = [
        {
            "name": f"align-{i}",
            "failureReason": code,
            "statusMessage": f"task {i}: {code}",
            "logStream": f"arn:aws:logs:{REGION}:123456789012:log-stream:run/task-{i}",
        }
        for i in range(3)
    ] + [{"name": "qc", "status": "COMPLETED"}]
    healthomics_fake.script(
        identity().token,
        [
            ("RUNNING", 1),
            ("FAILED", {"failureReason": code, "statusMessage": message, "tasks": tasks}),
        ],
    )
    backend = omics_backend(healthomics_fake)
    handle = backend.submit(request())
    assert backend.poll_many([handle])[0].state is RemoteState.RUNNING
    polled = backend.poll_many([handle])[0]
    assert polled.state is RemoteState.FAILED
    assert polled.message == code

    evidence = backend.collect_evidence(handle)
    assert evidence.platform.value == "healthomics"
    assert evidence.failure_reason == code
    assert evidence.status_message == message
    assert evidence.error_message is None and evidence.error_report is None
    assert [t.name for t in evidence.tasks] == ["align-0", "align-1", "align-2"]
    assert all(t.failure_reason == code and t.status == "FAILED" for t in evidence.tasks)
    assert evidence.tasks[1].status_message == f"task 1: {code}"
    assert evidence.tasks[2].log_location.endswith("run/task-2")  # type: ignore[union-attr]
    assert evidence.elapsed_seconds is not None
    # Three failed tasks at two per page: the client followed nextToken.
    assert healthomics_fake.log.count("ListRunTasks") == 2
    assert healthomics_fake.log.count("GetRunTask") == 3
    assert backend.run_log_location(handle) == (
        f"arn:aws:logs:{REGION}:123456789012:log-group:/aws/omics/WorkflowLog:"
        f"log-stream:run/{handle.run_id}"
    )


# -- vanished runs & reused ids ----------------------------------------------------------------


def test_deleted_run_is_reported_vanished(healthomics_fake: HealthOmicsFake) -> None:
    backend = omics_backend(healthomics_fake)
    handle = backend.submit(request())
    healthomics_fake.delete_run(handle.run_id)
    result = backend.poll_many([handle])[0]
    assert result.state is RemoteState.FAILED
    assert result.raw_status == "VANISHED"
    assert "no longer exists" in (result.message or "")


def test_reused_run_id_is_not_mistaken_for_our_run(healthomics_fake: HealthOmicsFake) -> None:
    backend = omics_backend(healthomics_fake)
    ours = backend.submit(request("old"))
    healthomics_fake.delete_run(ours.run_id)
    healthomics_fake.script(identity("new").token, [("RUNNING", 1)])
    theirs = backend.submit(request("new"))
    assert theirs.run_id == ours.run_id and theirs.key != ours.key

    old, new = backend.poll_many([ours, theirs])
    assert old.state is RemoteState.FAILED and "another run" in (old.message or "")
    assert new.state is RemoteState.RUNNING
    # Evidence for the old handle must not describe the new run either.
    assert backend.collect_evidence(ours).failure_reason is None


# -- throttling, quota, errors -----------------------------------------------------------------


@pytest.mark.parametrize("status", [429, 400])
def test_throttling_burst_is_retried(healthomics_fake: HealthOmicsFake, status: int) -> None:
    backend = omics_backend(healthomics_fake)
    healthomics_fake.script(identity().token, [("RUNNING", 1)])
    handle = backend.submit(request())
    healthomics_fake.throttle_next(3, {"GetRun"}, status=status)
    assert backend.poll_many([handle])[0].state is RemoteState.RUNNING
    statuses = [c.status for c in healthomics_fake.log.calls if c.operation == "GetRun"]
    assert statuses == [status] * 3 + [200]


def test_observed_rate_never_exceeds_max_tps(healthomics_fake: HealthOmicsFake) -> None:
    fast = omics_backend(healthomics_fake)
    handles = [fast.submit(request(f"r{i}", seq=i)) for i in range(20)]
    healthomics_fake.log.reset()
    # The service's own quota: 10 TPS. Ours stays below it, so nothing is throttled.
    healthomics_fake.enforce_tps(10, {"GetRun"})
    limited = omics_backend(healthomics_fake, max_tps=8, poll_concurrency=4)

    results = limited.poll_many(handles) + limited.poll_many(handles[:4])

    assert all(r.state is RemoteState.PENDING for r in results)
    calls = healthomics_fake.log.calls
    assert len(calls) == 24 and all(c.status == 200 for c in calls)
    # 10 ms slack for jitter between the client's send and the server's receive.
    assert healthomics_fake.log.max_in_window({"GetRun"}, slack=0.01) <= 8
    span = calls[-1].at - calls[0].at
    assert span >= (24 - 1) / 8 - 0.05


def test_limiter_above_the_quota_gets_throttled_and_recovers(
    healthomics_fake: HealthOmicsFake,
) -> None:
    fast = omics_backend(healthomics_fake)
    handles = [fast.submit(request(f"r{i}", seq=i)) for i in range(12)]
    healthomics_fake.log.reset()
    healthomics_fake.enforce_tps(5, {"GetRun"})
    greedy = omics_backend(
        healthomics_fake, max_tps=50, max_attempts=10, base_delay=0.2, max_delay=0.5
    )
    results = greedy.poll_many(handles)
    assert all(r.state is RemoteState.PENDING for r in results)
    assert healthomics_fake.log.count("GetRun") > 12  # some were throttled and retried
    assert healthomics_fake.log.count("GetRun", served_only=True) == 12


def test_5xx_is_retried_then_succeeds(healthomics_fake: HealthOmicsFake) -> None:
    backend = omics_backend(healthomics_fake)
    handle = backend.submit(request())
    healthomics_fake.fail_next(2, {"GetRun"})
    healthomics_fake.fail_next(1, {"GetRun"}, code="ServiceUnavailableException")
    assert backend.poll_many([handle])[0].state is RemoteState.PENDING
    assert [c.status for c in healthomics_fake.log.calls if c.operation == "GetRun"] == [
        500,
        500,
        503,
        200,
    ]


def test_persistent_5xx_stops_the_batch_and_reports_unknown(
    healthomics_fake: HealthOmicsFake,
) -> None:
    seed = omics_backend(healthomics_fake)
    handles = [seed.submit(request(f"r{i}", seq=i)) for i in range(5)]
    healthomics_fake.log.reset()
    backend = omics_backend(healthomics_fake, max_attempts=3, poll_concurrency=1)
    healthomics_fake.fail_next(100, {"GetRun"})
    results = backend.poll_many(handles)
    assert all(r.state is RemoteState.UNKNOWN for r in results)
    assert all("not polled" in (r.message or "") for r in results)
    # Three attempts on the first handle, then the batch stops hammering the API.
    assert healthomics_fake.log.count("GetRun") == 3


def test_persistent_5xx_on_evidence_raises_transient_with_cause(
    healthomics_fake: HealthOmicsFake,
) -> None:
    backend = omics_backend(healthomics_fake, max_attempts=2)
    handle = backend.submit(request())
    healthomics_fake.fail_next(2, {"GetRun"})
    with pytest.raises(BackendTransientError, match="InternalServerException") as info:
        backend.collect_evidence(handle)
    assert isinstance(info.value.__cause__, ClientError)


@pytest.mark.parametrize(
    "code",
    ["AccessDeniedException", "ValidationException", "ServiceQuotaExceededException"],
)
def test_permanent_errors_surface_without_retry(
    healthomics_fake: HealthOmicsFake, code: str
) -> None:
    backend = omics_backend(healthomics_fake)
    handle = backend.submit(request())
    healthomics_fake.fail_next(1, {"GetRun"}, code=code)
    with pytest.raises(BackendPermanentError, match=code) as info:
        backend.poll_many([handle])
    assert isinstance(info.value.__cause__, ClientError)
    assert healthomics_fake.log.count("GetRun") == 1


def test_start_run_validation_error_is_permanent(healthomics_fake: HealthOmicsFake) -> None:
    backend = omics_backend(healthomics_fake)
    healthomics_fake.fail_next(1, {"StartRun"}, code="ValidationException")
    with pytest.raises(BackendPermanentError, match="ValidationException"):
        backend.submit(request())
    assert healthomics_fake.runs == []


def test_sdk_does_not_retry_behind_the_limiters_back(healthomics_fake: HealthOmicsFake) -> None:
    backend = omics_backend(healthomics_fake, max_attempts=1)
    handle = backend.submit(request())
    healthomics_fake.fail_next(5, {"GetRun"})
    with pytest.raises(BackendTransientError):
        backend.collect_evidence(handle)
    assert healthomics_fake.log.count("GetRun") == 1


def test_unreachable_endpoint_is_transient(healthomics_fake: HealthOmicsFake) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    # Nothing listens on `port` any more.
    backend = omics_backend(
        healthomics_fake,
        endpoint_url=f"http://127.0.0.1:{port}",
        max_attempts=2,
        connect_timeout=1.0,
    )
    with pytest.raises(BackendTransientError, match="cannot reach") as info:
        backend.submit(request())
    assert isinstance(info.value.__cause__, EndpointConnectionError)


# -- cancel ------------------------------------------------------------------------------------


def test_cancel_running_run(healthomics_fake: HealthOmicsFake) -> None:
    healthomics_fake.script(identity().token, [("RUNNING", 1)])
    backend = omics_backend(healthomics_fake)
    handle = backend.submit(request())
    backend.cancel(handle)
    assert healthomics_fake.log.count("CancelRun", served_only=True) == 1
    assert backend.poll_many([handle])[0].state is RemoteState.CANCELLED


def test_cancel_of_a_finished_run_is_tolerated(healthomics_fake: HealthOmicsFake) -> None:
    healthomics_fake.script(identity().token, [("COMPLETED", 1)])
    backend = omics_backend(healthomics_fake)
    handle = backend.submit(request())
    backend.cancel(handle)  # the service answers 409 ConflictException
    assert [c.status for c in healthomics_fake.log.calls if c.operation == "CancelRun"] == [409]
    assert backend.poll_many([handle])[0].state is RemoteState.SUCCEEDED


def test_cancel_of_a_vanished_run_does_not_cancel_its_successor(
    healthomics_fake: HealthOmicsFake,
) -> None:
    backend = omics_backend(healthomics_fake)
    ours = backend.submit(request("old"))
    healthomics_fake.delete_run(ours.run_id)
    healthomics_fake.script(identity("new").token, [("RUNNING", 1)])
    backend.submit(request("new"))
    backend.cancel(ours)
    assert healthomics_fake.log.count("CancelRun") == 0


# -- wire details ------------------------------------------------------------------------------


def _captured_url(client: Any) -> str:
    """Send GetRun into a before-send hook (no network) and return the URL botocore built."""
    seen: list[str] = []

    def capture(request: Any, **_: Any) -> AWSResponse:
        seen.append(request.url)
        return AWSResponse(request.url, 404, HTTPHeaders(), None)

    client.meta.events.register("before-send.omics.GetRun", capture)
    # The canned 404 has no body, so the call fails; only the URL matters here.
    with contextlib.suppress(Exception):
        client.get_run(id="1")
    return seen[0]


def test_host_prefix_would_break_a_local_endpoint_and_is_disabled(
    healthomics_fake: HealthOmicsFake,
) -> None:
    session = boto3.Session(aws_access_key_id="A", aws_secret_access_key="B", region_name=REGION)
    default = session.client("omics", endpoint_url=healthomics_fake.url)
    assert _captured_url(default).startswith("http://workflows-127.0.0.1:")

    ours = make_omics_client(omics_settings(healthomics_fake), session)
    assert _captured_url(ours) == f"{healthomics_fake.url}/run/1"

    real = make_omics_client(omics_settings(healthomics_fake, endpoint_url=None), session)
    assert _captured_url(real) == f"https://workflows-omics.{REGION}.amazonaws.com/run/1"


def test_requests_are_sigv4_signed_and_unsigned_ones_rejected(
    healthomics_fake: HealthOmicsFake,
) -> None:
    omics_backend(healthomics_fake).submit(request())
    assert healthomics_fake.log.count("StartRun", served_only=True) == 1
    with pytest.raises(urllib.error.HTTPError) as info:
        urllib.request.urlopen(f"{healthomics_fake.url}/run/1", timeout=5)
    assert info.value.code == 403
    assert info.value.headers["x-amzn-ErrorType"].startswith("UnrecognizedClientException")
    healthomics_fake.auth_failures.clear()  # expected here; the fixture checks the rest


def test_client_retries_are_configured_off(healthomics_fake: HealthOmicsFake) -> None:
    settings = omics_settings(healthomics_fake)
    client = make_omics_client(
        settings,
        boto3.Session(aws_access_key_id="A", aws_secret_access_key="B", region_name=REGION),
    )
    config: Config = client.meta.config
    assert config.retries["total_max_attempts"] == 1  # type: ignore[attr-defined]
    assert config.inject_host_prefix is False


def test_repr_names_no_credentials(healthomics_fake: HealthOmicsFake) -> None:
    backend: HealthOmicsBackend = omics_backend(healthomics_fake)
    assert "not-a-secret" not in repr(backend)


def test_retries_are_logged_without_secrets(
    healthomics_fake: HealthOmicsFake, caplog: pytest.LogCaptureFixture
) -> None:
    backend = omics_backend(healthomics_fake)
    handle = backend.submit(request())
    healthomics_fake.throttle_next(1, {"GetRun"})
    with caplog.at_level(logging.DEBUG):
        backend.poll_many([handle])
    assert any("ThrottlingException" in r.getMessage() for r in caplog.records)
    assert not any("not-a-secret" in r.getMessage() for r in caplog.records)


def test_many_handles_are_polled_by_listing_in_progress_runs(
    healthomics_fake: HealthOmicsFake,
) -> None:
    """Above list_threshold, in-progress runs cost one ListRuns page per 100 runs and only
    the runs that left the lists get a GetRun (so ends are seen within one pass)."""
    backend = omics_backend(healthomics_fake, list_threshold=5)
    handles = []
    for i in range(12):
        healthomics_fake.script(identity(f"list-{i}").token, [("RUNNING", 1), ("COMPLETED", 1)],
                                auto=False)
        handles.append(backend.submit(request(f"list-{i}")))
    for h in handles[:3]:
        healthomics_fake.advance(h.run_id)
    healthomics_fake.log.reset()
    results = backend.poll_many(handles)
    assert [r.state for r in results[:3]] == [RemoteState.SUCCEEDED] * 3
    assert {r.state for r in results[3:]} == {RemoteState.RUNNING}
    assert [r.handle for r in results] == handles, "results in input order"
    assert healthomics_fake.log.count("GetRun") == 3
    assert healthomics_fake.log.count("ListRuns") <= 4 + 12 // 2  # 4 statuses, pages of 2

"""SeqeraBackend against the spec-validating wire-level fake."""

from __future__ import annotations

import itertools
import json
import logging
import traceback

import httpx
import pytest

from omicsflow.backends.base import RemoteState
from omicsflow.backends.seqera import SeqeraSettings
from omicsflow.errors import BackendPermanentError, BackendTransientError
from tests.omicsflow.backends.helpers import identity, request, seqera_backend, seqera_settings
from tests.support.fakes.seqera_fake import SeqeraFake

pytestmark = pytest.mark.integration

FAILED_TASKS = [
    {
        "name": "NFCORE_SAREK:SAREK:FASTQC (s1)",
        "process": "NFCORE_SAREK:SAREK:FASTQC",
        "status": "FAILED",
        "exitStatus": 137,
        "errorAction": "TERMINATE",
        "workdir": "s3://lab-work/nextflow/ab/cdef01",
    },
    {"name": "NFCORE_SAREK:SAREK:BWAMEM1_MEM (s1)", "status": "COMPLETED", "exitStatus": 0},
    {
        "name": "NFCORE_SAREK:SAREK:MULTIQC",
        "status": "FAILED",
        "exitStatus": 1,
        "errorAction": "IGNORE",
        "errorMessage": "Missing output file(s) `multiqc_report.html`",
    },
]


# -- submit & idempotency --------------------------------------------------------------------


def test_submit_launches_with_the_attempt_token_as_run_name(seqera_fake: SeqeraFake) -> None:
    backend = seqera_backend(seqera_fake)
    handle = backend.submit(request())
    wf = seqera_fake.workflow(handle.run_id)
    assert wf.run_name == identity().token
    assert handle.backend == "seqera" and handle.key == handle.run_id == wf.id
    launch = wf.launch
    assert launch["computeEnvId"] == "ce-4ZmFxJ"
    assert launch["pipeline"] == "https://github.com/nf-core/sarek"
    assert launch["revision"] == "3.4.0"
    assert launch["workDir"] == "s3://lab-work/nextflow"
    assert launch["configProfiles"] == ["aws"]
    assert json.loads(launch["paramsText"]) == {
        "outdir": "s3://lab-results/sarek",
        "genome": "GATK.GRCh38",
        "sample": "rep-1",
    }
    assert handle.console_url == f"{seqera_fake.url}/watch/{wf.id}"


def test_same_attempt_twice_and_after_a_crash_is_one_workflow(seqera_fake: SeqeraFake) -> None:
    first = seqera_backend(seqera_fake).submit(request())
    again = seqera_backend(seqera_fake).submit(request())
    # A brand-new backend object: the process died between launch and the ledger write.
    after_crash = seqera_backend(seqera_fake).submit(request())
    assert first == again == after_crash
    assert len(seqera_fake.workflows) == 1
    assert seqera_fake.log.count("CreateWorkflowLaunch") == 1


def test_launch_whose_answer_was_lost_is_found_not_repeated(seqera_fake: SeqeraFake) -> None:
    seqera_fake.fail_next(1, {"CreateWorkflowLaunch"}, status=502, after_processing=True)
    handle = seqera_backend(seqera_fake).submit(request())
    assert len(seqera_fake.workflows) == 1
    assert seqera_fake.workflows[0].id == handle.run_id
    assert seqera_fake.log.count("CreateWorkflowLaunch") == 1


def test_name_lookup_matches_exactly_not_by_search_substring(seqera_fake: SeqeraFake) -> None:
    backend = seqera_backend(seqera_fake)
    # The token of seq=1 is a prefix of the token of seq=10; `search` matches both.
    ten = backend.submit(request(seq=10))
    one = backend.submit(request(seq=1))
    assert ten != one
    assert len(seqera_fake.workflows) == 2


def test_lookup_follows_pages(seqera_fake: SeqeraFake) -> None:
    backend = seqera_backend(seqera_fake)
    handles = [backend.submit(request(seq=n)) for n in (10, 11, 12, 13, 1)]
    # Five workflows whose names contain the seq=1 token, two per page: found on page three.
    assert backend.submit(request(seq=1)) == handles[-1]
    assert len(seqera_fake.workflows) == 5


# -- lifecycle & status mapping ----------------------------------------------------------------


def test_lifecycle_submitted_running_succeeded(seqera_fake: SeqeraFake) -> None:
    seqera_fake.script(identity().token, [("SUBMITTED", 1), ("RUNNING", 2), ("SUCCEEDED", 1)])
    backend = seqera_backend(seqera_fake)
    handle = backend.submit(request())
    states = [backend.poll_many([handle])[0].state for _ in range(5)]
    assert states == [
        RemoteState.PENDING,
        RemoteState.RUNNING,
        RemoteState.RUNNING,
        RemoteState.SUCCEEDED,
        RemoteState.SUCCEEDED,
    ]
    assert backend.list_outputs(handle) == ["s3://lab-results/sarek"]


def test_manual_advance(seqera_fake: SeqeraFake) -> None:
    seqera_fake.script(identity().token, [("SUBMITTED", 1), ("RUNNING", 1)], auto=False)
    backend = seqera_backend(seqera_fake)
    handle = backend.submit(request())
    assert backend.poll_many([handle])[0].state is RemoteState.PENDING
    assert backend.poll_many([handle])[0].state is RemoteState.PENDING
    seqera_fake.advance(handle.run_id)
    assert backend.poll_many([handle])[0].state is RemoteState.RUNNING


@pytest.mark.parametrize(
    ("raw", "state"),
    [
        ("SUBMITTED", RemoteState.PENDING),
        ("RUNNING", RemoteState.RUNNING),
        ("SUCCEEDED", RemoteState.SUCCEEDED),
        ("FAILED", RemoteState.FAILED),
        ("CANCELLED", RemoteState.CANCELLED),
        ("UNKNOWN", RemoteState.UNKNOWN),
        ("PAUSED", RemoteState.UNKNOWN),  # not in the spec's enum: tolerated, never a crash
    ],
)
def test_status_mapping(seqera_fake: SeqeraFake, raw: str, state: RemoteState) -> None:
    seqera_fake.script(identity().token, [(raw, 1)])
    backend = seqera_backend(seqera_fake)
    result = backend.poll_many([backend.submit(request())])[0]
    assert (result.state, result.raw_status) == (state, raw)


# -- failures & evidence -----------------------------------------------------------------------


def test_failed_workflow_evidence_keeps_fields_apart(seqera_fake: SeqeraFake) -> None:
    report = (
        "Error executing process > 'NFCORE_SAREK:SAREK:FASTQC (s1)'\n\nCaused by:\n  "
        "Process exceeded running time limit\n\nCommand exit status:\n  137"
    )
    seqera_fake.script(
        identity().token,
        [
            ("RUNNING", 1),
            (
                "FAILED",
                {
                    "errorMessage": "Process `FASTQC (s1)` terminated "
                    "with an error exit status (137)",
                    "errorReport": report,
                    "exitStatus": 1,
                    "tasks": FAILED_TASKS,
                },
            ),
        ],
    )
    backend = seqera_backend(seqera_fake)
    handle = backend.submit(request())
    backend.poll_many([handle])
    polled = backend.poll_many([handle])[0]
    assert polled.state is RemoteState.FAILED

    ev = backend.collect_evidence(handle)
    assert ev.platform.value == "seqera"
    assert ev.error_message.startswith("Process `FASTQC (s1)`")  # type: ignore[union-attr]
    assert ev.error_report == report
    assert ev.failure_reason is None and ev.status_message is None
    assert ev.exit_code == 1
    assert [t.name for t in ev.tasks] == [
        "NFCORE_SAREK:SAREK:FASTQC (s1)",
        "NFCORE_SAREK:SAREK:MULTIQC",
    ]
    fastqc, multiqc = ev.tasks
    assert (fastqc.exit_code, fastqc.status_message, fastqc.log_location) == (
        137,
        "TERMINATE",
        "s3://lab-work/nextflow/ab/cdef01",
    )
    assert multiqc.failure_reason == "Missing output file(s) `multiqc_report.html`"
    assert multiqc.status_message == "IGNORE"
    # Three tasks at two per page: the client read both pages.
    assert seqera_fake.log.count("ListWorkflowTasks") == 2


def test_deleted_workflow_is_reported_vanished(seqera_fake: SeqeraFake) -> None:
    backend = seqera_backend(seqera_fake)
    handle = backend.submit(request())
    seqera_fake.delete_workflow(handle.run_id)
    result = backend.poll_many([handle])[0]
    assert (result.state, result.raw_status) == (RemoteState.FAILED, "VANISHED")


# -- throttling, quota, errors -----------------------------------------------------------------


def test_429_burst_honours_retry_after(seqera_fake: SeqeraFake) -> None:
    backend = seqera_backend(seqera_fake)
    handle = backend.submit(request())
    seqera_fake.log.reset()
    seqera_fake.throttle_next(2, {"DescribeWorkflow"}, retry_after=0.3)
    assert backend.poll_many([handle])[0].state is RemoteState.PENDING
    calls = seqera_fake.log.calls
    assert [c.status for c in calls] == [429, 429, 200]
    # Backoff alone would retry after ≤ 0.05 s; the server asked for 0.3 s.
    assert all(b.at - a.at >= 0.3 for a, b in itertools.pairwise(calls))


def test_observed_rate_never_exceeds_max_rps(seqera_fake: SeqeraFake) -> None:
    fast = seqera_backend(seqera_fake)
    handles = [fast.submit(request(f"r{i}")) for i in range(30)]
    seqera_fake.log.reset()
    seqera_fake.enforce_rps(20)  # the platform's per-token limit
    limited = seqera_backend(seqera_fake, max_rps=15, poll_concurrency=4)
    results = limited.poll_many(handles)
    assert all(r.state is RemoteState.PENDING for r in results)
    assert all(c.status == 200 for c in seqera_fake.log.calls)
    # 10 ms slack for jitter between the client's send and the server's receive.
    assert seqera_fake.log.max_in_window(slack=0.01) <= 15


def test_5xx_is_retried(seqera_fake: SeqeraFake) -> None:
    backend = seqera_backend(seqera_fake)
    handle = backend.submit(request())
    seqera_fake.log.reset()
    seqera_fake.fail_next(1, {"DescribeWorkflow"}, status=500)
    seqera_fake.fail_next(1, {"DescribeWorkflow"}, status=503)
    assert backend.poll_many([handle])[0].state is RemoteState.PENDING
    assert [c.status for c in seqera_fake.log.calls] == [500, 503, 200]


def test_persistent_5xx_stops_the_batch(seqera_fake: SeqeraFake) -> None:
    seed = seqera_backend(seqera_fake)
    handles = [seed.submit(request(f"r{i}")) for i in range(4)]
    seqera_fake.log.reset()
    seqera_fake.fail_next(100, {"DescribeWorkflow"}, status=502)
    backend = seqera_backend(seqera_fake, max_attempts=3, poll_concurrency=1)
    results = backend.poll_many(handles)
    assert all(r.state is RemoteState.UNKNOWN for r in results)
    assert seqera_fake.log.count("DescribeWorkflow") == 3


def test_persistent_5xx_on_evidence_raises_transient_with_cause(seqera_fake: SeqeraFake) -> None:
    backend = seqera_backend(seqera_fake, max_attempts=2)
    handle = backend.submit(request())
    seqera_fake.fail_next(2, {"DescribeWorkflow"}, status=500)
    with pytest.raises(BackendTransientError, match="HTTP 500") as info:
        backend.collect_evidence(handle)
    assert isinstance(info.value.__cause__, httpx.HTTPStatusError)


def test_unreachable_api_is_transient(seqera_fake: SeqeraFake) -> None:
    settings = seqera_settings(seqera_fake, api_url="http://127.0.0.1:9", max_attempts=2)
    from omicsflow.backends.seqera import SeqeraBackend

    with (
        SeqeraBackend(settings, seqera_fake.token) as backend,
        pytest.raises(BackendTransientError, match="network error") as info,
    ):
        backend.submit(request())
    assert isinstance(info.value.__cause__, httpx.TransportError)


def test_wrong_token_is_permanent_and_never_leaks(
    seqera_fake: SeqeraFake, caplog: pytest.LogCaptureFixture
) -> None:
    secret = "sk-wrong-token-3f9a1c"
    backend = seqera_backend(seqera_fake, token=secret)
    with caplog.at_level(logging.DEBUG), pytest.raises(BackendPermanentError) as info:
        backend.submit(request())
    assert "401" in str(info.value)
    assert seqera_fake.auth_failures == 1
    rendered = "".join(traceback.format_exception(info.value))
    assert secret not in rendered
    assert secret not in repr(backend)
    assert all(secret not in r.getMessage() for r in caplog.records)


def test_token_is_sent_as_bearer_but_not_logged(
    seqera_fake: SeqeraFake, caplog: pytest.LogCaptureFixture
) -> None:
    backend = seqera_backend(seqera_fake)
    seqera_fake.throttle_next(1, retry_after=0)
    seqera_fake.fail_next(1, status=503)
    with caplog.at_level(logging.DEBUG):
        handle = backend.submit(request())
        backend.poll_many([handle])
        backend.collect_evidence(handle)
    assert seqera_fake.seen_authorization and all(
        a == f"Bearer {seqera_fake.token}" for a in seqera_fake.seen_authorization
    )
    assert any("retrying" in r.getMessage() for r in caplog.records)
    assert all(seqera_fake.token not in r.getMessage() for r in caplog.records)


def test_bad_request_is_permanent(seqera_fake: SeqeraFake) -> None:
    backend = seqera_backend(seqera_fake)
    seqera_fake.fail_next(1, {"CreateWorkflowLaunch"}, status=400)
    with pytest.raises(BackendPermanentError, match="HTTP 400"):
        backend.submit(request())
    assert seqera_fake.workflows == []


# -- cancel ------------------------------------------------------------------------------------


def test_cancel_running_workflow(seqera_fake: SeqeraFake) -> None:
    seqera_fake.script(identity().token, [("RUNNING", 1)])
    backend = seqera_backend(seqera_fake)
    handle = backend.submit(request())
    backend.cancel(handle)
    assert seqera_fake.log.count("CancelWorkflow", served_only=True) == 1
    assert backend.poll_many([handle])[0].state is RemoteState.CANCELLED


def test_cancel_of_a_finished_workflow_is_a_no_op(seqera_fake: SeqeraFake) -> None:
    seqera_fake.script(identity().token, [("SUCCEEDED", 1)])
    backend = seqera_backend(seqera_fake)
    handle = backend.submit(request())
    backend.cancel(handle)
    assert seqera_fake.log.count("CancelWorkflow") == 0


# -- settings & the fake itself ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ({"api_url": "https://api.cloud.seqera.io"}, "https://cloud.seqera.io/watch/W1"),
        ({"api_url": "https://tower.lab.org/api"}, "https://tower.lab.org/watch/W1"),
        (
            {"org_name": "lab", "workspace_name": "genomics"},
            "https://cloud.seqera.io/orgs/lab/workspaces/genomics/watch/W1",
        ),
        (
            {
                "console_url_template": "{web_url}/user/me/watch/{workflow_id}",
                "web_url": "https://seqera.example/",
            },
            "https://seqera.example/user/me/watch/W1",
        ),
    ],
)
def test_console_url(overrides: dict[str, str], expected: str) -> None:
    settings = SeqeraSettings(workspace_id=1, pipeline="p", **overrides)
    assert settings.console_url("W1") == expected


def test_fake_rejects_requests_that_break_the_spec(seqera_fake: SeqeraFake) -> None:
    resp = httpx.post(
        f"{seqera_fake.url}/workflow/launch",
        params={"workspaceId": seqera_fake.workspace_id},
        json={"launch": {"pipeline": "x", "runName": 5, "configProfiles": "aws"}},
        headers={"Authorization": f"Bearer {seqera_fake.token}"},
    )
    assert resp.status_code == 400
    assert len(seqera_fake.spec_errors) == 1
    assert "runName" in seqera_fake.spec_errors[0] or "5" in seqera_fake.spec_errors[0]
    seqera_fake.spec_errors.clear()  # expected here; the fixture checks every other test
    assert seqera_fake.workflows == []

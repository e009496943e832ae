"""Remote backends end to end: a real Prefect server, `omicsflow serve`, and wire-level fakes
of HealthOmics (the real boto3 client, SigV4-signed) and Seqera (validated against the spec)."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import boto3
import httpx
import pytest

from blocks.backends import HealthOmicsAccount, SeqeraToken
from omicsflow.backends.base import AttemptIdentity
from omicsflow.stores.base import FAILED
from omicsflow.stores.local import LocalReportStore
from tests.deployments import helpers as h
from tests.deployments.conftest import Deployment
from tests.support.fakes.healthomics_fake import HealthOmicsFake
from tests.support.fakes.seqera_fake import SeqeraFake
from tests.support.firestore_emulator import free_port
from tests.support.prefect_api import prefect_client, read_flow_run
from tests.support.serve_process import REPO_ROOT, wait_for

pytestmark = pytest.mark.integration

REGION = "us-east-1"
REMOTE_SERVICES = """
[services.omics]
backend = "healthomics"
max_retries = 1
max_system_retries = 0
timeout_seconds = 3600
[services.omics.settings]
account_block = "{block}"
region = "{region}"
workflow_id = "7654321"
max_tps = {tps}
start_run_tps = 20
parameters_template = {{ input = "{{report.input_uri}}", sample = "{{report_id}}" }}

[services.nf]
backend = "seqera"
max_retries = 1
max_system_retries = 0
[services.nf.settings]
token_block = "{block}-token"
workspace_id = 4242
pipeline = "https://github.com/nf-core/rnaseq"
max_rps = 10
"""
AWS_ENV = {
    "AWS_ACCESS_KEY_ID": "testing-key-id",
    "AWS_SECRET_ACCESS_KEY": "testing-secret-never-shown",
    "AWS_DEFAULT_REGION": REGION,
}


@pytest.fixture
def fakes() -> Iterator[tuple[HealthOmicsFake, SeqeraFake]]:
    with HealthOmicsFake(region=REGION) as omics, SeqeraFake() as seqera:
        yield omics, seqera
    assert omics.auth_failures == [], "a request reached the fake without SigV4 signing"
    assert seqera.spec_errors == [], "Seqera traffic did not match seqera-api.yml"


@pytest.fixture
def remote(
    omicsflow: Callable[..., Deployment],
    fakes: tuple[HealthOmicsFake, SeqeraFake],
    monkeypatch: pytest.MonkeyPatch,
) -> Callable[..., Deployment]:
    omics, seqera = fakes

    def make(tps: float = 5, extra_env: dict[str, str] | None = None) -> Deployment:
        block = f"omics-{uuid.uuid4().hex[:8]}"
        dep = omicsflow(
            start=False,
            extra_env={
                **AWS_ENV,
                "OMICSFLOW_REMOTE_POLL_SECONDS": "1",
                **(extra_env or {}),
            },
        )
        services = Path(dep.env["OMICSFLOW_SERVICES"])
        services.write_text(
            services.read_text() + REMOTE_SERVICES.format(block=block, region=REGION, tps=tps)
        )
        from prefect.settings import PREFECT_API_URL, temporary_settings

        with temporary_settings(updates={PREFECT_API_URL: dep.env["PREFECT_API_URL"]}):
            HealthOmicsAccount(
                role_arn="arn:aws:iam::123456789012:role/omics-run",
                output_uri="s3://bucket/out/",
                endpoint_url=omics.url,
            ).save(block, overwrite=True)
            SeqeraToken(token=seqera.token, api_url=seqera.url).save(
                f"{block}-token", overwrite=True
            )
        dep.serve.start()
        return dep

    return make


def _token(service: str, report_id: str, run_id: int = 0) -> str:
    return AttemptIdentity(run_id, report_id, service, 1, 1, 0).token


def test_healthomics_success_through_suspend_and_resume(
    remote: Callable[..., Deployment], fakes: tuple[HealthOmicsFake, SeqeraFake]
) -> None:
    omics, _ = fakes
    dep = remote()
    report_id = f"r-{uuid.uuid4().hex[:8]}"
    omics.script(_token("omics", report_id), [("PENDING", 1), ("RUNNING", 2), ("COMPLETED", 1)])
    LocalReportStore(dep.ledger.engine).create(report_id, "omics", {"input_uri": "s3://in/x.bam"})
    row = h.final(dep, report_id, "succeeded", timeout=90)
    assert omics.log.count("StartRun") == 1
    started = omics.run(_token("omics", report_id))
    assert started.body["parameters"] == {"input": "s3://in/x.bam", "sample": report_id}
    assert started.body["roleArn"].endswith("role/omics-run"), "role ARN comes from the block"
    assert row.backend_run_id == started.id and row.backend_run_key == started.uuid
    h.flow_ends(dep, row.flow_run_id, "COMPLETED/Completed")
    with prefect_client(dep.env["PREFECT_API_URL"]) as client:
        from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId

        arts = client.read_artifacts(
            artifact_filter=ArtifactFilter(
                flow_run_id=ArtifactFilterFlowRunId(any_=[uuid.UUID(row.flow_run_id or "")])
            )
        )
    assert any("console.aws.amazon.com/omics" in str(a.data) for a in arts)


def test_healthomics_failure_keeps_evidence_apart(
    remote: Callable[..., Deployment], fakes: tuple[HealthOmicsFake, SeqeraFake]
) -> None:
    omics, _ = fakes
    dep = remote()
    report_id = f"r-{uuid.uuid4().hex[:8]}"
    omics.script(
        _token("omics", report_id),
        [
            ("RUNNING", 1),
            (
                "FAILED",
                {
                    "failureReason": "RUN_TASK_FAILED",
                    "statusMessage": "Task ALIGN failed",
                    "tasks": [
                        {
                            "name": "ALIGN (S1)",
                            "status": "FAILED",
                            "failureReason": "OUT_OF_MEMORY_ERROR",
                            "statusMessage": "Container killed: exceeded 16 GiB",
                            "logStream": "arn:aws:logs:us-east-1:1:log-group:/aws/omics/x",
                        }
                    ],
                },
            ),
        ],
    )
    LocalReportStore(dep.ledger.engine).create(report_id, "omics", {"input_uri": "s3://in/x"})
    row = h.final(dep, report_id, "failed_permanent", timeout=90)
    assert row.ev_failure_reason == "RUN_TASK_FAILED"
    assert row.ev_status_message == "Task ALIGN failed"
    assert row.ev_tasks and row.ev_tasks[0]["name"] == "ALIGN (S1)"
    assert row.ev_tasks[0]["failure_reason"] == "OUT_OF_MEMORY_ERROR"
    assert row.owner == "bioinformatician" and row.classified_by == "lookup"
    doc = LocalReportStore(dep.ledger.engine).get(report_id)
    assert doc["status"] == FAILED and doc["failureOwner"] == "bioinformatician"
    h.flow_ends(dep, row.flow_run_id, "FAILED/UserError")


def test_no_duplicate_start_after_a_crash_between_submit_and_ledger(
    remote: Callable[..., Deployment], fakes: tuple[HealthOmicsFake, SeqeraFake]
) -> None:
    """A previous process started the run and died before recording it: the attempt
    attaches to that run (found by its deterministic name/requestId) instead of starting one."""
    omics, _ = fakes
    dep = remote()
    report_id = f"r-{uuid.uuid4().hex[:8]}"
    token = _token("omics", report_id)
    client = boto3.client(
        "omics",
        region_name=REGION,
        endpoint_url=omics.url,
        aws_access_key_id="k",
        aws_secret_access_key="s",
        config=__import__("botocore").config.Config(inject_host_prefix=False),
    )
    earlier = client.start_run(
        workflowId="7654321",
        roleArn="arn:aws:iam::1:role/r",
        outputUri="s3://b/",
        requestId=token,
        name=token,
    )
    omics.script(token, [("COMPLETED", 1)])
    LocalReportStore(dep.ledger.engine).create(report_id, "omics", {"input_uri": "s3://in/x"})
    row = h.final(dep, report_id, "succeeded", timeout=90)
    assert row.backend_run_id == earlier["id"]
    assert len([r for r in omics.runs if r.request_id == token]) == 1
    assert omics.log.count("StartRun") == 1, "only the earlier process's StartRun"


def test_restart_reattaches_runs_in_flight(
    remote: Callable[..., Deployment], fakes: tuple[HealthOmicsFake, SeqeraFake]
) -> None:
    omics, _ = fakes
    dep = remote()
    store = LocalReportStore(dep.ledger.engine)
    ids = [f"r-{uuid.uuid4().hex[:8]}" for _ in range(3)]
    for rid in ids:
        omics.script(_token("omics", rid), [("RUNNING", 1), ("COMPLETED", 1)], auto=False)
        store.create(rid, "omics", {"input_uri": "s3://in/x"})
    wait_for(
        lambda: all(
            (rows := h.rows(dep, rid))
            and rows[0].flow_run_id
            and h.flow_state(dep, rows[0].flow_run_id).startswith("PAUSED")
            for rid in ids
        ),
        90,
        "all three flow runs suspended",
    )
    # While suspended, the flow run's state message shows the remote status.
    first = h.rows(dep, ids[0])[0]
    wait_for(
        lambda: (
            (fr := read_flow_run(dep.env["PREFECT_API_URL"], first.flow_run_id or ""))
            and fr.state
            and fr.state.message == f"healthomics run {first.backend_run_id}: RUNNING"
        ),
        30,
        "the remote status in the state message",
    )
    assert dep.serve.stop() is not None
    starts = omics.log.count("StartRun")
    dep.restart()
    for rid in ids:
        omics.advance(_token("omics", rid))
    for rid in ids:
        h.final(dep, rid, "succeeded", timeout=90)
    assert omics.log.count("StartRun") == starts == 3, "re-attached, never resubmitted"


def test_cancel_cancels_the_remote_run(
    remote: Callable[..., Deployment], fakes: tuple[HealthOmicsFake, SeqeraFake]
) -> None:
    omics, _ = fakes
    dep = remote()
    report_id = f"r-{uuid.uuid4().hex[:8]}"
    token = _token("omics", report_id)
    omics.script(token, [("RUNNING", 1)], auto=False)
    LocalReportStore(dep.ledger.engine).create(report_id, "omics", {"input_uri": "s3://in/x"})
    row = wait_for(
        lambda: (
            (r := h.rows(dep, report_id))
            and r[0].flow_run_id
            and h.flow_state(dep, r[0].flow_run_id).startswith("PAUSED")
            and r[0]
        ),
        90,
        "the flow run to suspend",
    )
    res = subprocess.run(
        [sys.executable, "-m", "omicsflow.cli", "runs", "cancel", str(row.id)],
        env=dep.env,
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert res.returncode == 0, res.stdout + res.stderr
    final = h.final(dep, report_id, "cancelled", timeout=30)
    assert omics.log.count("CancelRun") == 1
    assert omics.run(token).lifecycle.current[0] == "CANCELLED"
    assert (
        LocalReportStore(dep.ledger.engine).get(report_id)["failureReason"]
        == "Cancelled by operator"
    )
    wait_for(
        lambda: h.flow_state(dep, final.flow_run_id or "").startswith("CANCELLED"),
        30,
        "the suspended flow run to be cancelled",
    )


def test_throttling_is_honoured(
    remote: Callable[..., Deployment], fakes: tuple[HealthOmicsFake, SeqeraFake]
) -> None:
    omics, _ = fakes
    dep = remote(tps=2)
    store = LocalReportStore(dep.ledger.engine)
    ids = [f"r-{uuid.uuid4().hex[:8]}" for _ in range(4)]
    for rid in ids:
        omics.script(_token("omics", rid), [("RUNNING", 4), ("COMPLETED", 1)])
    omics.throttle_next(3, {"GetRun"})
    for rid in ids:
        store.create(rid, "omics", {"input_uri": "s3://in/x"})
    for rid in ids:
        h.final(dep, rid, "succeeded", timeout=120)
    # The poller is the only caller of GetRun; its limiter keeps it at the configured 2 TPS.
    assert omics.log.max_in_window({"GetRun"}, slack=0.02) <= 2
    assert omics.log.count("GetRun") > 4


def test_seqera_failure_with_error_report_apart(
    remote: Callable[..., Deployment], fakes: tuple[HealthOmicsFake, SeqeraFake]
) -> None:
    _, seqera = fakes
    dep = remote()
    report_id = f"r-{uuid.uuid4().hex[:8]}"
    name = _token("nf", report_id)
    report = (
        "Error executing process > 'NFCORE_RNASEQ:ALIGN (S1)'\n\nCaused by:\n"
        "  Process `ALIGN (S1)` terminated with an error exit status (137)\n"
    )
    seqera.script(
        name,
        [
            ("RUNNING", 1),
            (
                "FAILED",
                {
                    "errorMessage": "Workflow execution completed unsuccessfully",
                    "errorReport": report,
                    "tasks": [
                        {
                            "name": "ALIGN (S1)",
                            "process": "ALIGN",
                            "status": "FAILED",
                            "exitStatus": 137,
                            "workdir": "s3://work/ab/cdef",
                        }
                    ],
                },
            ),
        ],
    )
    LocalReportStore(dep.ledger.engine).create(report_id, "nf", {})
    row = h.final(dep, report_id, "failed_permanent", timeout=90)
    assert row.ev_error_message == "Workflow execution completed unsuccessfully"
    assert row.ev_error_report and "exit status (137)" in row.ev_error_report
    assert row.owner == "bioinformatician"
    assert seqera.log.count("CreateWorkflowLaunch") == 1, "launched once, after a name lookup"
    assert seqera.log.count("ListWorkflows") >= 1


def test_webhook_triggers_an_immediate_poll(
    remote: Callable[..., Deployment], fakes: tuple[HealthOmicsFake, SeqeraFake]
) -> None:
    omics, _ = fakes
    port = free_port()
    dep = remote(
        extra_env={
            "OMICSFLOW_REMOTE_POLL_SECONDS": "3600",
            "OMICSFLOW_WEBHOOK_PORT": str(port),
            "OMICSFLOW_WEBHOOK_SECRET": "shared-secret-value",
        }
    )
    report_id = f"r-{uuid.uuid4().hex[:8]}"
    token = _token("omics", report_id)
    omics.script(token, [("RUNNING", 1), ("COMPLETED", 1)], auto=False)
    LocalReportStore(dep.ledger.engine).create(report_id, "omics", {"input_uri": "s3://in/x"})
    row = wait_for(
        lambda: (
            (r := h.rows(dep, report_id))
            and r[0].backend_run_id
            and r[0].flow_run_id
            and h.flow_state(dep, r[0].flow_run_id).startswith("PAUSED")
            and r[0]
        ),
        90,
        "the flow run to suspend",
    )
    omics.advance(token)
    url = f"http://127.0.0.1:{port}/webhooks/healthomics"
    event = {
        "source": "aws.omics",
        "detail-type": "Run Status Change",
        "detail": {"runId": row.backend_run_id, "status": "COMPLETED"},
    }
    bad = httpx.post(url, json=event, headers={"X-Omicsflow-Webhook-Key": "wrong"})
    assert bad.status_code == 401 and "shared-secret-value" not in bad.text
    assert (
        httpx.post(
            url, content=b"{not json", headers={"X-Omicsflow-Webhook-Key": "shared-secret-value"}
        ).status_code
        == 400
    )
    ok = httpx.post(
        url, content=json.dumps(event), headers={"X-Omicsflow-Webhook-Key": "shared-secret-value"}
    )
    assert ok.status_code == 202 and ok.json()["tracked"] is True
    h.final(dep, report_id, "succeeded", timeout=60)
    assert "shared-secret-value" not in dep.serve.log_tail(10**7)

"""AWS Batch / ECS / container rules on real status reasons (sources in comments)."""

from __future__ import annotations

from typing import Any

import pytest

from classifiers.rules import aws_batch
from classifiers.rules.base import Rule
from classifiers.taxonomy import Owner
from tests.classifiers.conftest import apply, classify_fields

B, P, A = Owner.BIOINFORMATICIAN, Owner.PLATFORM, Owner.AMBIGUOUS

POSITIVE: list[tuple[Rule, dict[str, Any], Owner, str]] = [
    # ministryofjustice/modernisation-platform-environments#17291
    (
        aws_batch.HOST_TERMINATED,
        {
            "tasks": [
                {
                    "status": "FAILED",
                    "status_message": "Host EC2 (instance i-08784105ffff56b4f) terminated.",
                    "exit_code": 137,
                }
            ]
        },
        P,
        "host_terminated",
    ),
    # aws/amazon-ecs-agent#1187
    (
        aws_batch.CONTAINER_OOM,
        {"status_message": "OutOfMemoryError: Container killed due to memory usage"},
        B,
        "out_of_memory",
    ),
    # Golob-Minot/geneshot#79
    (
        aws_batch.PULL_FAILED,
        {
            "error_report": "Failed to pull singularity image\n  FATAL: While making image "
            "from oci "
            "registry: Error reading manifest 18.04 in docker.io/library/ubuntu: toomanyrequests: "
            "You have reached your pull rate limit."
        },
        P,
        "container_pull_failed",
    ),
    # nanoporetech/ont-assembly-polish#26
    (
        aws_batch.PULL_FAILED,
        {
            "log_tail": "docker: Error response from daemon: pull access denied for "
            "ont-assembly-polish, repository does not exist or may require 'docker login'"
        },
        B,
        "container_image_unavailable",
    ),
    # a CannotPullContainerError with no reason: nobody can tell from the text
    (
        aws_batch.PULL_FAILED,
        {"error_message": "Task failed to start - CannotPullContainerError: "},
        A,
        "container_pull_failed",
    ),
    # Releem/releem-agent#195
    (
        aws_batch.RESOURCE_INITIALIZATION,
        {
            "status_message": "ResourceInitializationError: unable to pull secrets or registry "
            "auth: execution resource retrieval failed: unable to retrieve secret from asm"
        },
        P,
        "task_init_failed",
    ),
    # nextflow-io/nextflow#5657
    (
        aws_batch.START_FAILED,
        {
            "error_report": "Task failed to start - CannotStartContainerError: Error response from "
            "daemon: failed to create task for container: OCI runtime create failed: runc create "
            'failed: unable to start container process: exec: "/usr/local/bin/_entrypoint.sh"'
        },
        B,
        "container_start_failed",
    ),
    # seqeralabs/nf-tower#305
    (
        aws_batch.START_FAILED,
        {
            "error_report": "CannotStartContainerError: Error response from daemon: failed to "
            "initialize logging driver: failed to create Cloudwatch log stream: RequestError: send "
            "request failed"
        },
        P,
        "container_runtime_error",
    ),
    # nextflow-io/nextflow#3091
    (
        aws_batch.CONTAINER_RUNTIME,
        {
            "error_message": "Essential container in task exited - CannotInspectContainerError: "
            "Could not transition to inspecting; timed out after waiting 30s"
        },
        P,
        "container_runtime_error",
    ),
    # nextflow-io/nextflow#710
    (
        aws_batch.THROTTLED,
        {
            "error_report": "Too Many Requests (Service: AWSBatch; Status Code: 429; Error Code: "
            "TooManyRequestsException; Request ID: 21210e13)"
        },
        P,
        "api_throttled",
    ),
    (
        aws_batch.CAPACITY,
        {
            "status_message": "InsufficientInstanceCapacity: We currently do not have sufficient "
            "capacity in the Availability Zone you requested"
        },
        P,
        "capacity_unavailable",
    ),
    # nf-core/chipseq#222
    (
        aws_batch.ACCESS_DENIED,
        {
            "error_message": "Access Denied (Service: Amazon S3; Status Code: 403; Error Code: "
            "AccessDenied; Request ID: R2H8QVBHDTX5SE9W)"
        },
        P,
        "permission_denied",
    ),
    (
        aws_batch.SERVICE_ERROR,
        {"error_message": "InternalServerException: An internal error occurred"},
        P,
        "service_error",
    ),
]


@pytest.mark.parametrize(("rule", "fields", "owner", "category"), POSITIVE)
def test_rule_fires_on_real_text(
    rule: Rule, fields: dict[str, Any], owner: Owner, category: str
) -> None:
    out = apply(rule, **fields)
    assert out is not None
    assert (out.owner, out.category) == (owner, category)
    assert out.rule.startswith(rule.id)
    assert classify_fields(**fields).rule == out.rule


NEGATIVE: list[tuple[Rule, dict[str, Any]]] = [
    (aws_batch.HOST_TERMINATED, {"status_message": "Essential container in task exited"}),
    (aws_batch.CONTAINER_OOM, {"status_message": "Container killed by user"}),
    (aws_batch.PULL_FAILED, {"log_tail": "Pulling image ubuntu:22.04 ... done"}),
    (aws_batch.THROTTLED, {"log_tail": "rate of 12 reads/s exceeded expectations"}),
    (aws_batch.ACCESS_DENIED, {"log_tail": "403 reads filtered"}),
]


@pytest.mark.parametrize(("rule", "fields"), NEGATIVE)
def test_rule_does_not_fire_on_near_miss(rule: Rule, fields: dict[str, Any]) -> None:
    assert apply(rule, **fields) is None


def test_essential_container_exited_alone_does_not_decide() -> None:
    # ECS says this for every non-zero container exit; the exit code carries the meaning.
    alone = classify_fields(status_message="Essential container in task exited")
    assert alone.category == "unclassified"
    with_oom = classify_fields(status_message="Essential container in task exited", exit_code=137)
    assert with_oom.category == "out_of_memory"


def test_disk_full_during_pull_is_platform_disk_full() -> None:
    # nextflow-io/nextflow#5099
    out = classify_fields(
        error_report="Task failed to start - CannotPullContainerError: write "
        "/var/lib/docker/tmp/GetImageBlob887491687: no space left on device"
    )
    assert (out.owner, out.category) == (P, "disk_full")


def test_resource_initialization_beats_its_access_denied_detail() -> None:
    # aws/copilot-cli#3104
    out = classify_fields(
        status_message="ResourceInitializationError: unable to pull secrets or "
        "registry auth: ... AccessDeniedException: User: ...."
    )
    assert out.category == "task_init_failed"

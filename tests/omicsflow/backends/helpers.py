"""Builders shared by the backend tests: identities, settings and clients pointed at fakes."""

from __future__ import annotations

import functools
from typing import Any

import boto3

from omicsflow.backends.base import AttemptIdentity, SubmitRequest
from omicsflow.backends.healthomics import (
    HealthOmicsBackend,
    HealthOmicsSettings,
    make_omics_client,
)
from omicsflow.backends.seqera import SeqeraBackend, SeqeraSettings
from tests.support.fakes.healthomics_fake import HealthOmicsFake
from tests.support.fakes.seqera_fake import SeqeraFake

REGION = "us-east-1"


def identity(report: str = "rep-1", *, attempt: int = 1, seq: int = 1) -> AttemptIdentity:
    return AttemptIdentity(
        run_id=7, report_id=report, service="wgs", generation=1, attempt=attempt, seq=seq
    )


def request(report: str = "rep-1", **kw: Any) -> SubmitRequest:
    return SubmitRequest(identity(report, **kw), {"sample": report})


def omics_settings(fake: HealthOmicsFake, **overrides: Any) -> HealthOmicsSettings:
    values: dict[str, Any] = {
        "region": REGION,
        "endpoint_url": fake.url,
        "role_arn": "arn:aws:iam::123456789012:role/omics-run",
        "output_uri": "s3://lab-results/runs/",
        "workflow_id": "4321987",
        "parameters": {"reference": "s3://refs/hg38.fa"},
        "storage_type": "DYNAMIC",
        # Fast enough for tests; the rate tests set their own limits.
        "max_tps": 200.0,
        "start_run_tps": 200.0,
        "base_delay": 0.01,
        "max_delay": 0.05,
    }
    values.update(overrides)
    return HealthOmicsSettings(**values)


def omics_backend(fake: HealthOmicsFake, **overrides: Any) -> HealthOmicsBackend:
    settings = omics_settings(fake, **overrides)
    return HealthOmicsBackend(settings, make_omics_client(settings, aws_session()))


@functools.cache
def aws_session() -> boto3.Session:
    """One session for all tests: building one loads botocore's data files (~0.2 s).

    Dummy credentials: the fake checks that requests are SigV4-signed, not by whom.
    """
    return boto3.Session(
        aws_access_key_id="AKIDOMICSFLOWTEST",
        aws_secret_access_key="not-a-secret",
        region_name=REGION,
    )


def seqera_settings(fake: SeqeraFake, **overrides: Any) -> SeqeraSettings:
    values: dict[str, Any] = {
        "api_url": fake.url,
        "workspace_id": fake.workspace_id,
        "compute_env_id": "ce-4ZmFxJ",
        "pipeline": "https://github.com/nf-core/sarek",
        "revision": "3.4.0",
        "work_dir": "s3://lab-work/nextflow",
        "params": {"outdir": "s3://lab-results/sarek", "genome": "GATK.GRCh38"},
        "config_profiles": ["aws"],
        "max_rps": 200.0,
        "base_delay": 0.01,
        "max_delay": 0.05,
    }
    values.update(overrides)
    return SeqeraSettings(**values)


def seqera_backend(fake: SeqeraFake, token: str | None = None, **overrides: Any) -> SeqeraBackend:
    return SeqeraBackend(seqera_settings(fake, **overrides), token or fake.token)

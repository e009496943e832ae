"""Fixtures of the LLM fallback tests: the fake provider server and dummy AWS credentials."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from classifiers.evidence import Evidence, Platform, TaskEvidence
from classifiers.taxonomy import Classification, ClassifiedBy, Owner
from tests.omicsflow.llm.fake_llm import WIRES, BedrockWire, FakeLLMServer, Wire


@pytest.fixture
def fake_llm() -> Iterator[FakeLLMServer]:
    server = FakeLLMServer().start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(autouse=True)
def aws_env(monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory) -> None:
    """Dummy IAM credentials and no shared config, so boto3 signs for real and never reaches
    out to instance metadata or a developer's ~/.aws."""
    empty = tmp_path_factory.mktemp("aws") / "none"
    empty.write_text("")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", BedrockWire.access_key_id)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", BedrockWire.secret_access_key)
    monkeypatch.delenv("AWS_SESSION_TOKEN", raising=False)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    monkeypatch.delenv("AWS_BEARER_TOKEN_BEDROCK", raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(empty))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(empty))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")


@pytest.fixture(params=WIRES, ids=lambda w: w.provider.value)
def wire(request: pytest.FixtureRequest) -> Wire:
    w: Wire = request.param
    return w


@pytest.fixture
def seqera_evidence() -> Evidence:
    return Evidence(
        platform=Platform.SEQERA,
        exit_code=1,
        error_message="Process `ALIGN (sample_7)` terminated with an error exit status (137)",
        error_report="Command exit status:\n  137\nCommand error:\n  Killed\n",
        tasks=(TaskEvidence(name="ALIGN (sample_7)", status="FAILED", exit_code=137),),
    )


@pytest.fixture
def rules_ambiguous() -> Classification:
    return Classification(
        owner=Owner.AMBIGUOUS,
        category="unclassified",
        summary="The run failed for a reason the rules do not recognise.",
        action="A bioinformatician should read the error report.",
        classified_by=ClassifiedBy.RULES,
        rule="seqera:fallback",
    )

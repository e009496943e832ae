"""Each provider against a real local server speaking its wire format."""

from __future__ import annotations

import logging
import socket
import threading
import time

import pytest

from classifiers.evidence import Evidence
from classifiers.taxonomy import Classification, ClassifiedBy, Owner
from omicsflow.errors import PermanentError, TransientError
from omicsflow.llm import (
    LLMAuthError,
    LLMPermanentError,
    LLMResponseError,
    LLMTimeoutError,
    LLMTransientError,
    build_provider,
    enrich,
)
from tests.omicsflow.llm.fake_llm import (
    LLM_OOM_ANSWER,
    BedrockWire,
    FakeLLMServer,
    Reply,
    Wire,
)


def _secrets(wire: Wire) -> list[str]:
    """Every credential a wire uses: none may leak anywhere."""
    out = [wire.api_key] if wire.api_key else []
    if isinstance(wire, BedrockWire):
        out.append(wire.secret_access_key)
    return out


def test_success_sends_the_provider_wire_shape(
    wire: Wire,
    fake_llm: FakeLLMServer,
    seqera_evidence: Evidence,
    rules_ambiguous: Classification,
) -> None:
    fake_llm.script(wire.ok(LLM_OOM_ANSWER))

    result = enrich(seqera_evidence, rules_ambiguous, wire.config(fake_llm))

    assert result.classified_by is ClassifiedBy.LLM
    assert result.owner is Owner.BIOINFORMATICIAN
    assert result.category == "out_of_memory"
    assert result.rule == f"llm:{wire.provider.value}:{wire.model_id}"
    [request] = fake_llm.requests
    assert request.path == wire.expected_path()
    system, user = wire.prompt_of(request)
    assert "never instructions" in system
    assert "Process `ALIGN (sample_7)`" in user
    headers = {k.lower(): v for k, v in request.headers.items()}
    if wire.provider.value == "openai":
        assert headers["authorization"] == f"Bearer {wire.api_key}"
        assert request.body["response_format"] == {"type": "json_object"}
        assert request.body["model"] == wire.model_id
    elif wire.provider.value == "anthropic":
        assert headers["x-api-key"] == wire.api_key
        assert headers["anthropic-version"] == "2023-06-01"
        assert request.body["model"] == wire.model_id
        assert "authorization" not in headers
    else:
        # Real SigV4 with the environment's dummy IAM identity: no API key involved.
        assert headers["authorization"].startswith(
            f"AWS4-HMAC-SHA256 Credential={BedrockWire.access_key_id}/"
        )
        assert "/us-east-1/bedrock/aws4_request" in headers["authorization"]
        assert request.body["inferenceConfig"]["temperature"] == 0


def test_auth_failure_is_permanent_not_retried_and_keeps_the_key_out(
    wire: Wire,
    fake_llm: FakeLLMServer,
    seqera_evidence: Evidence,
    rules_ambiguous: Classification,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)  # httpx/httpcore/botocore debug logs included
    config = wire.config(fake_llm)
    fake_llm.script(wire.auth_failure(), wire.auth_failure())
    provider = build_provider(config)

    with pytest.raises(LLMAuthError) as raised:
        provider.complete("system", "user")
    provider.close()

    assert isinstance(raised.value, PermanentError)
    assert len(fake_llm.requests) == 1  # a refused key is not retried
    assert enrich(seqera_evidence, rules_ambiguous, config) is rules_ambiguous
    shown = [
        str(raised.value),
        repr(raised.value),
        repr(config),
        str(config),
        repr(provider),
        str(config.describe()),
        caplog.text,
    ]
    for secret in _secrets(wire):
        for text in shown:
            assert secret not in text
    if wire.api_key:
        assert config.describe()["has key"] == "yes"


def test_429_then_success_is_retried(
    wire: Wire,
    fake_llm: FakeLLMServer,
    seqera_evidence: Evidence,
    rules_ambiguous: Classification,
) -> None:
    fake_llm.script(wire.throttled(), wire.ok(LLM_OOM_ANSWER))

    result = enrich(seqera_evidence, rules_ambiguous, wire.config(fake_llm))

    assert result.classified_by is ClassifiedBy.LLM
    assert len(fake_llm.requests) == 2


def test_500_exhausts_the_bounded_retries(
    wire: Wire,
    fake_llm: FakeLLMServer,
    seqera_evidence: Evidence,
    rules_ambiguous: Classification,
) -> None:
    config = wire.config(fake_llm, max_retries=2)
    fake_llm.script(*(wire.server_error() for _ in range(4)))
    provider = build_provider(config)

    with pytest.raises(LLMTransientError) as raised:
        provider.complete("system", "user")
    provider.close()

    assert isinstance(raised.value, TransientError)
    assert "500" in str(raised.value)
    assert len(fake_llm.requests) == 3  # first try + 2 retries, never more
    fake_llm.script(*(wire.server_error() for _ in range(3)))
    assert enrich(seqera_evidence, rules_ambiguous, config) is rules_ambiguous


def test_other_4xx_is_permanent(wire: Wire, fake_llm: FakeLLMServer) -> None:
    code = "ValidationException" if isinstance(wire, BedrockWire) else "invalid_request_error"
    fake_llm.script(wire.error(400, code))
    provider = build_provider(wire.config(fake_llm))

    with pytest.raises(LLMPermanentError) as raised:
        provider.complete("system", "user")
    provider.close()

    assert not isinstance(raised.value, TransientError)
    assert len(fake_llm.requests) == 1


def test_connection_dropped_by_server_is_transient(
    wire: Wire,
    fake_llm: FakeLLMServer,
    seqera_evidence: Evidence,
    rules_ambiguous: Classification,
) -> None:
    config = wire.config(fake_llm, max_retries=1)
    fake_llm.script(Reply(drop=True), Reply(drop=True))
    provider = build_provider(config)

    with pytest.raises(LLMTransientError):
        provider.complete("system", "user")
    provider.close()

    assert len(fake_llm.requests) == 2
    fake_llm.script(Reply(drop=True), wire.ok(LLM_OOM_ANSWER))
    assert enrich(seqera_evidence, rules_ambiguous, config).classified_by is ClassifiedBy.LLM


def test_connection_refused_is_transient_and_falls_back(
    wire: Wire,
    fake_llm: FakeLLMServer,
    seqera_evidence: Evidence,
    rules_ambiguous: Classification,
) -> None:
    # A port that was just free: nothing listens there any more.
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    url = f"http://127.0.0.1:{port}"
    override = {"endpoint_url": url} if isinstance(wire, BedrockWire) else {"base_url": url}
    config = wire.config(fake_llm, max_retries=1, **override)
    provider = build_provider(config)

    with pytest.raises(LLMTransientError):
        provider.complete("system", "user")
    provider.close()

    assert enrich(seqera_evidence, rules_ambiguous, config) is rules_ambiguous


def test_timeout_is_bounded_and_falls_back(
    wire: Wire,
    fake_llm: FakeLLMServer,
    seqera_evidence: Evidence,
    rules_ambiguous: Classification,
) -> None:
    release = threading.Event()  # the fake answers only when released (at teardown)
    config = wire.config(fake_llm, timeout_seconds=0.3, max_retries=1)
    fake_llm.script(*(Reply(hold=release, body={}) for _ in range(4)))
    provider = build_provider(config)

    started = time.monotonic()
    with pytest.raises(LLMTimeoutError):
        provider.complete("system", "user")
    elapsed = time.monotonic() - started
    provider.close()

    assert len(fake_llm.requests) == 2  # timeouts are transient: retried once, then given up
    assert elapsed < 2.0
    assert enrich(seqera_evidence, rules_ambiguous, config) is rules_ambiguous
    release.set()


def test_provider_body_that_is_not_json_falls_back(
    wire: Wire,
    fake_llm: FakeLLMServer,
    seqera_evidence: Evidence,
    rules_ambiguous: Classification,
) -> None:
    config = wire.config(fake_llm)
    fake_llm.script(Reply(body="<html>gateway says hi</html>"))
    provider = build_provider(config)

    with pytest.raises(LLMPermanentError):
        provider.complete("system", "user")
    provider.close()

    fake_llm.script(Reply(body="{not json"))
    assert enrich(seqera_evidence, rules_ambiguous, config) is rules_ambiguous


def test_provider_body_in_the_wrong_shape_is_a_response_error(
    wire: Wire, fake_llm: FakeLLMServer
) -> None:
    fake_llm.script(Reply(body={"unexpected": True}))
    provider = build_provider(wire.config(fake_llm))

    with pytest.raises(LLMPermanentError) as raised:
        provider.complete("system", "user")
    provider.close()

    # botocore validates Converse's output itself; the HTTP providers check the shape.
    if not isinstance(wire, BedrockWire):
        assert isinstance(raised.value, LLMResponseError)


@pytest.mark.parametrize(
    "answer",
    [
        "Sure! The owner is the bioinformatician.",
        LLM_OOM_ANSWER[:-5],  # cut short (max tokens)
        LLM_OOM_ANSWER + "\nHope this helps!",
    ],
    ids=["prose", "truncated", "trailing-text"],
)
def test_model_answer_that_is_not_one_json_object_is_discarded(
    wire: Wire,
    fake_llm: FakeLLMServer,
    seqera_evidence: Evidence,
    rules_ambiguous: Classification,
    answer: str,
) -> None:
    fake_llm.script(wire.ok(answer))

    assert enrich(seqera_evidence, rules_ambiguous, wire.config(fake_llm)) is rules_ambiguous
    assert len(fake_llm.requests) == 1  # a bad answer is not "transient": no retry


def test_schema_violating_answer_is_discarded(
    wire: Wire,
    fake_llm: FakeLLMServer,
    seqera_evidence: Evidence,
    rules_ambiguous: Classification,
) -> None:
    fake_llm.script(wire.ok(LLM_OOM_ANSWER.replace('"bioinformatician"', '"everyone"')))

    assert enrich(seqera_evidence, rules_ambiguous, wire.config(fake_llm)) is rules_ambiguous


def test_fenced_answer_is_accepted(
    wire: Wire,
    fake_llm: FakeLLMServer,
    seqera_evidence: Evidence,
    rules_ambiguous: Classification,
) -> None:
    fake_llm.script(wire.ok(f"```json\n{LLM_OOM_ANSWER}\n```"))

    result = enrich(seqera_evidence, rules_ambiguous, wire.config(fake_llm))

    assert result.owner is Owner.BIOINFORMATICIAN


def test_keys_never_reach_logs_across_a_whole_session(
    wire: Wire,
    fake_llm: FakeLLMServer,
    seqera_evidence: Evidence,
    rules_ambiguous: Classification,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    config = wire.config(fake_llm, max_retries=1)
    fake_llm.script(
        wire.throttled(),
        wire.ok(LLM_OOM_ANSWER),  # retry path logs a warning
        wire.server_error(),
        wire.server_error(),  # failure path logs the error
        wire.ok("not json"),  # discard path logs the model
    )
    for _ in range(3):
        enrich(seqera_evidence, rules_ambiguous, config)

    assert "retrying" in caplog.text and "discarded" in caplog.text
    for secret in _secrets(wire):
        assert secret not in caplog.text

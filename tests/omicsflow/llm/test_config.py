"""LLMConfig: provider "none" clears model and key; keys never shown; URLs must be safe."""

from __future__ import annotations

import pytest
from pydantic import SecretStr, ValidationError

from classifiers.evidence import Platform
from omicsflow.llm import LLMConfig, LLMPermanentError, ProviderName, build_provider

KEY = "sk-config-test-91b2c3"


def test_none_clears_model_and_key() -> None:
    config = LLMConfig(integration="seqera", provider="none", model_id="gpt", api_key=KEY)

    assert config.model_id is None and config.api_key is None
    assert not config.enabled
    assert config.describe()["has key"] == "no"
    with pytest.raises(LLMPermanentError):
        build_provider(config)


def test_bedrock_keeps_no_key() -> None:
    config = LLMConfig(integration="healthomics", provider="bedrock", model_id="m", api_key=KEY)

    assert config.api_key is None
    assert config.describe()["has key"] == "no"


@pytest.mark.parametrize("provider", [ProviderName.OPENAI, ProviderName.ANTHROPIC])
def test_keyed_providers_need_a_key_and_a_model(provider: ProviderName) -> None:
    with pytest.raises(ValidationError, match="needs an api_key"):
        LLMConfig(integration="seqera", provider=provider, model_id="m")
    with pytest.raises(ValidationError, match="needs a model_id") as raised:
        LLMConfig(integration="seqera", provider=provider, api_key=KEY)
    assert KEY not in str(raised.value)  # pydantic would print the raw input otherwise


def test_key_is_never_in_repr_str_or_describe() -> None:
    config = LLMConfig(
        integration=Platform.SEQERA, provider="anthropic", model_id="claude", api_key=KEY
    )

    for text in (repr(config), str(config), str(config.describe()), config.model_dump_json()):
        assert KEY not in text
    assert config.describe()["has key"] == "yes"
    assert config.api_key == SecretStr(KEY)


@pytest.mark.parametrize(
    ("url", "ok"),
    [
        ("https://api.openai.com/v1", True),
        ("http://127.0.0.1:8080/v1", True),
        ("http://localhost:4000", True),
        ("http://llm-proxy.internal/v1", False),  # the key would cross the network in clear
        ("ftp://example.com", False),
        ("not a url", False),
    ],
)
def test_base_url_must_be_https_unless_loopback(url: str, ok: bool) -> None:
    def make() -> LLMConfig:
        return LLMConfig(
            integration="seqera", provider="openai", model_id="m", api_key=KEY, base_url=url
        )

    if ok:
        assert make().base_url == url
    else:
        with pytest.raises(ValidationError) as raised:
            make()
        assert KEY not in str(raised.value)

"""The per-integration Prefect block: construction rules offline, save/load on a real server."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest
from prefect.client.orchestration import get_client
from prefect.testing.utilities import prefect_test_harness
from pydantic import SecretStr, ValidationError

from blocks.llm import (
    LLMIntegrationConfig,
    block_name,
    load_llm_block,
    load_llm_config,
    load_llm_configs,
    save_llm_config,
)
from classifiers.evidence import Platform
from omicsflow.llm import LLMConfig, ProviderName

KEY = "sk-block-test-6d0e2f7a"


def test_block_names_follow_the_integration() -> None:
    assert block_name("healthomics") == "omicsflow-llm-healthomics"
    assert block_name(Platform.SEQERA) == "omicsflow-llm-seqera"
    with pytest.raises(ValueError):
        block_name("slack")


def test_block_none_clears_model_and_key() -> None:
    block = LLMIntegrationConfig(integration="seqera", provider="none", model_id="m", api_key=KEY)

    assert block.model_id is None and block.api_key is None
    assert block.describe()["has key"] == "no"
    assert block.to_config() == LLMConfig(integration="seqera")


def test_block_never_shows_the_key() -> None:
    block = LLMIntegrationConfig(
        integration="seqera", provider="openai", model_id="gpt", api_key=KEY
    )

    assert block.describe() == {
        "integration": "seqera",
        "provider": "openai",
        "model": "gpt",
        "has key": "yes",
        "base url": "-",
        "endpoint url": "-",
        "region": "-",
        "timeout": "30s",
    }
    for text in (repr(block), str(block), str(block.describe()), repr(block.to_config())):
        assert KEY not in text
    assert block.to_config().api_key == SecretStr(KEY)
    with pytest.raises(ValidationError) as raised:
        LLMIntegrationConfig(integration="seqera", provider="openai", api_key=KEY)
    assert KEY not in str(raised.value)


def test_block_fields_cover_the_config() -> None:
    # The block converts into LLMConfig; a config knob the block can't set is a silent gap.
    offline_only = {"retry_backoff_seconds", "max_output_tokens"}
    missing = set(LLMConfig.model_fields) - set(LLMIntegrationConfig.model_fields) - offline_only
    assert missing == set()


@pytest.fixture(scope="module")
def prefect_api() -> Iterator[None]:
    with prefect_test_harness():
        yield


@pytest.mark.integration
def test_save_and_load_round_trip(prefect_api: None, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    save_llm_config(
        "seqera",
        "anthropic",
        model_id="claude-test",
        api_key=KEY,
        base_url="https://llm-gw.example.org",
        timeout_seconds=12,
    )

    config = load_llm_config("seqera")

    assert config is not None
    assert config.provider is ProviderName.ANTHROPIC
    assert config.model_id == "claude-test"
    assert config.api_key is not None and config.api_key.get_secret_value() == KEY
    assert config.base_url == "https://llm-gw.example.org"
    assert config.timeout_seconds == 12
    block = load_llm_block("seqera")
    assert block is not None and block.describe()["has key"] == "yes"
    assert KEY not in repr(block) and KEY not in caplog.text


@pytest.mark.integration
def test_key_is_stored_obfuscated(prefect_api: None) -> None:
    save_llm_config("blast", "openai", model_id="gpt", api_key=KEY)

    with get_client(sync_client=True) as client:
        doc = client.read_block_document_by_name(
            name=block_name("blast"),
            block_type_slug="omicsflow-llm-integration",
            include_secrets=False,
        )

    assert KEY not in str(doc.data)
    assert doc.data["model_id"] == "gpt"


@pytest.mark.integration
def test_switching_to_none_drops_the_saved_key(prefect_api: None) -> None:
    save_llm_config("local", "openai", model_id="gpt", api_key=KEY)
    save_llm_config("local", "none")

    block = load_llm_block("local")

    assert block is not None
    assert block.provider == "none" and block.model_id is None and block.api_key is None
    assert block.describe()["has key"] == "no"


@pytest.mark.integration
def test_missing_integration_loads_as_none_and_all_configs_load(prefect_api: None) -> None:
    with get_client(sync_client=True) as client:
        for doc in client.read_block_documents():
            if doc.name == block_name("healthomics"):
                client.delete_block_document(doc.id)
    save_llm_config("seqera", "bedrock", model_id="anthropic.claude-test-v1:0", region="eu-west-1")

    assert load_llm_config("healthomics") is None
    configs = load_llm_configs()
    assert "healthomics" not in configs
    assert configs["seqera"].provider is ProviderName.BEDROCK
    assert configs["seqera"].api_key is None

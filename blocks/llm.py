"""Per-integration LLM settings as a Prefect block (bring your own key).

One block document per integration, named `omicsflow-llm-<integration>`
(`omicsflow-llm-healthomics`, `omicsflow-llm-seqera`, `omicsflow-llm-local`,
`omicsflow-llm-blast`), so a lab can run e.g. Bedrock for HealthOmics and OpenAI for Seqera.
The key is a `SecretStr` field: Prefect stores it encrypted-at-rest in the block document and
shows it obfuscated in the UI; this module only ever reports "has key: yes/no".
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from prefect.blocks.core import Block
from pydantic import ConfigDict, Field, SecretStr, model_validator

from classifiers.evidence import Platform
from omicsflow.llm.config import (
    DEFAULT_ANTHROPIC_VERSION,
    REGION_PATTERN,
    LLMConfig,
    ProviderName,
    clear_when_disabled,
    describe_fields,
    validate_provider_fields,
)

Integration = Literal["healthomics", "seqera", "local", "blast"]
ProviderChoice = Literal["none", "bedrock", "openai", "anthropic"]

BLOCK_NAME_PREFIX = "omicsflow-llm-"


def block_name(integration: str) -> str:
    """The block document name of an integration's LLM settings."""
    return BLOCK_NAME_PREFIX + Platform(integration).value


class LLMIntegrationConfig(Block):
    """Which LLM (if any) refines failure classification for one integration."""

    _block_type_name: ClassVar[str | None] = "omicsflow LLM integration"
    _block_type_slug: ClassVar[str | None] = "omicsflow-llm-integration"
    _description: ClassVar[str | None] = (
        "Optional LLM fallback for classifying failed runs of one integration. "
        "Provider 'none' turns it off and clears model and key."
    )

    # Merged with Block's config: keep the raw input (the key, before it is a SecretStr) out of
    # validation errors.
    model_config = ConfigDict(hide_input_in_errors=True)

    integration: Integration
    provider: ProviderChoice = "none"
    model_id: str | None = Field(default=None, description="e.g. gpt-4o-mini, claude-3-5-haiku")
    api_key: SecretStr | None = Field(
        default=None, description="OpenAI/Anthropic key. Bedrock uses the worker's IAM role."
    )
    base_url: str | None = Field(default=None, description="OpenAI/Anthropic API base URL.")
    endpoint_url: str | None = Field(default=None, description="Bedrock runtime endpoint URL.")
    region: str | None = Field(
        default=None, pattern=REGION_PATTERN, description="Bedrock region (default chain if unset)."
    )
    timeout_seconds: float = Field(default=30.0, gt=0, le=300)
    connect_timeout_seconds: float = Field(default=5.0, gt=0, le=60)
    max_retries: int = Field(default=2, ge=0, le=5)
    anthropic_version: str = DEFAULT_ANTHROPIC_VERSION

    @model_validator(mode="before")
    @classmethod
    def _clear_when_disabled(cls, data: Any) -> Any:
        return clear_when_disabled(data)

    @model_validator(mode="after")
    def _check_provider_fields(self) -> LLMIntegrationConfig:
        validate_provider_fields(
            ProviderName(self.provider),
            self.model_id,
            self.api_key,
            self.base_url,
            self.endpoint_url,
        )
        return self

    def to_config(self) -> LLMConfig:
        """The Prefect-free configuration `omicsflow.llm.enrich` takes."""
        return LLMConfig(
            integration=Platform(self.integration),
            provider=ProviderName(self.provider),
            model_id=self.model_id,
            api_key=self.api_key,
            base_url=self.base_url,
            endpoint_url=self.endpoint_url,
            region=self.region,
            timeout_seconds=self.timeout_seconds,
            connect_timeout_seconds=self.connect_timeout_seconds,
            max_retries=self.max_retries,
            anthropic_version=self.anthropic_version,
        )

    def describe(self) -> dict[str, str]:
        """Safe to print: every setting but the key, which is reported as "has key: yes/no"."""
        return describe_fields(
            integration=self.integration,
            provider=self.provider,
            model_id=self.model_id,
            has_key=self.api_key is not None and bool(self.api_key.get_secret_value()),
            base_url=self.base_url,
            endpoint_url=self.endpoint_url,
            region=self.region,
            timeout_seconds=self.timeout_seconds,
        )


def load_llm_block(integration: str) -> LLMIntegrationConfig | None:
    """The saved block of an integration, or None if none was saved."""
    try:
        block = LLMIntegrationConfig.load(block_name(integration))
    except ValueError:
        # Prefect raises ValueError("Unable to find block document named ...") when absent.
        return None
    assert isinstance(block, LLMIntegrationConfig)
    return block


def load_llm_config(integration: str) -> LLMConfig | None:
    """The integration's LLM configuration for `enrich()`, or None if never configured."""
    block = load_llm_block(integration)
    return block.to_config() if block is not None else None


def load_llm_configs() -> dict[str, LLMConfig]:
    """Every configured integration, keyed by integration name (what `enrich()` accepts)."""
    out: dict[str, LLMConfig] = {}
    for platform in Platform:
        config = load_llm_config(platform.value)
        if config is not None:
            out[platform.value] = config
    return out


def save_llm_config(
    integration: str,
    provider: str,
    *,
    model_id: str | None = None,
    api_key: str | SecretStr | None = None,
    base_url: str | None = None,
    endpoint_url: str | None = None,
    region: str | None = None,
    timeout_seconds: float = 30.0,
    connect_timeout_seconds: float = 5.0,
    max_retries: int = 2,
) -> LLMIntegrationConfig:
    """Create or replace the integration's block. Provider "none" stores no model and no key.

    The block is rebuilt from the arguments (never patched), so switching provider can't leave
    a stale key or model behind.
    """
    block = LLMIntegrationConfig(
        integration=Platform(integration).value,
        provider=ProviderName(provider).value,
        model_id=model_id,
        api_key=SecretStr(api_key) if isinstance(api_key, str) else api_key,
        base_url=base_url,
        endpoint_url=endpoint_url,
        region=region,
        timeout_seconds=timeout_seconds,
        connect_timeout_seconds=connect_timeout_seconds,
        max_retries=max_retries,
    )
    block.save(block_name(integration), overwrite=True)
    return block

"""Plain configuration of the LLM fallback, one per integration (bring your own key).

`blocks.llm.LLMIntegrationConfig` is how operators store this in Prefect; it converts into
`LLMConfig` so `enrich()` and the providers never need a Prefect API.
"""

from __future__ import annotations

from enum import Enum, StrEnum
from typing import Any
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, SecretStr, model_validator

from classifiers.evidence import Platform


class ProviderName(StrEnum):
    NONE = "none"
    BEDROCK = "bedrock"
    OPENAI = "openai"
    ANTHROPIC = "anthropic"


#: Providers that authenticate with a bring-your-own API key. Bedrock uses the IAM identity
#: of the process (default credential chain), so it never holds a key.
KEYED_PROVIDERS: frozenset[ProviderName] = frozenset({ProviderName.OPENAI, ProviderName.ANTHROPIC})

DEFAULT_OPENAI_BASE_URL = "https://api.openai.com/v1"
DEFAULT_ANTHROPIC_BASE_URL = "https://api.anthropic.com"
DEFAULT_ANTHROPIC_VERSION = "2023-06-01"

#: AWS region names, e.g. us-east-1, eu-central-2, us-gov-west-1.
REGION_PATTERN = r"^[a-z]{2}(-[a-z]+)+-\d+$"

_LOOPBACK_HOSTS = frozenset({"localhost", "127.0.0.1", "::1"})


def check_url(url: str, what: str) -> str:
    """Accept https anywhere, plain http only on loopback (a local proxy or a test fake).

    A key or the failure evidence sent over plain http to another host could be read on the
    way, so that is a configuration error rather than a silent risk.
    """
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"{what} must be an http(s) URL")
    if parts.scheme == "http" and parts.hostname not in _LOOPBACK_HOSTS:
        raise ValueError(f"{what} must use https unless it points at localhost")
    return url.rstrip("/")


def clear_when_disabled(data: Any) -> Any:
    """Choosing provider "none" clears model and key; choosing Bedrock clears the key.

    A key that nothing uses is only a liability, so switching an integration away from a keyed
    provider drops it. Shared by `LLMConfig` and the Prefect block; runs before validation.
    """
    if not isinstance(data, dict):
        return data
    provider = str(_enum_value(data.get("provider", "none")))
    if provider == ProviderName.NONE.value:
        data = {**data, "model_id": None, "api_key": None}
    elif provider == ProviderName.BEDROCK.value:
        data = {**data, "api_key": None}
    return data


def _enum_value(v: Any) -> Any:
    return v.value if isinstance(v, Enum) else v


def validate_provider_fields(
    provider: ProviderName,
    model_id: str | None,
    api_key: SecretStr | None,
    base_url: str | None,
    endpoint_url: str | None,
) -> None:
    """Cross-field rules shared by `LLMConfig` and the Prefect block.

    Messages name fields only; pydantic is told to hide inputs so the key never shows up in a
    validation error either.
    """
    if provider is ProviderName.NONE:
        return
    if not model_id:
        raise ValueError(f"provider {provider.value!r} needs a model_id")
    if provider in KEYED_PROVIDERS and (api_key is None or not api_key.get_secret_value()):
        raise ValueError(f"provider {provider.value!r} needs an api_key")
    if base_url is not None:
        check_url(base_url, "base_url")
    if endpoint_url is not None:
        check_url(endpoint_url, "endpoint_url")


class LLMConfig(BaseModel):
    """How one integration (healthomics, seqera, local, blast) reaches its LLM, if at all."""

    # hide_input_in_errors: a ValidationError would otherwise print the raw input dict,
    # api_key included, before it became a SecretStr.
    model_config = ConfigDict(frozen=True, extra="forbid", hide_input_in_errors=True)

    integration: Platform
    provider: ProviderName = ProviderName.NONE
    model_id: str | None = Field(default=None, min_length=1, max_length=256)
    api_key: SecretStr | None = None
    # OpenAI: ".../v1" (requests go to {base_url}/chat/completions);
    # Anthropic: the host root (requests go to {base_url}/v1/messages).
    base_url: str | None = None
    # Bedrock only: a VPC endpoint or a test fake; region falls back to the AWS default chain.
    endpoint_url: str | None = None
    region: str | None = Field(default=None, pattern=REGION_PATTERN)
    # Read timeout per attempt (httpx: per socket read; botocore: read_timeout).
    timeout_seconds: float = Field(default=30.0, gt=0, le=300)
    connect_timeout_seconds: float = Field(default=5.0, gt=0, le=60)
    # Extra attempts after the first, for transient errors only (network, timeout, 429, 5xx).
    max_retries: int = Field(default=2, ge=0, le=5)
    # Backoff before retry n (0-based) is retry_backoff_seconds * 2**n, plus up to 10% jitter.
    retry_backoff_seconds: float = Field(default=0.5, ge=0, le=10)
    max_output_tokens: int = Field(default=512, ge=64, le=4096)
    anthropic_version: str = DEFAULT_ANTHROPIC_VERSION

    @model_validator(mode="before")
    @classmethod
    def _clear_when_disabled(cls, data: Any) -> Any:
        return clear_when_disabled(data)

    @model_validator(mode="after")
    def _check_provider_fields(self) -> LLMConfig:
        validate_provider_fields(
            self.provider, self.model_id, self.api_key, self.base_url, self.endpoint_url
        )
        return self

    @property
    def enabled(self) -> bool:
        return self.provider is not ProviderName.NONE

    def describe(self) -> dict[str, str]:
        """What an API, CLI or log may show: everything but the key ("has key: yes/no")."""
        return describe_fields(
            integration=self.integration.value,
            provider=self.provider.value,
            model_id=self.model_id,
            has_key=self.api_key is not None and bool(self.api_key.get_secret_value()),
            base_url=self.base_url,
            endpoint_url=self.endpoint_url,
            region=self.region,
            timeout_seconds=self.timeout_seconds,
        )


def describe_fields(
    *,
    integration: str,
    provider: str,
    model_id: str | None,
    has_key: bool,
    base_url: str | None,
    endpoint_url: str | None,
    region: str | None,
    timeout_seconds: float,
) -> dict[str, str]:
    """One shape for every description of an LLM configuration (config object and block)."""
    return {
        "integration": integration,
        "provider": provider,
        "model": model_id or "-",
        "has key": "yes" if has_key else "no",
        "base url": base_url or "-",
        "endpoint url": endpoint_url or "-",
        "region": region or "-",
        "timeout": f"{timeout_seconds:g}s",
    }

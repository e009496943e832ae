"""Optional LLM fallback for failure classification (bring your own key, per integration)."""

from omicsflow.llm.config import LLMConfig, ProviderName
from omicsflow.llm.enrich import enrich, owner_is_fixed
from omicsflow.llm.errors import (
    LLMAuthError,
    LLMError,
    LLMPermanentError,
    LLMResponseError,
    LLMTimeoutError,
    LLMTransientError,
)
from omicsflow.llm.parse import parse_answer
from omicsflow.llm.prompt import build_prompt
from omicsflow.llm.providers import (
    AnthropicProvider,
    BedrockProvider,
    LLMProvider,
    OpenAIProvider,
    build_provider,
)

__all__ = [
    "AnthropicProvider",
    "BedrockProvider",
    "LLMAuthError",
    "LLMConfig",
    "LLMError",
    "LLMPermanentError",
    "LLMProvider",
    "LLMResponseError",
    "LLMTimeoutError",
    "LLMTransientError",
    "OpenAIProvider",
    "ProviderName",
    "build_prompt",
    "build_provider",
    "enrich",
    "owner_is_fixed",
    "parse_answer",
]

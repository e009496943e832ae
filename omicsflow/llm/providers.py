"""LLM providers behind one small interface: `complete(system, user) -> text`.

- Bedrock: boto3 `bedrock-runtime` Converse, IAM credentials from the default chain.
- OpenAI: `POST {base_url}/chat/completions`, Bearer key, JSON response format.
- Anthropic: `POST {base_url}/v1/messages`, `x-api-key` + `anthropic-version`.

Every provider bounds each attempt with connect/read timeouts and retries only transient
failures (network, timeout, 429, 5xx), at most `max_retries` times with a short exponential
backoff. Library errors are mapped at this boundary into `omicsflow.llm.errors`; messages
carry the provider, status and the provider's short error code, never bodies or headers.
"""

from __future__ import annotations

import logging
import random
import re
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

import httpx

from omicsflow.llm.config import (
    DEFAULT_ANTHROPIC_BASE_URL,
    DEFAULT_OPENAI_BASE_URL,
    LLMConfig,
    ProviderName,
)
from omicsflow.llm.errors import (
    LLMAuthError,
    LLMError,
    LLMPermanentError,
    LLMResponseError,
    LLMTimeoutError,
    LLMTransientError,
)

if TYPE_CHECKING:
    from mypy_boto3_bedrock_runtime import BedrockRuntimeClient

log = logging.getLogger(__name__)

T = TypeVar("T")

# Provider error codes go into exception messages only if they look like codes: a free-text
# field could echo the (masked) key or the prompt.
_ERROR_CODE_RE = re.compile(r"^[A-Za-z0-9_.\-]{1,64}$")


class LLMProvider(Protocol):
    """A chat model that turns a system and a user message into one text answer."""

    @property
    def name(self) -> str: ...

    @property
    def model_id(self) -> str: ...

    def complete(self, system: str, user: str) -> str:
        """The model's text answer. Raises LLMTransientError / LLMPermanentError."""
        ...

    def close(self) -> None: ...


def with_retries(
    call: Callable[[], T],
    *,
    provider: str,
    max_retries: int,
    backoff_seconds: float,
    sleep: Callable[[float], None] = time.sleep,
) -> T:
    """Run `call`, retrying LLMTransientError up to `max_retries` times; others propagate.

    The budget stays small on purpose: the LLM is an optional refinement of a classification
    that already exists, so waiting long for it buys little.
    """
    attempt = 0
    while True:
        try:
            return call()
        except LLMTransientError as exc:
            if attempt >= max_retries:
                raise
            delay = backoff_seconds * (2**attempt)
            delay += random.uniform(0, delay * 0.1)
            log.warning(
                "LLM %s attempt %d failed (%s); retrying in %.2fs",
                provider,
                attempt + 1,
                exc,
                delay,
            )
            sleep(delay)
            attempt += 1


def _status_error(provider: str, status: int, code: str | None) -> LLMError:
    detail = f"{provider} answered HTTP {status}" + (f" ({code})" if code else "")
    if status in (408, 429) or status >= 500:
        return LLMTransientError(detail)
    if status in (401, 403):
        return LLMAuthError(detail)
    return LLMPermanentError(detail)


def _error_code(response: httpx.Response) -> str | None:
    """The provider's short error code (OpenAI error.code/type, Anthropic error.type)."""
    try:
        body = response.json()
    except ValueError:
        return None
    err = body.get("error") if isinstance(body, dict) else None
    if not isinstance(err, dict):
        return None
    for key in ("code", "type"):
        value = err.get(key)
        if isinstance(value, str) and _ERROR_CODE_RE.match(value):
            return value
    return None


class _HttpProvider:
    """Shared httpx plumbing: one client per provider, errors mapped, bodies never echoed."""

    name: str

    def __init__(self, config: LLMConfig, base_url: str, headers: dict[str, str]) -> None:
        assert config.model_id is not None  # LLMConfig enforces it for enabled providers
        self._model_id = config.model_id
        self._base_url = base_url
        self._config = config
        # The key lives only in the client's default headers: not in repr, URL or messages.
        # follow_redirects=False: httpx strips Authorization on cross-host redirects but not
        # x-api-key, so a redirect must never be followed with the key.
        self._client = httpx.Client(
            base_url=base_url,
            headers=headers,
            timeout=httpx.Timeout(config.timeout_seconds, connect=config.connect_timeout_seconds),
            follow_redirects=False,
        )

    @property
    def model_id(self) -> str:
        return self._model_id

    def __repr__(self) -> str:
        return f"{type(self).__name__}(model_id={self._model_id!r}, base_url={self._base_url!r})"

    def close(self) -> None:
        self._client.close()

    def _post_json(self, path: str, payload: dict[str, Any]) -> dict[str, Any]:
        try:
            response = self._client.post(path, json=payload)
        except httpx.TimeoutException as exc:
            raise LLMTimeoutError(f"{self.name} timed out ({type(exc).__name__})") from exc
        except httpx.UnsupportedProtocol as exc:
            raise LLMPermanentError(f"{self.name} base_url is not usable") from exc
        except httpx.TransportError as exc:
            raise LLMTransientError(f"{self.name} network error ({type(exc).__name__})") from exc
        except (httpx.HTTPError, httpx.InvalidURL) as exc:
            raise LLMPermanentError(f"{self.name} request failed ({type(exc).__name__})") from exc
        if not response.is_success:
            raise _status_error(self.name, response.status_code, _error_code(response))
        try:
            body = response.json()
        except ValueError as exc:
            raise LLMResponseError(f"{self.name} answered with a body that is not JSON") from exc
        if not isinstance(body, dict):
            raise LLMResponseError(f"{self.name} answered with a JSON body that is not an object")
        return body

    def complete(self, system: str, user: str) -> str:
        return with_retries(
            lambda: self._complete_once(system, user),
            provider=self.name,
            max_retries=self._config.max_retries,
            backoff_seconds=self._config.retry_backoff_seconds,
        )

    def _complete_once(self, system: str, user: str) -> str:
        raise NotImplementedError


class OpenAIProvider(_HttpProvider):
    """OpenAI Chat Completions (or any server speaking it at `base_url`)."""

    name = "openai"

    def __init__(self, config: LLMConfig) -> None:
        assert config.api_key is not None
        super().__init__(
            config,
            base_url=config.base_url or DEFAULT_OPENAI_BASE_URL,
            headers={"Authorization": f"Bearer {config.api_key.get_secret_value()}"},
        )

    def _complete_once(self, system: str, user: str) -> str:
        # No temperature: reasoning models (o-series, gpt-5) reject anything but the default.
        body = self._post_json(
            "/chat/completions",
            {
                "model": self.model_id,
                "messages": [
                    {"role": "system", "content": system},
                    {"role": "user", "content": user},
                ],
                "response_format": {"type": "json_object"},
                "max_completion_tokens": self._config.max_output_tokens,
            },
        )
        try:
            content = body["choices"][0]["message"]["content"]
        except (KeyError, IndexError, TypeError) as exc:
            raise LLMResponseError("openai answer has no choices[0].message.content") from exc
        if not isinstance(content, str):
            # content is null when the model refused.
            raise LLMResponseError("openai answer content is not text")
        return content


class AnthropicProvider(_HttpProvider):
    """Anthropic Messages API."""

    name = "anthropic"

    def __init__(self, config: LLMConfig) -> None:
        assert config.api_key is not None
        super().__init__(
            config,
            base_url=config.base_url or DEFAULT_ANTHROPIC_BASE_URL,
            headers={
                "x-api-key": config.api_key.get_secret_value(),
                "anthropic-version": config.anthropic_version,
            },
        )

    def _complete_once(self, system: str, user: str) -> str:
        body = self._post_json(
            "/v1/messages",
            {
                "model": self.model_id,
                "max_tokens": self._config.max_output_tokens,
                "temperature": 0,
                "system": system,
                "messages": [{"role": "user", "content": user}],
            },
        )
        return _join_text_blocks(body.get("content"), "anthropic", type_key="type")


def _join_text_blocks(blocks: Any, provider: str, *, type_key: str | None) -> str:
    """Concatenate the text blocks of a Messages/Converse answer; other blocks are skipped."""
    if not isinstance(blocks, list):
        raise LLMResponseError(f"{provider} answer has no content list")
    texts: list[str] = []
    for block in blocks:
        if not isinstance(block, dict):
            continue
        if type_key is not None and block.get(type_key) != "text":
            continue
        text = block.get("text")
        if isinstance(text, str):
            texts.append(text)
    if not texts:
        raise LLMResponseError(f"{provider} answer has no text block")
    return "".join(texts)


# Bedrock error codes that mean "the identity is not allowed", whatever the HTTP status.
_BEDROCK_AUTH_CODES = frozenset(
    {
        "AccessDeniedException",
        "UnrecognizedClientException",
        "InvalidSignatureException",
        "ExpiredTokenException",
        "IncompleteSignature",
    }
)
# Transient by name even when a proxy rewrites the status.
_BEDROCK_TRANSIENT_CODES = frozenset(
    {
        "ThrottlingException",
        "ServiceUnavailableException",
        "InternalServerException",
        "ModelTimeoutException",
        "ModelNotReadyException",
    }
)


class BedrockProvider:
    """Amazon Bedrock Converse via boto3 (`bedrock-runtime`), no API key."""

    name = "bedrock"

    def __init__(self, config: LLMConfig) -> None:
        assert config.model_id is not None
        self._model_id = config.model_id
        self._config = config
        self._client: BedrockRuntimeClient | None = None

    @property
    def model_id(self) -> str:
        return self._model_id

    def __repr__(self) -> str:
        return (
            f"BedrockProvider(model_id={self._model_id!r}, region={self._config.region!r}, "
            f"endpoint_url={self._config.endpoint_url!r})"
        )

    def _get_client(self) -> BedrockRuntimeClient:
        import boto3
        from botocore.config import Config
        from botocore.exceptions import BotoCoreError

        if self._client is None:
            try:
                # Botocore's own retries are off: `with_retries` is the one retry budget.
                self._client = boto3.session.Session().client(
                    "bedrock-runtime",
                    region_name=self._config.region,
                    endpoint_url=self._config.endpoint_url,
                    config=Config(
                        connect_timeout=self._config.connect_timeout_seconds,
                        read_timeout=self._config.timeout_seconds,
                        retries={"total_max_attempts": 1, "mode": "standard"},
                    ),
                )
            except BotoCoreError as exc:  # NoRegionError and friends
                raise LLMPermanentError(
                    f"bedrock client setup failed ({type(exc).__name__})"
                ) from exc
        return self._client

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None

    def complete(self, system: str, user: str) -> str:
        client = self._get_client()
        return with_retries(
            lambda: self._complete_once(client, system, user),
            provider=self.name,
            max_retries=self._config.max_retries,
            backoff_seconds=self._config.retry_backoff_seconds,
        )

    def _complete_once(self, client: BedrockRuntimeClient, system: str, user: str) -> str:
        from botocore.exceptions import (
            BotoCoreError,
            ClientError,
            ConnectionError,
            ConnectTimeoutError,
            HTTPClientError,
            NoCredentialsError,
            PartialCredentialsError,
            ReadTimeoutError,
        )

        try:
            response = client.converse(
                modelId=self.model_id,
                system=[{"text": system}],
                messages=[{"role": "user", "content": [{"text": user}]}],
                inferenceConfig={"maxTokens": self._config.max_output_tokens, "temperature": 0},
            )
        except ClientError as exc:
            err = exc.response.get("Error", {})
            code = str(err.get("Code", ""))
            status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0))
            shown = code if _ERROR_CODE_RE.match(code) else None
            if code in _BEDROCK_AUTH_CODES:
                raise LLMAuthError(f"bedrock refused the IAM identity ({code})") from exc
            if code in _BEDROCK_TRANSIENT_CODES:
                raise LLMTransientError(f"bedrock answered HTTP {status} ({code})") from exc
            raise _status_error(self.name, status, shown) from exc
        except (ConnectTimeoutError, ReadTimeoutError) as exc:
            raise LLMTimeoutError(f"bedrock timed out ({type(exc).__name__})") from exc
        except (NoCredentialsError, PartialCredentialsError) as exc:
            raise LLMAuthError(
                f"bedrock has no usable AWS credentials ({type(exc).__name__})"
            ) from exc
        except (ConnectionError, HTTPClientError) as exc:
            # ConnectionError: refused/unreachable; HTTPClientError: the connection dropped
            # mid-request (ConnectionClosedError), which botocore does not file under it.
            raise LLMTransientError(f"bedrock network error ({type(exc).__name__})") from exc
        except BotoCoreError as exc:
            raise LLMPermanentError(f"bedrock request failed ({type(exc).__name__})") from exc
        try:
            blocks = response["output"]["message"]["content"]
        except (KeyError, TypeError) as exc:
            raise LLMResponseError("bedrock answer has no output.message.content") from exc
        # Converse content blocks are unions keyed by kind ({"text": ...}, {"reasoningContent":
        # ...}); only the text ones are the answer.
        return _join_text_blocks(blocks, self.name, type_key=None)


def build_provider(config: LLMConfig) -> LLMProvider:
    """The provider a configuration asks for. Raises LLMPermanentError if it is disabled."""
    if config.provider is ProviderName.OPENAI:
        return OpenAIProvider(config)
    if config.provider is ProviderName.ANTHROPIC:
        return AnthropicProvider(config)
    if config.provider is ProviderName.BEDROCK:
        return BedrockProvider(config)
    raise LLMPermanentError(f"LLM is disabled for {config.integration.value}")

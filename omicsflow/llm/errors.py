"""Errors of the LLM fallback, mapped into omicsflow's transient/permanent hierarchy.

Messages name the provider, the HTTP status or the provider's short error code, never a
response body or a request header: providers echo (partly masked) keys in 401 bodies, and
these messages end up in logs.
"""

from __future__ import annotations

from omicsflow.errors import OmicsflowError, PermanentError, TransientError


class LLMError(OmicsflowError):
    """Base of every error raised by an LLM provider."""


class LLMTransientError(LLMError, TransientError):
    """Network error, throttling (429) or a provider 5xx: worth one more try."""


class LLMTimeoutError(LLMTransientError):
    """The provider did not connect or answer within the configured timeout."""


class LLMPermanentError(LLMError, PermanentError):
    """The provider rejected the request (4xx other than 429) or the configuration is unusable."""


class LLMAuthError(LLMPermanentError):
    """The key or IAM identity was refused (401/403, AccessDenied, missing credentials)."""


class LLMResponseError(LLMPermanentError):
    """The provider answered 2xx but not in its documented wire shape (no text to parse)."""

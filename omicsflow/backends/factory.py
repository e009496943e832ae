"""Building a service's remote backend from its services-file settings and its blocks.

One backend object per service and process, so every call of that service shares one client
and one rate limiter (the poller and the attempt flows of one process never exceed it).
"""

from __future__ import annotations

import threading
from typing import Any, cast

from omicsflow.backends.base import RemoteBackend
from omicsflow.errors import ConfigError
from omicsflow.services import ServiceConfig

REMOTE_BACKENDS = ("healthomics", "seqera")

_lock = threading.Lock()
_cache: dict[str, RemoteBackend] = {}


def _healthomics(svc: ServiceConfig) -> RemoteBackend:
    from blocks.backends import DEFAULT_HEALTHOMICS_BLOCK, HealthOmicsAccount
    from omicsflow.backends.healthomics import HealthOmicsBackend, HealthOmicsSettings

    raw = dict(svc.settings)
    block_name = raw.pop("account_block", DEFAULT_HEALTHOMICS_BLOCK)
    raw.pop("parameters_template", None)
    try:
        account = cast(HealthOmicsAccount, HealthOmicsAccount.load(block_name))
    except ValueError as exc:
        raise ConfigError(
            f"service {svc.name}: HealthOmics account block {block_name!r} not found "
            "(it holds the run role ARN and output URI)"
        ) from exc
    raw.update({"role_arn": account.role_arn, "output_uri": account.output_uri})
    if account.region:
        raw["region"] = account.region
    if account.endpoint_url:
        raw["endpoint_url"] = account.endpoint_url
    try:
        return HealthOmicsBackend(HealthOmicsSettings.model_validate(raw))
    except ValueError as exc:
        raise ConfigError(f"service {svc.name}: invalid HealthOmics settings: {exc}") from exc


def _seqera(svc: ServiceConfig) -> RemoteBackend:
    from blocks.backends import DEFAULT_SEQERA_TOKEN_BLOCK, SeqeraToken
    from omicsflow.backends.seqera import SeqeraBackend, SeqeraSettings

    raw = dict(svc.settings)
    block_name = raw.pop("token_block", DEFAULT_SEQERA_TOKEN_BLOCK)
    raw.pop("parameters_template", None)
    try:
        token = cast(SeqeraToken, SeqeraToken.load(block_name))
    except ValueError as exc:
        raise ConfigError(
            f"service {svc.name}: Seqera token block {block_name!r} not found"
        ) from exc
    if token.api_url:
        raw["api_url"] = token.api_url
    try:
        settings = SeqeraSettings.model_validate(raw)
    except ValueError as exc:
        raise ConfigError(f"service {svc.name}: invalid Seqera settings: {exc}") from exc
    return SeqeraBackend(settings, token.token.get_secret_value())


def backend_for(svc: ServiceConfig) -> RemoteBackend:
    if svc.backend not in REMOTE_BACKENDS:
        raise ConfigError(f"service {svc.name}: backend {svc.backend!r} is not a remote backend")
    with _lock:
        backend = _cache.get(svc.name)
        if backend is None:
            backend = _healthomics(svc) if svc.backend == "healthomics" else _seqera(svc)
            _cache[svc.name] = backend
        return backend


def parameters_template(svc: ServiceConfig) -> dict[str, Any]:
    template = svc.settings.get("parameters_template", {})
    if not isinstance(template, dict):
        raise ConfigError(f"service {svc.name}: parameters_template must be a table")
    return template


def reset_backends() -> None:
    with _lock:
        _cache.clear()

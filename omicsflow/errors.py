"""omicsflow's error hierarchy: every failure is either transient (try again) or permanent.

Errors from libraries (botocore, httpx, grpc, sqlalchemy) are mapped at the boundary with
`raise ... from`, so callers only ever handle these types.
"""

from __future__ import annotations


class OmicsflowError(Exception):
    """Base of every error omicsflow raises on purpose."""


class TransientError(OmicsflowError):
    """Worth retrying unchanged: network blips, throttling, 5xx, a locked database."""


class PermanentError(OmicsflowError):
    """Retrying unchanged will fail again: bad input, missing resource, wrong credentials."""


class ConfigError(PermanentError):
    """The services file, settings or a block is invalid."""


class InvalidReportError(PermanentError):
    """A report document cannot be turned into a run (missing/unknown service, wrong types)."""


class ReportNotFoundError(PermanentError):
    """The report document does not exist in the report store."""


class StoreUnavailableError(TransientError):
    """The report store cannot be reached at all (an outage, not a per-document problem)."""


class StoreWriteError(OmicsflowError):
    """A write to one report document failed while the store may still be reachable."""


class SandboxError(PermanentError):
    """The sandbox could not be set up (bwrap missing, bad whitelist path, traversal)."""


class BackendTransientError(TransientError):
    """A remote backend answered with throttling, 5xx or a network error."""


class BackendPermanentError(PermanentError):
    """A remote backend rejected the request (validation, access denied, not found)."""

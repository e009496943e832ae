"""The report-store contract shared by the Firestore and the local store.

A store is watched for reports whose status is "Data Ready": a report entering that set is
an ADDED event, a report leaving it is REMOVED. Stores may re-emit ADDED for every matching
report at any time (Firestore does on reconnect); intake's dedup makes that harmless.
A change to a report that keeps it in the set (another field edited while it stays
"Data Ready") is not an event: the work it asks for has not changed, and intake reads the
current document when it acts on a report anyway.
"""

from __future__ import annotations

import enum
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from omicsflow.errors import PermanentError

DATA_READY = "Data Ready"
FAILED = "Failed"


def new_report_id() -> str:
    """The id `create` gives a report when the caller has none (the CLI's `reports add`)."""
    return f"rpt-{uuid.uuid4().hex[:12]}"


class ReportExistsError(PermanentError):
    """`create` was given the id of a report that already exists."""


class ChangeKind(str, enum.Enum):
    ADDED = "ADDED"
    REMOVED = "REMOVED"


@dataclass(frozen=True)
class ReportEvent:
    kind: ChangeKind
    report_id: str
    # The document as the store holds it (for REMOVED: the last known or current content).
    data: Mapping[str, Any] = field(default_factory=dict)


class Watch(Protocol):
    """A running watch; `stop()` ends it and joins its threads."""

    def stop(self) -> None: ...


class ReportStore(Protocol):
    """Where reports live. Implementations: `LocalReportStore`, `FirestoreReportStore`."""

    name: str

    def watch(
        self,
        on_event: Callable[[ReportEvent], None],
        on_error: Callable[[BaseException], None] | None = None,
    ) -> Watch:
        """Deliver ADDED/REMOVED for reports with status "Data Ready", starting with an
        ADDED for every report currently matching. Callbacks run on the store's thread."""
        ...

    def get(self, report_id: str) -> Mapping[str, Any] | None:
        """The current document, or None when it does not exist."""
        ...

    def write_failed(self, report_id: str, fields: Mapping[str, Any]) -> None:
        """Transactionally set status "Failed" plus `fields` on an existing report.

        Raises ReportNotFoundError if the document is gone, StoreUnavailableError when the
        store cannot be reached, StoreWriteError for any other failed write."""
        ...

    def create(
        self,
        report_id: str | None,
        service: str,
        fields: Mapping[str, Any] | None = None,
        *,
        status: str = DATA_READY,
    ) -> str:
        """Create a report (the CLI `reports add`, tests) and return its id; a generated
        `rpt-<12 hex>` when `report_id` is None. Raises ReportExistsError for a taken id."""
        ...

    def set_status(
        self, report_id: str, status: str, fields: Mapping[str, Any] | None = None
    ) -> None:
        """Set a report's status (operator tools, tests, the local CLI)."""
        ...

    def check_connectivity(self, timeout_seconds: float = 5.0) -> bool:
        """True when the store answers a cheap read within the timeout."""
        ...

    def close(self) -> None: ...

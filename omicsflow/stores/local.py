"""The local report store: reports as rows in the ledger database, for the embedded setup.

It behaves like the Firestore store seen through `ReportStore`: a watch delivers ADDED when a
report enters "Data Ready" and REMOVED when it leaves, starting with a snapshot, and it
re-emits ADDED for every matching report now and then (every `resync_seconds`).

How the watch sees changes: every status change appends a row to `local_report_changes` in
the same transaction. The watch thread keeps a cursor (the last change id it handled) and
polls for newer rows. Events describe the report's state when the watch reads it, so changes
that happen between two polls coalesce (as they do in a Firestore snapshot): a report that
entered "Data Ready" and already left again yields no ADDED, which also means a stale ADDED
can never resurrect a report that was meanwhile written "Failed".
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Engine, func, text
from sqlalchemy import exc as sa_exc
from sqlmodel import Session, col, select

from omicsflow.errors import ReportNotFoundError, StoreUnavailableError, StoreWriteError
from omicsflow.stores.base import (
    DATA_READY,
    FAILED,
    ChangeKind,
    ReportEvent,
    ReportExistsError,
    new_report_id,
)
from omicsflow.stores.local_tables import LocalReport, LocalReportChange, utcnow

logger = logging.getLogger(__name__)

# Change rows read per query while tailing; a backlog is drained in several queries.
_TAIL_BATCH = 500
# Ceiling of the pause between polls while the database keeps failing.
_MAX_ERROR_BACKOFF = 5.0


@contextmanager
def _mapped_errors(
    action: str, fallback: type[StoreWriteError] | type[StoreUnavailableError]
) -> Iterator[None]:
    """Turn SQLAlchemy errors into the store's errors.

    OperationalError is what drivers raise when the server is gone or refuses connections
    (and for SQLite's "database is locked"): the store as a whole is unavailable. Anything
    else concerns this one statement (a constraint, a value JSON cannot encode).
    """
    try:
        yield
    except sa_exc.DBAPIError as exc:
        if exc.connection_invalidated or isinstance(exc, sa_exc.OperationalError):
            raise StoreUnavailableError(f"local report store unavailable ({action})") from exc
        raise fallback(f"local report store: {action} failed: {exc.orig}") from exc
    except sa_exc.SQLAlchemyError as exc:
        raise fallback(f"local report store: {action} failed: {exc}") from exc


# Firestore refuses documents over 1 MiB; the local store keeps the same limit so a lab that
# moves between the two sees the same failure (a per-document write error, not an outage).
MAX_DOCUMENT_BYTES = 1_048_576


def _check_size(report_id: str, data: Mapping[str, Any]) -> None:
    size = len(json.dumps(data, default=str).encode("utf-8"))
    if size > MAX_DOCUMENT_BYTES:
        raise StoreWriteError(
            f"report {report_id!r} would be {size} bytes, over the {MAX_DOCUMENT_BYTES}-byte "
            "document limit"
        )


def _document(row: LocalReport) -> dict[str, Any]:
    """The report as callers see it: its fields plus the status, like a Firestore document."""
    return {**row.data, "status": row.status}


def _without_status(fields: Mapping[str, Any] | None) -> dict[str, Any]:
    # The status lives in its own column; a "status" key in the fields must not shadow it.
    return {k: v for k, v in (fields or {}).items() if k != "status"}


class LocalReportStore:
    """`ReportStore` on the ledger's SQL database (SQLite or PostgreSQL).

    The tables must exist (`SQLModel.metadata.create_all` or the ledger's migrations).
    """

    name = "local"

    def __init__(
        self, engine: Engine, poll_interval: float = 0.2, resync_seconds: float = 30
    ) -> None:
        self._engine = engine
        self.poll_interval = poll_interval
        self.resync_seconds = resync_seconds
        self._watches: list[_LocalWatch] = []
        self._lock = threading.Lock()

    # -- documents -------------------------------------------------------------------------

    def create(
        self,
        report_id: str | None,
        service: str,
        fields: Mapping[str, Any] | None = None,
        *,
        status: str = DATA_READY,
    ) -> str:
        report_id = report_id or new_report_id()
        data = {**_without_status(fields), "service": service}
        _check_size(report_id, data)
        with _mapped_errors(f"create {report_id}", StoreWriteError), Session(self._engine) as s:
            if s.get(LocalReport, report_id) is not None:
                raise ReportExistsError(f"report {report_id!r} already exists")
            s.add(LocalReport(id=report_id, status=status, data=data))
            # Creation is a status change too: a report created "Data Ready" must reach the
            # watch through the log like any other.
            s.add(LocalReportChange(report_id=report_id, status=status))
            try:
                s.commit()
            except sa_exc.IntegrityError as exc:
                # Lost a race with another creator of the same id.
                raise ReportExistsError(f"report {report_id!r} already exists") from exc
        return report_id

    def get(self, report_id: str) -> Mapping[str, Any] | None:
        with _mapped_errors(f"get {report_id}", StoreUnavailableError), Session(self._engine) as s:
            row = s.get(LocalReport, report_id)
            return None if row is None else _document(row)

    def write_failed(self, report_id: str, fields: Mapping[str, Any]) -> None:
        self._change(report_id, FAILED, fields, action="write_failed")

    def set_status(
        self, report_id: str, status: str, fields: Mapping[str, Any] | None = None
    ) -> None:
        self._change(report_id, status, fields, action="set_status")

    def _change(
        self, report_id: str, status: str, fields: Mapping[str, Any] | None, *, action: str
    ) -> None:
        with _mapped_errors(f"{action} {report_id}", StoreWriteError), Session(self._engine) as s:
            # FOR UPDATE (PostgreSQL): two writers of one report serialize, so each change row
            # records a transition that really happened. SQLite locks the whole database.
            row = s.get(LocalReport, report_id, with_for_update=True)
            if row is None:
                raise ReportNotFoundError(f"report {report_id!r} does not exist")
            if fields:
                # A new dict, so SQLAlchemy sees the JSON column change.
                row.data = {**row.data, **_without_status(fields)}
                _check_size(report_id, row.data)
            if row.status != status:
                row.status = status
                s.add(LocalReportChange(report_id=report_id, status=status))
            row.updated_at = utcnow()
            s.add(row)
            s.commit()

    # -- health ----------------------------------------------------------------------------

    def check_connectivity(self, timeout_seconds: float = 5.0) -> bool:
        # A driver may block far longer than the caller wants (a PostgreSQL host that drops
        # packets); the probe runs on a daemon thread so the answer comes within the timeout.
        done = threading.Event()
        reachable: list[bool] = []

        def probe() -> None:
            try:
                with self._engine.connect() as conn:
                    conn.execute(text("SELECT 1"))
                reachable.append(True)
            except Exception:  # any failure means "not reachable"; the caller only needs a bool
                logger.debug("local report store connectivity probe failed", exc_info=True)
            finally:
                done.set()

        threading.Thread(target=probe, name="local-store-probe", daemon=True).start()
        done.wait(timeout_seconds)
        return bool(reachable)

    # -- watch -----------------------------------------------------------------------------

    def watch(
        self,
        on_event: Callable[[ReportEvent], None],
        on_error: Callable[[BaseException], None] | None = None,
    ) -> _LocalWatch:
        w = _LocalWatch(self._engine, on_event, on_error, self.poll_interval, self.resync_seconds)
        with self._lock:
            self._watches.append(w)
        w.start()
        return w

    def close(self) -> None:
        """Stop the watches this store started. The engine belongs to the caller."""
        with self._lock:
            watches, self._watches = self._watches, []
        for w in watches:
            w.stop()


class _LocalWatch:
    """The polling thread behind `LocalReportStore.watch`."""

    def __init__(
        self,
        engine: Engine,
        on_event: Callable[[ReportEvent], None],
        on_error: Callable[[BaseException], None] | None,
        poll_interval: float,
        resync_seconds: float,
    ) -> None:
        self._engine = engine
        self._on_event = on_event
        self._on_error = on_error
        self._poll_interval = poll_interval
        self._resync_seconds = resync_seconds
        self._stopped = threading.Event()
        self._cursor = 0
        # Reports announced ADDED and not REMOVED since, with the content last sent: REMOVED
        # is only sent for these, and a resync sends it for those that vanished unseen.
        self._known: dict[str, Mapping[str, Any]] = {}
        self._thread = threading.Thread(target=self._run, name="local-report-watch", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stopped.set()
        # A callback may stop its own watch; a thread cannot join itself.
        if self._thread.is_alive() and threading.current_thread() is not self._thread:
            self._thread.join()

    def _run(self) -> None:
        next_resync = 0.0  # the first pass takes the initial snapshot
        delay = self._poll_interval
        while not self._stopped.is_set():
            try:
                if time.monotonic() >= next_resync:
                    self._resync()
                    next_resync = time.monotonic() + self._resync_seconds
                self._tail()
                delay = self._poll_interval
            except Exception as exc:
                # The watch must outlive any failure; report it and poll again, slower.
                error: BaseException = exc
                if isinstance(exc, sa_exc.SQLAlchemyError):
                    error = StoreUnavailableError("local report store: watch query failed")
                    error.__cause__ = exc
                self._report(error)
                delay = min(max(delay, self._poll_interval) * 2, _MAX_ERROR_BACKOFF)
            self._stopped.wait(delay)

    def _resync(self) -> None:
        """Emit ADDED for every "Data Ready" report, REMOVED for announced ones that left.

        Besides matching Firestore's periodic re-emission, this is what makes the cursor safe
        on PostgreSQL: change ids come from a sequence at insert time, but transactions
        commit in any order, so id 11 can be visible while id 10 is still uncommitted. Once
        the cursor has passed 11, row 10 is never read by the tail. The snapshot here does
        not depend on ids, so whatever the tail missed is repaired within `resync_seconds`.
        """
        with Session(self._engine) as s:
            # The cursor is read before the snapshot: a change committed between the two
            # reads is in the snapshot and/or replayed by the tail, never lost.
            cursor = s.exec(select(func.max(LocalReportChange.id))).one() or 0
            rows = s.exec(
                select(LocalReport)
                .where(LocalReport.status == DATA_READY)
                .order_by(col(LocalReport.created_at), col(LocalReport.id))
            ).all()
            current = {row.id: _document(row) for row in rows}
        for report_id in [r for r in self._known if r not in current]:
            self._emit(ChangeKind.REMOVED, report_id, self._known.pop(report_id))
        for report_id, doc in current.items():
            self._known[report_id] = doc
            self._emit(ChangeKind.ADDED, report_id, doc)
        self._cursor = max(self._cursor, cursor)

    def _tail(self) -> None:
        while not self._stopped.is_set():
            with Session(self._engine) as s:
                rows = s.exec(
                    select(LocalReportChange, LocalReport)
                    .join(LocalReport, col(LocalReport.id) == col(LocalReportChange.report_id))
                    .where(col(LocalReportChange.id) > self._cursor)
                    .order_by(col(LocalReportChange.id))
                    .limit(_TAIL_BATCH)
                ).all()
            for change, report in rows:
                assert change.id is not None  # read from the table: always set
                self._cursor = change.id
                doc = _document(report)
                if change.status == DATA_READY and report.status == DATA_READY:
                    self._known[report.id] = doc
                    self._emit(ChangeKind.ADDED, report.id, doc)
                elif report.status != DATA_READY and report.id in self._known:
                    del self._known[report.id]
                    self._emit(ChangeKind.REMOVED, report.id, doc)
                # Otherwise the row is history the current state already supersedes (see the
                # module docstring): nothing to say.
            if len(rows) < _TAIL_BATCH:
                return

    def _emit(self, kind: ChangeKind, report_id: str, data: Mapping[str, Any]) -> None:
        if self._stopped.is_set():
            return
        try:
            self._on_event(ReportEvent(kind, report_id, data))
        except Exception as exc:
            # A failing consumer must not stop the watch; the next resync re-delivers ADDED.
            self._report(exc)

    def _report(self, error: BaseException) -> None:
        if self._on_error is None:
            logger.warning("local report watch: %s", error, exc_info=error)
            return
        try:
            self._on_error(error)
        except Exception:
            logger.exception("local report watch: on_error callback failed")

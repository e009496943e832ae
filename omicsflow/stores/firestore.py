"""The Firestore report store: the `reports` collection, watched with `on_snapshot`.

Two things the client library does not do for us, and why this module does them:

* **A watch that survives errors.** The library's watch either dies for good on an error
  it does not retry (without telling anyone: there is no error callback in Python), or
  retries UNAVAILABLE by reopening the stream in a tight loop with no backoff (a full CPU
  core for the whole outage). We make every stream error terminal for that subscription,
  report it through `on_error`, and subscribe again with exponential backoff. The first
  snapshot of a new subscription is compared with what was announced before, so a report
  that left "Data Ready" while we were disconnected still gets its REMOVED.
* **Writes that notice an outage in seconds.** Transactions' begin/commit/rollback are sent
  with the library's default policy (retry UNAVAILABLE for up to 60 s each). Every RPC here
  carries `write_timeout` as both its deadline and its retry budget.

Both rely on two private hooks of google-cloud-firestore (the watch's `_rpc` and the
transaction's `_begin/_commit/_rollback`); `tests/omicsflow/stores` fails loudly if an
upgrade moves them.

A MODIFIED change (a field edited on a report that stays "Data Ready") is not an event, as
the `ReportStore` contract says: it only refreshes the content remembered for REMOVED.
"""

from __future__ import annotations

import collections
import logging
import os
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import grpc
from google.api_core import exceptions as gexc
from google.api_core import retry as gretry
from google.cloud import firestore
from google.cloud.firestore_v1.base_query import FieldFilter
from google.cloud.firestore_v1.transaction import Transaction
from google.cloud.firestore_v1.watch import ChangeType

from omicsflow.errors import (
    ConfigError,
    OmicsflowError,
    ReportNotFoundError,
    StoreUnavailableError,
    StoreWriteError,
)
from omicsflow.stores.base import (
    DATA_READY,
    FAILED,
    ChangeKind,
    ReportEvent,
    ReportExistsError,
    new_report_id,
)

logger = logging.getLogger(__name__)

# Errors that mean "Firestore cannot be reached", as opposed to "this write was refused".
# RetryError is what a retry budget running out on UNAVAILABLE looks like.
_UNAVAILABLE = (gexc.ServiceUnavailable, gexc.DeadlineExceeded, gexc.RetryError)


def _map_error(exc: Exception, what: str) -> OmicsflowError:
    if isinstance(exc, _UNAVAILABLE):
        return StoreUnavailableError(f"firestore unavailable ({what}): {exc}")
    if isinstance(exc, gexc.NotFound):
        return ReportNotFoundError(f"firestore: {what}: document not found")
    return StoreWriteError(f"firestore: {what} failed: {exc}")


def _without_status(fields: Mapping[str, Any] | None) -> dict[str, Any]:
    # The status argument is authoritative; a "status" key in the fields must not override it.
    return {k: v for k, v in (fields or {}).items() if k != "status"}


class _BoundedTransaction(Transaction):
    """A transaction whose begin/commit/rollback RPCs carry our retry policy and deadline.

    Rollback is best effort and a no-op before begin: the library's `transactional` calls it
    on every error, and a rollback that fails (an outage) or refuses (begin never happened)
    would otherwise replace the error that matters with its own.
    """

    def __init__(self, client: firestore.Client, retry: gretry.Retry, timeout: float) -> None:
        super().__init__(client)
        self._retry = retry
        self._timeout = timeout

    def _begin(self, retry_id: bytes | None = None) -> None:
        if self.in_progress:
            raise ValueError("transaction already begun")
        response = self._client._firestore_api.begin_transaction(
            request={
                "database": self._client._database_string,
                "options": self._options_protobuf(retry_id),
            },
            metadata=self._client._rpc_metadata,
            retry=self._retry,
            timeout=self._timeout,
        )
        self._id = response.transaction

    def _commit(self) -> list[Any]:
        if not self.in_progress:
            raise ValueError("no transaction in progress")
        response = self._client._firestore_api.commit(
            request={
                "database": self._client._database_string,
                "writes": self._write_pbs,
                "transaction": self._id,
            },
            metadata=self._client._rpc_metadata,
            retry=self._retry,
            timeout=self._timeout,
        )
        self._clean_up()
        self.write_results = list(response.write_results)
        self.commit_time = response.commit_time
        return self.write_results

    def _rollback(self) -> None:
        if not self.in_progress:
            return
        try:
            self._client._firestore_api.rollback(
                request={"database": self._client._database_string, "transaction": self._id},
                metadata=self._client._rpc_metadata,
                retry=None,
                timeout=self._timeout,
            )
        except gexc.GoogleAPICallError:
            # Firestore expires an abandoned transaction by itself.
            logger.debug("firestore rollback failed", exc_info=True)
        finally:
            self._clean_up()


class FirestoreReportStore:
    """`ReportStore` on a Firestore collection.

    Without `client`, one is created for `project`; the library itself honours
    FIRESTORE_EMULATOR_HOST (and then needs no credentials). `write_timeout` bounds every
    read and write RPC; the resubscribe delays bound how fast a broken watch retries.
    """

    name = "firestore"

    def __init__(
        self,
        project: str,
        collection: str = "reports",
        client: firestore.Client | None = None,
        *,
        write_timeout: float = 5.0,
        resubscribe_initial_delay: float = 0.5,
        resubscribe_max_delay: float = 30.0,
    ) -> None:
        self.project = project
        self.collection = collection
        self._owns_client = client is None
        self._client = client if client is not None else firestore.Client(project=project)
        self._col = self._client.collection(collection)
        self.write_timeout = write_timeout
        self._resubscribe_initial_delay = resubscribe_initial_delay
        self._resubscribe_max_delay = resubscribe_max_delay
        # Retries only what a short blip looks like, within the same budget as one call.
        self._retry = gretry.Retry(
            predicate=gretry.if_exception_type(gexc.ServiceUnavailable),
            initial=0.1,
            maximum=1.0,
            multiplier=2.0,
            timeout=write_timeout,
        )
        self._watches: list[_FirestoreWatch] = []
        self._lock = threading.Lock()

    @classmethod
    def from_env(cls, collection: str = "reports", **kwargs: Any) -> FirestoreReportStore:
        """A store for the project named by GOOGLE_CLOUD_PROJECT."""
        project = os.environ.get("GOOGLE_CLOUD_PROJECT")
        if not project:
            raise ConfigError("GOOGLE_CLOUD_PROJECT is not set")
        return cls(project, collection, **kwargs)

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
        data = {**_without_status(fields), "service": service, "status": status}
        try:
            # create() carries an exists=false precondition: an existing id is refused by
            # Firestore itself, with no window for a concurrent creator.
            self._col.document(report_id).create(
                data, retry=self._retry, timeout=self.write_timeout
            )
        except gexc.Conflict as exc:  # ALREADY_EXISTS
            raise ReportExistsError(f"report {report_id!r} already exists") from exc
        except (gexc.GoogleAPICallError, gexc.RetryError) as exc:
            raise _map_error(exc, f"create {report_id}") from exc
        return report_id

    def get(self, report_id: str) -> Mapping[str, Any] | None:
        """The document, or None. Failures map as for writes (StoreUnavailableError when
        Firestore cannot be reached, StoreWriteError for anything else)."""
        try:
            snap = self._col.document(report_id).get(retry=self._retry, timeout=self.write_timeout)
        except (gexc.GoogleAPICallError, gexc.RetryError) as exc:
            raise _map_error(exc, f"get {report_id}") from exc
        return snap.to_dict() if snap.exists else None

    def write_failed(self, report_id: str, fields: Mapping[str, Any]) -> None:
        ref = self._col.document(report_id)
        update = {**_without_status(fields), "status": FAILED}

        @firestore.transactional
        def mark_failed(tx: Transaction) -> None:
            snap = next(iter(tx.get(ref, retry=self._retry, timeout=self.write_timeout)))
            if not snap.exists:
                raise ReportNotFoundError(f"report {report_id!r} does not exist")
            tx.update(ref, update)

        tx = _BoundedTransaction(self._client, self._retry, self.write_timeout)
        try:
            mark_failed(tx)
        except (gexc.GoogleAPICallError, gexc.RetryError) as exc:
            raise _map_error(exc, f"write_failed {report_id}") from exc
        except ValueError as exc:
            # What `transactional` raises once contention (ABORTED) has used up its attempts.
            raise StoreWriteError(f"firestore: write_failed {report_id}: {exc}") from exc

    def set_status(
        self, report_id: str, status: str, fields: Mapping[str, Any] | None = None
    ) -> None:
        try:
            # update() requires the document to exist: a missing one is NOT_FOUND.
            self._col.document(report_id).update(
                {**_without_status(fields), "status": status},
                retry=self._retry,
                timeout=self.write_timeout,
            )
        except (gexc.GoogleAPICallError, gexc.RetryError) as exc:
            raise _map_error(exc, f"set_status {report_id}") from exc

    # -- health ----------------------------------------------------------------------------

    def check_connectivity(self, timeout_seconds: float = 5.0) -> bool:
        # A one-document query: the cheapest read that proves the backend answers queries.
        # It runs on a daemon thread so the answer comes within the timeout even if the RPC
        # layer holds on longer (channel reconnects, name resolution).
        done = threading.Event()
        reachable: list[bool] = []
        no_retry = gretry.Retry(predicate=lambda _exc: False, timeout=timeout_seconds)

        def probe() -> None:
            try:
                list(self._col.limit(1).stream(retry=no_retry, timeout=timeout_seconds))
                reachable.append(True)
            except Exception:  # any failure means "not reachable"; the caller only needs a bool
                logger.debug("firestore connectivity probe failed", exc_info=True)
            finally:
                done.set()

        threading.Thread(target=probe, name="firestore-probe", daemon=True).start()
        done.wait(timeout_seconds)
        return bool(reachable)

    # -- watch -----------------------------------------------------------------------------

    def watch(
        self,
        on_event: Callable[[ReportEvent], None],
        on_error: Callable[[BaseException], None] | None = None,
    ) -> _FirestoreWatch:
        query = self._col.where(filter=FieldFilter("status", "==", DATA_READY))
        w = _FirestoreWatch(
            query,
            on_event,
            on_error,
            initial_delay=self._resubscribe_initial_delay,
            max_delay=self._resubscribe_max_delay,
        )
        with self._lock:
            self._watches.append(w)
        w.start()
        return w

    def close(self) -> None:
        with self._lock:
            watches, self._watches = self._watches, []
        for w in watches:
            w.stop()
        if self._owns_client:
            self._client.close()


@dataclass
class _Subscription:
    """One `on_snapshot` subscription's bookkeeping (a new one after every failure)."""

    error: BaseException | None = None
    snapshots: int = 0
    retired: bool = False
    healthy: threading.Event = field(default_factory=threading.Event)
    patched_rpc: object = None


class _HandledStreamErrors(logging.Filter):
    """Drops api_core's "caught unexpected exception" traceback for stream errors we handle.

    Once our `should_recover` says no, the library's consumer thread logs the raw gRPC error
    with a full traceback; the supervisor already reports it through `on_error`, so every
    outage would be logged twice, once as an alarming stack. Only the exact exception
    objects we recorded are dropped; other users of api_core's bidi streams are unaffected.
    """

    def __init__(self) -> None:
        super().__init__()
        # Bounded: a record that is never emitted (e.g. logged below the logger's level)
        # must not keep its exception alive forever.
        self._errors: collections.deque[BaseException] = collections.deque(maxlen=64)
        self._lock = threading.Lock()

    def handled(self, exc: BaseException) -> None:
        with self._lock:
            self._errors.append(exc)

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        if exc is None:
            return True
        with self._lock:
            return not any(e is exc for e in self._errors)


_handled_stream_errors = _HandledStreamErrors()
logging.getLogger("google.api_core.bidi").addFilter(_handled_stream_errors)

# How often the supervisor looks at the library watch; also the delay to notice it died.
_SUPERVISE_INTERVAL = 0.1


class _FirestoreWatch:
    """A supervisor thread that keeps one library watch alive (see the module docstring)."""

    def __init__(
        self,
        query: Any,
        on_event: Callable[[ReportEvent], None],
        on_error: Callable[[BaseException], None] | None,
        *,
        initial_delay: float,
        max_delay: float,
    ) -> None:
        self._query = query
        self._on_event = on_event
        self._on_error = on_error
        self._initial_delay = initial_delay
        self._max_delay = max_delay
        self._stopped = threading.Event()
        self._lock = threading.Lock()
        # Reports announced ADDED and not REMOVED since, with their last content.
        self._known: dict[str, Mapping[str, Any]] = {}
        self._thread = threading.Thread(
            target=self._supervise, name="firestore-report-watch", daemon=True
        )
        self.subscriptions = 0  # how many times we subscribed (1 + re-subscriptions)
        self._delivering = threading.local()  # set on the thread running our callbacks

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stopped.set()
        # Called from a callback, joining would wait for the supervisor, which waits for the
        # library's consumer thread, which is the caller: let the supervisor finish alone.
        if getattr(self._delivering, "active", False):
            return
        if self._thread.is_alive() and threading.current_thread() is not self._thread:
            self._thread.join()

    def _supervise(self) -> None:
        delay = self._initial_delay
        while not self._stopped.is_set():
            sub = _Subscription()
            try:
                gwatch = self._query.on_snapshot(
                    lambda docs, changes, _read_time, sub=sub: self._on_snapshot(sub, docs, changes)
                )
            except Exception as exc:
                self._report(_map_error(exc, "subscribe"), cause=exc)
                self._stopped.wait(delay)
                delay = min(delay * 2, self._max_delay)
                continue
            self.subscriptions += 1
            while not self._stopped.is_set() and gwatch.is_active:
                # The library replaces its stream on some server messages: patch every one.
                _take_over_recovery(gwatch, sub)
                self._stopped.wait(_SUPERVISE_INTERVAL)
            sub.retired = True
            gwatch.unsubscribe()
            if self._stopped.is_set():
                return
            # Whatever ended it, the watch is down until the next subscription: to the
            # listener that is unavailability; the library's error is kept as the cause.
            cause = sub.error
            if isinstance(cause, grpc.RpcError):
                cause = gexc.from_grpc_error(cause)  # "503 Socket closed", not a grpc repr
            self._report(
                StoreUnavailableError(f"firestore watch stream ended: {cause or 'closed'}"),
                cause=cause,
            )
            # A subscription that delivered snapshots was healthy: the outage (if any) is
            # new, so start the backoff over.
            delay = self._initial_delay if sub.healthy.is_set() else delay
            self._stopped.wait(delay)
            delay = min(delay * 2, self._max_delay)

    def _on_snapshot(self, sub: _Subscription, docs: list[Any], changes: list[Any]) -> None:
        if sub.retired or self._stopped.is_set():
            return
        events: list[ReportEvent] = []
        with self._lock:
            if sub.snapshots == 0:
                # The first snapshot of a subscription lists everything that matches now;
                # whatever we announced before and is not in it left while we were away.
                current = {doc.id for doc in docs}
                for report_id in [r for r in self._known if r not in current]:
                    events.append(
                        ReportEvent(ChangeKind.REMOVED, report_id, self._known.pop(report_id))
                    )
            sub.snapshots += 1
            for change in changes:
                report_id = change.document.id
                data = change.document.to_dict() or {}
                if change.type == ChangeType.ADDED:
                    self._known[report_id] = data
                    events.append(ReportEvent(ChangeKind.ADDED, report_id, data))
                elif change.type == ChangeType.REMOVED:
                    # The library hands the last content it saw for the document.
                    if self._known.pop(report_id, None) is not None:
                        events.append(ReportEvent(ChangeKind.REMOVED, report_id, data))
                else:  # MODIFIED: still "Data Ready", not an event (module docstring)
                    self._known[report_id] = data
        sub.healthy.set()
        self._delivering.active = True
        try:
            for event in events:
                if self._stopped.is_set():
                    return
                try:
                    self._on_event(event)
                except Exception as exc:
                    # A failing consumer must not kill the library's stream thread.
                    self._report(exc)
        finally:
            self._delivering.active = False

    def _report(self, error: BaseException, cause: BaseException | None = None) -> None:
        if cause is not None and error.__cause__ is None:
            error.__cause__ = cause
        if self._on_error is None:
            logger.warning("firestore report watch: %s", error)
            return
        try:
            self._on_error(error)
        except Exception:
            logger.exception("firestore report watch: on_error callback failed")


def _take_over_recovery(gwatch: Any, sub: _Subscription) -> None:
    """Make the library watch's stream end on its first error instead of retrying it.

    The stream is an `api_core.bidi.ResumableBidiRpc` that consults `_should_recover` on each
    error; ours records the error and says no, so the library closes the watch (`is_active`
    turns False) and the supervisor re-subscribes with backoff. We also replace its
    termination callback, which would re-raise the error on a bare thread (a traceback on
    stderr for every outage), with one that closes the watch quietly.
    """
    rpc = getattr(gwatch, "_rpc", None)
    if rpc is None or rpc is sub.patched_rpc:
        return
    if not (hasattr(rpc, "_should_recover") and hasattr(rpc, "_callbacks")):
        # Fall back to the library's own recovery rather than lose the watch; the contract
        # tests pin these attributes, so an upgrade that moves them fails CI first.
        logger.error("google-cloud-firestore watch internals changed; recovery not bounded")
        sub.patched_rpc = rpc
        return

    def should_recover(exc: Exception) -> bool:
        sub.error = exc
        _handled_stream_errors.handled(exc)
        return False

    def on_done(_future: Any) -> None:
        threading.Thread(target=gwatch.close, name="firestore-watch-close", daemon=True).start()

    rpc._should_recover = should_recover
    rpc._callbacks = [on_done]
    sub.patched_rpc = rpc

"""AWS HealthOmics runs through boto3 `omics`, within the account's API quota.

Idempotency: `StartRun.requestId` is the attempt's deterministic token, so a retried or
re-executed submit (a resumed flow re-runs from the top; a crash may fall between StartRun and
the ledger write) returns the run already started. Because AWS does not document how long it
remembers a requestId, submit also looks for a run with the same name first (ListRuns has the
10 TPS quota, StartRun only 0.1 TPS, so the extra lookup is the cheap call).

Identity: run ids are reused after a run is deleted, so a handle is keyed by the run's `uuid`
and every GetRun answer is checked against it.

Host prefix: the omics operations carry `endpoint.hostPrefix = "workflows-"` in the botocore
model. botocore prepends it to whatever host it talks to, including an explicit
`endpoint_url`: `http://127.0.0.1:PORT` becomes `http://workflows-127.0.0.1:PORT` (which does
not resolve), and a full VPC-endpoint host would get it twice. With `endpoint_url` set we
therefore pass `Config(inject_host_prefix=False)`; without it botocore's regional default
(`workflows-omics.<region>.amazonaws.com`) needs the prefix and keeps it.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from functools import partial
from typing import Any, Literal, TypeVar

import boto3
from botocore.config import Config
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectTimeoutError,
    EndpointConnectionError,
    ReadTimeoutError,
)
from botocore.exceptions import (
    ConnectionError as BotoConnectionError,
)
from pydantic import BaseModel, ConfigDict, Field

from classifiers.evidence import Evidence, Platform, TaskEvidence
from omicsflow.backends.base import PollResult, RemoteState, RunHandle, SubmitRequest
from omicsflow.backends.ratelimit import (
    ARRIVAL_MARGIN,
    BackendThrottledError,
    RetryPolicy,
    TokenBucket,
    call_with_retries,
    parse_retry_after,
)
from omicsflow.errors import BackendPermanentError, BackendTransientError, TransientError

log = logging.getLogger(__name__)

T = TypeVar("T")

BACKEND_NAME = "healthomics"

STATUS_MAP: Mapping[str, RemoteState] = {
    "PENDING": RemoteState.PENDING,
    "STARTING": RemoteState.PENDING,
    "RUNNING": RemoteState.RUNNING,
    "STOPPING": RemoteState.RUNNING,
    "COMPLETED": RemoteState.SUCCEEDED,
    "FAILED": RemoteState.FAILED,
    "CANCELLED": RemoteState.CANCELLED,
    "DELETED": RemoteState.CANCELLED,
}

# Error codes from the botocore model's `errors` list (and generic AWS ones) that are worth
# retrying unchanged. Everything else is a request the platform will reject again.
# The statuses a run passes through before it ends; ListRuns can filter on each.
IN_PROGRESS_STATUSES = ("PENDING", "STARTING", "RUNNING", "STOPPING")

TRANSIENT_CODES = frozenset(
    {
        "ThrottlingException",
        "Throttling",
        "TooManyRequestsException",
        "RequestLimitExceeded",
        "InternalServerException",
        "InternalFailure",
        "ServiceUnavailable",
        "ServiceUnavailableException",
        "RequestTimeoutException",
        "RequestTimeout",
    }
)
THROTTLING_CODES = frozenset(
    {"ThrottlingException", "Throttling", "TooManyRequestsException", "RequestLimitExceeded"}
)

TAG_REPORT = "omicsflow:report"
TAG_SERVICE = "omicsflow:service"
TAG_ATTEMPT = "omicsflow:attempt"
TAG_LEDGER_RUN = "omicsflow:ledger-run"


class HealthOmicsSettings(BaseModel):
    """Where and how one service's runs are started on HealthOmics."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    region: str
    endpoint_url: str | None = None
    role_arn: str
    output_uri: str
    workflow_id: str
    workflow_type: Literal["PRIVATE", "READY2RUN"] | None = None
    workflow_version_name: str | None = None
    # Rendered per report by the caller; the request's parameters override these defaults.
    parameters: dict[str, Any] = Field(default_factory=dict)
    storage_type: Literal["STATIC", "DYNAMIC"] | None = None
    storage_capacity: int | None = None
    run_group_id: str | None = None
    log_level: Literal["OFF", "FATAL", "ERROR", "ALL"] | None = None
    retention_mode: Literal["RETAIN", "REMOVE"] | None = None
    # GetRun/GetRunTask/ListRuns quota is 10 TPS per region; stay below it by default.
    max_tps: float = Field(default=8.0, gt=0)
    burst: int = Field(default=1, ge=1)
    # StartRun's own quota is 0.1 TPS per region (1 TPS in older docs).
    start_run_tps: float = Field(default=0.1, gt=0)
    # Threads used by poll_many; they share the limiter, so this only hides latency.
    # One thread: with several, a thread paused between taking its token and sending lets
    # arrivals bunch above max_tps (measured in bench/bench_remote.py).
    poll_concurrency: int = Field(default=1, ge=1)
    # From this many handles on, poll_many first lists the in-progress runs (100 per call)
    # and calls GetRun only for tracked runs no longer in progress: a pass over 1,000 runs
    # costs ~15 calls instead of 1,000, so ends are noticed within one poll interval.
    list_threshold: int = Field(default=50, ge=1)
    lookup_by_name: bool = True
    max_attempts: int = Field(default=5, ge=1)
    base_delay: float = Field(default=0.5, ge=0)
    max_delay: float = Field(default=20.0, ge=0)
    connect_timeout: float = 10.0
    read_timeout: float = 30.0

    def retry_policy(self) -> RetryPolicy:
        return RetryPolicy(
            max_attempts=self.max_attempts, base_delay=self.base_delay, max_delay=self.max_delay
        )

    def console_url(self, run_id: str) -> str:
        r = self.region
        return f"https://{r}.console.aws.amazon.com/omics/home?region={r}#/runs/{run_id}"


def make_omics_client(settings: HealthOmicsSettings, session: boto3.Session | None = None) -> Any:
    """A boto3 `omics` client whose retries are left to our limiter (see module docstring)."""
    config = Config(
        region_name=settings.region,
        # One attempt per SDK call: every retry must pass our token bucket.
        retries={"mode": "standard", "total_max_attempts": 1},
        connect_timeout=settings.connect_timeout,
        read_timeout=settings.read_timeout,
        inject_host_prefix=settings.endpoint_url is None,
    )
    session = session or boto3.Session()
    return session.client("omics", endpoint_url=settings.endpoint_url, config=config)


def map_boto_error(exc: Exception, operation: str) -> Exception:
    """Translate a botocore failure into omicsflow's transient/permanent errors."""
    if isinstance(exc, ClientError):
        err = exc.response.get("Error", {})
        code = str(err.get("Code", ""))
        message = str(err.get("Message", ""))
        meta = exc.response.get("ResponseMetadata", {})
        status = int(meta.get("HTTPStatusCode", 0) or 0)
        text = f"HealthOmics {operation} failed: {code or status}: {message}"
        if code in THROTTLING_CODES or status == 429:
            headers = meta.get("HTTPHeaders", {}) or {}
            return BackendThrottledError(text, parse_retry_after(headers.get("retry-after")))
        if code in TRANSIENT_CODES or status >= 500 or status == 408:
            return BackendTransientError(text)
        return BackendPermanentError(text)
    if isinstance(
        exc,
        EndpointConnectionError | ConnectTimeoutError | ReadTimeoutError | BotoConnectionError,
    ):
        return BackendTransientError(f"HealthOmics {operation}: cannot reach endpoint: {exc}")
    if isinstance(exc, BotoCoreError):
        # Parameter validation, missing credentials, unknown region: not fixed by waiting.
        return BackendPermanentError(f"HealthOmics {operation}: {exc}")
    return exc


def _error_code(exc: BaseException) -> str | None:
    cause = exc.__cause__
    if isinstance(cause, ClientError):
        return str(cause.response.get("Error", {}).get("Code", "")) or None
    return None


class RunVanishedError(BackendPermanentError):
    """The run no longer exists under this id (deleted, or the id now names another run)."""


class HealthOmicsBackend:
    """`RemoteBackend` for AWS HealthOmics. One instance per service; share it across threads."""

    name = BACKEND_NAME

    def __init__(
        self,
        settings: HealthOmicsSettings,
        client: Any | None = None,
        *,
        sleep: Callable[[float], None] | None = None,
    ) -> None:
        self.settings = settings
        self._client = client if client is not None else make_omics_client(settings)
        self._policy = settings.retry_policy()
        kwargs: dict[str, Any] = {} if sleep is None else {"sleep": sleep}
        self._sleep_kwargs = kwargs
        self.limiter = TokenBucket(
            settings.max_tps, settings.burst, window_margin=ARRIVAL_MARGIN, **kwargs
        )
        self._start_limiter = TokenBucket(settings.start_run_tps, 1, **kwargs)
        self._lock = threading.Lock()
        # The token is taken in botocore's last hook before the bytes go out, after
        # serialising and signing, so the spacing the service sees is the spacing we enforce.
        # Every HTTP attempt passes here, including any retry, whoever made the client.
        self._client.meta.events.register("before-send.omics", self._take_token)

    def _take_token(self, **_: Any) -> None:
        self.limiter.acquire()

    def __repr__(self) -> str:
        s = self.settings
        return f"HealthOmicsBackend(region={s.region!r}, workflow_id={s.workflow_id!r})"

    # -- plumbing -------------------------------------------------------------------------

    def _call(self, operation: str, fn: Callable[[], T], *, retry: bool = True) -> T:
        def once() -> T:
            try:
                return fn()
            except (ClientError, BotoCoreError) as exc:
                raise map_boto_error(exc, operation) from exc

        def on_retry(attempt: int, exc: TransientError, delay: float) -> None:
            log.warning(
                "HealthOmics %s attempt %d: %s; retrying in %.2fs", operation, attempt, exc, delay
            )

        policy = self._policy if retry else RetryPolicy(max_attempts=1)
        return call_with_retries(once, policy=policy, on_retry=on_retry, **self._sleep_kwargs)

    def _handle(self, run_id: str, uuid: str, arn: str | None = None) -> RunHandle:
        extra = {"arn": arn} if arn else {}
        return RunHandle(
            backend=self.name,
            run_id=run_id,
            key=uuid,
            console_url=self.settings.console_url(run_id),
            extra=extra,
        )

    def _get_run(self, handle: RunHandle) -> dict[str, Any]:
        """GetRun, verifying the answer is still the run we started (ids are reused)."""
        try:
            run: dict[str, Any] = self._call(
                "GetRun", lambda: self._client.get_run(id=handle.run_id)
            )
        except BackendPermanentError as exc:
            if _error_code(exc) == "ResourceNotFoundException":
                raise RunVanishedError(
                    f"HealthOmics run {handle.run_id} (uuid {handle.key}) no longer exists"
                ) from exc
            raise
        if run.get("uuid") and run["uuid"] != handle.key:
            raise RunVanishedError(
                f"HealthOmics run id {handle.run_id} now belongs to another run "
                f"(uuid {run['uuid']}, expected {handle.key}): ours was deleted"
            )
        return run

    # -- RemoteBackend --------------------------------------------------------------------

    def find_by_name(self, name: str) -> RunHandle | None:
        """The live run named `name` (newest first), or None."""
        token: str | None = None
        found: list[dict[str, Any]] = []
        while True:
            kwargs: dict[str, Any] = {"name": name, "maxResults": 100}
            if token:
                kwargs["startingToken"] = token
            page = self._call("ListRuns", partial(self._client.list_runs, **kwargs))
            found += [r for r in page.get("items", []) if r.get("name") == name]
            token = page.get("nextToken")
            if not token:
                break
        live = [r for r in found if r.get("status") != "DELETED"]
        if not live:
            return None
        # Several matches mean an earlier duplicate; the oldest is the one a ledger may hold.
        live.sort(key=lambda r: (r.get("creationTime") or datetime.min, str(r.get("id"))))
        chosen = live[0]
        run = self._call("GetRun", lambda: self._client.get_run(id=chosen["id"]))
        return self._handle(str(run["id"]), str(run["uuid"]), run.get("arn"))

    def submit(self, request: SubmitRequest) -> RunHandle:
        s = self.settings
        ident = request.identity
        token = ident.token
        if s.lookup_by_name:
            existing = self.find_by_name(token)
            if existing is not None:
                log.info("HealthOmics run %s already exists for %s", existing.run_id, token)
                return existing
        params: dict[str, Any] = {
            "workflowId": s.workflow_id,
            "roleArn": s.role_arn,
            "outputUri": s.output_uri,
            "name": token,
            # Deterministic: the same attempt always maps to the same run.
            "requestId": token,
            "parameters": {**s.parameters, **dict(request.parameters)},
            "tags": {
                TAG_REPORT: ident.report_id[:256],
                TAG_SERVICE: ident.service[:256],
                TAG_ATTEMPT: f"g{ident.generation}-a{ident.attempt}-s{ident.seq}",
                TAG_LEDGER_RUN: str(ident.run_id),
            },
        }
        optional = {
            "workflowType": s.workflow_type,
            "workflowVersionName": s.workflow_version_name,
            "storageType": s.storage_type,
            "storageCapacity": s.storage_capacity,
            "runGroupId": s.run_group_id,
            "logLevel": s.log_level,
            "retentionMode": s.retention_mode,
        }
        params.update({k: v for k, v in optional.items() if v is not None})
        self._start_limiter.acquire()
        # Safe to retry: requestId makes StartRun idempotent on the service side.
        resp = self._call("StartRun", lambda: self._client.start_run(**params))
        log.info("HealthOmics run %s (uuid %s) started for %s", resp["id"], resp["uuid"], token)
        return self._handle(str(resp["id"]), str(resp["uuid"]), resp.get("arn"))

    def poll(self, handle: RunHandle) -> PollResult:
        try:
            run = self._get_run(handle)
        except RunVanishedError as exc:
            return PollResult(handle, RemoteState.FAILED, "VANISHED", str(exc))
        raw = str(run.get("status", ""))
        state = STATUS_MAP.get(raw, RemoteState.UNKNOWN)
        message = run.get("failureReason") or run.get("statusMessage")
        return PollResult(handle, state, raw, message)

    def in_progress(self) -> dict[str, str]:
        """id → status of every run in a non-terminal status (scoped to the run group)."""
        listed: dict[str, str] = {}
        for status in IN_PROGRESS_STATUSES:
            token: str | None = None
            while True:
                kwargs: dict[str, Any] = {"status": status, "maxResults": 100}
                if self.settings.run_group_id:
                    kwargs["runGroupId"] = self.settings.run_group_id
                if token:
                    kwargs["startingToken"] = token
                page = self._call("ListRuns", partial(self._client.list_runs, **kwargs))
                for item in page.get("items", []):
                    listed[str(item.get("id"))] = str(item.get("status", status))
                token = page.get("nextToken")
                if not token:
                    break
        return listed

    def poll_many(self, handles: Sequence[RunHandle]) -> list[PollResult]:
        if len(handles) < self.settings.list_threshold:
            return self._poll_each(handles)
        try:
            listed = self.in_progress()
        except BackendTransientError as exc:
            return [PollResult(h, RemoteState.UNKNOWN, "", f"not polled: {exc}") for h in handles]
        results: dict[int, PollResult] = {}
        ended: list[tuple[int, RunHandle]] = []
        for i, h in enumerate(handles):
            raw = listed.get(h.run_id)
            if raw is None:
                ended.append((i, h))
            else:
                # Still in progress. (A reused id would be another run in progress; the
                # GetRun of a later pass, once it leaves these lists, checks the uuid.)
                results[i] = PollResult(h, STATUS_MAP.get(raw, RemoteState.UNKNOWN), raw, None)
        for (i, _), res in zip(ended, self._poll_each([h for _, h in ended]), strict=True):
            results[i] = res
        return [results[i] for i in range(len(handles))]

    def _poll_each(self, handles: Sequence[RunHandle]) -> list[PollResult]:
        """GetRun for each handle, results in input order, never faster than `max_tps`.

        A run that vanished is FAILED with a message. If a transient error survives its
        retries (sustained throttling, an outage), the remaining handles are not polled and
        come back UNKNOWN: hammering a throttled API only prolongs the throttling, and the
        poller's next cycle picks them up. Permanent errors (e.g. AccessDenied) propagate.
        """
        stop = threading.Event()
        stop_reason: list[str] = []

        def one(handle: RunHandle) -> PollResult:
            if stop.is_set():
                return PollResult(handle, RemoteState.UNKNOWN, "", f"not polled: {stop_reason[0]}")
            try:
                return self.poll(handle)
            except BackendTransientError as exc:
                with self._lock:
                    if not stop.is_set():
                        stop_reason.append(str(exc))
                        stop.set()
                return PollResult(handle, RemoteState.UNKNOWN, "", f"not polled: {exc}")

        if self.settings.poll_concurrency == 1 or len(handles) <= 1:
            return [one(h) for h in handles]
        with ThreadPoolExecutor(self.settings.poll_concurrency) as pool:
            return list(pool.map(one, handles))

    def cancel(self, handle: RunHandle) -> None:
        try:
            self._get_run(handle)
        except RunVanishedError:
            log.info("HealthOmics run %s already gone; nothing to cancel", handle.run_id)
            return
        try:
            self._call("CancelRun", lambda: self._client.cancel_run(id=handle.run_id))
        except BackendPermanentError as exc:
            # The run reached a terminal state first: the cancel's goal is met.
            if _error_code(exc) in {"ConflictException", "ResourceNotFoundException"}:
                log.info("HealthOmics run %s not cancellable: %s", handle.run_id, exc)
                return
            raise

    def collect_evidence(self, handle: RunHandle) -> Evidence:
        """GetRun's `failureReason`/`statusMessage` apart, plus each FAILED task's details."""
        try:
            run = self._get_run(handle)
        except RunVanishedError as exc:
            return Evidence(platform=Platform.HEALTHOMICS, status_message=str(exc))
        tasks: list[TaskEvidence] = []
        next_token: str | None = None
        while True:
            kwargs: dict[str, Any] = {"id": handle.run_id, "status": "FAILED", "maxResults": 100}
            if next_token:
                kwargs["startingToken"] = next_token
            page = self._call("ListRunTasks", partial(self._client.list_run_tasks, **kwargs))
            for item in page.get("items", []):
                task_id = item["taskId"]
                detail = self._call(
                    "GetRunTask",
                    partial(self._client.get_run_task, id=handle.run_id, taskId=task_id),
                )
                tasks.append(
                    TaskEvidence(
                        name=detail.get("name") or item.get("name"),
                        status=detail.get("status") or item.get("status"),
                        failure_reason=detail.get("failureReason"),
                        status_message=detail.get("statusMessage"),
                        log_location=detail.get("logStream"),
                    )
                )
            next_token = page.get("nextToken")
            if not next_token:
                break
        fields: dict[str, Any] = {
            "platform": Platform.HEALTHOMICS,
            "failure_reason": run.get("failureReason"),
            "status_message": run.get("statusMessage"),
            "tasks": tuple(tasks),
            "elapsed_seconds": _elapsed(run.get("startTime"), run.get("stopTime")),
        }
        # Evidence has no run-level log field yet; fill it as soon as the model grows one.
        log_location = _log_location_of(run)
        if log_location and "log_location" in Evidence.model_fields:
            fields["log_location"] = log_location
        return Evidence(**fields)

    def run_log_location(self, handle: RunHandle) -> str | None:
        """The run's CloudWatch log stream (run log, else engine log)."""
        return _log_location_of(self._get_run(handle))

    def list_outputs(self, handle: RunHandle) -> list[str]:
        run = self._get_run(handle)
        uri = run.get("runOutputUri")
        return [str(uri)] if uri else []


def _log_location_of(run: Mapping[str, Any]) -> str | None:
    loc = run.get("logLocation") or {}
    value = loc.get("runLogStream") or loc.get("engineLogStream")
    return str(value) if value else None


def _elapsed(start: Any, stop: Any) -> float | None:
    if isinstance(start, datetime) and isinstance(stop, datetime):
        return max(0.0, (stop - start).total_seconds())
    return None

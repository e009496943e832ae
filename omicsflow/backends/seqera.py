"""Seqera Platform (Nextflow Tower) runs through its REST API with httpx.

Idempotency: `POST /workflow/launch` has no idempotency key, so a retried launch starts a
second run. The run name is the attempt's deterministic token, and every launch is preceded
by a lookup of that name (`GET /workflow?search=`, filtered to exact `runName` matches
because `search` is a free-text filter). A launch that fails transiently is retried as the
whole lookup-then-launch step, so a launch whose answer was lost is found, not repeated.

Secrets: the bearer token lives only inside an `httpx.Auth` object whose repr is redacted;
error messages are built from status, URL path and the server's `message`, never headers.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Generator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar
from urllib.parse import urlsplit, urlunsplit

import httpx
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

BACKEND_NAME = "seqera"

STATUS_MAP: Mapping[str, RemoteState] = {
    "SUBMITTED": RemoteState.PENDING,
    "RUNNING": RemoteState.RUNNING,
    "SUCCEEDED": RemoteState.SUCCEEDED,
    "FAILED": RemoteState.FAILED,
    "CANCELLED": RemoteState.CANCELLED,
    "UNKNOWN": RemoteState.UNKNOWN,
}

DEFAULT_CONSOLE_TEMPLATE = (
    "{web_url}/orgs/{org_name}/workspaces/{workspace_name}/watch/{workflow_id}"
)
FALLBACK_CONSOLE_TEMPLATE = "{web_url}/watch/{workflow_id}"


class SeqeraSettings(BaseModel):
    """Where and how one service's runs are launched on Seqera Platform."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    api_url: str = "https://api.cloud.seqera.io"
    # The web UI base; derived from api_url when unset (api.cloud.seqera.io → cloud.seqera.io,
    # https://host/api → https://host).
    web_url: str | None = None
    workspace_id: int
    org_name: str | None = None
    workspace_name: str | None = None
    # Placeholders: web_url, org_name, workspace_name, workspace_id, workflow_id. When unset,
    # the org/workspace page is used if both names are known, else `<web_url>/watch/<id>`.
    console_url_template: str | None = None
    compute_env_id: str | None = None
    pipeline: str
    revision: str | None = None
    work_dir: str | None = None
    # Rendered per report by the caller; the request's parameters override these defaults.
    params: dict[str, Any] = Field(default_factory=dict)
    config_profiles: list[str] = Field(default_factory=list)
    label_ids: list[int] = Field(default_factory=list)
    # 20 req/s per access token; stay below it by default.
    max_rps: float = Field(default=15.0, gt=0)
    burst: int = Field(default=1, ge=1)
    poll_concurrency: int = Field(default=4, ge=1)
    max_attempts: int = Field(default=5, ge=1)
    base_delay: float = Field(default=0.5, ge=0)
    max_delay: float = Field(default=20.0, ge=0)
    max_retry_after: float = Field(default=60.0, ge=0)
    timeout: float = 30.0
    page_size: int = Field(default=100, ge=1, le=100)
    outdir_param: str = "outdir"

    def retry_policy(self) -> RetryPolicy:
        return RetryPolicy(
            max_attempts=self.max_attempts,
            base_delay=self.base_delay,
            max_delay=self.max_delay,
            max_retry_after=self.max_retry_after,
        )

    def resolved_web_url(self) -> str:
        if self.web_url:
            return self.web_url.rstrip("/")
        parts = urlsplit(self.api_url.rstrip("/"))
        host, path = parts.netloc, parts.path
        if path.endswith("/api"):
            path = path[: -len("/api")]
        elif host.startswith("api."):
            host = host[len("api.") :]
        return urlunsplit((parts.scheme, host, path, "", "")).rstrip("/")

    def console_url(self, workflow_id: str) -> str:
        template = self.console_url_template
        if template is None:
            named = self.org_name and self.workspace_name
            template = DEFAULT_CONSOLE_TEMPLATE if named else FALLBACK_CONSOLE_TEMPLATE
        return template.format(
            web_url=self.resolved_web_url(),
            org_name=self.org_name or "",
            workspace_name=self.workspace_name or "",
            workspace_id=self.workspace_id,
            workflow_id=workflow_id,
        )


class _BearerAuth(httpx.Auth):
    """Adds the token per request; its repr never shows it."""

    def __init__(self, token: str) -> None:
        self.__token = token

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.headers["Authorization"] = f"Bearer {self.__token}"
        yield request

    def __repr__(self) -> str:
        return "_BearerAuth(token=***)"


class RunVanishedError(BackendPermanentError):
    """The workflow no longer exists (deleted in the workspace)."""


class SeqeraBackend:
    """`RemoteBackend` for Seqera Platform. One instance per service/token; thread-safe."""

    name = BACKEND_NAME

    def __init__(
        self,
        settings: SeqeraSettings,
        token: str,
        transport: httpx.BaseTransport | None = None,
        *,
        sleep: Callable[[float], None] | None = None,
    ) -> None:
        if not token:
            raise BackendPermanentError("Seqera access token is empty")
        self.settings = settings
        self._client = httpx.Client(
            base_url=settings.api_url.rstrip("/"),
            auth=_BearerAuth(token),
            transport=transport,
            timeout=settings.timeout,
            headers={"Accept": "application/json", "Accept-Version": "1"},
        )
        self._policy = settings.retry_policy()
        self._sleep_kwargs: dict[str, Any] = {} if sleep is None else {"sleep": sleep}
        self.limiter = TokenBucket(
            settings.max_rps, settings.burst, window_margin=ARRIVAL_MARGIN, **self._sleep_kwargs
        )

    def __repr__(self) -> str:
        s = self.settings
        return f"SeqeraBackend(api_url={s.api_url!r}, workspace_id={s.workspace_id}, token=***)"

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> SeqeraBackend:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- plumbing -------------------------------------------------------------------------

    def _once(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        json_body: Any = None,
    ) -> httpx.Response:
        """One HTTP exchange, errors mapped; 2xx responses only."""
        query = {"workspaceId": self.settings.workspace_id, **(params or {})}
        what = f"Seqera {method} {path}"
        # Every exchange, first try or retry, lookup or launch, takes a token.
        self.limiter.acquire()
        try:
            resp = self._client.request(method, path, params=query, json=json_body)
        except httpx.TimeoutException as exc:
            raise BackendTransientError(f"{what}: timed out ({type(exc).__name__})") from exc
        except httpx.TransportError as exc:
            raise BackendTransientError(f"{what}: network error ({type(exc).__name__})") from exc
        if resp.is_success:
            return resp
        detail = _error_message(resp)
        text = f"{what} -> HTTP {resp.status_code}: {detail}"
        retry_after = parse_retry_after(resp.headers.get("Retry-After"))
        error: BackendPermanentError | BackendTransientError
        if resp.status_code == 429 or (
            retry_after is not None and (resp.status_code >= 500 or resp.status_code == 408)
        ):
            error = BackendThrottledError(text, retry_after)
        elif resp.status_code >= 500 or resp.status_code == 408:
            error = BackendTransientError(text)
        elif resp.status_code == 404:
            error = RunVanishedError(text)
        else:
            error = BackendPermanentError(text)
        try:
            resp.raise_for_status()
        except httpx.HTTPStatusError as exc:
            raise error from exc
        raise error  # pragma: no cover - raise_for_status always raises for non-2xx

    def _call(self, fn: Callable[[], T], what: str, *, retry: bool = True) -> T:
        def on_retry(attempt: int, exc: TransientError, delay: float) -> None:
            log.warning("%s attempt %d: %s; retrying in %.2fs", what, attempt, exc, delay)

        policy = self._policy if retry else RetryPolicy(max_attempts=1)
        # No limiter here: `_once` takes a token per exchange.
        return call_with_retries(fn, policy=policy, on_retry=on_retry, **self._sleep_kwargs)

    def _json(self, method: str, path: str, **kwargs: Any) -> Any:
        resp = self._call(lambda: self._once(method, path, **kwargs), f"Seqera {method} {path}")
        return resp.json() if resp.content else None

    def _handle(self, workflow_id: str) -> RunHandle:
        return RunHandle(
            backend=self.name,
            run_id=workflow_id,
            # Seqera workflow ids are random strings, never reused.
            key=workflow_id,
            console_url=self.settings.console_url(workflow_id),
            extra={"workspace_id": str(self.settings.workspace_id)},
        )

    # -- RemoteBackend --------------------------------------------------------------------

    def find_by_name(self, run_name: str, *, retry: bool = True) -> RunHandle | None:
        """The oldest non-deleted workflow whose runName is exactly `run_name`, or None."""
        matches: list[dict[str, Any]] = []
        offset = 0
        while True:
            params = {"search": run_name, "max": self.settings.page_size, "offset": offset}

            def page_call(p: dict[str, Any] = params) -> httpx.Response:
                return self._once("GET", "/workflow", params=p)

            resp = self._call(page_call, "Seqera GET /workflow") if retry else page_call()
            body = resp.json() or {}
            elements = body.get("workflows") or []
            for element in elements:
                wf = element.get("workflow") or {}
                if wf.get("runName") == run_name and not wf.get("deleted"):
                    matches.append(wf)
            offset += len(elements)
            if not elements or not body.get("hasMore", len(elements) >= self.settings.page_size):
                break
        if not matches:
            return None
        if len(matches) > 1:
            log.warning("Seqera: %d workflows named %s; using the oldest", len(matches), run_name)
        matches.sort(key=lambda wf: (str(wf.get("dateCreated") or ""), str(wf.get("id"))))
        return self._handle(str(matches[0]["id"]))

    def submit(self, request: SubmitRequest) -> RunHandle:
        s = self.settings
        token = request.identity.token
        launch: dict[str, Any] = {
            "pipeline": s.pipeline,
            "runName": token,
            "paramsText": json.dumps({**s.params, **dict(request.parameters)}, sort_keys=True),
        }
        optional: dict[str, Any] = {
            "computeEnvId": s.compute_env_id,
            "revision": s.revision,
            "workDir": s.work_dir,
            "configProfiles": s.config_profiles or None,
            "labelIds": s.label_ids or None,
        }
        launch.update({k: v for k, v in optional.items() if v is not None})

        def find_or_launch() -> RunHandle:
            # Single attempts inside: the retry loop wraps lookup and launch together.
            existing = self.find_by_name(token, retry=False)
            if existing is not None:
                log.info("Seqera workflow %s already exists for %s", existing.run_id, token)
                return existing
            resp = self._once("POST", "/workflow/launch", json_body={"launch": launch})
            workflow_id = str((resp.json() or {}).get("workflowId") or "")
            if not workflow_id:
                raise BackendPermanentError("Seqera launch answered without a workflowId")
            log.info("Seqera workflow %s launched for %s", workflow_id, token)
            return self._handle(workflow_id)

        return self._call(find_or_launch, "Seqera submit")

    def describe(self, handle: RunHandle) -> dict[str, Any]:
        body = self._json("GET", f"/workflow/{handle.run_id}")
        return dict(body or {})

    def poll(self, handle: RunHandle) -> PollResult:
        try:
            body = self.describe(handle)
        except RunVanishedError as exc:
            return PollResult(handle, RemoteState.FAILED, "VANISHED", str(exc))
        wf = body.get("workflow") or {}
        if wf.get("deleted"):
            return PollResult(
                handle,
                RemoteState.FAILED,
                "VANISHED",
                f"Seqera workflow {handle.run_id} was deleted",
            )
        raw = str(wf.get("status") or "")
        # Seqera may add enum values without notice: anything unknown is UNKNOWN, not a crash.
        state = STATUS_MAP.get(raw, RemoteState.UNKNOWN)
        return PollResult(handle, state, raw, wf.get("errorMessage"))

    def poll_many(self, handles: Sequence[RunHandle]) -> list[PollResult]:
        """Describe each handle, in input order, within `max_rps`.

        Same contract as HealthOmics: a transient error that outlives its retries stops the
        batch and the rest come back UNKNOWN ("not polled"); permanent errors propagate.
        """
        stop = threading.Event()
        reason: list[str] = []
        lock = threading.Lock()

        def one(handle: RunHandle) -> PollResult:
            if stop.is_set():
                return PollResult(handle, RemoteState.UNKNOWN, "", f"not polled: {reason[0]}")
            try:
                return self.poll(handle)
            except BackendTransientError as exc:
                with lock:
                    if not stop.is_set():
                        reason.append(str(exc))
                        stop.set()
                return PollResult(handle, RemoteState.UNKNOWN, "", f"not polled: {exc}")

        if self.settings.poll_concurrency == 1 or len(handles) <= 1:
            return [one(h) for h in handles]
        with ThreadPoolExecutor(self.settings.poll_concurrency) as pool:
            return list(pool.map(one, handles))

    def cancel(self, handle: RunHandle) -> None:
        try:
            body = self.describe(handle)
        except RunVanishedError:
            log.info("Seqera workflow %s already gone; nothing to cancel", handle.run_id)
            return
        status = str((body.get("workflow") or {}).get("status") or "")
        if STATUS_MAP.get(status) in {
            RemoteState.SUCCEEDED,
            RemoteState.FAILED,
            RemoteState.CANCELLED,
        }:
            log.info("Seqera workflow %s already %s; not cancelling", handle.run_id, status)
            return
        self._call(
            lambda: self._once("POST", f"/workflow/{handle.run_id}/cancel", json_body={}),
            "Seqera cancel",
        )

    def failed_tasks(self, handle: RunHandle) -> list[dict[str, Any]]:
        """Every FAILED task. The API has no status filter, so all pages are read."""
        failed: list[dict[str, Any]] = []
        offset = 0
        size = self.settings.page_size
        while True:
            body = (
                self._json(
                    "GET",
                    f"/workflow/{handle.run_id}/tasks",
                    params={"max": size, "offset": offset},
                )
                or {}
            )
            entries = body.get("tasks") or []
            for entry in entries:
                task = entry.get("task") or {}
                if task.get("status") == "FAILED":
                    failed.append(task)
            offset += len(entries)
            total = body.get("total")
            # Servers may cap `max` below what we asked, so a short page alone is not the end.
            if not entries or (offset >= int(total) if total is not None else len(entries) < size):
                break
        return failed

    def collect_evidence(self, handle: RunHandle) -> Evidence:
        """`errorMessage` and `errorReport` apart, plus every FAILED task."""
        try:
            body = self.describe(handle)
        except RunVanishedError as exc:
            return Evidence(platform=Platform.SEQERA, error_message=str(exc))
        wf = body.get("workflow") or {}
        tasks = tuple(
            TaskEvidence(
                name=t.get("name") or t.get("process"),
                status=t.get("status"),
                # The task's own error text, when the platform recorded one.
                failure_reason=t.get("errorMessage"),
                # Nextflow's errorStrategy outcome for the task (TERMINATE, RETRY, IGNORE...).
                status_message=t.get("errorAction"),
                exit_code=_int_or_none(t.get("exitStatus", t.get("exit"))),
                log_location=t.get("workdir"),
            )
            for t in self.failed_tasks(handle)
        )
        duration = wf.get("duration")
        return Evidence(
            platform=Platform.SEQERA,
            exit_code=_int_or_none(wf.get("exitStatus")),
            error_message=wf.get("errorMessage"),
            error_report=wf.get("errorReport"),
            tasks=tasks,
            # Seqera reports durations in milliseconds.
            elapsed_seconds=float(duration) / 1000.0 if isinstance(duration, int | float) else None,
        )

    def list_outputs(self, handle: RunHandle) -> list[str]:
        """The run's output directory: the launch's `outputDir`, else its outdir parameter.

        Nextflow has no single output location in the API; pipelines take it as a parameter
        (`outdir_param`, nf-core's `outdir`), which the launch record keeps in `paramsText`.
        """
        body = self._json("GET", f"/workflow/{handle.run_id}/launch") or {}
        launch = body.get("launch") or {}
        if launch.get("outputDir"):
            return [str(launch["outputDir"])]
        try:
            params = json.loads(launch.get("paramsText") or "{}")
        except ValueError:
            params = {}
        out = params.get(self.settings.outdir_param) if isinstance(params, dict) else None
        return [str(out)] if out else []


def _int_or_none(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    try:
        return int(value) if value is not None else None
    except (TypeError, ValueError):
        return None


def _error_message(resp: httpx.Response) -> str:
    """The server's own `message` (ErrorResponse), else a trimmed body; never request data."""
    try:
        body = resp.json()
    except ValueError:
        return resp.text[:200] or resp.reason_phrase
    if isinstance(body, dict) and body.get("message"):
        return str(body["message"])[:500]
    return resp.reason_phrase

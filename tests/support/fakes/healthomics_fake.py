"""A wire-level fake of the AWS HealthOmics runs API (rest-json, botocore model 2022-11-28).

The real boto3 `omics` client talks to it over HTTP with SigV4 signing (any credentials; the
fake checks that an `AWS4-HMAC-SHA256` Authorization header scoped to service `omics` is
present). Implemented operations: StartRun (POST /run, 201), ListRuns (GET /run), GetRun
(GET /run/{id}), DeleteRun (DELETE /run/{id}, 202), CancelRun (POST /run/{id}/cancel, 202),
ListRunTasks (GET /run/{id}/task), GetRunTask (GET /run/{id}/task/{taskId}).

Errors use the rest-json shape botocore parses: status from the model (Throttling 429,
Validation 400, NotFound 404, Conflict 409, InternalServer 500, ...), an `x-amzn-ErrorType`
header and a `{"__type", "message"}` body.

Point the client at it with `endpoint_url=fake.url` and `Config(inject_host_prefix=False)`:
otherwise botocore sends to `workflows-127.0.0.1`, see omicsflow.backends.healthomics.
"""

from __future__ import annotations

import itertools
import json
import re
import threading
import time
import uuid as uuidlib
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qs, urlsplit

from tests.support.fakes._http import CallLog, FakeServer, FaultQueue, now
from tests.support.fakes._script import Lifecycle, Step

ERROR_STATUS = {
    "ThrottlingException": 429,
    "InternalServerException": 500,
    "ServiceQuotaExceededException": 402,
    "RequestTimeoutException": 408,
    "ValidationException": 400,
    "ConflictException": 409,
    "ResourceNotFoundException": 404,
    "AccessDeniedException": 403,
    "UnrecognizedClientException": 403,
    "ServiceUnavailableException": 503,
}
TERMINAL = {"COMPLETED", "FAILED", "CANCELLED", "DELETED"}
ERROR_NAMESPACE = "http://internal.amazon.com/coral/com.amazonaws.omics/"


def _iso(dt: datetime | None) -> str | None:
    return None if dt is None else dt.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


@dataclass
class FakeTask:
    task_id: str
    name: str
    status: str = "FAILED"
    failure_reason: str | None = None
    status_message: str | None = None
    log_stream: str | None = None

    def as_item(self) -> dict[str, Any]:
        return {
            "taskId": self.task_id,
            "name": self.name,
            "status": self.status,
            "cpus": 2,
            "memory": 4,
        }

    def as_detail(self) -> dict[str, Any]:
        out = self.as_item()
        for key, value in (
            ("failureReason", self.failure_reason),
            ("statusMessage", self.status_message),
            ("logStream", self.log_stream),
        ):
            if value is not None:
                out[key] = value
        return out


@dataclass
class FakeRun:
    id: str
    uuid: str
    arn: str
    name: str | None
    request_id: str
    body: dict[str, Any]
    lifecycle: Lifecycle
    creation_time: datetime
    tasks: list[FakeTask] = field(default_factory=list)
    start_time: datetime | None = None
    stop_time: datetime | None = None
    deleted: bool = False
    details: dict[str, Any] = field(default_factory=dict)


class _Reply(Exception):
    """Raised inside handlers to answer with an error shape."""

    def __init__(self, code: str, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status or ERROR_STATUS.get(code, 400)


class HealthOmicsFake:
    """Stateful fake with a scripting API. Use as a context manager or call start()/stop()."""

    def __init__(self, region: str = "us-east-1", account: str = "123456789012") -> None:
        self.region = region
        self.account = account
        self.log = CallLog()
        self.faults = FaultQueue()
        self.latency = 0.0
        # Page sizes smaller than maxResults so clients must follow nextToken.
        self.list_page_size = 2
        self.task_page_size = 2
        self.reuse_ids = True
        self.auth_failures: list[str] = []
        self._lock = threading.RLock()
        self._runs: dict[str, FakeRun] = {}
        self._deleted: list[FakeRun] = []
        self._by_request: dict[str, str] = {}
        self._scripts: dict[str, tuple[list[Step], bool]] = {}
        self._free_ids: list[str] = []
        self._ids = itertools.count(1000001)
        self._task_ids = itertools.count(9000001)
        self._quota: tuple[float, set[str] | None] | None = None
        self._served: deque[tuple[float, str]] = deque()
        self._server = FakeServer(_Handler, self)

    # -- lifecycle of the server ----------------------------------------------------------

    @property
    def url(self) -> str:
        return self._server.url

    def start(self) -> HealthOmicsFake:
        self._server.start()
        return self

    def stop(self) -> None:
        self._server.stop()

    def __enter__(self) -> HealthOmicsFake:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- scripting API ---------------------------------------------------------------------

    def script(self, key: str, steps: Sequence[Step], *, auto: bool = True) -> None:
        """Lifecycle for the run named `key` or started with requestId `key`.

        Applies to an existing run at once, else to the run when it is started. A terminal
        step's dict may hold `failureReason`, `statusMessage`, `logLocation` and `tasks` (a list
        of dicts with name, status, failureReason, statusMessage, logStream).
        """
        with self._lock:
            run = self._find(key)
            if run is not None:
                run.lifecycle = Lifecycle(steps, auto=auto)
            else:
                self._scripts[key] = (list(steps), auto)

    def advance(self, key: str) -> str:
        """Move the run (id, name or requestId) to its next scripted step; returns the status."""
        with self._lock:
            run = self._require(key)
            status, details = run.lifecycle.advance()
            self._apply(run, status, details)
            return status

    def run(self, key: str) -> FakeRun:
        with self._lock:
            return self._require(key)

    @property
    def runs(self) -> list[FakeRun]:
        with self._lock:
            return list(self._runs.values())

    def throttle_next(
        self,
        count: int,
        operations: set[str] | None = None,
        *,
        status: int | None = None,
        retry_after: float | None = None,
    ) -> None:
        """The next `count` matching requests get ThrottlingException (429 per the model)."""
        self.faults.add(
            count, operations, code="ThrottlingException", status=status, retry_after=retry_after
        )

    def fail_next(
        self,
        count: int,
        operations: set[str] | None = None,
        *,
        code: str = "InternalServerException",
        status: int | None = None,
    ) -> None:
        """The next `count` matching requests fail with `code` (5xx by default)."""
        self.faults.add(count, operations, code=code, status=status, retry_after=None)

    def enforce_tps(self, tps: float, operations: set[str] | None = None) -> None:
        """Throttle like the service: more than `tps` calls in the trailing second → 429."""
        self._quota = (tps, operations)

    def delete_run(self, key: str) -> None:
        """Delete a run: it disappears and its id becomes free for the next StartRun."""
        with self._lock:
            run = self._require(key)
            run.deleted = True
            del self._runs[run.id]
            self._deleted.append(run)
            self._by_request.pop(run.request_id, None)
            self._free_ids.append(run.id)

    def forget_request_ids(self) -> None:
        """Simulate the service's idempotency window expiring."""
        with self._lock:
            self._by_request.clear()

    # -- internals -------------------------------------------------------------------------

    def _find(self, key: str) -> FakeRun | None:
        if key in self._runs:
            return self._runs[key]
        if key in self._by_request:
            return self._runs.get(self._by_request[key])
        for run in self._runs.values():
            if run.name == key or run.request_id == key:
                return run
        return None

    def _require(self, key: str) -> FakeRun:
        run = self._find(key)
        if run is None:
            raise KeyError(f"no run {key!r}")
        return run

    def _apply(self, run: FakeRun, status: str, details: dict[str, Any]) -> None:
        stamp = datetime.now(UTC)
        if status in {"RUNNING", "STOPPING"} or status in TERMINAL:
            run.start_time = run.start_time or stamp
        if status in TERMINAL:
            run.stop_time = run.stop_time or stamp
        if details.get("tasks") and not run.tasks:
            for spec in details["tasks"]:
                run.tasks.append(
                    FakeTask(
                        task_id=str(next(self._task_ids)),
                        name=spec["name"],
                        status=spec.get("status", "FAILED"),
                        failure_reason=spec.get("failureReason"),
                        status_message=spec.get("statusMessage"),
                        log_stream=spec.get("logStream"),
                    )
                )
        run.details = details

    def _check_quota(self, operation: str) -> bool:
        """True when the call exceeds the enforced TPS (and is not counted as served)."""
        if self._quota is None:
            return False
        tps, ops = self._quota
        if ops is not None and operation not in ops:
            return False
        t = now()
        with self._lock:
            while self._served and t - self._served[0][0] >= 1.0:
                self._served.popleft()
            if len(self._served) >= tps:
                return True
            self._served.append((t, operation))
            return False

    def _run_view(self, run: FakeRun, status: str) -> dict[str, Any]:
        body = run.body
        out: dict[str, Any] = {
            "arn": run.arn,
            "id": run.id,
            "uuid": run.uuid,
            "name": run.name,
            "status": status,
            "workflowId": body.get("workflowId"),
            "roleArn": body.get("roleArn"),
            "outputUri": body.get("outputUri"),
            "runOutputUri": f"{body.get('outputUri', '').rstrip('/')}/{run.id}",
            "parameters": body.get("parameters", {}),
            "tags": body.get("tags", {}),
            "creationTime": _iso(run.creation_time),
            "startTime": _iso(run.start_time),
            "stopTime": _iso(run.stop_time),
            "logLocation": run.details.get(
                "logLocation",
                {
                    "runLogStream": f"arn:aws:logs:{self.region}:{self.account}:log-group:"
                    f"/aws/omics/WorkflowLog:log-stream:run/{run.id}",
                    "engineLogStream": f"arn:aws:logs:{self.region}:{self.account}:log-group:"
                    f"/aws/omics/WorkflowLog:log-stream:run/{run.id}/engine",
                },
            ),
        }
        for key in ("storageType", "storageCapacity", "runGroupId", "logLevel", "workflowType"):
            if key in body:
                out[key] = body[key]
        for key in ("failureReason", "statusMessage"):
            if key in run.details:
                out[key] = run.details[key]
        return {k: v for k, v in out.items() if v is not None}

    # -- operations ------------------------------------------------------------------------

    def op_start_run(self, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        for required in ("roleArn", "outputUri", "requestId"):
            if not body.get(required):
                raise _Reply("ValidationException", f"{required} is required")
        request_id = body["requestId"]
        with self._lock:
            if request_id in self._by_request:
                run = self._runs[self._by_request[request_id]]
            else:
                run_id = (
                    self._free_ids.pop(0)
                    if self.reuse_ids and self._free_ids
                    else str(next(self._ids))
                )
                # A run nobody scripted stays PENDING until a test advances it.
                steps: list[Step] = [("PENDING", 1)]
                auto = False
                for key in (request_id, body.get("name") or ""):
                    if key in self._scripts:
                        steps, auto = self._scripts.pop(key)
                        break
                run = FakeRun(
                    id=run_id,
                    uuid=str(uuidlib.uuid4()),
                    arn=f"arn:aws:omics:{self.region}:{self.account}:run/{run_id}",
                    name=body.get("name"),
                    request_id=request_id,
                    body=body,
                    lifecycle=Lifecycle(steps, auto=auto),
                    creation_time=datetime.now(UTC),
                )
                self._runs[run_id] = run
                self._by_request[request_id] = run_id
            status, _ = run.lifecycle.current
        return 201, {
            "arn": run.arn,
            "id": run.id,
            "uuid": run.uuid,
            "status": status,
            "tags": body.get("tags", {}),
            "runOutputUri": f"{body['outputUri'].rstrip('/')}/{run.id}",
        }

    def op_get_run(self, run_id: str) -> tuple[int, dict[str, Any]]:
        with self._lock:
            run = self._runs.get(run_id)
            if run is None:
                raise _Reply("ResourceNotFoundException", f"Run {run_id} not found")
            status, details = run.lifecycle.observe()
            self._apply(run, status, details)
            return 200, self._run_view(run, status)

    def op_list_runs(self, query: dict[str, str]) -> tuple[int, dict[str, Any]]:
        with self._lock:
            runs = sorted(self._runs.values(), key=lambda r: int(r.id))
            if "name" in query:
                runs = [r for r in runs if r.name == query["name"]]
            if "status" in query:
                runs = [r for r in runs if r.lifecycle.current[0] == query["status"]]
            items = [
                {
                    "arn": r.arn,
                    "id": r.id,
                    "name": r.name,
                    "status": r.lifecycle.current[0],
                    "workflowId": r.body.get("workflowId"),
                    "creationTime": _iso(r.creation_time),
                }
                for r in runs
            ]
        return 200, _page(items, query, self.list_page_size)

    def op_cancel_run(self, run_id: str) -> tuple[int, dict[str, Any] | None]:
        with self._lock:
            run = self._runs.get(run_id)
            if run is None:
                raise _Reply("ResourceNotFoundException", f"Run {run_id} not found")
            status, _ = run.lifecycle.current
            if status in TERMINAL:
                raise _Reply("ConflictException", f"Run {run_id} is {status}; cannot cancel")
            run.lifecycle.force("CANCELLED")
            self._apply(run, "CANCELLED", {})
        return 202, None

    def op_delete_run(self, run_id: str) -> tuple[int, dict[str, Any] | None]:
        with self._lock:
            run = self._runs.get(run_id)
            if run is None:
                raise _Reply("ResourceNotFoundException", f"Run {run_id} not found")
            if run.lifecycle.current[0] not in TERMINAL:
                raise _Reply("ConflictException", "only terminal runs can be deleted")
            self.delete_run(run_id)
        return 202, None

    def op_list_run_tasks(self, run_id: str, query: dict[str, str]) -> tuple[int, dict[str, Any]]:
        with self._lock:
            run = self._runs.get(run_id)
            if run is None:
                raise _Reply("ResourceNotFoundException", f"Run {run_id} not found")
            tasks = [t for t in run.tasks if "status" not in query or t.status == query["status"]]
            items = [t.as_item() for t in tasks]
        return 200, _page(items, query, self.task_page_size)

    def op_get_run_task(self, run_id: str, task_id: str) -> tuple[int, dict[str, Any]]:
        with self._lock:
            run = self._runs.get(run_id)
            if run is None:
                raise _Reply("ResourceNotFoundException", f"Run {run_id} not found")
            for task in run.tasks:
                if task.task_id == task_id:
                    return 200, task.as_detail()
        raise _Reply("ResourceNotFoundException", f"Task {task_id} not found")


def _page(items: list[dict[str, Any]], query: dict[str, str], page_size: int) -> dict[str, Any]:
    start = int(query.get("startingToken", "0") or 0)
    size = min(int(query.get("maxResults", "100")), page_size)
    out: dict[str, Any] = {"items": items[start : start + size]}
    if start + size < len(items):
        out["nextToken"] = str(start + size)
    return out


_ROUTES: list[tuple[str, re.Pattern[str], str]] = [
    ("POST", re.compile(r"^/run$"), "StartRun"),
    ("GET", re.compile(r"^/run$"), "ListRuns"),
    ("GET", re.compile(r"^/run/(?P<id>[^/]+)$"), "GetRun"),
    ("DELETE", re.compile(r"^/run/(?P<id>[^/]+)$"), "DeleteRun"),
    ("POST", re.compile(r"^/run/(?P<id>[^/]+)/cancel$"), "CancelRun"),
    ("GET", re.compile(r"^/run/(?P<id>[^/]+)/task$"), "ListRunTasks"),
    ("GET", re.compile(r"^/run/(?P<id>[^/]+)/task/(?P<task>[^/]+)$"), "GetRunTask"),
]


class _Handler(BaseHTTPRequestHandler):
    fake: HealthOmicsFake
    protocol_version = "HTTP/1.1"
    # Headers and body go out in separate writes; with Nagle on, the client's delayed ACK
    # adds ~40 ms to every response.
    disable_nagle_algorithm = True

    def log_message(self, format: str, *args: Any) -> None:  # keep test output clean
        return

    def _dispatch(self, method: str) -> None:
        arrived = now()
        parts = urlsplit(self.path)
        query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        operation = "Unknown"
        match: re.Match[str] | None = None
        for verb, pattern, op in _ROUTES:
            m = pattern.match(parts.path)
            if m and verb == method:
                operation, match = op, m
                break
        fake = self.fake
        try:
            if match is None:
                raise _Reply("UnknownOperationException", f"{method} {parts.path}", 404)
            auth = self.headers.get("Authorization", "")
            scope = f"/{fake.region}/omics/aws4_request"
            if not auth.startswith("AWS4-HMAC-SHA256 ") or scope not in auth:
                fake.auth_failures.append(auth)
                raise _Reply("UnrecognizedClientException", "missing or invalid SigV4 signature")
            fault = fake.faults.take(operation)
            if fault is not None:
                raise _Fault(fault)
            if fake._check_quota(operation):
                raise _Reply("ThrottlingException", "Rate exceeded")
            if fake.latency:
                time.sleep(fake.latency)  # simulated service latency, not a test condition
            status, payload = self._operate(operation, match, query, raw)
        except _Fault as f:
            code = f.fault["code"]
            status = f.fault.get("status") or ERROR_STATUS.get(code, 500)
            # Recorded before answering, so a test that got the answer also sees the record.
            fake.log.record(operation, status, arrived)
            self._send_error(code, f"injected {code}", status, f.fault.get("retry_after"))
            return
        except _Reply as r:
            fake.log.record(operation, r.status, arrived)
            self._send_error(r.code, r.message, r.status, None)
            return
        fake.log.record(operation, status, arrived)
        self._send(status, payload)

    def _operate(
        self, operation: str, match: re.Match[str], query: dict[str, str], raw: bytes
    ) -> tuple[int, dict[str, Any] | None]:
        fake = self.fake
        run_id = match.groupdict().get("id", "")
        if operation == "StartRun":
            try:
                body = json.loads(raw or b"{}")
            except ValueError as exc:
                raise _Reply("ValidationException", "body is not JSON") from exc
            return fake.op_start_run(body)
        if operation == "ListRuns":
            return fake.op_list_runs(query)
        if operation == "GetRun":
            return fake.op_get_run(run_id)
        if operation == "DeleteRun":
            return fake.op_delete_run(run_id)
        if operation == "CancelRun":
            return fake.op_cancel_run(run_id)
        if operation == "ListRunTasks":
            return fake.op_list_run_tasks(run_id, query)
        return fake.op_get_run_task(run_id, match.group("task"))

    def _send(self, status: int, payload: dict[str, Any] | None) -> None:
        data = b"" if payload is None else json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("x-amzn-RequestId", str(uuidlib.uuid4()))
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _send_error(self, code: str, message: str, status: int, retry_after: float | None) -> None:
        data = json.dumps({"__type": code, "message": message}).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("x-amzn-RequestId", str(uuidlib.uuid4()))
        self.send_header("x-amzn-ErrorType", f"{code}:{ERROR_NAMESPACE}")
        if retry_after is not None:
            self.send_header("Retry-After", str(retry_after))
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def do_DELETE(self) -> None:
        self._dispatch("DELETE")


class _Fault(Exception):
    def __init__(self, fault: dict[str, Any]) -> None:
        super().__init__(fault["code"])
        self.fault = fault

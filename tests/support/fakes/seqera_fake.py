"""A wire-level fake of the Seqera Platform workflow API, checked against its OpenAPI spec.

Implemented: POST /workflow/launch, GET /workflow (search by name), GET /workflow/{id},
GET /workflow/{id}/tasks, GET /workflow/{id}/launch, POST /workflow/{id}/cancel.
Every request and every documented response is validated with openapi-core against
`/work/shared/reference/seqera-api.yml` (1.181.0); mismatches are collected in
`fake.spec_errors` and the `seqera_fake` fixture fails the test on any. The spec is parsed once
per process (~0.3 s with the C YAML loader).

Off-spec answers the fake produces on purpose are not validated: 401 (bad token; the spec
documents only 400/403), 404 for an unknown or deleted workflow, 429 and 5xx bursts, and
status values outside the WorkflowStatus enum that a test scripted to prove clients tolerate
new enum values (Seqera declares adding enum values non-breaking).
"""

from __future__ import annotations

import functools
import itertools
import json
import re
import secrets
import string
import threading
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import yaml
from openapi_core import Config, OpenAPI
from openapi_core.testing import MockRequest, MockResponse

from tests.support.fakes._http import CallLog, FakeServer, FaultQueue, now
from tests.support.fakes._script import Lifecycle, Step

SPEC_PATH = Path("/work/shared/reference/seqera-api.yml")
WORKFLOW_STATUSES = {"SUBMITTED", "RUNNING", "SUCCEEDED", "FAILED", "CANCELLED", "UNKNOWN"}
TERMINAL = {"SUCCEEDED", "FAILED", "CANCELLED"}


@functools.cache
def openapi() -> OpenAPI:
    with SPEC_PATH.open() as fh:
        loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
        spec = yaml.load(fh, Loader=loader)
    # The vendor spec is taken as given; validating the spec itself would cost ~1 s per run.
    return OpenAPI.from_dict(spec, config=Config(spec_validator_cls=None))


def _iso(dt: datetime | None) -> str | None:
    return None if dt is None else dt.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def _flatten(errors: Sequence[Any]) -> list[Any]:
    out: list[Any] = []
    for err in errors:
        context = list(getattr(err, "context", None) or [])
        out.append(err)
        out.extend(_flatten(context))
    return out


@dataclass
class FakeWorkflow:
    id: str
    run_name: str
    launch: dict[str, Any]
    lifecycle: Lifecycle
    created: datetime
    tasks: list[dict[str, Any]] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)
    started: datetime | None = None
    completed: datetime | None = None
    deleted: bool = False


class SeqeraFake:
    """Stateful Seqera fake with a scripting API; use as a context manager."""

    def __init__(
        self,
        token: str = "test-token-not-secret",
        workspace_id: int = 4242,
        *,
        validate: bool = True,
    ) -> None:
        self.token = token
        self.workspace_id = workspace_id
        self.validate = validate
        self.log = CallLog()
        self.faults = FaultQueue()
        self.spec_errors: list[str] = []
        self.auth_failures = 0
        self.task_page_size = 2
        self.list_page_size = 2
        self._lock = threading.RLock()
        self._workflows: dict[str, FakeWorkflow] = {}
        self._scripts: dict[str, tuple[list[Step], bool]] = {}
        self._tolerated_statuses: set[str] = set()
        self._task_ids = itertools.count(1)
        self._quota: float | None = None
        self._served: deque[float] = deque()
        self.seen_authorization: list[str] = []
        if validate:
            openapi()
        self._server = FakeServer(_Handler, self)

    @property
    def url(self) -> str:
        return self._server.url

    def start(self) -> SeqeraFake:
        self._server.start()
        return self

    def stop(self) -> None:
        self._server.stop()

    def __enter__(self) -> SeqeraFake:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- scripting API ---------------------------------------------------------------------

    def script(self, run_name: str, steps: Sequence[Step], *, auto: bool = True) -> None:
        """Lifecycle for the workflow named `run_name` (now, or when it is launched).

        A step's dict may hold `errorMessage`, `errorReport`, `exitStatus` and `tasks` (dicts
        with name, process, status, exitStatus, errorAction, errorMessage, workdir). Status
        values outside the spec's enum are allowed (and exempted from response validation).
        """
        for status, _ in steps:
            if status not in WORKFLOW_STATUSES:
                self._tolerated_statuses.add(status)
        with self._lock:
            wf = self._by_name(run_name)
            if wf is not None:
                wf.lifecycle = Lifecycle(steps, auto=auto)
            else:
                self._scripts[run_name] = (list(steps), auto)

    def advance(self, key: str) -> str:
        with self._lock:
            wf = self._require(key)
            status, details = wf.lifecycle.advance()
            self._apply(wf, status, details)
            return status

    def workflow(self, key: str) -> FakeWorkflow:
        with self._lock:
            return self._require(key)

    @property
    def workflows(self) -> list[FakeWorkflow]:
        with self._lock:
            return list(self._workflows.values())

    def throttle_next(
        self, count: int, operations: set[str] | None = None, *, retry_after: float | None = 1
    ) -> None:
        """The next `count` matching requests get 429 (with Retry-After unless None)."""
        self.faults.add(count, operations, status=429, retry_after=retry_after, after=False)

    def fail_next(
        self,
        count: int,
        operations: set[str] | None = None,
        *,
        status: int = 503,
        retry_after: float | None = None,
        after_processing: bool = False,
    ) -> None:
        """The next `count` matching requests fail with `status`.

        `after_processing=True` performs the request first and loses the answer: a launch
        that happened although the client saw a 502 (a proxy timeout, a dropped connection).
        """
        self.faults.add(
            count, operations, status=status, retry_after=retry_after, after=after_processing
        )

    def enforce_rps(self, rps: float) -> None:
        """Answer 429 once more than `rps` requests arrived in the trailing second."""
        self._quota = rps

    def delete_workflow(self, key: str) -> None:
        with self._lock:
            wf = self._require(key)
            del self._workflows[wf.id]

    # -- internals -------------------------------------------------------------------------

    def _by_name(self, name: str) -> FakeWorkflow | None:
        for wf in self._workflows.values():
            if wf.run_name == name:
                return wf
        return None

    def _require(self, key: str) -> FakeWorkflow:
        wf = self._workflows.get(key) or self._by_name(key)
        if wf is None:
            raise KeyError(f"no workflow {key!r}")
        return wf

    def _apply(self, wf: FakeWorkflow, status: str, details: dict[str, Any]) -> None:
        stamp = datetime.now(UTC)
        if status != "SUBMITTED":
            wf.started = wf.started or stamp
        if status in TERMINAL:
            wf.completed = wf.completed or stamp
        if details.get("tasks") and not wf.tasks:
            for spec in details["tasks"]:
                task_id = next(self._task_ids)
                task: dict[str, Any] = {
                    "id": task_id,
                    "taskId": task_id,
                    "hash": f"ab/{task_id:06x}",
                    "status": spec.get("status", "FAILED"),
                    "name": spec["name"],
                    "process": spec.get("process", spec["name"].split(" ")[0]),
                    "workdir": spec.get("workdir", f"s3://work/ab/{task_id:06x}"),
                    "attempt": spec.get("attempt", 1),
                }
                for key in ("exitStatus", "errorAction", "errorMessage", "exit"):
                    if key in spec:
                        task[key] = spec[key]
                wf.tasks.append(task)
        wf.details = details

    def _throttled_by_quota(self) -> bool:
        if self._quota is None:
            return False
        t = now()
        with self._lock:
            while self._served and t - self._served[0] >= 1.0:
                self._served.popleft()
            if len(self._served) >= self._quota:
                return True
            self._served.append(t)
            return False

    def _workflow_dto(self, wf: FakeWorkflow, status: str) -> dict[str, Any]:
        out: dict[str, Any] = {
            "id": wf.id,
            "runName": wf.run_name,
            "status": status,
            "submit": _iso(wf.created),
            "dateCreated": _iso(wf.created),
            "lastUpdated": _iso(datetime.now(UTC)),
            "start": _iso(wf.started),
            "complete": _iso(wf.completed),
            "projectName": wf.launch.get("pipeline", "").rstrip("/").split("/")[-1],
            "repository": wf.launch.get("pipeline"),
            "revision": wf.launch.get("revision"),
            "workDir": wf.launch.get("workDir", "s3://work"),
            "configProfiles": wf.launch.get("configProfiles", []),
            "deleted": wf.deleted,
            "userName": "omicsflow",
        }
        if wf.started and wf.completed:
            out["duration"] = int((wf.completed - wf.started).total_seconds() * 1000)
        if status in TERMINAL:
            out["success"] = status == "SUCCEEDED"
        for key in ("errorMessage", "errorReport", "exitStatus"):
            if key in wf.details:
                out[key] = wf.details[key]
        # No `params`: the spec types its values as objects (a generator quirk for
        # Map<String, Object>), so real string params would fail validation. Clients read the
        # launch's paramsText instead (GET /workflow/{id}/launch).
        return {k: v for k, v in out.items() if v is not None}

    # -- operations (return status, body) ----------------------------------------------------

    def op_launch(self, body: dict[str, Any]) -> tuple[int, Any]:
        launch = body.get("launch") or {}
        if not launch.get("pipeline"):
            return 400, {"message": "Missing pipeline repository"}
        alphabet = string.ascii_letters + string.digits
        workflow_id = "".join(secrets.choice(alphabet) for _ in range(14))
        name = launch.get("runName") or f"run-{workflow_id}"
        with self._lock:
            steps, auto = self._scripts.pop(name, ([("SUBMITTED", 1)], False))
            self._workflows[workflow_id] = FakeWorkflow(
                id=workflow_id,
                run_name=name,
                launch=launch,
                lifecycle=Lifecycle(steps, auto=auto),
                created=datetime.now(UTC),
            )
        return 200, {"workflowId": workflow_id}

    def op_list(self, query: dict[str, str]) -> tuple[int, Any]:
        search = query.get("search", "")
        with self._lock:
            # Like the platform, `search` is a loose text match (substring of name/project).
            found = [
                wf
                for wf in sorted(self._workflows.values(), key=lambda w: w.created)
                if not search or search in wf.run_name or search in wf.launch.get("pipeline", "")
            ]
            start = int(query.get("offset", "0") or 0)
            size = min(int(query.get("max", "50") or 50), self.list_page_size)
            page = found[start : start + size]
            elements = [
                {
                    "workflow": self._workflow_dto(wf, wf.lifecycle.current[0]),
                    "workspaceId": self.workspace_id,
                    "workspaceName": "genomics",
                    "orgId": 7,
                    "orgName": "lab",
                    "starred": False,
                }
                for wf in page
            ]
        return 200, {
            "workflows": elements,
            "totalSize": len(found),
            "hasMore": start + size < len(found),
        }

    def op_describe(self, workflow_id: str) -> tuple[int, Any]:
        with self._lock:
            wf = self._workflows.get(workflow_id)
            if wf is None:
                return 404, {"message": f"Workflow {workflow_id} not found"}
            status, details = wf.lifecycle.observe()
            self._apply(wf, status, details)
            return 200, {
                "workflow": self._workflow_dto(wf, status),
                "workspaceId": self.workspace_id,
                "workspaceName": "genomics",
                "orgId": 7,
                "orgName": "lab",
                "messages": [],
            }

    def op_tasks(self, workflow_id: str, query: dict[str, str]) -> tuple[int, Any]:
        with self._lock:
            wf = self._workflows.get(workflow_id)
            if wf is None:
                return 404, {"message": f"Workflow {workflow_id} not found"}
            start = int(query.get("offset", "0") or 0)
            size = min(int(query.get("max", "50") or 50), self.task_page_size)
            page = wf.tasks[start : start + size]
            return 200, {"tasks": [{"task": t} for t in page], "total": len(wf.tasks)}

    def op_describe_launch(self, workflow_id: str) -> tuple[int, Any]:
        with self._lock:
            wf = self._workflows.get(workflow_id)
            if wf is None:
                return 404, {"message": f"Workflow {workflow_id} not found"}
            keys = (
                "pipeline",
                "revision",
                "workDir",
                "paramsText",
                "configProfiles",
                "outputDir",
                "computeEnvId",
            )
            launch = {k: wf.launch[k] for k in keys if k in wf.launch and k != "computeEnvId"}
            launch["id"] = f"launch-{wf.id}"
            return 200, {"launch": launch}

    def op_cancel(self, workflow_id: str) -> tuple[int, Any]:
        with self._lock:
            wf = self._workflows.get(workflow_id)
            if wf is None:
                return 404, {"message": f"Workflow {workflow_id} not found"}
            status, _ = wf.lifecycle.current
            if status in TERMINAL:
                return 400, {"message": f"Workflow {workflow_id} is {status}"}
            wf.lifecycle.force("CANCELLED")
            self._apply(wf, "CANCELLED", {})
        return 204, None


_ROUTES: list[tuple[str, re.Pattern[str], str]] = [
    ("POST", re.compile(r"^/workflow/launch$"), "CreateWorkflowLaunch"),
    ("GET", re.compile(r"^/workflow$"), "ListWorkflows"),
    ("GET", re.compile(r"^/workflow/(?P<id>[^/]+)$"), "DescribeWorkflow"),
    ("GET", re.compile(r"^/workflow/(?P<id>[^/]+)/tasks$"), "ListWorkflowTasks"),
    ("GET", re.compile(r"^/workflow/(?P<id>[^/]+)/launch$"), "DescribeWorkflowLaunch"),
    ("POST", re.compile(r"^/workflow/(?P<id>[^/]+)/cancel$"), "CancelWorkflow"),
]


class _Handler(BaseHTTPRequestHandler):
    fake: SeqeraFake
    protocol_version = "HTTP/1.1"
    # Headers and body go out in separate writes; with Nagle on, the client's delayed ACK
    # adds ~40 ms to every response.
    disable_nagle_algorithm = True

    def log_message(self, format: str, *args: Any) -> None:
        return

    def _dispatch(self, method: str) -> None:
        arrived = now()
        fake = self.fake
        parts = urlsplit(self.path)
        query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        operation, match = "Unknown", None
        for verb, pattern, op in _ROUTES:
            m = pattern.match(parts.path)
            if m and verb == method:
                operation, match = op, m
                break
        auth = self.headers.get("Authorization", "")
        with fake._lock:
            fake.seen_authorization.append(auth)
        if match is None:
            self._answer(operation, arrived, 404, {"message": "not found"}, None)
            return
        if auth != f"Bearer {fake.token}":
            fake.auth_failures += 1
            self._answer(operation, arrived, 401, {"message": "Unauthorized"}, None)
            return
        mock_request = MockRequest(
            fake.url,
            method.lower(),
            parts.path,
            args=query,
            headers={k: v for k, v in self.headers.items()},
            data=raw or None,
            content_type=self.headers.get("Content-Type", "application/json"),
        )
        if fake.validate:
            result = openapi().unmarshal_request(mock_request)
            if result.errors:
                detail = "; ".join(_describe(e) for e in result.errors)
                fake.spec_errors.append(f"request {operation} {self.path}: {detail}")
                self._answer(
                    operation, arrived, 400, {"message": f"invalid request: {detail}"}, None
                )
                return
        if query.get("workspaceId") != str(fake.workspace_id):
            self._answer(operation, arrived, 403, None, None)
            return
        fault = fake.faults.take(operation)
        if fault is not None and not fault["after"]:
            self._answer(
                operation,
                arrived,
                fault["status"],
                {"message": f"injected HTTP {fault['status']}"},
                fault["retry_after"],
            )
            return
        if fake._throttled_by_quota():
            self._answer(operation, arrived, 429, {"message": "Too many requests"}, 1)
            return
        wid = match.groupdict().get("id", "")
        body = json.loads(raw) if raw else {}
        if operation == "CreateWorkflowLaunch":
            status, payload = fake.op_launch(body)
        elif operation == "ListWorkflows":
            status, payload = fake.op_list(query)
        elif operation == "DescribeWorkflow":
            status, payload = fake.op_describe(wid)
        elif operation == "ListWorkflowTasks":
            status, payload = fake.op_tasks(wid, query)
        elif operation == "DescribeWorkflowLaunch":
            status, payload = fake.op_describe_launch(wid)
        else:
            status, payload = fake.op_cancel(wid)
        if fault is not None:
            self._answer(
                operation,
                arrived,
                fault["status"],
                {"message": f"injected HTTP {fault['status']}"},
                fault["retry_after"],
            )
            return
        data = b"" if payload is None else json.dumps(payload).encode()
        if fake.validate and status in (200, 204, 400, 403):
            self._validate_response(mock_request, operation, status, data)
        self._answer(operation, arrived, status, payload, None, data=data)

    def _validate_response(
        self, request: MockRequest, operation: str, status: int, data: bytes
    ) -> None:
        fake = self.fake
        response = MockResponse(data, status_code=status, content_type="application/json")
        result = openapi().unmarshal_response(request, response)
        problems: list[str] = []
        for error in result.errors:
            schema_errors = list(getattr(error.__cause__, "schema_errors", None) or [])
            relevant = [
                e
                for e in _flatten(schema_errors)
                if not (e.validator == "enum" and e.instance in fake._tolerated_statuses)
                and not getattr(e, "context", None)
            ]
            if schema_errors and not relevant:
                continue
            problems.append(_describe(error))
        if problems:
            fake.spec_errors.append(f"response {operation} {status}: {'; '.join(problems)}")

    def _answer(
        self,
        operation: str,
        arrived: float,
        status: int,
        payload: Any,
        retry_after: float | None,
        data: bytes | None = None,
    ) -> None:
        if data is None:
            data = b"" if payload is None else json.dumps(payload).encode()
        # Recorded before answering, so a test that got the answer also sees the record.
        self.fake.log.record(operation, status, arrived)
        self.send_response(status)
        if data:
            self.send_header("Content-Type", "application/json")
        if retry_after is not None:
            self.send_header("Retry-After", f"{retry_after:g}")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if data:
            self.wfile.write(data)

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_POST(self) -> None:
        self._dispatch("POST")


def _describe(error: Exception) -> str:
    cause = error.__cause__
    schema_errors = getattr(cause, "schema_errors", None)
    if schema_errors:
        return f"{error!r}: " + ", ".join(e.message for e in _flatten(list(schema_errors)))
    return f"{error!r}: {cause or error}"

"""The HTTP plumbing both fakes share: a threaded server on port 0 and a request log."""

from __future__ import annotations

import threading
import time
from collections import Counter
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass(frozen=True)
class RecordedCall:
    """One request as the fake saw it: operation name, arrival time, answer status."""

    operation: str
    at: float
    status: int


class CallLog:
    """Thread-safe per-operation counters and arrival timestamps (time.monotonic)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._calls: list[RecordedCall] = []

    def record(self, operation: str, status: int, at: float) -> None:
        with self._lock:
            self._calls.append(RecordedCall(operation, at, status))

    @property
    def calls(self) -> list[RecordedCall]:
        with self._lock:
            return list(self._calls)

    def counts(self, *, served_only: bool = False) -> Counter[str]:
        return Counter(c.operation for c in self.calls if not served_only or c.status < 400)

    def count(self, operation: str, *, served_only: bool = False) -> int:
        return self.counts(served_only=served_only)[operation]

    def timestamps(self, operations: set[str] | None = None) -> list[float]:
        return sorted(c.at for c in self.calls if operations is None or c.operation in operations)

    def max_in_window(
        self, operations: set[str] | None = None, window: float = 1.0, slack: float = 0.0
    ) -> int:
        """Most calls that arrived within any half-open window of `window - slack` seconds.

        `slack` absorbs scheduling jitter between the client's send and our receive.
        """
        ts = self.timestamps(operations)
        best = 0
        j = 0
        for i in range(len(ts)):
            while ts[i] - ts[j] >= window - slack:
                j += 1
            best = max(best, i - j + 1)
        return best

    def reset(self) -> None:
        with self._lock:
            self._calls.clear()


class FakeServer:
    """Runs a `BaseHTTPRequestHandler` subclass on 127.0.0.1:0 in a daemon thread."""

    def __init__(self, handler: type[BaseHTTPRequestHandler], owner: Any) -> None:
        handler_cls = type(handler.__name__, (handler,), {"fake": owner})
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), handler_cls)
        self._server.daemon_threads = True
        # A short poll interval keeps shutdown() (and so each test's teardown) fast.
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


def now() -> float:
    return time.monotonic()


class FaultQueue:
    """Next-N-requests faults (throttling bursts, 5xx bursts), optionally per operation."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._faults: list[tuple[set[str] | None, int, dict[str, Any]]] = []

    def add(self, count: int, operations: set[str] | None, **fault: Any) -> None:
        with self._lock:
            self._faults.append((operations, count, fault))

    def take(self, operation: str) -> dict[str, Any] | None:
        with self._lock:
            for i, (ops, left, fault) in enumerate(self._faults):
                if ops is None or operation in ops:
                    if left <= 1:
                        del self._faults[i]
                    else:
                        self._faults[i] = (ops, left - 1, fault)
                    return fault
        return None

    def pending(self) -> int:
        with self._lock:
            return sum(left for _, left, _ in self._faults)

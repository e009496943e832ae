"""The push path: EventBridge (API destination) → POST /webhooks/healthomics → poll that run now.

Authentication is a shared secret in a header (an EventBridge connection of type API_KEY
sends it on every call), compared in constant time. The secret comes from the environment
(OMICSFLOW_WEBHOOK_SECRET) and is never logged.
"""

from __future__ import annotations

import hmac
import json
import logging
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from omicsflow.http.eventbridge import MAX_EVENT_BYTES, BadEvent, parse_run_status_change

log = logging.getLogger(__name__)

KEY_HEADER = "X-Omicsflow-Webhook-Key"
PATH = "/webhooks/healthomics"


def make_server(
    host: str, port: int, secret: str, on_run: Callable[[str], bool]
) -> ThreadingHTTPServer:
    """`on_run(run_id)` returns whether the run is one of ours (for the counters only)."""
    if not secret:
        raise ValueError("the webhook needs a non-empty shared secret")
    expected = secret.encode()

    class Handler(BaseHTTPRequestHandler):
        server_version = "omicsflow-webhook"

        def _reply(self, code: int, body: dict[str, object]) -> None:
            data = json.dumps(body).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_POST(self) -> None:
            if self.path != PATH:
                self._reply(404, {"error": f"unknown path; POST events to {PATH}"})
                return
            given = (self.headers.get(KEY_HEADER) or "").encode()
            if not hmac.compare_digest(given, expected):
                log.warning("webhook: rejected a request with a missing or wrong key")
                self._reply(401, {"error": f"missing or wrong {KEY_HEADER}"})
                return
            try:
                length = int(self.headers.get("Content-Length") or "0")
            except ValueError:
                self._reply(400, {"error": "bad Content-Length"})
                return
            if length > MAX_EVENT_BYTES:
                self._reply(413, {"error": f"event over {MAX_EVENT_BYTES} bytes"})
                return
            try:
                change = parse_run_status_change(self.rfile.read(length))
            except BadEvent as exc:
                self._reply(400, {"error": str(exc)})
                return
            known = on_run(change.run_id)
            self._reply(202, {"accepted": True, "tracked": known})

        def log_message(self, format: str, *args: object) -> None:
            log.debug("webhook: " + format, *args)

    return ThreadingHTTPServer((host, port), Handler)


class WebhookServer:
    def __init__(self, host: str, port: int, secret: str, on_run: Callable[[str], bool]) -> None:
        self.httpd = make_server(host, port, secret, on_run)
        self.port = self.httpd.server_address[1]
        self._thread = threading.Thread(
            target=self.httpd.serve_forever, name="webhook", daemon=True
        )

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

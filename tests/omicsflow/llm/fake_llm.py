"""A scriptable fake LLM server speaking Bedrock Converse, OpenAI and Anthropic at the wire.

A real `ThreadingHTTPServer` on 127.0.0.1, port 0. Each test scripts the replies in order;
every request is recorded (path, headers, JSON body) so tests can check what was sent.
"""

from __future__ import annotations

import json
import threading
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import unquote

from pydantic import SecretStr

from classifiers.evidence import Platform
from omicsflow.llm.config import LLMConfig, ProviderName


@dataclass
class Reply:
    status: int = 200
    body: Any = None  # dict/list → JSON; str/bytes → sent as is
    headers: dict[str, str] = field(default_factory=dict)
    hold: threading.Event | None = None  # answer only once this is set (timeouts)
    drop: bool = False  # close the connection without answering (network error)


@dataclass
class Recorded:
    method: str
    path: str
    headers: dict[str, str]
    body: Any


class FakeLLMServer:
    def __init__(self) -> None:
        self._replies: deque[Reply] = deque()
        self._lock = threading.Lock()
        self.requests: list[Recorded] = []
        self._holds: list[threading.Event] = []
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._httpd.daemon_threads = True
        # A short poll interval keeps shutdown() (called at every teardown) fast.
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )

    @property
    def url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> FakeLLMServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        for hold in self._holds:  # release any handler still waiting, so shutdown is prompt
            hold.set()
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)

    def script(self, *replies: Reply) -> None:
        with self._lock:
            for reply in replies:
                if reply.hold is not None:
                    self._holds.append(reply.hold)
                self._replies.append(reply)

    def _next(self, recorded: Recorded) -> Reply:
        with self._lock:
            self.requests.append(recorded)
            if self._replies:
                return self._replies.popleft()
        return Reply(status=599, body={"error": {"type": "unscripted_request"}})

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:  # keep test output quiet
                pass

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length)
                try:
                    body: Any = json.loads(raw) if raw else None
                except ValueError:
                    body = raw
                reply = server._next(
                    Recorded("POST", unquote(self.path), dict(self.headers.items()), body)
                )
                if reply.hold is not None:
                    reply.hold.wait(timeout=10)
                if reply.drop:
                    self.close_connection = True
                    return
                if isinstance(reply.body, dict | list):
                    payload = json.dumps(reply.body).encode()
                elif isinstance(reply.body, str):
                    payload = reply.body.encode()
                else:
                    payload = reply.body or b""
                try:
                    self.send_response(reply.status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(payload)))
                    for k, v in reply.headers.items():
                        self.send_header(k, v)
                    self.end_headers()
                    self.wfile.write(payload)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (timeout test): nothing to answer

        return Handler


# A valid answer a model would give for the OOM evidence used across the tests.
LLM_OOM_ANSWER = (
    '{"owner": "bioinformatician", "category": "out_of_memory", '
    '"summary": "Task ALIGN (sample_7) was killed with exit 137 (out of memory).", '
    '"action": "Raise the memory of process ALIGN and rerun."}'
)


# -- the three wire formats -------------------------------------------------------------------


class Wire:
    """How one provider's requests and replies look; tests are parametrized over these."""

    provider: ProviderName
    model_id: str
    api_key: str | None

    def config(self, server: FakeLLMServer, **overrides: Any) -> LLMConfig:
        raise NotImplementedError

    def ok(self, text: str) -> Reply:
        raise NotImplementedError

    throttle_code = "rate_limit_exceeded"
    server_error_code = "server_error"

    def auth_failure(self) -> Reply:
        raise NotImplementedError

    def throttled(self) -> Reply:
        return self.error(429, self.throttle_code)

    def server_error(self) -> Reply:
        return self.error(500, self.server_error_code)

    def error(self, status: int, code: str) -> Reply:
        raise NotImplementedError

    def prompt_of(self, request: Recorded) -> tuple[str, str]:
        """(system, user) as the provider received them."""
        raise NotImplementedError

    def expected_path(self) -> str:
        raise NotImplementedError

    def _base(self, server: FakeLLMServer, overrides: dict[str, Any]) -> dict[str, Any]:
        # Small timeouts and near-zero backoff keep every scenario well under a second or two.
        base: dict[str, Any] = {
            "integration": Platform.SEQERA,
            "provider": self.provider,
            "model_id": self.model_id,
            "timeout_seconds": 2.0,
            "connect_timeout_seconds": 2.0,
            "max_retries": 2,
            "retry_backoff_seconds": 0.01,
        }
        if self.api_key is not None:
            base["api_key"] = SecretStr(self.api_key)
        base.update(overrides)
        return base

    def __repr__(self) -> str:
        return self.provider.value


class OpenAIWire(Wire):
    provider = ProviderName.OPENAI
    model_id = "gpt-test-mini"
    api_key = "sk-test-OPENAI-7f3c9e1d2b4a"

    def config(self, server: FakeLLMServer, **overrides: Any) -> LLMConfig:
        return LLMConfig(**self._base(server, {"base_url": server.url + "/v1", **overrides}))

    def ok(self, text: str) -> Reply:
        return Reply(
            body={
                "id": "chatcmpl-1",
                "object": "chat.completion",
                "model": self.model_id,
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": text},
                        "finish_reason": "stop",
                    }
                ],
                "usage": {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15},
            }
        )

    def auth_failure(self) -> Reply:
        # OpenAI really echoes a masked key in this message: it must never reach our errors.
        return Reply(
            status=401,
            body={
                "error": {
                    "message": f"Incorrect API key provided: {self.api_key}.",
                    "type": "invalid_request_error",
                    "code": "invalid_api_key",
                }
            },
        )

    def error(self, status: int, code: str) -> Reply:
        return Reply(status=status, body={"error": {"message": "nope", "type": code, "code": code}})

    def prompt_of(self, request: Recorded) -> tuple[str, str]:
        messages = request.body["messages"]
        return messages[0]["content"], messages[1]["content"]

    def expected_path(self) -> str:
        return "/v1/chat/completions"


class AnthropicWire(Wire):
    provider = ProviderName.ANTHROPIC
    model_id = "claude-test-haiku"
    api_key = "sk-ant-test-ANTHROPIC-5e8d1a"
    throttle_code = "rate_limit_error"
    server_error_code = "api_error"

    def config(self, server: FakeLLMServer, **overrides: Any) -> LLMConfig:
        return LLMConfig(**self._base(server, {"base_url": server.url, **overrides}))

    def ok(self, text: str) -> Reply:
        return Reply(
            body={
                "id": "msg_1",
                "type": "message",
                "role": "assistant",
                "model": self.model_id,
                "content": [{"type": "text", "text": text}],
                "stop_reason": "end_turn",
                "usage": {"input_tokens": 10, "output_tokens": 5},
            }
        )

    def auth_failure(self) -> Reply:
        return Reply(
            status=401,
            body={
                "type": "error",
                "error": {
                    "type": "authentication_error",
                    "message": f"invalid x-api-key {self.api_key}",
                },
            },
        )

    def error(self, status: int, code: str) -> Reply:
        return Reply(status=status, body={"type": "error", "error": {"type": code, "message": "x"}})

    def prompt_of(self, request: Recorded) -> tuple[str, str]:
        return request.body["system"], request.body["messages"][0]["content"]

    def expected_path(self) -> str:
        return "/v1/messages"


class BedrockWire(Wire):
    provider = ProviderName.BEDROCK
    model_id = "anthropic.claude-test-v1:0"
    api_key = None
    throttle_code = "ThrottlingException"
    server_error_code = "InternalServerException"
    # Dummy IAM credentials (set in the environment by the `aws_env` fixture); botocore signs
    # every request with them for real.
    access_key_id = "AKIDTESTBEDROCK"
    secret_access_key = "bedrock-test-SECRET-4b1e9f"

    def config(self, server: FakeLLMServer, **overrides: Any) -> LLMConfig:
        return LLMConfig(
            **self._base(server, {"endpoint_url": server.url, "region": "us-east-1", **overrides})
        )

    def ok(self, text: str) -> Reply:
        return Reply(
            body={
                "output": {"message": {"role": "assistant", "content": [{"text": text}]}},
                "stopReason": "end_turn",
                "usage": {"inputTokens": 10, "outputTokens": 5, "totalTokens": 15},
                "metrics": {"latencyMs": 12},
            }
        )

    def auth_failure(self) -> Reply:
        return self.error(403, "AccessDeniedException")

    def error(self, status: int, code: str) -> Reply:
        # restJson errors: botocore reads the code from this header.
        return Reply(
            status=status,
            body={"message": f"{code} from fake"},
            headers={"x-amzn-ErrorType": f"{code}:http://internal.amazon.com/coral/"},
        )

    def prompt_of(self, request: Recorded) -> tuple[str, str]:
        return request.body["system"][0]["text"], request.body["messages"][0]["content"][0]["text"]

    def expected_path(self) -> str:
        return f"/model/{self.model_id}/converse"


WIRES: tuple[Wire, ...] = (BedrockWire(), OpenAIWire(), AnthropicWire())

"""Runs the Node Firestore emulator (`@firestore-emulator/server`) as a subprocess for tests.

The emulator keeps its data in memory, so `stop()` + `start()` is both an outage and a wipe:
after a restart the collection is empty. It binds the same port again so clients configured
with FIRESTORE_EMULATOR_HOST reconnect on their own, exactly like after a real outage.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from pathlib import Path
from types import TracebackType

from google.api_core import exceptions as gexc
from google.auth.credentials import AnonymousCredentials
from google.cloud import firestore

REPO_ROOT = Path(__file__).resolve().parents[2]
INSTALL_SCRIPT = REPO_ROOT / "scripts" / "install_firestore_emulator.sh"
DEFAULT_PREFIX = REPO_ROOT / ".tools" / "firestore-emulator"

# The package ships a library, not a CLI. Handler exceptions for RPCs it does not implement
# (GetDocument, Write, ...) would otherwise crash the whole emulator mid-test; logging them
# lets the one call fail by deadline while the rest of the suite keeps its server.
_LAUNCHER = """
const [modulePath, port] = process.argv.slice(-2);
const { FirestoreServer } = require(modulePath);
const server = new FirestoreServer();
process.on("uncaughtException", (err) => console.error("emulator error:", err));
for (const sig of ["SIGTERM", "SIGINT"]) {
  process.on(sig, () => { server.stop(); process.exit(0); });
}
server.start(Number(port)).then(
  () => console.log(`firestore emulator listening on ${port}`),
  (err) => { console.error(err); process.exit(1); },
);
"""


def free_port() -> int:
    """A free ephemeral port: the kernel picks it when binding port 0."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def ensure_installed(prefix: Path = DEFAULT_PREFIX) -> Path:
    """Path of the emulator's module, running the install script when it is missing."""
    module = prefix / "node_modules" / "@firestore-emulator" / "server"
    if not (module / "package.json").exists():
        env = {**os.environ, "FIRESTORE_EMULATOR_PREFIX": str(prefix)}
        subprocess.run(["bash", str(INSTALL_SCRIPT)], check=True, env=env)
    return module


class FirestoreEmulator:
    """One emulator process on a fixed-for-its-lifetime free port.

    `host` is the value for FIRESTORE_EMULATOR_HOST. `start()` waits until a real query
    succeeds; `stop()` kills the process group and waits until the port refuses connections.
    """

    def __init__(
        self,
        project: str = "omicsflow-test",
        port: int | None = None,
        prefix: Path = DEFAULT_PREFIX,
        log_path: Path | None = None,
    ) -> None:
        self.project = project
        self.port = port or free_port()
        self.host = f"127.0.0.1:{self.port}"
        self._module = ensure_installed(prefix)
        self._log_path = log_path
        self._proc: subprocess.Popen[bytes] | None = None

    def freeze(self) -> None:
        """SIGSTOP: the emulator stops answering but keeps its data (an unresponsive service)."""
        assert self._proc is not None
        os.killpg(self._proc.pid, signal.SIGSTOP)

    def thaw(self) -> None:
        assert self._proc is not None
        os.killpg(self._proc.pid, signal.SIGCONT)

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def start(self, timeout: float = 30.0) -> None:
        if self.running:
            return
        log = open(self._log_path, "ab") if self._log_path else subprocess.DEVNULL  # noqa: SIM115
        try:
            self._proc = subprocess.Popen(
                ["node", "-e", _LAUNCHER, str(self._module), str(self.port)],
                stdout=log,
                stderr=log,
                # Own process group: teardown kills node and anything it spawned, and a
                # Ctrl-C in the terminal does not race our own shutdown.
                start_new_session=True,
            )
        finally:
            if log is not subprocess.DEVNULL:
                log.close()  # type: ignore[union-attr]
        self._wait_ready(timeout)

    def _wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        client = self.client()
        try:
            last: Exception | None = None
            while time.monotonic() < deadline:
                if self._proc is not None and self._proc.poll() is not None:
                    raise RuntimeError(f"firestore emulator exited with {self._proc.returncode}")
                try:
                    list(client.collection("_ready").limit(1).stream(timeout=1.0))
                    return
                except (gexc.GoogleAPICallError, gexc.RetryError) as exc:
                    last = exc
                    time.sleep(0.05)  # poll interval only; the condition is the query above
            raise TimeoutError(f"firestore emulator not ready on {self.host}: {last}")
        finally:
            client.close()

    def client(self) -> firestore.Client:
        """A client bound to this emulator regardless of the process environment."""
        # The client only switches to the emulator through the env var; set it for the
        # constructor (it reads it once) without leaking into the caller's environment.
        old = os.environ.get("FIRESTORE_EMULATOR_HOST")
        os.environ["FIRESTORE_EMULATOR_HOST"] = self.host
        try:
            return firestore.Client(project=self.project, credentials=AnonymousCredentials())
        finally:
            if old is None:
                os.environ.pop("FIRESTORE_EMULATOR_HOST", None)
            else:
                os.environ["FIRESTORE_EMULATOR_HOST"] = old

    def stop(self, timeout: float = 10.0) -> None:
        proc, self._proc = self._proc, None
        if proc is None:
            return
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):  # it exited by itself meanwhile
                os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=timeout)
        self._wait_port_closed(timeout)

    def _wait_port_closed(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
                if sock.connect_ex(("127.0.0.1", self.port)) != 0:
                    return
            time.sleep(0.02)
        raise TimeoutError(f"port {self.port} still accepts connections after stop")

    def __enter__(self) -> FirestoreEmulator:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

"""A real Prefect server for tests and benchmarks: the embedded server `omicsflow serve`
starts, on a free port, in a session of its own, without the UI (faster start)."""

from __future__ import annotations

from pathlib import Path

from deployments.prefect_server import EmbeddedPrefectServer
from tests.support.firestore_emulator import free_port


class PrefectServer(EmbeddedPrefectServer):
    new_session = True

    def __init__(self, home: Path) -> None:
        super().__init__(home, free_port())

    def env(self) -> dict[str, str]:
        env = super().env()
        env["PREFECT_UI_ENABLED"] = "false"
        return env

    def start(self, timeout: float = 120.0) -> None:
        super().start(timeout)

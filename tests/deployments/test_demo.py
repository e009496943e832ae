"""The README's first command: `omicsflow serve --demo` on the embedded Prefect server."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.support.firestore_emulator import free_port
from tests.support.serve_process import REPO_ROOT, wait_for

pytestmark = pytest.mark.integration


def _cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "omicsflow.cli", *args],
        env=env,
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )


def _port_open(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


def test_demo_runs_a_report_to_completed_within_30s(tmp_path: Path) -> None:
    port = free_port()
    home = Path("/var/tmp/omicsflow-tests") / f"demo-{port}"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "OMICSFLOW_"))}
    env.update({"OMICSFLOW_HOME": str(home), "OMICSFLOW_PREFECT_PORT": str(port)})
    log = (tmp_path / "serve.log").open("ab")
    proc = subprocess.Popen(
        [sys.executable, "-m", "omicsflow.cli", "serve", "--demo"],
        env=env,
        cwd=REPO_ROOT,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        wait_for(
            lambda: "omicsflow serving" in (tmp_path / "serve.log").read_text(),
            120,
            "the demo to start",
        )
        assert httpx.get(f"http://127.0.0.1:{port}/", timeout=10).status_code == 200, "UI served"
        doctor = _cli(env, "doctor")
        assert doctor.returncode == 0, doctor.stdout + doctor.stderr
        added = _cli(env, "reports", "add", "--service", "wgs-qc")
        assert added.returncode == 0, added.stderr
        report_id = added.stdout.strip()
        t0 = time.monotonic()

        def succeeded() -> dict[str, object] | None:
            rows = json.loads(_cli(env, "runs", "list", "--report", report_id, "--json").stdout)
            return rows[0] if rows and rows[0]["state"] == "succeeded" else None

        row = wait_for(succeeded, 30, "a succeeded row")
        api = f"http://127.0.0.1:{port}/api"
        fr = wait_for(
            lambda: (
                (r := httpx.get(f"{api}/flow_runs/{row['flow_run_id']}").json())
                and r["state_type"] == "COMPLETED"
                and r
            ),
            30,
            "a Completed flow run",
        )
        assert time.monotonic() - t0 < 30
        assert fr["state_name"] == "Completed"
        bad = _cli(env, "reports", "add", "--service", "no-such-service")
        assert bad.returncode == 2 and "unknown service" in bad.stderr
    finally:
        os.killpg(proc.pid, signal.SIGINT)
        rc = proc.wait(timeout=60)
    assert rc == 0
    wait_for(lambda: not _port_open(port), 30, "the embedded Prefect server to stop")
    import shutil

    shutil.rmtree(home, ignore_errors=True)

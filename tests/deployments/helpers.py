"""Helpers shared by the end-to-end tests: read the ledger, wait for states, run the CLI."""

from __future__ import annotations

import os
import subprocess
import sys

from ledger.models import Run
from omicsflow.stores.local import LocalReportStore
from tests.deployments.conftest import Deployment
from tests.support.prefect_api import read_flow_run
from tests.support.serve_process import REPO_ROOT, wait_for


def rows(dep: Deployment, report_id: str) -> list[Run]:
    return dep.ledger.rows_for_report(report_id)


def states(dep: Deployment, report_id: str) -> list[str]:
    return [r.state for r in rows(dep, report_id)]


def final(dep: Deployment, report_id: str, state: str, timeout: float = 60) -> Run:
    def done() -> Run | None:
        found = rows(dep, report_id)
        return found[-1] if found and found[-1].state == state else None

    try:
        return wait_for(done, timeout, f"report {report_id} to reach {state}")
    except AssertionError as exc:
        raise AssertionError(
            f"{exc}\nstates={states(dep, report_id)}\n{dep.serve.log_tail()}"
        ) from None


def flow_state(dep: Deployment, flow_run_id: str) -> str:
    fr = read_flow_run(dep.env["PREFECT_API_URL"], flow_run_id)
    return f"{fr.state.type.value}/{fr.state.name}" if fr.state else "none"


def flow_ends(dep: Deployment, flow_run_id: str | None, expected: str) -> None:
    """The ledger moves before the flow run returns its final state: wait for that too."""
    wait_for(lambda: flow_state(dep, flow_run_id or "") == expected, 30, f"flow run {expected}")


def local_store(dep: Deployment) -> LocalReportStore:
    return LocalReportStore(dep.ledger.engine)


def cli(dep: Deployment, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "omicsflow.cli", *args],
        env=dep.env,
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )


def host_processes_with(marker: str) -> list[int]:
    pids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as fh:
                if marker.encode() in fh.read():
                    pids.append(int(entry))
        except OSError:
            continue
    return pids

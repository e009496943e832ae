"""Intake rate: new "Data Ready" reports -> ledger rows -> scheduled attempt flow runs.

Run: .venv/bin/python bench/bench_intake.py [--reports 500] [--workers 1,4,8]

Setup: a real Prefect server (`prefect server start`, SQLite, free port, temp home) and the
attempt deployment registered the way `omicsflow serve` does it (`Runner.add_flow(attempt_flow,
name=<attempt deployment>)`), but the runner is never started, and the service has
`cooldown_seconds = 3600`: every flow run is created Scheduled 1 h ahead and nothing executes.

Per worker count: a fresh SQLite ledger + local report store, the real `IntakeLoop` (store
watch -> sharded worker threads, each with its own FlowRuns client) running, then N reports
added with `LocalReportStore.create` as fast as one thread can. Rate = N / (last flow run
created - first create). Afterwards it checks that every row has a flow run id, that those
flow runs exist with the row's id as parameter, and that the deployment got exactly N new flow
runs (one per report). It also prints where the time went: per-call latency of the ledger
writes and of `create_flow_run_from_deployment`, and the CPU seconds the Prefect server and
this process used per report.

Goal (issue 2): >= 50 reports/s.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import threading
import time
import uuid
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.support.prefect_server import PrefectServer  # noqa: E402

GOAL = 50.0
SERVICE = "bench-cooling"
SERVICES_TOML = f"""
[services.{SERVICE}]
backend = "local"
command = ["true"]
cooldown_seconds = 3600
"""


def load_average() -> str:
    one, five, fifteen = os.getloadavg()
    return f"load average {one:.2f} {five:.2f} {fifteen:.2f} ({os.cpu_count()} cores)"


def group_cpu_seconds(pgid: int) -> float:
    """User+system CPU of every process in a process group (the Prefect server's session)."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
        if int(fields[2]) == pgid:  # field 5 (pgrp), counted after the comm
            total += (int(fields[11]) + int(fields[12])) / tick
    return total


class Timings:
    """Wall time of wrapped calls, by name (thread safe enough: list.append under the GIL)."""

    def __init__(self) -> None:
        self.calls: dict[str, list[float]] = defaultdict(list)
        self.ends: dict[str, list[float]] = defaultdict(list)

    def wrap(self, owner: Any, attr: str, name: str) -> Callable[[], None]:
        original = getattr(owner, attr)

        def timed(*args: Any, **kwargs: Any) -> Any:
            t = time.perf_counter()
            try:
                return original(*args, **kwargs)
            finally:
                self.calls[name].append(time.perf_counter() - t)
                self.ends[name].append(time.time())

        setattr(owner, attr, timed)
        return lambda: setattr(owner, attr, original)

    def report(self) -> None:
        for name, xs in self.calls.items():
            xs = sorted(xs)
            p99 = xs[min(len(xs) - 1, int(len(xs) * 0.99))]
            print(
                f"    {name:<44} n={len(xs):<5} mean={statistics.fmean(xs) * 1e3:7.1f} ms "
                f"p50={xs[len(xs) // 2] * 1e3:7.1f} ms  p99={p99 * 1e3:7.1f} ms  "
                f"sum={sum(xs):6.1f} s  >1s: {sum(x > 1 for x in xs)}"
            )


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument(
        "--reports", type=int, default=500, help="reports per worker count (default 500)"
    )
    p.add_argument("--workers", default="1,4,8", help="IntakeLoop worker counts (default 1,4,8)")
    p.add_argument(
        "--timeout", type=float, default=240, help="seconds allowed per round (default 240)"
    )
    p.add_argument(
        "--server-env",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="extra environment for the Prefect server, repeatable, e.g. "
        "PREFECT_SERVER_SERVICES_EVENT_PERSISTER_ENABLED=false",
    )
    p.add_argument("--keep", action="store_true", help="keep the temp dir (logs, databases)")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    tmp = Path(tempfile.mkdtemp(prefix="omicsflow-bench-intake-"))
    server = PrefectServer(tmp / "prefect")
    for item in args.server_env:
        key, _, value = item.partition("=")
        os.environ[key] = value  # PrefectServer passes the environment on
    try:
        t = time.perf_counter()
        if args.server_env:
            print("Prefect server environment: " + " ".join(args.server_env))
        server.start()
        print(f"Prefect server {server.api_url} up in {time.perf_counter() - t:.1f}s")
        services_path = tmp / "services.toml"
        services_path.write_text(SERVICES_TOML)
        # Before prefect is imported: it reads its settings once.
        os.environ["PREFECT_API_URL"] = server.api_url
        os.environ["OMICSFLOW_HOME"] = str(tmp / "home")
        os.environ["OMICSFLOW_SERVICES"] = str(services_path)
        os.environ["OMICSFLOW_REPORT_STORE"] = "local"
        os.environ["OMICSFLOW_INSTANCE"] = "bench"
        return run(args, server, tmp, services_path)
    finally:
        server.stop()
        if args.keep:
            print(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)


def register_deployment() -> uuid.UUID:
    """What `serve` does, minus `runner.start()`: nothing ever executes the flow runs."""
    from prefect.runner import Runner

    from flows.attempt import attempt_flow
    from omicsflow.settings import get_settings

    runner = Runner(name="omicsflow-bench", pause_on_shutdown=False)
    dep_id: uuid.UUID = runner.add_flow(
        attempt_flow, name=get_settings().attempt_deployment, tags=["omicsflow"]
    )
    return dep_id


def run(args: argparse.Namespace, server: PrefectServer, tmp: Path, services_path: Path) -> int:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import (
        DeploymentFilter,
        DeploymentFilterId,
        FlowRunFilter,
        FlowRunFilterId,
    )
    from prefect.client.schemas.objects import StateType
    from sqlalchemy import func
    from sqlmodel import Session, col, select

    from deployments.intake_loop import IntakeLoop
    from ledger.db import make_engine, upgrade
    from ledger.models import Run
    from ledger.repo import Ledger
    from omicsflow.lifecycle.scheduling import FlowRuns
    from omicsflow.services import load_services
    from omicsflow.stores.local import LocalReportStore

    dep_id = register_deployment()
    print(f"attempt deployment registered: {dep_id}")
    services = load_services(services_path)
    assert server.proc is not None
    ok = True
    expected_total = 0
    summary: list[str] = []

    with get_client(sync_client=True) as client:
        dep_filter = DeploymentFilter(id=DeploymentFilterId(any_=[dep_id]))
        for n_workers in [int(w) for w in args.workers.split(",") if w.strip()]:
            engine = make_engine(f"sqlite:///{tmp / f'ledger-w{n_workers}.db'}")
            upgrade(engine)
            ledger = Ledger(engine)
            store = LocalReportStore(engine)  # serve's defaults: 0.2 s poll
            timings = Timings()
            undo = [
                timings.wrap(FlowRuns, "create", "FlowRuns.create (Prefect API)"),
                timings.wrap(Ledger, "rows_for_report", "Ledger.rows_for_report"),
                timings.wrap(Ledger, "create_run", "Ledger.create_run"),
                timings.wrap(Ledger, "set_flow_run", "Ledger.set_flow_run"),
                timings.wrap(store, "create", "LocalReportStore.create (bench thread)"),
            ]
            resumed = threading.Event()
            resumed.set()
            loop = IntakeLoop(store, ledger, services, resumed, workers=n_workers)
            loop.start()
            time.sleep(0.5)  # the watch's first (empty) snapshot
            tag = uuid.uuid4().hex[:6]
            ids = [f"in-{n_workers}w-{tag}-{i:05d}" for i in range(args.reports)]

            cpu_server0, cpu_self0 = group_cpu_seconds(server.proc.pid), time.process_time()
            t_first = time.time()
            for rid in ids:
                store.create(rid, SERVICE, {"bench": True})
            t_created = time.time()

            def done(engine: Any = engine) -> int:
                with Session(engine) as s:
                    return int(
                        s.exec(select(func.count()).where(col(Run.flow_run_id).is_not(None))).one()
                    )

            deadline = time.monotonic() + args.timeout
            while (n_done := done()) < len(ids) and time.monotonic() < deadline:
                time.sleep(0.1)
            t_rows = time.time()
            cpu_server = group_cpu_seconds(server.proc.pid) - cpu_server0
            cpu_self = time.process_time() - cpu_self0
            loop.stop()
            store.close()
            for u in undo:
                u()

            # Verification: every row has a flow run, it exists, and exactly one per report.
            with Session(engine) as s:
                rows = list(s.exec(select(Run)))
            fr_ids = [r.flow_run_id for r in rows if r.flow_run_id]
            found: dict[str, Any] = {}
            for i in range(0, len(fr_ids), 200):
                chunk = [uuid.UUID(x) for x in fr_ids[i : i + 200]]
                for fr in client.read_flow_runs(
                    flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=chunk)), limit=200
                ):
                    found[str(fr.id)] = fr
            params_ok = all(
                r.flow_run_id in found and found[r.flow_run_id].parameters.get("run_id") == r.id
                for r in rows
            )
            expected_total += len(ids)
            total_for_dep = client.count_flow_runs(deployment_filter=dep_filter)
            round_ok = (
                n_done == len(ids)
                and len(rows) == len(ids)
                and len({r.report_id for r in rows}) == len(ids)
                and len(set(fr_ids)) == len(ids)
                and len(found) == len(ids)
                and params_ok
                and total_for_dep == expected_total
                and all(f.state_type == StateType.SCHEDULED for f in found.values())
            )
            ok &= round_ok
            last_fr_created = max((f.created for f in found.values() if f.created), default=None)
            api_ends = timings.ends["FlowRuns.create (Prefect API)"] or [t_rows]
            t_last = last_fr_created.timestamp() if last_fr_created else max(api_ends)
            rate = len(ids) / (t_last - t_first) if t_last > t_first else float("nan")
            print(
                f"\nworkers={n_workers}: {len(ids)} reports -> {len(found)} flow runs; "
                f"first create -> last flow run created {t_last - t_first:.2f}s "
                f"= {rate:.1f} reports/s "
                f"(goal >= {GOAL:.0f}: {'MET' if rate >= GOAL else 'NOT MET'}); "
                f"all rows have flow_run_id after {t_rows - t_first:.2f}s; "
                f"creating the reports took {t_created - t_first:.2f}s"
            )
            print(
                f"  check: rows={len(rows)} with flow run={n_done} flow runs found={len(found)} "
                f"params match={params_ok} deployment total={total_for_dep}/{expected_total} "
                f"-> {'OK: one scheduled flow run per report' if round_ok else 'FAILED'}"
            )
            print(
                f"  CPU: Prefect server {cpu_server:.1f}s "
                f"({cpu_server / len(ids) * 1e3:.0f} ms/report), "
                f"bench process {cpu_self:.1f}s ({cpu_self / len(ids) * 1e3:.0f} ms/report) "
                f"over {t_rows - t_first:.1f}s wall"
            )
            print(f"  {load_average()}")
            print("  per call:")
            timings.report()
            summary.append(f"workers={n_workers}: {rate:.1f} reports/s")
            engine.dispose()

    print("\nsummary: " + "; ".join(summary) + f"  [{load_average()}]")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

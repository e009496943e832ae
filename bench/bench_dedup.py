"""Dedup rate: replayed ADDED events for reports that already have a blocking ledger row.

Run: .venv/bin/python bench/bench_dedup.py [--reports 10000] [--workers 1,4,8]
                                           [--database-url postgresql+psycopg://...]

Setup: a real ledger (SQLite in a temp dir, or PostgreSQL in a throw-away schema) migrated
with the ledger's alembic migrations; N reports in the local report store ("Data Ready") that
each already have one `queued` row (a blocking state).

Measured:
1. `Intake.handle(ADDED)` for every report, one thread: the real code path (ledger query,
   pure `decide_intake`, DUPLICATE). The FlowRuns object is a real one pointed at a Prefect
   API address nobody listens on, so a call on a duplicate would fail loudly.
2. The real `IntakeLoop` (store watch -> sharded worker threads -> Intake), for each worker
   count: a fresh loop's first watch pass (the snapshot, which is what a restart or a
   Firestore reconnect replays) delivers ADDED for all N reports; timed from `loop.start()`
   until every event was counted as a duplicate.

Afterwards it asserts exactly one row per report and no flow-run id written.
Goal (issue 2): >= 2,000 events/s.
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

GOAL = 2000.0
SERVICE = "bench"
SERVICES_TOML = f"""
[services.{SERVICE}]
backend = "local"
command = ["true"]
"""


def _dead_api_url() -> str:
    """An address nothing listens on: any Prefect call made during the bench fails."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/api"


def load_average() -> str:
    one, five, fifteen = os.getloadavg()
    return f"load average {one:.2f} {five:.2f} {fifteen:.2f} ({os.cpu_count()} cores)"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--reports", type=int, default=10_000, help="reports to replay (default 10000)")
    p.add_argument(
        "--workers",
        default="1,4,8",
        help="IntakeLoop worker counts to try, comma separated; '' skips the loop (default 1,4,8)",
    )
    p.add_argument(
        "--database-url",
        default=None,
        help="ledger URL, e.g. postgresql+psycopg://postgres@127.0.0.1:5432/test "
        "(a throw-away schema is created and dropped); default: SQLite in a temp dir",
    )
    p.add_argument("--keep", action="store_true", help="keep the temp dir (SQLite) for inspection")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    workers = [int(w) for w in args.workers.split(",") if w.strip()]
    tmp = Path(tempfile.mkdtemp(prefix="omicsflow-bench-dedup-"))
    # Before anything imports prefect: settings are read once, at import.
    os.environ["PREFECT_API_URL"] = _dead_api_url()
    os.environ["OMICSFLOW_HOME"] = str(tmp / "home")
    os.environ.setdefault("OMICSFLOW_INSTANCE", "bench")
    schema: str | None = None
    engine = None
    try:
        from sqlalchemy import text

        from ledger.db import make_engine, upgrade

        if args.database_url:
            schema = f"bench_dedup_{uuid.uuid4().hex[:10]}"
            admin = make_engine(args.database_url)
            with admin.begin() as conn:
                conn.execute(text(f'CREATE SCHEMA "{schema}"'))
            admin.dispose()
            engine = make_engine(
                args.database_url, connect_args={"options": f"-csearch_path={schema}"}
            )
            where = f"PostgreSQL schema {schema}"
        else:
            engine = make_engine(f"sqlite:///{tmp / 'ledger.db'}")
            where = f"SQLite {tmp / 'ledger.db'}"
        upgrade(engine)
        return run(args, engine, workers, tmp, where)
    finally:
        if engine is not None:
            engine.dispose()
        if schema is not None:
            from ledger.db import make_engine

            admin = make_engine(args.database_url)
            with admin.begin() as conn:
                conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
            admin.dispose()
        if args.keep:
            print(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)


def seed(engine, n: int) -> list[str]:  # type: ignore[no-untyped-def]
    """N "Data Ready" reports, each with one queued (blocking) ledger row."""
    from sqlmodel import Session

    from ledger.models import Run
    from omicsflow.stores.local_tables import LocalReport, LocalReportChange

    ids = [f"dedup-{i:06d}" for i in range(n)]
    with Session(engine) as s:
        for rid in ids:
            s.add(LocalReport(id=rid, status="Data Ready", data={"service": SERVICE}))
        s.flush()
        for rid in ids:
            s.add(LocalReportChange(report_id=rid, status="Data Ready"))
            s.add(
                Run(
                    report_id=rid, service=SERVICE, state="queued", report_data={"service": SERVICE}
                )
            )
        s.commit()
    return ids


def run(args: argparse.Namespace, engine, workers: list[int], tmp: Path, where: str) -> int:  # type: ignore[no-untyped-def]
    from ledger.repo import Ledger
    from omicsflow.lifecycle.intake import Intake, IntakeResult
    from omicsflow.lifecycle.scheduling import FlowRuns
    from omicsflow.services import parse_services
    from omicsflow.stores.base import ChangeKind, ReportEvent

    services_path = tmp / "services.toml"
    services_path.write_text(SERVICES_TOML)
    services = parse_services(SERVICES_TOML, services_path)
    ledger = Ledger(engine)

    t = time.perf_counter()
    ids = seed(engine, args.reports)
    print(f"ledger: {where}")
    print(f"seeded {len(ids)} reports with a queued row in {time.perf_counter() - t:.1f}s")
    print(load_average())
    ok = True

    # 1. Intake.handle, one thread.
    flow_runs = FlowRuns(deployment="attempt-bench")
    intake = Intake(ledger, services, flow_runs)
    events = [
        ReportEvent(ChangeKind.ADDED, rid, {"service": SERVICE, "status": "Data Ready"})
        for rid in ids
    ]
    results: dict[str, int] = {}
    t = time.perf_counter()
    for ev in events:
        r = intake.handle(ev).value
        results[r] = results.get(r, 0) + 1
    elapsed = time.perf_counter() - t
    rate = len(events) / elapsed
    ok &= results == {IntakeResult.DUPLICATE.value: len(events)}
    ok &= flow_runs._client is None  # never touched Prefect
    print(
        f"Intake.handle, 1 thread: {len(events)} events in {elapsed:.2f}s = {rate:,.0f} events/s "
        f"({elapsed / len(events) * 1e6:.0f} us/event) results={results} "
        f"goal>={GOAL:,.0f}: {'MET' if rate >= GOAL else 'NOT MET'}"
    )
    print(f"  {load_average()}")

    # 2. The real IntakeLoop fed by the local store's watch (its snapshot replays everything).
    if workers:
        from deployments.intake_loop import IntakeLoop
        from omicsflow.stores.local import LocalReportStore

    for n in workers:
        store = LocalReportStore(engine, poll_interval=0.05, resync_seconds=3600)
        resumed = threading.Event()
        resumed.set()
        loop = IntakeLoop(store, ledger, services, resumed, workers=n)
        t = time.perf_counter()
        loop.start()
        deadline = time.monotonic() + 300
        while sum(loop.counts.values()) < len(ids) and time.monotonic() < deadline:
            time.sleep(0.01)
        elapsed = time.perf_counter() - t
        loop.stop()
        store.close()
        counts = {k: v for k, v in loop.counts.items() if v}
        rate = sum(counts.values()) / elapsed
        ok &= counts == {IntakeResult.DUPLICATE.value: len(ids)}
        print(
            f"IntakeLoop (store snapshot -> {n} worker thread(s)): "
            f"{len(ids)} events in {elapsed:.2f}s "
            f"= {rate:,.0f} events/s counts={counts} "
            f"goal>={GOAL:,.0f}: {'MET' if rate >= GOAL else 'NOT MET'}"
        )
        print(f"  {load_average()}")

    # Nothing lost, nothing duplicated.
    from sqlalchemy import func
    from sqlmodel import Session, col, select

    from ledger.models import Run

    with Session(engine) as s:
        total = s.exec(select(func.count()).select_from(Run)).one()
        distinct = s.exec(select(func.count(func.distinct(Run.report_id)))).one()
        with_flow_run = s.exec(select(func.count()).where(col(Run.flow_run_id).is_not(None))).one()
        dup = s.exec(
            select(Run.report_id).group_by(Run.report_id).having(func.count() != 1).limit(5)
        ).all()
    check = total == len(ids) and distinct == len(ids) and not dup and with_flow_run == 0
    ok &= check
    print(
        f"check: rows={total} distinct reports={distinct} reports with !=1 row={list(dup)} "
        f"rows with a flow run={with_flow_run} "
        f"-> {'exactly one row per report' if check else 'FAILED'}"
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

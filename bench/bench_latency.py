"""Data Ready -> pipeline start latency on the embedded setup (`omicsflow serve`, no
PREFECT_API_URL: serve starts its own Prefect server).

Run: .venv/bin/python bench/bench_latency.py [--reports 20] [--max-gap 2] [--no-sandbox]

Setup: `omicsflow serve` as a subprocess, the way an operator runs it, with a temp
OMICSFLOW_HOME, a free port for the embedded Prefect server (OMICSFLOW_PREFECT_PORT), the local
report store and a services file with one service (cooldown 0) whose pipeline prints
`BENCH_START <epoch seconds>` as its first line and exits 0. The pipeline runs in the
bubblewrap sandbox unless --no-sandbox.

The bench adds reports to the local store one at a time, with a random 0..--max-gap s pause
between them, waits until every pipeline has started (--timeout), and prints p50/p99/max of
(pipeline start - report created), plus the breakdown per stage:
  created -> ledger row inserted (store watch + intake)
  row -> flow run created (Prefect API)
  flow run created -> flow run Running (runner poll + process spawn + engine start)
  Running -> claim (the flow's first steps: runtime, ledger read, claim task)
  claim -> pipeline start (scratch dir, sandbox, bash)

Goal (issue 2): p50 <= 3 s.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.support.firestore_emulator import free_port  # noqa: E402
from tests.support.serve_process import ServeProcess  # noqa: E402

GOAL_P50 = 3.0
SERVICE = "bench-latency"
PIPELINE = """#!/usr/bin/env bash
echo "BENCH_START $(date +%s.%N)"
exit 0
"""
SERVICES_TOML = f"""
[services.{SERVICE}]
backend = "local"
command = ["bash", "pipeline.sh"]
cooldown_seconds = 0
max_retries = 1
timeout_seconds = 300
"""
KEEP_ENV = ("PATH", "HOME", "LANG", "LC_ALL", "TZ", "USER", "VIRTUAL_ENV")


def load_average() -> str:
    one, five, fifteen = os.getloadavg()
    return f"load average {one:.2f} {five:.2f} {fifteen:.2f} ({os.cpu_count()} cores)"


def pct(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, round(q * (len(xs) - 1)))]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--reports", type=int, default=20, help="reports to add (default 20)")
    p.add_argument(
        "--max-gap", type=float, default=2.0, help="max random pause between reports (default 2 s)"
    )
    p.add_argument("--no-sandbox", action="store_true", help="OMICSFLOW_SANDBOX_ENABLED=false")
    p.add_argument(
        "--timeout",
        type=float,
        default=150,
        help="seconds to wait for the pipelines to start after the last report (default 150)",
    )
    p.add_argument("--seed", type=int, default=None, help="random seed for the gaps")
    p.add_argument("--keep", action="store_true", help="keep the temp dir (serve log, ledger)")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    # Outside /tmp: the sandbox gives pipelines a private /tmp (as the e2e tests do).
    base = Path("/var/tmp") if Path("/var/tmp").is_dir() else None
    tmp = Path(tempfile.mkdtemp(prefix="omicsflow-bench-latency-", dir=base))
    serve: ServeProcess | None = None
    try:
        (tmp / "pipeline.sh").write_text(PIPELINE)
        (tmp / "services.toml").write_text(SERVICES_TOML)
        port = free_port()
        env = {k: os.environ[k] for k in KEEP_ENV if k in os.environ}
        env.update(
            {
                "OMICSFLOW_HOME": str(tmp / "home"),
                "OMICSFLOW_SERVICES": str(tmp / "services.toml"),
                "OMICSFLOW_REPORT_STORE": "local",
                "OMICSFLOW_INSTANCE": "bench",
                "OMICSFLOW_PREFECT_PORT": str(port),
            }
        )
        if args.no_sandbox:
            env["OMICSFLOW_SANDBOX_ENABLED"] = "false"
        serve = ServeProcess(env, tmp / "serve.log")
        t = time.perf_counter()
        serve.start(timeout=180)
        print(
            f"omicsflow serve (embedded Prefect server on :{port}) ready in "
            f"{time.perf_counter() - t:.1f}s; sandbox {'off' if args.no_sandbox else 'on'}"
        )
        return run(args, tmp, f"http://127.0.0.1:{port}/api", serve)
    finally:
        if serve is not None:
            serve.stop()
            serve.kill_everything()
        if args.keep:
            print(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)


def run(args: argparse.Namespace, tmp: Path, api: str, serve: ServeProcess) -> int:
    import httpx

    from ledger.db import make_engine
    from ledger.repo import Ledger
    from omicsflow.stores.local import LocalReportStore

    engine = make_engine(f"sqlite:///{tmp / 'home' / 'omicsflow.db'}")
    ledger = Ledger(engine)
    store = LocalReportStore(engine)
    rng = random.Random(args.seed)
    tag = uuid.uuid4().hex[:6]
    created: dict[str, float] = {}
    try:
        print(f"adding {args.reports} reports, 0-{args.max_gap:g}s apart  [{load_average()}]")
        for i in range(args.reports):
            if i:
                time.sleep(rng.uniform(0, args.max_gap))
            rid = f"lat-{tag}-{i:03d}"
            store.create(rid, SERVICE, {"bench": True})
            created[rid] = time.time()

        def started(rid: str) -> float | None:
            rows = ledger.rows_for_report(rid)
            if not rows or not rows[0].log_path or not Path(rows[0].log_path).exists():
                return None
            for ln in Path(rows[0].log_path).read_text(errors="replace").splitlines():
                if ln.startswith("BENCH_START "):
                    return float(ln.split()[1])
            return None

        # Wait for every pipeline to have started (what is measured), not for the runs to end.
        deadline = time.monotonic() + args.timeout
        starts: dict[str, float] = {}
        while len(starts) < len(created) and time.monotonic() < deadline:
            for rid in created:
                if rid not in starts and (t_start := started(rid)) is not None:
                    starts[rid] = t_start
            time.sleep(0.5)
        missing = sorted(set(created) - set(starts))
        if missing:
            print(
                f"WARNING: {len(missing)} pipeline(s) had not started {args.timeout:.0f}s after "
                f"the last report was added: {missing}; the numbers below leave them out"
            )

        stages: dict[str, list[float]] = {
            k: []
            for k in (
                "created -> row inserted",
                "row -> flow run created",
                "flow run created -> Running",
                "Running -> claim",
                "claim -> pipeline start",
                "TOTAL created -> pipeline start",
            )
        }
        with httpx.Client(base_url=api, timeout=10) as http:
            for rid, t_start in starts.items():
                t_created = created[rid]
                rows = ledger.rows_for_report(rid)
                if len(rows) != 1:
                    # Not a duplicate: a failed attempt leaves a successor row. Measure the first.
                    states = [(r.attempt, r.seq, r.state, r.reason) for r in rows]
                    print(
                        f"note: {rid} has {len(rows)} rows (attempt, seq, state, reason): {states}"
                    )
                row = rows[0]
                assert row.flow_run_id and row.started_at
                fr = http.get(f"/flow_runs/{row.flow_run_id}").json()
                t_row = row.created_at.timestamp()
                t_fr = datetime.fromisoformat(fr["created"]).timestamp()
                t_running = datetime.fromisoformat(fr["start_time"]).timestamp()
                t_claim = row.started_at.timestamp()
                for key, value in zip(
                    stages,
                    (
                        t_row - t_created,
                        t_fr - t_row,
                        t_running - t_fr,
                        t_claim - t_running,
                        t_start - t_claim,
                        t_start - t_created,
                    ),
                    strict=True,
                ):
                    stages[key].append(value)
    finally:
        store.close()
        engine.dispose()

    total = stages["TOTAL created -> pipeline start"]
    p50 = statistics.median(total)
    if not total:
        print("no pipeline started")
        return 1
    print(f"\n{len(total)} reports; stage times in seconds (p50 / p99 / max):")
    for key, xs in stages.items():
        print(f"  {key:<34} {statistics.median(xs):6.2f} / {pct(xs, 0.99):6.2f} / {max(xs):6.2f}")
    print(
        f"\nData Ready -> pipeline start: p50 {p50:.2f}s  p99 {pct(total, 0.99):.2f}s  "
        f"max {max(total):.2f}s  (goal p50 <= {GOAL_P50:.0f}s: "
        f"{'MET' if p50 <= GOAL_P50 else 'NOT MET'})  [{load_average()}]"
    )
    return 1 if missing else 0


if __name__ == "__main__":
    sys.exit(main())

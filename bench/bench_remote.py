"""1,000 in-flight remote runs against the HealthOmics fake: orchestrator RSS, API calls per
second and the delay from a remote run ending to its flow run finishing.

Run: .venv/bin/python bench/bench_remote.py [--runs 1000] [--poll-seconds 10] [--tps 8]
                                            [--sample 20] [--real 4] [--warmup 15]

Goals (issue text): total RSS of the orchestrator <= 600 MiB (no process per waiting run);
GetRun calls/s never above the configured max_tps; p50 of (remote run ended -> flow run final)
<= one poll interval + 5 s.

How the in-flight runs are made, and why
---------------------------------------
A real remote attempt is a flow-run process (~2 s of CPU to start) that claims its row,
calls StartRun, records the handle and suspends. 1,000 of those would take far longer than the
bench may on 2 shared cores, and what the steady state consists of is well defined, so the
bench builds that state directly, the way it exists after submission:
  * ledger rows in state `running` for service `omics` (backend healthomics), each submitted
    through the real code path `lifecycle.remote.submit_attempt` with a real
    `HealthOmicsBackend` (boto3, SigV4, deterministic requestId) against the fake, so
    `backend_handle`/`backend_run_id`/`backend_run_key` are exactly what an attempt records;
    the fake answers RUNNING until the bench calls `fake.advance` (script `auto=False`);
  * one flow run per row, created from the attempt deployment (bulk endpoint, same name, tags,
    parameters and idempotency key as `FlowRuns.create`) directly in the state an attempt
    leaves behind: `Suspended` (PAUSED, pause_reschedule) with the suspend timeout of the
    service, and its id recorded in the row (`flow_run_id`).
The attempt flow treats such a flow run like its own suspended run when it is resumed: the row
is `running`, remote, and `row.flow_run_id` is the resumed run's id (`resumed` in
flows/attempt.py), so it skips the claim, reuses the recorded handle and routes the outcome.
To check that the emulation behaves like the real thing, `--real` (default 4) of the in-flight
runs ARE real attempts: reports added to the local report store after serve started, taken in
by intake, executed by serve's runner (claim, StartRun through the fake, suspend). The measured
sample holds these real ones plus random created ones; the delays are printed per kind.

The attempt deployment is created before serve starts (serve's runner upserts it by name,
keeping its id), so serve starts the way it does after a restart with 1,000 runs in flight.

Measurement
-----------
`omicsflow serve` runs as a real subprocess (tests/support/serve_process.py) against a real
Prefect server (tests/support/prefect_server.py), both on ephemeral ports. A sampler thread
sums VmRSS (and PSS) over serve's process tree (serve + runner children) and over the Prefect
server's tree once a second; CPU seconds of both trees are read at the end. After `--warmup`
seconds of polling, `--sample` runs are ended at once (`fake.advance` -> COMPLETED) and the
bench waits until each of their flow runs is final in Prefect. Per run: delay = final state
timestamp - advance time, split into detect (advance -> poller's GetRun saw it terminal:
`remote_checked_at`), resume (-> Running) and finish (-> final). GetRun calls come from the
fake's call log (arrival times): max in any 1 s window and the mean rate over serve's lifetime;
all read calls (GetRun+ListRuns, the quota they share) are printed too.

A sweep over N in-flight runs needs N / max_tps seconds of GetRun, so with the defaults
(1000 runs, 8 TPS) one poll cycle is ~125 s + the poll interval: the bench waits up to two
cycles for the sample, which keeps the default run under ~5 minutes.
"""

from __future__ import annotations

import argparse
import itertools
import os
import random
import shutil
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.support.fakes.healthomics_fake import HealthOmicsFake  # noqa: E402
from tests.support.prefect_server import PrefectServer  # noqa: E402
from tests.support.serve_process import ServeProcess, wait_for  # noqa: E402

REGION = "us-east-1"
SERVICE = "omics"
BLOCK = "bench-omics"
WORKFLOW_ID = "7654321"
ROLE_ARN = "arn:aws:iam::123456789012:role/omics-run"
OUTPUT_URI = "s3://bench-bucket/out/"
SUSPEND_TIMEOUT = 24 * 3600
SERVICES_TOML = """
[services.{service}]
backend = "healthomics"
max_retries = 1
max_system_retries = 0
timeout_seconds = {timeout}
[services.{service}.settings]
account_block = "{block}"
region = "{region}"
workflow_id = "{workflow}"
max_tps = {tps}
start_run_tps = 20
parameters_template = {{ input = "{{report.input_uri}}", sample = "{{report_id}}" }}
"""
AWS_ENV = {
    "AWS_ACCESS_KEY_ID": "bench-key-id",
    "AWS_SECRET_ACCESS_KEY": "bench-secret",
    "AWS_DEFAULT_REGION": REGION,
}
KEEP_ENV = ("PATH", "HOME", "LANG", "LC_ALL", "TZ", "USER", "VIRTUAL_ENV")
MIB = 1024 * 1024
GOAL_RSS_MIB = 600
GOAL_SLACK = 5.0
BULK = 50
FINAL = ("COMPLETED", "FAILED", "CANCELLED", "CRASHED")
CLK_TCK = os.sysconf("SC_CLK_TCK")


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
    p.add_argument("--runs", type=int, default=1000, help="in-flight remote runs (default 1000)")
    p.add_argument("--poll-seconds", type=float, default=10.0, help="remote poll interval (10)")
    p.add_argument("--tps", type=float, default=8.0, help="the service's max_tps (default 8)")
    p.add_argument("--sample", type=int, default=20, help="remote runs ended and timed (20)")
    p.add_argument(
        "--real",
        type=int,
        default=4,
        help="of the in-flight runs, how many are real attempts through serve (4)",
    )
    p.add_argument(
        "--warmup",
        type=float,
        default=15.0,
        help="seconds serve polls before the sample is ended (default 15)",
    )
    p.add_argument("--seed", type=int, default=None, help="random seed for the sample")
    p.add_argument("--keep", action="store_true", help="keep the temp dir (logs) afterwards")
    args = p.parse_args(argv)
    if not 0 <= args.real <= args.sample:
        p.error("--real must be between 0 and --sample")
    if args.sample - args.real > args.runs:
        p.error("--sample - --real must not exceed --runs")
    return args


# ------------------------------------------------------------------ process-tree sampling
def _children() -> dict[int, list[int]]:
    kids: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        kids.setdefault(ppid, []).append(int(entry))
    return kids


def tree(pid: int, kids: dict[int, list[int]] | None = None) -> list[int]:
    kids = kids if kids is not None else _children()
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(kids.get(p, []))
    return out


def _status_kib(pid: int, key: str) -> int:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def _pss_kib(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            for line in f:
                if line.startswith("Pss:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def cpu_seconds(pid: int) -> float:
    """CPU time of a process tree: live members plus reaped children of the root."""
    total = 0.0
    for i, p in enumerate(tree(pid)):
        try:
            with open(f"/proc/{p}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        ticks = int(fields[11]) + int(fields[12])  # utime, stime
        if i == 0:
            ticks += int(fields[13]) + int(fields[14])  # cutime, cstime (reaped children)
        total += ticks / CLK_TCK
    return total


@dataclass(frozen=True)
class Sample:
    at: float  # time.monotonic()
    rss: int  # summed over the tree
    pss: int
    procs: int
    root_rss: int  # the root process alone


@dataclass
class TreeStats:
    samples: list[Sample] = field(default_factory=list)

    def between(self, start: float, end: float) -> list[Sample]:
        return [x for x in self.samples if start <= x.at <= end] or self.samples[-1:]


class Sampler:
    """Once a second: RSS and PSS summed over each watched process tree."""

    def __init__(self, roots: dict[str, int]) -> None:
        self.roots = roots
        self.stats = {name: TreeStats() for name in roots}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="rss-sampler", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def sample(self) -> None:
        kids = _children()
        for name, root in self.roots.items():
            pids = tree(root, kids)
            rss = sum(_status_kib(p, "VmRSS") for p in pids) * 1024
            pss = sum(_pss_kib(p) for p in pids) * 1024
            root_rss = _status_kib(root, "VmRSS") * 1024
            self.stats[name].samples.append(Sample(time.monotonic(), rss, pss, len(pids), root_rss))

    def _loop(self) -> None:
        while not self._stop.is_set():
            self.sample()
            self._stop.wait(1.0)


# -------------------------------------------------------------------------------- setup
def token(report_id: str) -> str:
    from omicsflow.backends.base import AttemptIdentity

    return AttemptIdentity(0, report_id, SERVICE, 1, 1, 0).token


def create_deployment(name: str) -> uuid.UUID:
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:
        flow_id = client.create_flow_from_name("omicsflow-attempt")
        return client.create_deployment(flow_id=flow_id, name=name, tags=["omicsflow"])


def seed_in_flight(
    ledger,
    services_path: Path,
    fake: HealthOmicsFake,
    n: int,  # type: ignore[no-untyped-def]
    deployment: str,
    deployment_id: uuid.UUID,
) -> list[int]:
    """N running rows, each submitted to the fake through `submit_attempt`, each with a flow
    run created from the deployment directly in the Suspended state."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import DeploymentFlowRunCreate
    from prefect.states import Suspended, to_state_create
    from sqlalchemy import update
    from sqlmodel import Session, col

    from ledger.models import Run
    from omicsflow.backends.healthomics import HealthOmicsBackend, HealthOmicsSettings
    from omicsflow.domain.states import RunState
    from omicsflow.lifecycle.remote import submit_attempt
    from omicsflow.lifecycle.scheduling import flow_run_name, idempotency_key
    from omicsflow.services import load_services

    svc = load_services(services_path).get(SERVICE)
    assert svc is not None
    now = datetime.now(UTC)
    rows = [
        Run(
            report_id=f"bench-{i:05d}",
            service=SERVICE,
            backend="healthomics",
            state=RunState.RUNNING.value,
            started_at=now,
            heartbeat_at=now,
            report_data={"input_uri": f"s3://bench-in/{i:05d}.bam"},
        )
        for i in range(n)
    ]
    with Session(ledger.engine, expire_on_commit=False) as s:
        s.add_all(rows)
        s.commit()
    for row in rows:
        fake.script(token(row.report_id), [("RUNNING", 1), ("COMPLETED", 1)], auto=False)
    # The bench's own client: no quota to keep against the fake while seeding.
    backend = HealthOmicsBackend(
        HealthOmicsSettings(
            region=REGION,
            workflow_id=WORKFLOW_ID,
            role_arn=ROLE_ARN,
            output_uri=OUTPUT_URI,
            endpoint_url=fake.url,
            max_tps=10_000,
            start_run_tps=10_000,
            lookup_by_name=False,
        )
    )
    t0 = time.monotonic()
    for row in rows:
        submit_attempt(ledger, backend, svc, row)
    print(f"  {n} StartRun + handle recorded: {time.monotonic() - t0:.1f} s")

    t0 = time.monotonic()
    ids: dict[int | None, str] = {}
    with get_client(sync_client=True) as client:
        # The server's SQLite may answer "database is locked" for part of a batch (its own
        # services write too): resend what failed; the idempotency keys make that safe.
        todo = list(rows)
        for _ in range(20):
            failed = []
            for i in range(0, len(todo), BULK):
                chunk = todo[i : i + BULK]
                body = [
                    DeploymentFlowRunCreate(
                        name=flow_run_name(r),
                        parameters={"run_id": r.id},
                        tags=[f"service:{r.service}", f"backend:{r.backend}", f"doc:{r.report_id}"],
                        idempotency_key=idempotency_key(deployment, r),
                        state=to_state_create(
                            Suspended(timeout_seconds=SUSPEND_TIMEOUT, pause_key=uuid.uuid4().hex)
                        ),
                    ).model_dump(mode="json", exclude_unset=True)
                    for r in chunk
                ]
                resp = client.request(
                    "POST",
                    "/deployments/{id}/create_flow_run/bulk",  # type: ignore[arg-type]
                    path_params={"id": deployment_id},
                    json=body,
                )
                resp.raise_for_status()
                for r, res in zip(chunk, resp.json()["results"], strict=True):
                    if res["status"] == "CREATED":
                        ids[r.id] = res["flow_run_id"]
                    else:
                        failed.append(r)
            if not failed:
                break
            todo = failed
            time.sleep(0.5)
        else:
            raise RuntimeError(f"{len(todo)} flow runs could not be created")
    with Session(ledger.engine) as s:
        for row in rows:
            s.execute(update(Run).where(col(Run.id) == row.id).values(flow_run_id=ids[row.id]))
        s.commit()
    print(f"  {n} Suspended flow runs created and recorded: {time.monotonic() - t0:.1f} s")
    return [r.id for r in rows if r.id is not None]


def flow_states(ids: list[str]) -> dict[str, str]:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    out: dict[str, str] = {}
    with get_client(sync_client=True) as client:
        for i in range(0, len(ids), 200):
            chunk = [uuid.UUID(x) for x in ids[i : i + 200]]
            for fr in client.read_flow_runs(
                flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=chunk)), limit=200
            ):
                if fr.state is not None:
                    out[str(fr.id)] = f"{fr.state.type.value}/{fr.state.name}"
    return out


def start_real_attempts(ledger, fake: HealthOmicsFake, k: int, timeout: float) -> list[int]:  # type: ignore[no-untyped-def]
    """K reports through the whole path: store -> intake -> flow run -> StartRun -> suspend."""
    from omicsflow.stores.local import LocalReportStore

    store = LocalReportStore(ledger.engine)
    report_ids = [f"real-{uuid.uuid4().hex[:8]}" for _ in range(k)]
    for rid in report_ids:
        fake.script(token(rid), [("RUNNING", 1), ("COMPLETED", 1)], auto=False)
        store.create(rid, SERVICE, {"input_uri": f"s3://bench-in/{rid}.bam"})

    def suspended() -> list[int] | None:
        rows = [r for rid in report_ids for r in ledger.rows_for_report(rid)]
        if len(rows) < k or not all(r.flow_run_id and r.backend_handle for r in rows):
            return None
        states = flow_states([r.flow_run_id for r in rows if r.flow_run_id])
        if all(states.get(r.flow_run_id or "", "").startswith("PAUSED") for r in rows):
            return [r.id for r in rows if r.id is not None]
        return None

    return wait_for(suspended, timeout, f"{k} real attempts to submit and suspend", interval=1.0)


@dataclass
class Timing:
    run_id: int
    kind: str
    ended: float
    resumed: float | None = None
    running: float | None = None
    final: float | None = None
    final_state: str = ""

    @property
    def delay(self) -> float:
        assert self.final is not None
        return self.final - self.ended


def collect_timings(ledger, timings: list[Timing]) -> None:  # type: ignore[no-untyped-def]
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:
        for t in timings:
            row = ledger.get(t.run_id)
            assert row is not None and row.flow_run_id
            states = client.read_flow_run_states(uuid.UUID(row.flow_run_id))
            for st in sorted(states, key=lambda s: s.timestamp):
                ts = st.timestamp.timestamp()
                if ts < t.ended:
                    continue
                # The poller's resume_flow_run turns Suspended into Scheduled("Resuming").
                if st.type.value == "SCHEDULED" and st.name == "Resuming" and t.resumed is None:
                    t.resumed = ts
                if st.type.value == "RUNNING" and t.running is None:
                    t.running = ts
                if st.is_final():
                    t.final, t.final_state = ts, f"{st.type.value}/{st.name}"


# ------------------------------------------------------------------------------- report
def summary(label: str, xs: list[float], goal: float | None = None) -> str:
    if not xs:
        return f"  {label:<34} n/a"
    line = (
        f"  {label:<34} p50 {pct(xs, 0.5):7.1f} s   p99 {pct(xs, 0.99):7.1f} s   "
        f"max {max(xs):7.1f} s   (n={len(xs)})"
    )
    if goal is not None:
        line += f"   goal p50 <= {goal:.0f} s: {'OK' if pct(xs, 0.5) <= goal else 'MISSED'}"
    return line


@dataclass(frozen=True)
class Rate:
    max_window: int  # most arrivals in any half-open 1 s window
    max_window_jitter: int  # same with 20 ms of arrival jitter allowed (as the e2e test does)
    mean: float
    calls: int
    min_gap: float


def calls_per_second(fake: HealthOmicsFake, ops: set[str], since: float, until: float) -> Rate:
    ts = [t for t in fake.log.timestamps(ops) if since <= t <= until]
    if not ts:
        return Rate(0, 0, 0.0, 0, 0.0)

    def most(window: float) -> int:
        best, j = 0, 0
        for i in range(len(ts)):
            while ts[i] - ts[j] >= window:
                j += 1
            best = max(best, i - j + 1)
        return best

    gaps = [b - a for a, b in itertools.pairwise(ts)]
    return Rate(
        most(1.0),
        most(0.98),
        len(ts) / max(1e-9, until - since),
        len(ts),
        min(gaps) if gaps else 0.0,
    )


def mib(x: int) -> str:
    return f"{x / MIB:7.1f} MiB"


def memory_line(label: str, samples: list[Sample]) -> str:
    top = max(samples, key=lambda x: x.rss)
    return (
        f"  {label:<44} RSS max {mib(top.rss)} (PSS max {mib(max(x.pss for x in samples))},"
        f" root process {mib(top.root_rss)}, {max(x.procs for x in samples)} processes max)"
    )


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    rng = random.Random(args.seed)
    tmp = Path(tempfile.mkdtemp(prefix="omicsflow-bench-remote-", dir="/var/tmp"))
    home = tmp / "home"
    home.mkdir()
    services = tmp / "services.toml"
    services.write_text(
        SERVICES_TOML.format(
            service=SERVICE,
            timeout=SUSPEND_TIMEOUT,
            block=BLOCK,
            region=REGION,
            workflow=WORKFLOW_ID,
            tps=args.tps,
        )
    )
    instance = f"bench{uuid.uuid4().hex[:8]}"
    print(
        f"bench_remote: runs={args.runs} poll={args.poll_seconds:g}s max_tps={args.tps:g} "
        f"sample={args.sample} (real={args.real}) warmup={args.warmup:g}s; {load_average()}"
    )
    print(f"  temp dir {tmp}")

    server = PrefectServer(tmp / "prefect")
    fake = HealthOmicsFake(region=REGION)
    # The fake pages by 2 to exercise clients' paging; HealthOmics returns up to 100.
    fake.list_page_size = 100
    serve: ServeProcess | None = None
    sampler: Sampler | None = None
    ledger = None
    try:
        t0 = time.monotonic()
        server.start()
        fake.start()
        env = {
            **{k: os.environ[k] for k in KEEP_ENV if k in os.environ},
            **AWS_ENV,
            "PREFECT_API_URL": server.api_url,
            "PREFECT_HOME": str(tmp / "prefect-client"),
            "OMICSFLOW_HOME": str(home),
            "OMICSFLOW_SERVICES": str(services),
            "OMICSFLOW_REPORT_STORE": "local",
            "OMICSFLOW_INSTANCE": instance,
            "OMICSFLOW_REMOTE_POLL_SECONDS": str(args.poll_seconds),
        }
        # This process is a Prefect client of the same server: set before importing prefect.
        os.environ.update(env)
        from blocks.backends import HealthOmicsAccount
        from ledger.db import make_engine, upgrade
        from ledger.repo import Ledger
        from omicsflow.settings import get_settings

        get_settings.cache_clear()
        deployment = get_settings().attempt_deployment
        engine = make_engine(f"sqlite:///{home / 'omicsflow.db'}")
        upgrade(engine)
        ledger = Ledger(engine)
        HealthOmicsAccount(role_arn=ROLE_ARN, output_uri=OUTPUT_URI, endpoint_url=fake.url).save(
            BLOCK, overwrite=True
        )
        deployment_id = create_deployment(deployment)
        print(f"  Prefect server + fake + deployment: {time.monotonic() - t0:.1f} s")
        created = seed_in_flight(ledger, services, fake, args.runs, deployment, deployment_id)

        serve = ServeProcess(env, tmp / "serve.log")
        t0 = time.monotonic()
        serve.start(timeout=180)
        assert serve.proc is not None and server.proc is not None
        serve_started = time.monotonic()
        print(f"  omicsflow serve ready: {serve_started - t0:.1f} s; {load_average()}")
        sampler = Sampler({"serve": serve.proc.pid, "prefect": server.proc.pid})
        sampler.start()
        cpu0 = {name: cpu_seconds(pid) for name, pid in sampler.roots.items()}

        real: list[int] = []
        if args.real:
            t0 = time.monotonic()
            real = start_real_attempts(ledger, fake, args.real, timeout=240)
            print(
                f"  {args.real} real attempts submitted and suspended: "
                f"{time.monotonic() - t0:.1f} s"
            )
        # The real attempts' processes take a few seconds to exit after suspending.
        waiting_from = time.monotonic() + min(5.0, args.warmup / 2)
        in_flight = len(ledger.in_flight_remote(("healthomics",)))
        print(
            f"  in flight: {in_flight} remote runs; polling {args.warmup:g} s before ending "
            f"{args.sample}; {load_average()}"
        )
        time.sleep(args.warmup)

        sample = [*rng.sample(created, args.sample - args.real), *real]
        timings: list[Timing] = []
        sampler.sample()
        ended_at = time.monotonic()
        for run_id in sample:
            row = ledger.get(run_id)
            assert row is not None
            fake.advance(token(row.report_id))
            timings.append(Timing(run_id, "real" if run_id in real else "created", time.time()))
        sweep = (in_flight / args.tps) + args.poll_seconds
        # Rows are swept in id order: a run just behind the sweep (e.g. the real attempts,
        # created last) waits for the rest of this cycle and all of the next one.
        budget = 3 * sweep + 60
        print(
            f"  ended {len(sample)} remote runs; one GetRun-per-run cycle would be ~{sweep:.0f} s "
            f"({in_flight} GetRun at {args.tps:g} TPS + {args.poll_seconds:g} s): "
            f"waiting up to {budget:.0f} s"
        )
        fr_ids = {}
        for t in timings:
            row = ledger.get(t.run_id)
            assert row is not None and row.flow_run_id
            fr_ids[t.run_id] = row.flow_run_id
        deadline = time.monotonic() + budget
        while time.monotonic() < deadline:
            states = flow_states(list(fr_ids.values()))
            done = [v for v in states.values() if v.split("/")[0] in FINAL]
            if len(done) == len(fr_ids):
                break
            time.sleep(1.0)
        end = time.monotonic()
        sampler.sample()
        cpu1 = {name: cpu_seconds(pid) for name, pid in sampler.roots.items()}
        elapsed = end - serve_started

        collect_timings(ledger, timings)
        finished = [t for t in timings if t.final is not None]
        serve_st, pf_st = sampler.stats["serve"], sampler.stats["prefect"]
        waiting = serve_st.between(waiting_from, ended_at)
        overall = serve_st.between(serve_started, end)
        get = calls_per_second(fake, {"GetRun"}, serve_started, end)
        reads = calls_per_second(fake, {"GetRun", "ListRuns"}, serve_started, end)
        goal = args.poll_seconds + GOAL_SLACK
        rss_ok = max(x.rss for x in waiting) <= GOAL_RSS_MIB * MIB
        tps_ok = get.max_window_jitter <= args.tps

        print(
            f"\nresults after {elapsed:.0f} s of serve ({end - ended_at:.0f} s after the ends); "
            f"{load_average()}"
        )
        print(
            memory_line(f"serve tree, {in_flight} runs waiting", waiting)
            + f"   goal <= {GOAL_RSS_MIB} MiB: {'OK' if rss_ok else 'MISSED'}"
        )
        print(memory_line("serve tree, whole run (incl. resumed flows)", overall))
        print(memory_line("Prefect server (separately)", pf_st.between(serve_started, end)))
        print(
            f"  CPU: serve tree {cpu1['serve'] - cpu0['serve']:.1f} s, Prefect server "
            f"{cpu1['prefect'] - cpu0['prefect']:.1f} s over {elapsed:.0f} s wall"
        )
        print(
            f"  GetRun calls/s: max {get.max_window} in any 1 s window "
            f"({get.max_window_jitter} allowing 20 ms arrival jitter), mean {get.mean:.2f}, "
            f"min gap {get.min_gap * 1000:.0f} ms ({get.calls} calls)   "
            f"configured max_tps {args.tps:g}: {'OK' if tps_ok else 'EXCEEDED'}"
        )
        print(
            f"  GetRun+ListRuns (one quota) calls/s: max {reads.max_window} "
            f"({reads.max_window_jitter} with jitter), mean {reads.mean:.2f}"
        )
        print(f"  all calls the fake served: {dict(fake.log.counts())}")
        print(
            f"  sample finished: {len(finished)}/{len(timings)} "
            f"({', '.join(sorted({t.final_state for t in finished}))})"
        )
        delays = [t.delay for t in finished]
        print(summary("remote end -> flow run final", delays, goal))
        for kind in ("created", "real"):
            sub = [t.delay for t in finished if t.kind == kind]
            if sub:
                print(summary(f"  of which {kind}", sub))
        print(
            summary(
                "  detect+resume (end -> Resuming)",
                [t.resumed - t.ended for t in finished if t.resumed],
            )
        )
        print(
            summary(
                "  pickup (Resuming -> Running)",
                [t.running - t.resumed for t in finished if t.resumed and t.running],
            )
        )
        print(
            summary(
                "  finish (Running -> final)",
                [t.final - t.running for t in finished if t.running and t.final],
            )
        )
        print(
            f"  per-run GetRun polling: one cycle is {in_flight}/{args.tps:g} + "
            f"{args.poll_seconds:g} = {sweep:.0f} s; detection alone averages ~{sweep / 2:.0f} s"
        )
        missing = [t.run_id for t in timings if t.final is None]
        if missing:
            print(f"  NOT FINISHED in time: rows {missing}")
        ok = not missing and rss_ok and tps_ok and bool(delays) and pct(delays, 0.5) <= goal
        print(
            f"\n{'all goals met' if ok else 'goals missed (see above)'}; "
            f"serve log: {tmp / 'serve.log'}" + ("" if args.keep else " (removed)")
        )
        return 0 if ok else 1
    finally:
        if sampler is not None:
            sampler.stop()
        if serve is not None:
            serve.stop()
            serve.kill_everything()
        fake.stop()
        server.stop()
        if ledger is not None:
            ledger.engine.dispose()
        if not args.keep:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())

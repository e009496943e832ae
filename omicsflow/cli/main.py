"""The `omicsflow` command line."""

from __future__ import annotations

import json
import logging
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Literal

from cyclopts import App, Parameter
from rich.console import Console
from rich.table import Table

from omicsflow.cli.context import adopt_serve_environment
from omicsflow.cli.llm import llm_app
from omicsflow.cli.reclassify import reclassify_cmd
from omicsflow.cli.render import run_json, short_time
from omicsflow.errors import OmicsflowError

if TYPE_CHECKING:
    from omicsflow.runtime import Runtime

app = App(
    name="omicsflow",
    help="Run a genomics lab's pipelines on Prefect; nothing lost, nothing duplicated.",
)
runs_app = App(name="runs", help="Inspect, follow and cancel runs.")
reports_app = App(name="reports", help="Reports in the local report store.")
app.command(runs_app)
app.command(reports_app)
app.command(llm_app)
runs_app.command(reclassify_cmd, name="reclassify")

out = Console()
err = Console(stderr=True)


def _runtime() -> Runtime:
    adopt_serve_environment()
    from omicsflow.runtime import build_runtime

    return build_runtime()


@app.command
def serve(
    *,
    demo: bool = False,
    port: int | None = None,
    home: str | None = None,
) -> int:
    """Serve the attempt deployment, run intake and recovery; start a local Prefect server
    when PREFECT_API_URL is unset. --demo uses the example services and the local store."""
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    for noisy in ("httpx", "alembic"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    from deployments.serve import serve as run_serve

    return run_serve(demo=demo, port=port, home=home)


@reports_app.command(name="add")
def reports_add(
    *,
    service: str,
    report_id: str | None = None,
    field: Annotated[list[str] | None, Parameter(consume_multiple=False)] = None,
) -> int:
    """Add a "Data Ready" report to the local store; prints its id."""
    from omicsflow.domain.intake import is_safe_report_id

    rt = _runtime()
    if rt.settings.report_store != "local":
        err.print("reports add writes the local report store; this home uses Firestore")
        return 2
    if rt.services.get(service) is None:
        err.print(
            f"unknown service {service!r}; configured: {', '.join(sorted(rt.services.services))}"
        )
        return 2
    if report_id is not None and not is_safe_report_id(report_id):
        err.print(
            f"report id {report_id!r} is not usable (no '/', '\\', '..' or control characters)"
        )
        return 2
    fields: dict[str, str] = {}
    for item in field or []:
        key, sep, value = item.partition("=")
        if not sep or not key:
            err.print(f"--field takes key=value, got {item!r}")
            return 2
        fields[key] = value
    store = rt.store
    new_id = store.create(report_id, service, fields)
    print(new_id)
    return 0


@runs_app.command(name="list")
def runs_list(
    *,
    state: str | None = None,
    report: str | None = None,
    service: str | None = None,
    limit: int = 200,
    json_: Annotated[bool, Parameter(name="--json")] = False,
) -> int:
    """List runs, newest first."""
    rt = _runtime()
    rows = rt.ledger.list_runs(state=state, report_id=report, service=service, limit=limit)
    if json_:
        print(json.dumps([run_json(r) for r in rows]))
        return 0
    table = Table(
        "id", "report", "service", "gen/att", "state", "scheduled", "finished", "owner", "summary"
    )
    for r in rows:
        table.add_row(
            str(r.id),
            r.report_id,
            r.service,
            f"{r.generation}/{r.attempt}",
            r.state,
            short_time(r.scheduled_run_at),
            short_time(r.finished_at),
            r.owner or "",
            (r.summary or r.reason or "")[:60],
        )
    out.print(table)
    return 0


@runs_app.command(name="show")
def runs_show(run_id: int, *, json_: Annotated[bool, Parameter(name="--json")] = False) -> int:
    """Everything about one run: state, times, evidence and classification."""
    rt = _runtime()
    run = rt.ledger.get(run_id)
    if run is None:
        err.print(f"no run {run_id}")
        return 1
    data = run_json(run, detail=True)
    if json_:
        print(json.dumps(data))
        return 0
    for key, value in data.items():
        if key == "evidence":
            for ek, ev in value.items():
                if ev not in (None, [], ""):
                    out.print(f"[bold]evidence.{ek}[/bold]: {ev if ek != 'log_tail' else ''}")
                    if ek == "log_tail":
                        out.print(str(ev)[-3000:], markup=False)
        elif value not in (None, ""):
            out.print(f"[bold]{key}[/bold]: {value}", markup=True, highlight=False)
    return 0


@runs_app.command(name="log")
def runs_log(run_id: int, *, follow: bool = False) -> int:
    """Print an attempt's log; --follow keeps printing while the run is active."""
    from omicsflow.domain.states import ACTIVE_STATES, RunState

    rt = _runtime()
    run = rt.ledger.get(run_id)
    if run is None:
        err.print(f"no run {run_id}")
        return 1
    path = Path(run.log_path) if run.log_path else None
    if (path is None or not path.exists()) and not follow:
        err.print(f"run {run_id} has no log yet (state {run.state})")
        return 1
    pos = 0
    while True:
        if path is not None and path.exists():
            with path.open("rb") as fh:
                fh.seek(pos)
                chunk = fh.read()
                pos += len(chunk)
                sys.stdout.write(chunk.decode("utf-8", "replace"))
                sys.stdout.flush()
        if not follow:
            return 0
        cur = rt.ledger.get(run_id)
        if cur is None or RunState(cur.state) not in ACTIVE_STATES:
            return 0
        if path is None and cur.log_path:
            path = Path(cur.log_path)
        time.sleep(0.5)


@runs_app.command(name="cancel")
def runs_cancel(run_id: int) -> int:
    """Cancel a run: the report store says Failed ("Cancelled by operator") first, then the
    ledger; the pipeline's whole process group is killed."""
    from omicsflow.lifecycle.cancel import CancelResult, cancel_run
    from omicsflow.lifecycle.scheduling import FlowRuns

    rt = _runtime()
    flow_runs = FlowRuns()
    try:
        rep = cancel_run(
            rt.ledger,
            rt.store,
            rt.services,
            run_id,
            actor="cli",
            flow_runs=flow_runs,
            grace_seconds=rt.settings.cancel_grace_seconds,
        )
    finally:
        flow_runs.close()
    messages = {
        CancelResult.CANCELLED: f"run {run_id} cancelled"
        + (f"; {rep.detail}" if rep.detail else ""),
        CancelResult.NOT_ACTIVE: f"run {run_id} left alone: {rep.detail}",
        CancelResult.QUEUED_WRITE: f"run {run_id}: report store unreachable, cancel queued",
        CancelResult.NOT_FOUND: f"no run {run_id}",
    }
    print(messages[rep.result])
    return 0 if rep.result in (CancelResult.CANCELLED, CancelResult.QUEUED_WRITE) else 1


@app.command
def doctor() -> int:
    """Check the Prefect API, the database, the report store, bwrap and the services file."""
    from omicsflow.cli.doctor import run_checks

    adopt_serve_environment()
    ok = True
    for name, passed, detail in run_checks():
        ok &= passed
        out.print(
            f"[{'green' if passed else 'red'}]{'ok ' if passed else 'FAIL'}[/] {name}: {detail}"
        )
    return 0 if ok else 1


@app.command
def classify(
    file: Annotated[str, Parameter(allow_leading_hyphen=True)] = "-",
    *,
    llm: Literal["off", "on"] = "off",
) -> int:
    """Classify failure evidence given as JSON lines (FILE or - for stdin)."""
    from classifiers.evidence import Evidence
    from classifiers.jsonl import Refine, classify_stream
    from classifiers.taxonomy import Classification

    refine: Refine | None = None
    if llm == "on":
        # The LLM configuration lives in Prefect blocks (one per integration).
        from blocks.llm import load_llm_configs
        from omicsflow.llm.enrich import enrich

        try:
            configs = load_llm_configs()
        except Exception as exc:
            err.print(f"--llm on needs the Prefect API for the LLM blocks: {type(exc).__name__}")
            return 2

        def refine(evidence: Evidence, deterministic: Classification) -> Classification:
            return enrich(evidence, deterministic, configs)

    stream = sys.stdin if file == "-" else open(file, encoding="utf-8", errors="replace")  # noqa: SIM115
    try:
        for line in classify_stream(stream, refine):
            print(line, flush=True)
    finally:
        if stream is not sys.stdin:
            stream.close()
    return 0


def main() -> None:
    # Before anything imports Prefect: its settings are read once, at import time.
    if len(sys.argv) < 2 or sys.argv[1] != "serve":
        adopt_serve_environment()
    try:
        result = app()
    except OmicsflowError as exc:
        err.print(f"error: {exc}", markup=False)
        sys.exit(2)
    sys.exit(result if isinstance(result, int) else 0)

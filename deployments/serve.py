"""`omicsflow serve`: one process that serves the attempt deployment, runs intake, the outbox
drain and recovery, and (when PREFECT_API_URL is unset) an embedded Prefect server."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sys
import threading
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING

from deployments.prefect_server import EmbeddedPrefectServer
from omicsflow.cli.context import write_serve_file
from omicsflow.runtime import Runtime

if TYPE_CHECKING:
    from deployments.poller import RemotePoller
    from omicsflow.http.webhook import WebhookServer
from omicsflow.settings import Settings, get_settings

log = logging.getLogger("omicsflow.serve")

EXAMPLES_DIR = Path(__file__).resolve().parent.parent / "examples"


def demo_environment(settings_home: str | None) -> None:
    """`--demo`: the example services, the local report store, a home under the cwd."""
    os.environ["OMICSFLOW_SERVICES"] = str(EXAMPLES_DIR / "services.toml")
    os.environ["OMICSFLOW_REPORT_STORE"] = "local"
    if settings_home:
        os.environ["OMICSFLOW_HOME"] = settings_home
    get_settings.cache_clear()


def ensure_prefect_objects(settings: Settings) -> None:
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:
        client.upsert_global_concurrency_limit_by_name(
            settings.local_pipelines_limit, settings.effective_max_workers
        )


def sweep_scratch(rt: Runtime) -> None:
    from omicsflow.sandbox.runner import PipelineRunner

    running = {str(r.id) for r in rt.ledger.list_runs(state="running", limit=100000)}
    removed = PipelineRunner(rt.settings.scratch_dir).sweep_orphans(running)
    if removed:
        log.info("swept %d orphaned scratch dirs", len(removed))


def start_webhook(settings: Settings, rt: Runtime, poller: RemotePoller) -> WebhookServer | None:
    """The EventBridge push endpoint, when a port and a shared secret are configured."""
    if settings.webhook_port is None:
        return None
    if settings.webhook_secret is None or not settings.webhook_secret.get_secret_value():
        log.error("OMICSFLOW_WEBHOOK_PORT is set but OMICSFLOW_WEBHOOK_SECRET is not: webhook off")
        return None
    from omicsflow.http.webhook import PATH, WebhookServer

    def on_run(run_id: str) -> bool:
        tracked = rt.ledger.by_backend_run_id("healthomics", run_id) is not None
        if tracked:
            poller.trigger(run_id)
        return tracked

    hook = WebhookServer(
        settings.webhook_host,
        settings.webhook_port,
        settings.webhook_secret.get_secret_value(),
        on_run,
    )
    hook.start()
    log.info("HealthOmics webhook: http://%s:%d%s", settings.webhook_host, hook.port, PATH)
    return hook


class _Stop(Exception):
    pass


def _raise_stop(signum: int, frame: FrameType | None) -> None:
    raise _Stop()


def serve(demo: bool = False, port: int | None = None, home: str | None = None) -> int:
    if demo:
        demo_environment(home)
    elif home:
        os.environ["OMICSFLOW_HOME"] = home
        get_settings.cache_clear()
    settings = get_settings()
    settings.home.mkdir(parents=True, exist_ok=True)
    server: EmbeddedPrefectServer | None = None
    if not os.environ.get("PREFECT_API_URL"):
        server = EmbeddedPrefectServer(settings.home, port or settings.prefect_port)
        log.info("starting the embedded Prefect server on %s", server.ui_url)
        server.start()
        os.environ["PREFECT_API_URL"] = server.api_url
    # Flow-run processes inherit the environment: pin what they must agree on.
    os.environ["OMICSFLOW_HOME"] = str(settings.home)
    os.environ["PREFECT_RUNNER_POLL_FREQUENCY"] = str(max(1, int(settings.runner_poll_seconds)))
    write_serve_file(
        settings.home,
        {
            "PREFECT_API_URL": os.environ["PREFECT_API_URL"],
            "OMICSFLOW_SERVICES": str(settings.services or ""),
            "OMICSFLOW_REPORT_STORE": settings.report_store,
            "OMICSFLOW_DATABASE_URL": settings.ledger_url,
        },
    )

    # Prefect reads its settings once, at import, and threads do not inherit a
    # temporary_settings context: the environment above must be final before that import.
    if "prefect" in sys.modules:
        raise RuntimeError("internal: Prefect was imported before serve configured it")
    return _serve(settings, server)


def _serve(settings: Settings, server: EmbeddedPrefectServer | None) -> int:
    from prefect.runner import Runner

    from deployments.enrichment import enrichment_deployment_kwargs
    from deployments.intake_loop import IntakeLoop
    from deployments.maintenance import Maintenance
    from deployments.poller import RemotePoller
    from flows.attempt import attempt_flow
    from flows.enrich import enrich_flow
    from omicsflow.runtime import get_runtime

    loop: IntakeLoop | None = None
    maintenance: Maintenance | None = None
    poller: RemotePoller | None = None
    webhook = None
    signal.signal(signal.SIGTERM, _raise_stop)
    try:
        rt = get_runtime()
        ensure_prefect_objects(settings)
        sweep_scratch(rt)
        runner = Runner(
            name="omicsflow",
            limit=settings.runner_limit,
            query_seconds=settings.runner_poll_seconds,
            prefetch_seconds=10,
            pause_on_shutdown=False,
        )
        runner.add_flow(attempt_flow, name=settings.attempt_deployment, tags=["omicsflow"])
        runner.add_flow(enrich_flow, **enrichment_deployment_kwargs(settings))
        resumed = threading.Event()
        resumed.set()
        maintenance = Maintenance(rt, resumed)
        maintenance.start()
        loop = IntakeLoop(rt.store, rt.ledger, rt.services, resumed, settings.intake_workers)
        loop.start()
        poller = RemotePoller(rt, settings.remote_poll_seconds)
        poller.start()
        webhook = start_webhook(settings, rt, poller)
        if server is not None:
            log.info("Prefect UI: %s", server.ui_url)
        log.info(
            "omicsflow serving: store=%s services=%s max_workers=%d sandbox=%s",
            settings.report_store,
            settings.services,
            settings.effective_max_workers,
            "on" if settings.sandbox_enabled else "off",
        )
        asyncio.run(runner.start())
    except (KeyboardInterrupt, _Stop):
        log.info("stopping")
    finally:
        if webhook is not None:
            webhook.stop()
        if poller is not None:
            poller.stop()
        if loop is not None:
            loop.stop()
        if maintenance is not None:
            maintenance.stop()
        if server is not None:
            server.stop()
    return 0

"""`omicsflow doctor`: each check says what it looked at and what is wrong."""

from __future__ import annotations

import os
from collections.abc import Iterator

import httpx
from sqlalchemy import text

from omicsflow.errors import OmicsflowError
from omicsflow.settings import get_settings

Check = tuple[str, bool, str]


def run_checks() -> Iterator[Check]:
    settings = get_settings()
    api = os.environ.get("PREFECT_API_URL")
    if not api:
        yield ("prefect api", False, "PREFECT_API_URL is unset and no serve.json in this home")
    else:
        try:
            r = httpx.get(f"{api.rstrip('/')}/health", timeout=5)
            yield ("prefect api", r.status_code == 200, f"{api} answered {r.status_code}")
        except httpx.HTTPError as exc:
            yield ("prefect api", False, f"{api}: {type(exc).__name__}")

    from ledger.db import make_engine

    engine = make_engine(settings.ledger_url)
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        yield ("database", True, engine.url.render_as_string(hide_password=True))
    except Exception as exc:
        yield ("database", False, f"{engine.url.render_as_string(hide_password=True)}: {exc}")
        return

    try:
        from omicsflow.runtime import build_runtime

        rt = build_runtime(settings)
    except OmicsflowError as exc:
        yield ("services file", False, str(exc))
        return
    yield ("services file", True, f"{rt.services.path}: {', '.join(sorted(rt.services.services))}")
    reachable = rt.store.check_connectivity(timeout_seconds=5)
    yield (
        "report store",
        reachable,
        f"{settings.report_store} {'reachable' if reachable else 'unreachable'}",
    )

    from omicsflow.sandbox.bwrap import bwrap_available

    if settings.sandbox_enabled:
        ok, detail = bwrap_available(settings.bwrap)
        yield ("sandbox (bwrap)", ok, detail)
    else:
        yield ("sandbox (bwrap)", True, "disabled: pipelines run directly, one at a time")
    rt.close()

"""The per-process wiring: settings, ledger, report store and services, built once."""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass

from ledger.db import make_engine, upgrade
from ledger.repo import Ledger
from omicsflow.errors import ConfigError
from omicsflow.services import ServicesFile, load_services
from omicsflow.settings import Settings, get_settings
from omicsflow.stores.base import ReportStore


@dataclass
class Runtime:
    settings: Settings
    ledger: Ledger
    store: ReportStore
    services: ServicesFile

    def close(self) -> None:
        self.store.close()
        self.ledger.engine.dispose()


def make_store(settings: Settings, ledger: Ledger) -> ReportStore:
    if settings.report_store == "firestore":
        from omicsflow.stores.firestore import FirestoreReportStore

        project = os.environ.get("GOOGLE_CLOUD_PROJECT")
        if not project:
            raise ConfigError("OMICSFLOW_REPORT_STORE=firestore needs GOOGLE_CLOUD_PROJECT")
        return FirestoreReportStore(project=project, collection=settings.firestore_collection)
    from omicsflow.stores.local import LocalReportStore

    return LocalReportStore(ledger.engine)


def services_path(settings: Settings) -> ServicesFile:
    if settings.services is None:
        raise ConfigError(
            "no services file: set OMICSFLOW_SERVICES (or use `omicsflow serve --demo`)"
        )
    return load_services(settings.services)


def build_runtime(settings: Settings | None = None, migrate: bool = True) -> Runtime:
    settings = settings or get_settings()
    engine = make_engine(settings.ledger_url)
    if migrate:
        upgrade(engine)
    ledger = Ledger(engine)
    return Runtime(settings, ledger, make_store(settings, ledger), services_path(settings))


_lock = threading.Lock()
_runtime: Runtime | None = None


def get_runtime() -> Runtime:
    """The process's runtime; flow-run processes build theirs from the inherited environment."""
    global _runtime
    with _lock:
        if _runtime is None:
            _runtime = build_runtime()
        return _runtime


def reset_runtime() -> None:
    global _runtime
    with _lock:
        if _runtime is not None:
            _runtime.close()
        _runtime = None

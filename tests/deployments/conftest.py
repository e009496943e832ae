"""End-to-end fixtures: a real Prefect server (one per session), `omicsflow serve` as a
subprocess per test, the real ledger and report store read from the test process."""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from ledger.db import make_engine, upgrade
from ledger.repo import Ledger
from omicsflow.stores.base import ReportStore
from omicsflow.stores.firestore import FirestoreReportStore
from omicsflow.stores.local import LocalReportStore
from tests.support.firestore_emulator import FirestoreEmulator
from tests.support.prefect_server import PrefectServer
from tests.support.serve_process import ServeProcess

PIPELINE = Path(__file__).parent / "pipelines" / "behave.sh"
# Outside /tmp: the sandbox gives pipelines a private /tmp, and CONTROL files must be visible.
E2E_ROOT = Path("/var/tmp/omicsflow-tests")

SERVICES = """
[services.behave]
backend = "local"
command = ["bash", "{pipeline}"]
cooldown_seconds = {cooldown}
max_retries = 2
retry_delay_seconds = 1
temp_fail_exit_code = 75
temp_fail_retry_delay_seconds = 1
failed_sync_retry_delay_seconds = 3600
max_system_retries = 1
system_retry_delay_seconds = 1
timeout_seconds = 600
env = {{ base_dir = "LOMI_BASE_DIR", user_dir = "LOMI_USER_DIR" }}
environment = {{ CONTROL = "{control}" }}

[services.behave1]
backend = "local"
command = ["bash", "{pipeline}"]
max_retries = 1
temp_fail_exit_code = 75
failed_sync_retry_delay_seconds = 3600
max_system_retries = 0
env = {{ base_dir = "LOMI_BASE_DIR", user_dir = "LOMI_USER_DIR" }}
environment = {{ CONTROL = "{control}" }}

[services.enrich1]
backend = "local"
command = ["bash", "{pipeline}"]
max_retries = 1
max_system_retries = 0
env = {{ base_dir = "LOMI_BASE_DIR", user_dir = "LOMI_USER_DIR" }}
environment = {{ CONTROL = "{control}" }}

[services.cooling]
backend = "local"
command = ["bash", "{pipeline}"]
cooldown_seconds = 3600
env = {{ base_dir = "LOMI_BASE_DIR", user_dir = "LOMI_USER_DIR" }}
environment = {{ CONTROL = "{control}" }}
"""


@pytest.fixture
def emulator(tmp_path: Path) -> Iterator[FirestoreEmulator]:
    """A Firestore emulator of the test's own (outage tests stop and restart it)."""
    em = FirestoreEmulator(log_path=tmp_path / "emulator.log")
    em.start()
    yield em
    em.stop()


@dataclass
class Deployment:
    """One omicsflow installation under test: its home, env, ledger and serve process."""

    home: Path
    control: Path
    env: dict[str, str]
    ledger: Ledger
    serve: ServeProcess

    def restart(self) -> None:
        self.serve = ServeProcess(self.env, self.home / "serve.log")
        self.serve.start()


@pytest.fixture
def e2e_dir() -> Iterator[Path]:
    path = E2E_ROOT / uuid.uuid4().hex[:12]
    path.mkdir(parents=True)
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def omicsflow(
    prefect_server: PrefectServer, e2e_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Callable[..., Deployment]]:
    started: list[Deployment] = []

    def make(
        store: str = "local",
        extra_env: dict[str, str] | None = None,
        start: bool = True,
        cooldown: int = 0,
        firestore: FirestoreEmulator | None = None,
    ) -> Deployment:
        home = e2e_dir / "home"
        control = e2e_dir / "control"
        control.mkdir(exist_ok=True)
        services = e2e_dir / "services.toml"
        services.write_text(SERVICES.format(pipeline=PIPELINE, control=control, cooldown=cooldown))
        instance = f"t{uuid.uuid4().hex[:10]}"
        env = {
            **_base_env(),
            "PREFECT_API_URL": prefect_server.api_url,
            "OMICSFLOW_HOME": str(home),
            "OMICSFLOW_SERVICES": str(services),
            "OMICSFLOW_REPORT_STORE": store,
            "OMICSFLOW_INSTANCE": instance,
            "OMICSFLOW_HEARTBEAT_SECONDS": "1",
            "OMICSFLOW_STALE_AFTER_SECONDS": "10",
            "OMICSFLOW_RECOVERY_INTERVAL_SECONDS": "1",
            "OMICSFLOW_OUTBOX_INTERVAL_SECONDS": "0.5",
            "OMICSFLOW_CANCEL_GRACE_SECONDS": "0.3",
            "OMICSFLOW_MAX_WORKERS": "2",
            **(extra_env or {}),
        }
        if firestore is not None:
            env.update(
                {
                    "FIRESTORE_EMULATOR_HOST": firestore.host,
                    "GOOGLE_CLOUD_PROJECT": firestore.project,
                    "OMICSFLOW_FIRESTORE_COLLECTION": f"reports-{instance}",
                }
            )
        # The test process talks to the same Prefect server, ledger and store.
        for key, value in env.items():
            monkeypatch.setenv(key, value)
        from omicsflow.settings import get_settings

        get_settings.cache_clear()
        engine = make_engine(f"sqlite:///{home / 'omicsflow.db'}")
        upgrade(engine)
        dep = Deployment(
            home, control, env, Ledger(engine), ServeProcess(env, e2e_dir / "serve.log")
        )
        if start:
            dep.serve.start()
        started.append(dep)
        return dep

    yield make
    for dep in started:
        dep.serve.stop()
        dep.serve.kill_everything()
        dep.ledger.engine.dispose()


def _base_env() -> dict[str, str]:
    import os

    keep = (
        "PATH",
        "HOME",
        "LANG",
        "LC_ALL",
        "TZ",
        "USER",
        "VIRTUAL_ENV",
        "FIRESTORE_EMULATOR_HOST",
        "GOOGLE_CLOUD_PROJECT",
    )
    return {k: os.environ[k] for k in keep if k in os.environ}


@dataclass
class Lab:
    """A deployment plus the report store its reports live in (local or Firestore)."""

    dep: Deployment
    store: ReportStore


@pytest.fixture(params=["local", "firestore"])
def lab(request: pytest.FixtureRequest, omicsflow: Callable[..., Deployment]) -> Lab:
    if request.param == "local":
        dep = omicsflow()
        return Lab(dep, LocalReportStore(dep.ledger.engine))
    em: FirestoreEmulator = request.getfixturevalue("emulator")
    dep = omicsflow(store="firestore", firestore=em)
    collection = dep.env["OMICSFLOW_FIRESTORE_COLLECTION"]
    store = FirestoreReportStore(em.project, collection, client=em.client(), write_timeout=3)
    return Lab(dep, store)

"""Fixtures for the report-store contract tests: each store on a fresh, private namespace.

- local on SQLite: a file database in tmp_path (the ledger's engine settings).
- local on PostgreSQL: a schema of its own per test, so parallel runs never collide.
- firestore: a collection of its own per test on one session-wide emulator.
"""

from __future__ import annotations

import queue
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from sqlalchemy import Engine, create_engine, text
from sqlmodel import SQLModel

import omicsflow.stores.local_tables  # noqa: F401  (registers the tables on the metadata)
from ledger.db import make_engine
from omicsflow.stores.base import ChangeKind, ReportEvent, ReportStore
from omicsflow.stores.firestore import FirestoreReportStore
from omicsflow.stores.local import LocalReportStore
from tests.support.firestore_emulator import FirestoreEmulator

POSTGRES_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"

# Short enough that an outage shows within a test's patience, long enough for a loaded CI box.
FIRESTORE_WRITE_TIMEOUT = 2.0


@pytest.fixture(scope="session")
def firestore_emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FirestoreEmulator]:
    """One emulator for the session; installs it first on a clean machine."""
    log = tmp_path_factory.mktemp("firestore-emulator") / "emulator.log"
    emulator = FirestoreEmulator(log_path=log)
    emulator.start()
    try:
        yield emulator
    finally:
        emulator.stop()


@pytest.fixture
def private_emulator(tmp_path: Path) -> Iterator[FirestoreEmulator]:
    """An emulator of the test's own, for tests that stop and restart it."""
    emulator = FirestoreEmulator(log_path=tmp_path / "emulator.log")
    emulator.start()
    try:
        yield emulator
    finally:
        emulator.stop()


def firestore_store(emulator: FirestoreEmulator) -> FirestoreReportStore:
    return FirestoreReportStore(
        emulator.project,
        collection=f"reports-{uuid.uuid4().hex[:8]}",
        client=emulator.client(),
        write_timeout=FIRESTORE_WRITE_TIMEOUT,
        resubscribe_initial_delay=0.1,
        resubscribe_max_delay=1.0,
    )


@pytest.fixture
def sqlite_engine(tmp_path: Path) -> Iterator[Engine]:
    engine = make_engine(f"sqlite:///{tmp_path / 'ledger.db'}")
    SQLModel.metadata.create_all(engine)
    try:
        yield engine
    finally:
        engine.dispose()


@pytest.fixture
def postgres_engine() -> Iterator[Engine]:
    schema = f"stores_{uuid.uuid4().hex[:10]}"
    admin = create_engine(POSTGRES_URL)
    try:
        with admin.begin() as conn:
            conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    except Exception as exc:  # no server: say so instead of erroring every test
        admin.dispose()
        pytest.skip(f"PostgreSQL not reachable at {POSTGRES_URL}: {exc}")
    # Unqualified table names resolve to the test's schema, in DDL and in every query.
    engine = create_engine(POSTGRES_URL, execution_options={"schema_translate_map": {None: schema}})
    SQLModel.metadata.create_all(engine)
    try:
        yield engine
    finally:
        engine.dispose()
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


@pytest.fixture(
    params=[
        "local-sqlite",
        pytest.param("local-postgres", marks=pytest.mark.postgres),
        pytest.param("firestore", marks=pytest.mark.integration),
    ]
)
def store(request: pytest.FixtureRequest) -> Iterator[ReportStore]:
    kind: str = request.param
    s: ReportStore
    if kind == "firestore":
        s = firestore_store(request.getfixturevalue("firestore_emulator"))
    else:
        engine_fixture = "sqlite_engine" if kind == "local-sqlite" else "postgres_engine"
        s = LocalReportStore(request.getfixturevalue(engine_fixture), poll_interval=0.05)
    try:
        yield s
    finally:
        s.close()


@dataclass
class Recorder:
    """Collects a watch's callbacks; tests wait on it with timeouts, never with sleeps."""

    events: queue.Queue[ReportEvent] = field(default_factory=queue.Queue)
    errors: queue.Queue[BaseException] = field(default_factory=queue.Queue)
    seen: list[ReportEvent] = field(default_factory=list)

    def on_event(self, event: ReportEvent) -> None:
        self.events.put(event)

    def on_error(self, error: BaseException) -> None:
        self.errors.put(error)

    def wait_for(self, kind: ChangeKind, report_id: str, timeout: float = 10.0) -> ReportEvent:
        """The next event of that kind for that report; the events before it are in `seen`."""
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"no {kind.value} for {report_id} in {timeout}s: {self.seen}")
            try:
                event = self.events.get(timeout=remaining)
            except queue.Empty:
                continue
            if event.kind == kind and event.report_id == report_id:
                return event
            self.seen.append(event)

    def wait_error(self, timeout: float = 10.0) -> BaseException:
        try:
            return self.errors.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError(f"no error reported within {timeout}s") from None


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()

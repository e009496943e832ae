"""The ledger on SQLite and PostgreSQL: the database itself keeps one active row per report,
and every state change is a guarded, atomic UPDATE."""

from __future__ import annotations

import multiprocessing
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, inspect, text
from sqlalchemy.exc import IntegrityError

from ledger.db import make_engine, upgrade
from ledger.models import Run
from ledger.repo import Ledger
from omicsflow.domain.routing import NextRow
from omicsflow.domain.states import (
    ACTIVE_STATES,
    TERMINAL_FAILURE_STATES,
    IllegalTransition,
    RunState,
)

POSTGRES_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
SESSION_TAG = uuid.uuid4().hex[:8]
NOW = datetime(2026, 5, 1, 8, 0, tzinfo=UTC)
S = RunState


def pg_engine(schema: str) -> Engine:
    return make_engine(POSTGRES_URL, connect_args={"options": f"-csearch_path={schema}"})


def _create_schema() -> str:
    schema = f"ledger_{SESSION_TAG}_{uuid.uuid4().hex[:8]}"
    admin = make_engine(POSTGRES_URL)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    admin.dispose()
    return schema


def _drop_schema(schema: str) -> None:
    admin = make_engine(POSTGRES_URL)
    with admin.begin() as conn:
        conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
    admin.dispose()


@pytest.fixture
def pg_schema() -> Iterator[str]:
    schema = _create_schema()
    try:
        yield schema
    finally:
        _drop_schema(schema)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    if request.param == "sqlite":
        eng = make_engine(f"sqlite:///{tmp_path / 'ledger.db'}")
        upgrade(eng)
        try:
            yield eng
        finally:
            eng.dispose()
        return
    schema = request.getfixturevalue("pg_schema")
    eng = pg_engine(schema)
    upgrade(eng)
    try:
        yield eng
    finally:
        eng.dispose()


@pytest.fixture
def ledger(engine: Engine) -> Ledger:
    return Ledger(engine)


def new_run(report_id: str = "rpt-1", state: RunState = S.QUEUED, **kw: object) -> Run:
    return Run(report_id=report_id, service="wgs-qc", state=state.value, **kw)  # type: ignore[arg-type]


def created(ledger: Ledger, row: Run) -> Run:
    got = ledger.create_run(row)
    assert got is not None and got.id is not None
    return got


def running(ledger: Ledger, report_id: str = "rpt-1") -> Run:
    row = created(ledger, new_run(report_id))
    assert row.id is not None
    assert ledger.claim(row.id, "flow-1", NOW)
    return row


def next_row(attempt: int = 2, seq: int = 0, generation: int = 1) -> NextRow:
    return NextRow(generation, attempt, seq, 0, NOW + timedelta(minutes=10), "retry")


def active_count(ledger: Ledger, report_id: str) -> int:
    return sum(1 for r in ledger.rows_for_report(report_id) if RunState(r.state) in ACTIVE_STATES)


# ---------------------------------------------------------------------------- migrations


def test_migrations_run_twice_without_change(engine: Engine) -> None:
    before = sorted(inspect(engine).get_table_names())
    upgrade(engine)  # the fixture already ran it once
    upgrade(engine)
    assert sorted(inspect(engine).get_table_names()) == before
    expected = {"runs", "pending_store_writes", "audit_log", "intake_rejections", "system_flags"}
    assert expected <= set(before)
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM alembic_version")).scalar_one() == 1
    indexes = {ix["name"]: ix for ix in inspect(engine).get_indexes("runs")}
    assert indexes["uq_runs_one_active_per_report"]["unique"]


def test_migrations_keep_existing_rows(ledger: Ledger, engine: Engine) -> None:
    row = created(ledger, new_run())
    upgrade(engine)
    assert row.id is not None
    got = ledger.get(row.id)
    assert got is not None and got.state == "queued"


# ----------------------------------------------------------------- one active row per report


@pytest.mark.parametrize("first", sorted(ACTIVE_STATES))
@pytest.mark.parametrize("second", [S.QUEUED, S.WAITING_COOLDOWN, S.RUNNING])
def test_second_active_row_for_a_report_is_refused(
    ledger: Ledger, first: RunState, second: RunState
) -> None:
    created(ledger, new_run(state=first))
    dup = ledger.create_run(new_run(state=second, generation=2))
    assert dup is None
    assert active_count(ledger, "rpt-1") == 1


def test_other_reports_are_not_affected(ledger: Ledger) -> None:
    created(ledger, new_run("rpt-1"))
    created(ledger, new_run("rpt-2"))
    assert active_count(ledger, "rpt-1") == active_count(ledger, "rpt-2") == 1


@pytest.mark.parametrize("terminal", sorted(TERMINAL_FAILURE_STATES))
def test_second_row_is_allowed_once_the_first_is_terminal(
    ledger: Ledger, terminal: RunState
) -> None:
    first = running(ledger)
    assert first.id is not None
    moved, _ = ledger.transition(first.id, terminal, [S.RUNNING], finished_at=NOW)
    assert moved
    second = ledger.create_run(new_run(generation=2))
    assert second is not None
    assert [r.state for r in ledger.rows_for_report("rpt-1")] == [terminal.value, "queued"]
    assert ledger.active_for_report("rpt-1") == second


def test_same_position_twice_is_refused_even_when_not_active(ledger: Ledger) -> None:
    created(ledger, new_run(state=S.SUCCEEDED))
    assert ledger.create_run(new_run(state=S.SUCCEEDED)) is None
    assert len(ledger.rows_for_report("rpt-1")) == 1


def test_create_run_after_a_refusal_still_works(ledger: Ledger) -> None:
    created(ledger, new_run())
    assert ledger.create_run(new_run(generation=2)) is None
    assert ledger.create_run(new_run("rpt-2")) is not None


# ----------------------------------------------------------------------------- transitions


@pytest.mark.parametrize(
    ("src", "dst"),
    [
        (S.SUCCEEDED, S.RUNNING),
        (S.QUEUED, S.SUCCEEDED),
        (S.RUNNING, S.QUEUED),
        (S.FAILED_PERMANENT, S.QUEUED),
        (S.QUEUED, S.FAILED_RETRYING),
    ],
)
def test_transition_refuses_illegal_moves(ledger: Ledger, src: RunState, dst: RunState) -> None:
    row = created(ledger, new_run(state=src))
    assert row.id is not None
    with pytest.raises(IllegalTransition):
        ledger.transition(row.id, dst, [src])
    got = ledger.get(row.id)
    assert got is not None and got.state == src.value


def test_transition_moves_a_row_and_sets_fields(ledger: Ledger) -> None:
    row = running(ledger)
    assert row.id is not None
    moved, successor = ledger.transition(
        row.id, S.SUCCEEDED, [S.RUNNING], finished_at=NOW, reason="ok"
    )
    assert (moved, successor) == (True, None)
    got = ledger.get(row.id)
    assert got is not None
    assert (got.state, got.reason, got.finished_at) == ("succeeded", "ok", NOW)


def test_transition_is_a_no_op_when_the_row_already_moved(ledger: Ledger) -> None:
    row = running(ledger)
    assert row.id is not None
    assert ledger.transition(row.id, S.CANCELLED, [S.RUNNING], reason="operator")[0]
    # The pipeline's late result loses: no state change, no successor, no field change.
    moved, successor = ledger.transition(
        row.id, S.FAILED_RETRYING, [S.RUNNING], next_row=next_row(), reason="late"
    )
    assert (moved, successor) == (False, None)
    got = ledger.get(row.id)
    assert got is not None and (got.state, got.reason) == ("cancelled", "operator")
    assert len(ledger.rows_for_report("rpt-1")) == 1


def test_claim_happens_once(ledger: Ledger) -> None:
    row = created(ledger, new_run())
    assert row.id is not None
    assert ledger.claim(row.id, "flow-a", NOW) is True
    assert ledger.claim(row.id, "flow-b", NOW) is False
    got = ledger.get(row.id)
    assert got is not None
    assert (got.state, got.flow_run_id, got.started_at) == ("running", "flow-a", NOW)


def test_transition_inserts_the_successor_with_the_same_report_data(ledger: Ledger) -> None:
    row = created(ledger, new_run(report_data={"sample": "S1"}, backend="local"))
    assert row.id is not None and ledger.claim(row.id, None, NOW)
    moved, successor = ledger.transition(row.id, S.FAILED_RETRYING, [S.RUNNING], next_row())
    assert moved and successor is not None and successor.id is not None
    assert (successor.generation, successor.attempt, successor.seq) == (1, 2, 0)
    assert successor.state == "waiting_cooldown"
    assert successor.scheduled_run_at == NOW + timedelta(minutes=10)
    assert successor.report_data == {"sample": "S1"}
    assert ledger.active_for_report("rpt-1") == ledger.get(successor.id)


def test_successor_is_inserted_atomically_with_the_move(ledger: Ledger) -> None:
    row = running(ledger)
    assert row.id is not None
    # A row already holds the successor's position: the insert must fail, and so must the move.
    created(ledger, new_run(state=S.SUCCEEDED, attempt=2, seq=0, report_id="rpt-1"))
    with pytest.raises(IntegrityError):
        ledger.transition(row.id, S.FAILED_RETRYING, [S.RUNNING], next_row(attempt=2, seq=0))
    got = ledger.get(row.id)
    assert got is not None and got.state == "running"
    assert len(ledger.rows_for_report("rpt-1")) == 2
    # Nothing was half-done: the row can still be finished properly.
    moved, successor = ledger.transition(
        row.id, S.FAILED_RETRYING, [S.RUNNING], next_row(attempt=3, seq=0)
    )
    assert moved and successor is not None


# ---------------------------------------------------------------------------------- outbox


def test_outbox_add_is_idempotent_per_run(ledger: Ledger) -> None:
    row = running(ledger)
    assert row.id is not None
    first = ledger.add_pending_write(row.id, "rpt-1", S.FAILED_PERMANENT, {"failureReason": "a"})
    again = ledger.add_pending_write(row.id, "rpt-1", S.SYSTEM_ERROR, {"failureReason": "b"})
    assert again.id == first.id
    assert [(p.run_id, p.target_state, p.fields) for p in ledger.pending_writes()] == [
        (row.id, "failed_permanent", {"failureReason": "a"})
    ]


def test_outbox_failure_notes_and_drop(ledger: Ledger) -> None:
    row = running(ledger)
    assert row.id is not None
    pw = ledger.add_pending_write(row.id, "rpt-1", S.FAILED_PERMANENT, {})
    assert pw.id is not None
    ledger.note_write_failure(pw.id, "unavailable")
    ledger.note_write_failure(pw.id, "still unavailable")
    got = ledger.pending_write_for(row.id)
    assert got is not None and (got.tries, got.last_error) == (2, "still unavailable")
    ledger.drop_pending_write(row.id)
    assert ledger.pending_write_for(row.id) is None
    ledger.drop_pending_write(row.id)  # dropping twice is harmless


def test_stale_running_excludes_rows_with_a_pending_write(ledger: Ledger) -> None:
    old = NOW - timedelta(hours=2)
    a = running(ledger, "rpt-a")
    b = running(ledger, "rpt-b")
    fresh = running(ledger, "rpt-fresh")
    assert a.id is not None and b.id is not None and fresh.id is not None
    ledger.update_fields(a.id, heartbeat_at=old)
    ledger.update_fields(b.id, heartbeat_at=old)
    ledger.update_fields(fresh.id, heartbeat_at=NOW)
    cutoff = NOW - timedelta(hours=1)
    assert {r.id for r in ledger.stale_running(cutoff, ["local"])} == {a.id, b.id}
    ledger.add_pending_write(b.id, "rpt-b", S.FAILED_PERMANENT, {})
    assert [r.id for r in ledger.stale_running(cutoff, ["local"])] == [a.id]
    # Remote backends hold no process and are never "stale" here.
    assert ledger.stale_running(cutoff, ["healthomics"]) == []


# ----------------------------------------------------------------------------- flags, audit


def test_flags_set_read_clear(ledger: Ledger) -> None:
    assert ledger.get_flag("report_store_outage") is None
    ledger.set_flag("report_store_outage", "since now")
    ledger.set_flag("report_store_outage", "since later")
    assert ledger.get_flag("report_store_outage") == "since later"
    ledger.set_flag("report_store_outage", None)
    assert ledger.get_flag("report_store_outage") is None


def test_audit_and_rejections_are_recorded(ledger: Ledger) -> None:
    ledger.audit("alice@lab", "cancel", "ok", run_id=1, report_id="rpt-1", detail="by UI")
    (entry,) = ledger.audit_entries()
    assert (entry.actor, entry.command, entry.result, entry.report_id) == (
        "alice@lab",
        "cancel",
        "ok",
        "rpt-1",
    )
    ledger.reject("../x", "unsafe id", {"service": "wgs-qc"})
    (rej,) = ledger.rejections()
    assert (rej.report_id, rej.reason) == ("../x", "unsafe id")
    assert rej.document is not None and "wgs-qc" in rej.document


# ----------------------------------------------------------------------- race on PostgreSQL

RACE_REPORTS = 200


def _race_worker(schema: str, start: Any, out: Any) -> None:
    eng = pg_engine(schema)
    ledger = Ledger(eng)
    won: list[str] = []
    try:
        start.wait(timeout=60)
        for i in range(RACE_REPORTS):
            rid = f"race-{i:03d}"
            if ledger.create_run(Run(report_id=rid, service="wgs-qc", state="queued")) is not None:
                won.append(rid)
        out.put(("ok", won))
    except BaseException as exc:  # report, never hang the parent
        out.put(("error", repr(exc)))
    finally:
        eng.dispose()


@pytest.mark.postgres
def test_two_processes_racing_on_the_same_reports_create_exactly_one_row_each(
    pg_schema: str,
) -> None:
    eng = pg_engine(pg_schema)
    upgrade(eng)
    ctx = multiprocessing.get_context("spawn")
    start = ctx.Event()
    out = ctx.Queue()
    procs = [ctx.Process(target=_race_worker, args=(pg_schema, start, out)) for _ in range(2)]
    for p in procs:
        p.start()
    start.set()
    results = [out.get(timeout=120) for _ in procs]
    for p in procs:
        p.join(timeout=60)
        assert p.exitcode == 0
    assert all(kind == "ok" for kind, _ in results), results
    wins = [set(won) for _, won in results]
    assert wins[0].isdisjoint(wins[1])  # nobody believes it created a row the other created
    assert len(wins[0]) + len(wins[1]) == RACE_REPORTS  # and none lost
    with eng.connect() as conn:
        rows = conn.execute(
            text("SELECT report_id, count(*) FROM runs GROUP BY report_id ORDER BY report_id")
        ).all()
    eng.dispose()
    assert rows == [(f"race-{i:03d}", 1) for i in range(RACE_REPORTS)]

"""Outcome routing: which row comes next after an attempt, and which budget it spends."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine

from classifiers.taxonomy import ErrorType
from ledger.db import make_engine, upgrade
from ledger.models import Run
from ledger.repo import Ledger
from omicsflow.domain.routing import (
    CANCELLED_REASON,
    AttemptPosition,
    Decision,
    Outcome,
    OutcomeKind,
    route,
    sync_retry_row,
)
from omicsflow.domain.states import RunState, can_transition
from omicsflow.lifecycle.finish import finish_attempt
from omicsflow.services import ServicePolicy
from omicsflow.stores.base import DATA_READY, FAILED
from omicsflow.stores.local import LocalReportStore

NOW = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
POLICY = ServicePolicy(
    max_retries=3,
    retry_delay_seconds=600,
    temp_fail_retry_delay_seconds=3600,
    failed_sync_retry_delay_seconds=86400,
    max_system_retries=3,
    system_retry_delay_seconds=300,
)

OK = Outcome(OutcomeKind.SUCCEEDED)
TEMP = Outcome(OutcomeKind.TEMP_FAILED, reason="input not there yet")
USER = Outcome(OutcomeKind.FAILED, ErrorType.USER, "bad sample sheet")
SYSTEM = Outcome(OutcomeKind.FAILED, ErrorType.SYSTEM, "spot instance reclaimed")
CANCEL = Outcome(OutcomeKind.CANCELLED)


def pos(
    attempt: int = 1, seq: int = 0, system_retries: int = 0, generation: int = 1
) -> AttemptPosition:
    return AttemptPosition(generation, attempt, seq, system_retries)


def step(p: AttemptPosition, d: Decision) -> AttemptPosition:
    assert d.next_row is not None
    n = d.next_row
    return AttemptPosition(n.generation, n.attempt, n.seq, n.system_retries)


# ------------------------------------------------------------------------- success/cancel


def test_success_ends_the_series_without_a_store_write() -> None:
    d = route(pos(), OK, POLICY, NOW)
    assert d.state is RunState.SUCCEEDED
    assert d.next_row is None
    assert d.write_store is False


def test_cancel_ends_the_series_and_tells_the_store() -> None:
    d = route(pos(attempt=2), CANCEL, POLICY, NOW)
    assert d.state is RunState.CANCELLED
    assert d.next_row is None
    assert d.write_store is True
    assert d.reason == CANCELLED_REASON


def test_cancel_keeps_an_explicit_reason() -> None:
    d = route(pos(), Outcome(OutcomeKind.CANCELLED, reason="withdrawn"), POLICY, NOW)
    assert d.reason == "withdrawn"


# ----------------------------------------------------------------------------- temp fail


def test_temp_fail_keeps_the_attempt_number_and_bumps_seq() -> None:
    d = route(pos(attempt=2, seq=4, system_retries=1), TEMP, POLICY, NOW)
    assert d.state is RunState.TEMP_FAILED
    assert d.write_store is False
    assert d.next_row is not None
    assert (d.next_row.generation, d.next_row.attempt, d.next_row.seq) == (1, 2, 5)
    assert d.next_row.system_retries == 1
    assert d.next_row.scheduled_at == NOW + timedelta(seconds=3600)
    assert d.next_row.notes == "temp_fail_retry"


def test_temp_fails_never_consume_a_retry_even_far_past_max_retries() -> None:
    p = pos(attempt=POLICY.max_retries)  # the last user retry
    for _ in range(50):
        d = route(p, TEMP, POLICY, NOW)
        assert d.state is RunState.TEMP_FAILED
        p = step(p, d)
    assert p.attempt == POLICY.max_retries
    # The last attempt is still the last, not past it: one user failure ends it.
    assert route(p, USER, POLICY, NOW).state is RunState.FAILED_PERMANENT


# ---------------------------------------------------------------------------- user fail


def test_user_failure_schedules_the_next_attempt_after_retry_delay() -> None:
    d = route(pos(attempt=1, seq=3), USER, POLICY, NOW)
    assert d.state is RunState.FAILED_RETRYING
    assert d.write_store is False
    assert d.next_row is not None
    assert (d.next_row.attempt, d.next_row.seq) == (2, 0)
    assert d.next_row.scheduled_at == NOW + timedelta(seconds=600)
    assert d.next_row.notes == "retry"
    assert d.reason == "bad sample sheet"


def test_third_user_failure_with_three_retries_is_terminal_and_writes_the_store() -> None:
    p = pos()
    states = []
    for _ in range(3):
        d = route(p, USER, POLICY, NOW)
        states.append(d.state)
        if d.next_row is None:
            break
        p = step(p, d)
    assert states == [RunState.FAILED_RETRYING, RunState.FAILED_RETRYING, RunState.FAILED_PERMANENT]
    assert d.write_store is True
    assert d.next_row is None
    assert p.attempt == 3


def test_max_retries_one_means_the_first_user_failure_is_terminal() -> None:
    d = route(pos(), USER, POLICY.model_copy(update={"max_retries": 1}), NOW)
    assert d.state is RunState.FAILED_PERMANENT
    assert d.write_store is True


def test_failure_without_error_type_counts_as_user() -> None:
    d = route(pos(attempt=3), Outcome(OutcomeKind.FAILED), POLICY, NOW)
    assert d.state is RunState.FAILED_PERMANENT


# -------------------------------------------------------------------------- system fail


def test_system_failure_retries_the_same_attempt_on_its_own_budget() -> None:
    d = route(pos(attempt=2, seq=1, system_retries=0), SYSTEM, POLICY, NOW)
    assert d.state is RunState.FAILED_RETRYING
    assert d.write_store is False
    assert d.next_row is not None
    assert (d.next_row.attempt, d.next_row.seq, d.next_row.system_retries) == (2, 2, 1)
    assert d.next_row.notes == "system_retry"


def test_system_retries_back_off_exponentially() -> None:
    p = pos()
    delays = []
    for _ in range(POLICY.max_system_retries):
        d = route(p, SYSTEM, POLICY, NOW)
        assert d.next_row is not None
        delays.append((d.next_row.scheduled_at - NOW).total_seconds())
        p = step(p, d)
    assert delays == [300, 600, 1200]


def test_system_retries_exhausted_end_in_system_error_with_a_store_write() -> None:
    p = pos()
    for _ in range(POLICY.max_system_retries):
        p = step(p, route(p, SYSTEM, POLICY, NOW))
    d = route(p, SYSTEM, POLICY, NOW)
    assert d.state is RunState.SYSTEM_ERROR
    assert d.write_store is True
    assert d.next_row is None
    assert p.attempt == 1  # the lab's retries were never touched


def test_system_failures_never_consume_the_labs_retries() -> None:
    # Two system hiccups, then two user failures: the lab still gets its third attempt.
    p = pos()
    p = step(p, route(p, SYSTEM, POLICY, NOW))
    p = step(p, route(p, SYSTEM, POLICY, NOW))
    p = step(p, route(p, USER, POLICY, NOW))
    assert p.attempt == 2
    p = step(p, route(p, USER, POLICY, NOW))
    assert p.attempt == 3
    assert route(p, USER, POLICY, NOW).state is RunState.FAILED_PERMANENT


def test_zero_system_retries_means_system_error_at_once() -> None:
    d = route(pos(), SYSTEM, POLICY.model_copy(update={"max_system_retries": 0}), NOW)
    assert d.state is RunState.SYSTEM_ERROR
    assert d.write_store is True


def test_system_error_on_the_last_user_attempt_still_retries_on_the_system_budget() -> None:
    d = route(pos(attempt=3), SYSTEM, POLICY, NOW)
    assert d.state is RunState.FAILED_RETRYING
    assert d.next_row is not None and d.next_row.attempt == 3


@pytest.mark.parametrize("outcome", [OK, TEMP, USER, SYSTEM, CANCEL])
@pytest.mark.parametrize("p", [pos(), pos(attempt=3), pos(system_retries=3), pos(3, 9, 3)])
def test_every_decision_is_a_legal_move_from_running(outcome: Outcome, p: AttemptPosition) -> None:
    d = route(p, outcome, POLICY, NOW)
    assert can_transition(RunState.RUNNING, d.state)
    # Exactly the terminal failures write the store first and have no successor.
    terminal = d.state in {RunState.FAILED_PERMANENT, RunState.SYSTEM_ERROR, RunState.CANCELLED}
    assert d.write_store is terminal
    if d.state in {RunState.FAILED_RETRYING, RunState.TEMP_FAILED}:
        assert d.next_row is not None
        assert d.next_row.scheduled_at >= NOW
    else:
        assert d.next_row is None


# ------------------------------------------------------------------------------ failed_sync


def test_sync_retry_opens_a_fresh_generation_at_attempt_one() -> None:
    n = sync_retry_row(pos(attempt=3, seq=5, system_retries=2, generation=4), POLICY, NOW)
    assert (n.generation, n.attempt, n.seq, n.system_retries) == (5, 1, 0, 0)
    assert n.scheduled_at == NOW + timedelta(seconds=86400)
    assert n.notes == "sync_retry"


# ----------------------------------------------------- with a real ledger and report store


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    eng = make_engine(f"sqlite:///{tmp_path / 'ledger.db'}")
    upgrade(eng)
    try:
        yield eng
    finally:
        eng.dispose()


def _running(ledger: Ledger, report_id: str) -> Run:
    row = ledger.active_for_report(report_id)
    assert row is not None and row.id is not None
    assert ledger.claim(row.id, None, NOW)
    got = ledger.get(row.id)
    assert got is not None
    return got


def test_third_user_failure_marks_the_report_failed_in_the_store(engine: Engine) -> None:
    ledger, store = Ledger(engine), LocalReportStore(engine)
    store.create("rpt-1", "wgs-qc")
    created = ledger.create_run(
        Run(report_id="rpt-1", service="wgs-qc", state=RunState.QUEUED.value)
    )
    assert created is not None
    for expected in ("failed_retrying", "failed_retrying"):
        res = finish_attempt(ledger, store, _running(ledger, "rpt-1"), USER, POLICY, NOW)
        assert res.state.value == expected
        assert res.successor is not None
        assert store.get("rpt-1")["status"] == DATA_READY  # type: ignore[index]
    last = _running(ledger, "rpt-1")
    assert last.attempt == 3
    res = finish_attempt(ledger, store, last, USER, POLICY, NOW)
    assert res.state is RunState.FAILED_PERMANENT
    assert res.successor is None
    doc = store.get("rpt-1")
    assert doc is not None
    assert doc["status"] == FAILED
    assert doc["errorType"] == "user"
    assert doc["attempts"] == 3
    assert doc["omicsflowState"] == "failed_permanent"
    assert [r.state for r in ledger.rows_for_report("rpt-1")] == [
        "failed_retrying",
        "failed_retrying",
        "failed_permanent",
    ]
    assert ledger.pending_writes() == []
    assert ledger.active_for_report("rpt-1") is None

"""Property tests: random event histories driven through the pure domain rules only
(decide_intake, route, sync_retry_row, can_transition), then the same histories against the
real Ledger on SQLite.

The model follows what the lifecycle does with each event:
- ADDED (only while the store says "Data Ready": the listener is quiet otherwise) -> intake;
- reset: an operator sets the store back to "Data Ready" (the manual retry), then ADDED;
- REMOVED: the store leaves "Data Ready"; a pending row is closed, a running one left alone;
- start: a waiting/queued row is claimed; outcomes route the running row;
- failed_sync: the terminal store write failed while the store is reachable;
- recover: a running row whose process died is closed as a system failure.
"""

from __future__ import annotations

import tempfile
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import text

from classifiers.taxonomy import ErrorType
from ledger.db import make_engine, upgrade
from ledger.models import Run
from ledger.repo import Ledger
from omicsflow.domain.intake import Create, ExistingRow, Ignore, Reject, decide_intake
from omicsflow.domain.routing import (
    AttemptPosition,
    NextRow,
    Outcome,
    OutcomeKind,
    route,
    sync_retry_row,
)
from omicsflow.domain.states import (
    ACTIVE_STATES,
    PENDING_STATES,
    TERMINAL_FAILURE_STATES,
    RunState,
    can_transition,
)
from omicsflow.services import ServiceConfig

NOW = datetime(2026, 6, 1, tzinfo=UTC)
REPORTS = ("r1", "r2")
DATA_READY, FAILED, WITHDRAWN = "Data Ready", "Failed", "Withdrawn"
S = RunState
STARTABLE = (S.QUEUED, S.WAITING_COOLDOWN)  # what Ledger.claim moves to running

OUTCOMES = {
    "ok": Outcome(OutcomeKind.SUCCEEDED),
    "temp": Outcome(OutcomeKind.TEMP_FAILED, reason="inputs not ready"),
    "user": Outcome(OutcomeKind.FAILED, ErrorType.USER, "bad input"),
    "system": Outcome(OutcomeKind.FAILED, ErrorType.SYSTEM, "node lost"),
    "cancel": Outcome(OutcomeKind.CANCELLED),
}

# --------------------------------------------------------------------------------- events

report_ids = st.sampled_from(REPORTS)
outcome_names = st.sampled_from(sorted(OUTCOMES))
finishes = st.tuples(st.just("finish"), report_ids, outcome_names)
events = st.one_of(
    st.tuples(st.just("added"), report_ids, st.booleans()),
    st.tuples(st.just("reset"), report_ids, st.booleans()),
    st.tuples(st.just("removed"), report_ids),
    st.tuples(st.just("start"), report_ids),
    finishes,
    st.tuples(st.just("failed_sync"), report_ids),
    st.tuples(st.just("recover"), report_ids),
)
# Outcomes dominate real histories: weight them so series run to their ends, and manual
# retries follow.
histories = st.lists(
    st.one_of(events, finishes, finishes, st.tuples(st.just("reset"), report_ids, st.booleans())),
    max_size=60,
)
services_st = st.builds(
    lambda retries, sys_retries, cooldown: ServiceConfig(
        name="svc",
        command=("bash", "run.sh"),
        max_retries=retries,
        max_system_retries=sys_retries,
        cooldown_seconds=cooldown,
    ),
    st.integers(1, 4),
    st.integers(0, 3),
    st.sampled_from([0, 900]),
)


# ---------------------------------------------------------------------------------- model


@dataclass
class Row:
    generation: int
    attempt: int
    seq: int
    system_retries: int
    state: RunState

    @property
    def pos(self) -> AttemptPosition:
        return AttemptPosition(self.generation, self.attempt, self.seq, self.system_retries)

    def key(self) -> tuple[int, int, int, int, str]:
        return (self.generation, self.attempt, self.seq, self.system_retries, self.state.value)


@dataclass
class Report:
    status: str = DATA_READY
    rows: list[Row] = field(default_factory=list)
    # Per generation: failures that were routed to a retry, by error type.
    user_retries: Counter[int] = field(default_factory=Counter)
    system_retries: Counter[int] = field(default_factory=Counter)


class Model:
    """Applies events with the pure rules only, checking every move against TRANSITIONS."""

    def __init__(self, svc: ServiceConfig) -> None:
        self.svc = svc
        self.reports = {rid: Report() for rid in REPORTS}

    # -- helpers
    def active(self, rid: str) -> Row | None:
        act = [r for r in self.reports[rid].rows if r.state in ACTIVE_STATES]
        assert len(act) <= 1, f"{rid}: two active rows {act}"
        return act[0] if act else None

    @staticmethod
    def move(row: Row, dst: RunState) -> None:
        assert can_transition(row.state, dst), f"illegal {row.state.value} -> {dst.value}"
        row.state = dst

    def add_successor(self, rid: str, nxt: NextRow) -> None:
        rows = self.reports[rid].rows
        assert all(
            (r.generation, r.attempt, r.seq) != (nxt.generation, nxt.attempt, nxt.seq) for r in rows
        ), "successor reuses a position"
        rows.append(
            Row(nxt.generation, nxt.attempt, nxt.seq, nxt.system_retries, S.WAITING_COOLDOWN)
        )

    # -- events
    def apply(self, ev: tuple) -> None:  # type: ignore[type-arg]
        kind, rid = ev[0], ev[1]
        rep = self.reports[rid]
        if kind == "reset":
            rep.status = DATA_READY
            kind = "added"
        if kind == "added":
            if rep.status == DATA_READY:
                self.added(rid, hold=ev[2])
        elif kind == "removed":
            rep.status = WITHDRAWN
            row = self.active(rid)
            if row is not None and row.state in PENDING_STATES:
                self.move(row, S.FAILED_PERMANENT)
        elif kind == "start":
            row = self.active(rid)
            if row is not None and row.state in STARTABLE:
                self.move(row, S.RUNNING)
        elif kind in ("finish", "recover"):
            row = self.active(rid)
            if kind == "finish" and row is not None and row.state in STARTABLE:
                self.move(row, S.RUNNING)  # a waiting row eventually runs, then ends
            if row is not None and row.state is S.RUNNING:
                self.finish(rid, row, ev[2] if kind == "finish" else "system")
        elif kind == "failed_sync":
            row = self.active(rid)
            if row is not None and row.state is S.RUNNING:
                self.move(row, S.FAILED_SYNC)
                self.add_successor(rid, sync_retry_row(row.pos, self.svc, NOW))

    def added(self, rid: str, hold: bool) -> None:
        rep = self.reports[rid]
        existing = [ExistingRow(r.generation, r.state) for r in rep.rows]
        doc = {"service": "svc", "manualHoldRelease": hold}
        decision = decide_intake(rid, doc, {"svc": self.svc}, existing, NOW)
        assert not isinstance(decision, Reject)
        # Dedup oracle: a new series starts exactly when there is none, or the last one
        # ended in a terminal failure (resetting the store is the manual retry).
        fresh = not rep.rows or rep.rows[-1].state in TERMINAL_FAILURE_STATES
        assert isinstance(decision, Create) == fresh, (decision, rep.rows)
        if isinstance(decision, Ignore):
            return
        assert isinstance(decision, Create)
        assert decision.generation == max((r.generation for r in rep.rows), default=0) + 1
        skip_cooldown = hold or self.svc.cooldown_seconds == 0
        assert decision.state is (S.QUEUED if skip_cooldown else S.WAITING_COOLDOWN)
        rep.rows.append(Row(decision.generation, 1, 0, 0, decision.state))

    def finish(self, rid: str, row: Row, outcome_name: str) -> None:
        rep = self.reports[rid]
        d = route(row.pos, OUTCOMES[outcome_name], self.svc, NOW)
        self.move(row, d.state)
        assert d.write_store == (d.state in TERMINAL_FAILURE_STATES)
        assert (d.next_row is not None) == (d.state in (S.FAILED_RETRYING, S.TEMP_FAILED))
        if d.state is S.FAILED_RETRYING:
            counter = rep.system_retries if outcome_name == "system" else rep.user_retries
            counter[row.generation] += 1
        if d.write_store:
            rep.status = FAILED
        if d.next_row is not None:
            self.add_successor(rid, d.next_row)

    # -- invariants
    def check(self) -> None:
        for rid, rep in self.reports.items():
            self.active(rid)  # at most one active row
            for row in rep.rows:
                assert 1 <= row.attempt <= self.svc.max_retries, row
                assert 0 <= row.system_retries <= self.svc.max_system_retries, row
            positions = [(r.generation, r.attempt, r.seq) for r in rep.rows]
            assert len(positions) == len(set(positions))
            for gen in {r.generation for r in rep.rows}:
                last = [r for r in rep.rows if r.generation == gen][-1]
                # Only user failures spend the lab's retries; temp fails and system
                # retries leave the attempt number alone.
                assert last.attempt == 1 + rep.user_retries[gen], (gen, rep)
                assert last.system_retries == rep.system_retries[gen], (gen, rep)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(svc=services_st, history=histories)
def test_pure_rules_keep_every_invariant(svc: ServiceConfig, history: list[tuple]) -> None:  # type: ignore[type-arg]
    model = Model(svc)
    for ev in history:
        model.apply(ev)
        model.check()


@settings(max_examples=200, deadline=None)
@given(
    svc=services_st,
    temps=st.lists(st.sampled_from(["temp", "system"]), max_size=20),
)
def test_a_series_of_user_failures_always_ends_after_max_retries(
    svc: ServiceConfig, temps: list[str]
) -> None:
    """Interleave temp and system failures with user failures: the lab always gets exactly
    max_retries attempts before the run needs a person."""
    model = Model(svc)
    model.apply(("added", "r1", True))
    user_failures = 0
    noise = iter(temps)
    while model.reports["r1"].status != FAILED:
        model.apply(("start", "r1"))
        nxt = next(noise, "user")
        if nxt == "system" and model.active("r1") is not None:
            row = model.active("r1")
            assert row is not None
            if row.system_retries >= svc.max_system_retries:
                nxt = "temp"  # keep the platform's budget from ending the series here
        model.apply(("finish", "r1", nxt))
        user_failures += nxt == "user"
        model.check()
    assert user_failures == svc.max_retries
    assert model.reports["r1"].rows[-1].state is S.FAILED_PERMANENT


# ------------------------------------------------------------------ against the real ledger


class LedgerDriver:
    """The same events against the real Ledger, the way the lifecycle drives it."""

    def __init__(self, ledger: Ledger, svc: ServiceConfig) -> None:
        self.ledger = ledger
        self.svc = svc

    def apply(self, ev: tuple, status: str) -> None:  # type: ignore[type-arg]
        kind, rid = ev[0], ev[1]
        lg = self.ledger
        row = lg.active_for_report(rid)
        if kind in ("added", "reset"):
            if kind == "added" and status != DATA_READY:
                return
            existing = [
                ExistingRow(r.generation, RunState(r.state)) for r in lg.rows_for_report(rid)
            ]
            doc = {"service": "svc", "manualHoldRelease": ev[2]}
            decision = decide_intake(rid, doc, {"svc": self.svc}, existing, NOW)
            if isinstance(decision, Create):
                made = lg.create_run(
                    Run(
                        report_id=rid,
                        service="svc",
                        generation=decision.generation,
                        state=decision.state.value,
                        scheduled_run_at=decision.scheduled_at,
                    )
                )
                assert made is not None
        elif kind == "racing_create":
            # A second intake process that lost the race: the database must refuse it.
            gen = max((r.generation for r in lg.rows_for_report(rid)), default=0) + 1
            dup = lg.create_run(Run(report_id=rid, service="svc", generation=gen, state="queued"))
            assert (dup is None) == (row is not None)
            if dup is not None:  # keep the history identical to the model's
                assert dup.id is not None
                assert lg.transition(dup.id, S.CANCELLED, [S.QUEUED])[0]
        elif row is None or row.id is None:
            return
        elif kind == "removed":
            if RunState(row.state) in PENDING_STATES:
                assert lg.transition(row.id, S.FAILED_PERMANENT, PENDING_STATES)[0]
        elif kind == "start":
            if RunState(row.state) in STARTABLE:
                assert lg.claim(row.id, None, NOW)
        elif kind in ("finish", "recover"):
            if kind == "finish" and RunState(row.state) in STARTABLE:
                assert lg.claim(row.id, None, NOW)
                row = lg.get(row.id)
                assert row is not None and row.id is not None
            if row.state != S.RUNNING.value:
                return
            pos = AttemptPosition(row.generation, row.attempt, row.seq, row.system_retries)
            outcome = OUTCOMES[ev[2] if kind == "finish" else "system"]
            d = route(pos, outcome, self.svc, NOW)
            assert lg.transition(row.id, d.state, [S.RUNNING], next_row=d.next_row)[0]
        elif kind == "failed_sync" and row.state == S.RUNNING.value:
            pos = AttemptPosition(row.generation, row.attempt, row.seq, row.system_retries)
            nxt = sync_retry_row(pos, self.svc, NOW)
            assert lg.transition(row.id, S.FAILED_SYNC, [S.RUNNING], next_row=nxt)[0]


ledger_histories = st.lists(
    st.one_of(events, st.tuples(st.just("racing_create"), report_ids)), max_size=30
)


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(svc=services_st, history=ledger_histories)
def test_real_ledger_never_holds_two_active_rows_per_report(
    svc: ServiceConfig,
    history: list[tuple],  # type: ignore[type-arg]
) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        engine = make_engine(f"sqlite:///{Path(tmp) / 'ledger.db'}")
        try:
            upgrade(engine)
            ledger = Ledger(engine)
            driver = LedgerDriver(ledger, svc)
            model = Model(svc)
            for ev in history:
                status = model.reports[ev[1]].status
                driver.apply(ev, status)
                if ev[0] == "racing_create" and model.active(ev[1]) is None:
                    # The driver inserted and cancelled a row: mirror it in the model.
                    rep = model.reports[ev[1]]
                    gen = max((r.generation for r in rep.rows), default=0) + 1
                    rep.rows.append(Row(gen, 1, 0, 0, S.CANCELLED))
                elif ev[0] != "racing_create":
                    model.apply(ev)
                with engine.connect() as conn:
                    worst = conn.execute(
                        text(
                            "SELECT coalesce(max(n), 0) FROM (SELECT count(*) AS n FROM runs "
                            "WHERE state IN ('received', 'manual_hold', 'waiting_cooldown', "
                            "'queued', 'running') GROUP BY report_id) AS t"
                        )
                    ).scalar_one()
                assert worst <= 1
                for rid in REPORTS:
                    db_rows = [
                        (r.generation, r.attempt, r.seq, r.system_retries, r.state)
                        for r in ledger.rows_for_report(rid)
                    ]
                    assert db_rows == [r.key() for r in model.reports[rid].rows], ev
        finally:
            engine.dispose()

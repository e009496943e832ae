"""Enrichment after the status write: a real SQLite ledger, the real local report store and the
fake LLM server at the wire (OpenAI format)."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from classifiers.classify import classify
from classifiers.evidence import Platform
from classifiers.taxonomy import Classification, ClassifiedBy, Owner
from ledger.db import make_engine, upgrade
from ledger.models import Run
from ledger.repo import Ledger
from omicsflow.domain.failure_card import render_failure_card
from omicsflow.domain.states import RunState
from omicsflow.errors import StoreUnavailableError
from omicsflow.lifecycle.enrichment import (
    EnrichStatus,
    classification_of,
    enrich_run,
    evidence_of,
    revision_note,
)
from omicsflow.lifecycle.terminal import store_fields
from omicsflow.llm.config import LLMConfig
from omicsflow.stores.base import DATA_READY, FAILED
from omicsflow.stores.local import LocalReportStore
from tests.omicsflow.llm.fake_llm import FakeLLMServer, OpenAIWire

WIRE = OpenAIWire()
UNRECOGNISABLE = "behave: mode=ambiguous_fail\nfrobnicator: quux state 0x7f unexpected\n"


def answer(owner: str, category: str = "node_failure") -> str:
    return json.dumps(
        {
            "owner": owner,
            "category": category,
            "summary": f"The model thinks {owner} must act.",
            "action": f"Ask the {owner} to look.",
        }
    )


@pytest.fixture
def ledger(tmp_path: Path) -> Iterator[Ledger]:
    engine = make_engine(f"sqlite:///{tmp_path / 'omicsflow.db'}")
    upgrade(engine)
    yield Ledger(engine)
    engine.dispose()


@pytest.fixture
def store(ledger: Ledger) -> Iterator[LocalReportStore]:
    s = LocalReportStore(ledger.engine)
    yield s
    s.close()


@pytest.fixture
def llm() -> Iterator[FakeLLMServer]:
    server = FakeLLMServer().start()
    yield server
    server.stop()


def configs(server: FakeLLMServer, **overrides: Any) -> Any:
    config = WIRE.config(server, integration=Platform.LOCAL, max_retries=0, **overrides)

    def load(integration: str) -> LLMConfig | None:
        return config if integration == "local" else None

    return load


def no_llm(integration: str) -> LLMConfig | None:
    return None


def failed_run(
    ledger: Ledger,
    store: LocalReportStore,
    state: RunState = RunState.FAILED_PERMANENT,
    log_tail: str = UNRECOGNISABLE,
    exit_code: int = 1,
) -> Run:
    """A finished failure as the attempt flow leaves it: evidence, deterministic
    classification, and (for terminal states) the report store already Failed."""
    report_id = store.create(None, "behave", {"mode": "ambiguous_fail"})
    row = ledger.create_run(
        Run(report_id=report_id, service="behave", state=RunState.RUNNING.value, backend="local")
    )
    assert row is not None and row.id is not None
    from classifiers.evidence import Evidence

    evidence = Evidence(platform=Platform.LOCAL, exit_code=exit_code, log_tail=log_tail)
    ledger.update_fields(
        row.id,
        exit_code=exit_code,
        ev_log_tail=log_tail,
        ev_elapsed_seconds=1.5,
        flow_run_id=None,
        **classify(evidence).as_record(),
    )
    if state in (RunState.FAILED_PERMANENT, RunState.SYSTEM_ERROR):
        current = ledger.get(row.id)
        assert current is not None
        store.write_failed(report_id, store_fields(current, state, "exited 1", datetime.now(UTC)))
    moved, _ = ledger.transition(row.id, state, [RunState.RUNNING], finished_at=datetime.now(UTC))
    assert moved
    got = ledger.get(row.id)
    assert got is not None
    return got


def _same_row(a: Run | None, b: Run | None) -> bool:
    assert a is not None and b is not None
    return a.model_dump() == b.model_dump()


def _id(run: Run) -> int:
    assert run.id is not None
    return run.id


def test_evidence_is_rebuilt_field_by_field(ledger: Ledger, store: LocalReportStore) -> None:
    run = failed_run(ledger, store)
    ledger.update_fields(
        _id(run),
        ev_error_message="boom",
        ev_tasks=[{"name": "ALIGN", "status": "FAILED", "exit_code": 137}],
        backend="seqera",
    )
    ev = evidence_of(ledger.get(_id(run)) or run, temp_fail_exit_code=75)
    assert ev.platform is Platform.SEQERA and ev.exit_code == 1
    assert ev.error_message == "boom" and ev.error_report is None
    assert ev.log_tail == UNRECOGNISABLE and ev.temp_fail_exit_code == 75
    assert ev.tasks[0].name == "ALIGN" and ev.tasks[0].exit_code == 137


def test_llm_flips_error_type_moves_state_and_updates_store(
    ledger: Ledger, store: LocalReportStore, llm: FakeLLMServer
) -> None:
    run = failed_run(ledger, store)
    assert run.owner == "ambiguous" and run.classified_by == "rules"
    llm.script(WIRE.ok(answer("platform")))

    res = enrich_run(ledger, store, _id(run), configs(llm))

    assert res.status is EnrichStatus.UPDATED and res.state_moved
    assert (
        res.state_before is RunState.FAILED_PERMANENT and res.state_after is RunState.SYSTEM_ERROR
    )
    row = ledger.get(_id(run))
    assert row is not None
    assert row.state == "system_error" and row.error_type == "system" and row.owner == "platform"
    assert row.classified_by == "llm" and row.rule == f"llm:openai:{WIRE.model_id}"
    doc = store.get(run.report_id)
    assert doc is not None and doc["status"] == FAILED
    assert doc["errorType"] == "system" and doc["failureOwner"] == "platform"
    assert doc["failureSummary"] == "The model thinks platform must act."
    assert doc["failureAction"] == "Ask the platform to look."
    assert doc["failureClassifiedBy"] == "llm" and doc["omicsflowState"] == "system_error"
    assert doc["failureReason"] == "exited 1", "the attempt's other fields are kept"
    (entry,) = [a for a in ledger.audit_entries() if a.run_id == run.id]
    assert entry.command == "enrich" and entry.detail == "failed_permanent -> system_error"
    # The card of the new version says who decided, that it is AI-assisted, and what it replaced.
    card = render_failure_card(row, revised_from=revision_note(res))
    assert "AI-assisted" in card and f"llm:openai:{WIRE.model_id}" in card
    assert "earlier version read: owner `ambiguous`" in card and "decided by rules" in card


def test_enrichment_is_idempotent(
    ledger: Ledger, store: LocalReportStore, llm: FakeLLMServer
) -> None:
    run = failed_run(ledger, store)
    llm.script(WIRE.ok(answer("bioinformatician", "bad_parameters")))
    first = enrich_run(ledger, store, _id(run), configs(llm))
    assert first.status is EnrichStatus.UPDATED and not first.state_moved
    before = ledger.get(_id(run))
    doc_before = store.get(run.report_id)

    again = enrich_run(ledger, store, _id(run), configs(llm))

    assert again.status is EnrichStatus.ALREADY_LLM
    assert len(llm.requests) == 1, "an LLM-classified row is not sent again"
    assert _same_row(ledger.get(_id(run)), before) and store.get(run.report_id) == doc_before


def test_answer_equal_to_the_rows_records_nothing(
    ledger: Ledger, store: LocalReportStore, llm: FakeLLMServer
) -> None:
    run = failed_run(ledger, store)
    row = ledger.get(_id(run))
    assert row is not None
    held = classification_of(row)
    assert held is not None
    same = Classification(**{**held.model_dump(), "classified_by": ClassifiedBy.LLM})
    ledger.update_fields(_id(run), classified_by="llm", rule="llm:openai:gpt-test-mini")
    llm.script(
        WIRE.ok(
            json.dumps(
                {
                    "owner": same.owner.value,
                    "category": same.category,
                    "summary": same.summary,
                    "action": same.action,
                }
            )
        )
    )
    before = ledger.get(_id(run))
    res = enrich_run(ledger, store, _id(run), configs(llm), reclassify=True)
    assert res.status is EnrichStatus.UNCHANGED and len(llm.requests) == 1
    assert _same_row(ledger.get(_id(run)), before)


def test_llm_down_leaves_everything_unchanged(
    ledger: Ledger, store: LocalReportStore, llm: FakeLLMServer
) -> None:
    run = failed_run(ledger, store)
    load = configs(llm)
    llm.stop()  # connection refused
    doc = store.get(run.report_id)

    res = enrich_run(ledger, store, _id(run), load)

    assert res.status is EnrichStatus.UNCHANGED and not res.changed
    assert _same_row(ledger.get(_id(run)), run)
    assert store.get(run.report_id) == doc
    assert ledger.audit_entries() == []


def test_llm_error_reply_leaves_everything_unchanged(
    ledger: Ledger, store: LocalReportStore, llm: FakeLLMServer
) -> None:
    run = failed_run(ledger, store)
    llm.script(WIRE.server_error())
    res = enrich_run(ledger, store, _id(run), configs(llm))
    assert res.status is EnrichStatus.UNCHANGED
    assert _same_row(ledger.get(_id(run)), run)


def test_no_llm_configured_is_skipped(ledger: Ledger, store: LocalReportStore) -> None:
    run = failed_run(ledger, store)
    res = enrich_run(ledger, store, _id(run), no_llm)
    assert res.status is EnrichStatus.NO_LLM
    assert _same_row(ledger.get(_id(run)), run)


def test_disabled_llm_is_skipped(ledger: Ledger, store: LocalReportStore) -> None:
    run = failed_run(ledger, store)
    off = LLMConfig(integration=Platform.LOCAL)
    res = enrich_run(ledger, store, _id(run), lambda _: off)
    assert res.status is EnrichStatus.NO_LLM


def test_row_without_failure_evidence_is_skipped(
    ledger: Ledger, store: LocalReportStore, llm: FakeLLMServer
) -> None:
    report_id = store.create(None, "behave", {"mode": "ok"})
    row = ledger.create_run(
        Run(report_id=report_id, service="behave", state="succeeded", exit_code=0)
    )
    assert row is not None
    res = enrich_run(ledger, store, _id(row), configs(llm), reclassify=True)
    assert res.status is EnrichStatus.NO_EVIDENCE and llm.requests == []
    assert enrich_run(ledger, store, 9999, configs(llm)).status is EnrichStatus.NOT_FOUND


def test_reclassify_overwrites_an_llm_classification(
    ledger: Ledger, store: LocalReportStore, llm: FakeLLMServer
) -> None:
    run = failed_run(ledger, store)
    llm.script(WIRE.ok(answer("platform")), WIRE.ok(answer("lab", "missing_input")))
    enrich_run(ledger, store, _id(run), configs(llm))
    assert (ledger.get(_id(run)) or run).state == "system_error"

    res = enrich_run(ledger, store, _id(run), configs(llm), reclassify=True, actor="cli")

    assert res.status is EnrichStatus.UPDATED
    assert res.previous is not None and res.previous.owner is Owner.PLATFORM
    row = ledger.get(_id(run))
    assert row is not None
    assert row.owner == "lab" and row.category == "missing_input" and row.classified_by == "llm"
    assert row.state == "failed_permanent", "the one rule moves it back"
    doc = store.get(run.report_id)
    assert doc is not None and doc["errorType"] == "user" and doc["failureOwner"] == "lab"
    assert doc["status"] == FAILED
    # The prompt carried a fresh deterministic answer, not the LLM's earlier one.
    assert "fallback.unclassified" in json.dumps(llm.requests[1].body)
    audit = [a for a in ledger.audit_entries() if a.command == "reclassify"]
    assert len(audit) == 1 and audit[0].actor == "cli" and audit[0].result == "updated"
    detail = json.loads(audit[0].detail or "{}")
    assert detail["previous"]["owner"] == "platform" and detail["classification"]["owner"] == "lab"
    assert detail["state_before"] == "system_error" and detail["state"] == "failed_permanent"


def test_reclassify_without_llm_restores_the_deterministic_answer(
    ledger: Ledger, store: LocalReportStore
) -> None:
    run = failed_run(ledger, store, log_tail="No space left on device\n")
    assert run.owner == "platform" and run.state == "failed_permanent"  # as if rules changed since
    res = enrich_run(ledger, store, _id(run), no_llm, reclassify=True)
    assert res.status is EnrichStatus.UNCHANGED  # same rules, same answer
    ledger.update_fields(_id(run), owner="lab", error_type="user", rule="old.rule")

    res = enrich_run(ledger, store, _id(run), no_llm, reclassify=True)

    assert res.status is EnrichStatus.UPDATED and res.state_after is RunState.SYSTEM_ERROR
    row = ledger.get(_id(run))
    assert row is not None and row.owner == "platform" and row.classified_by == "rules"
    doc = store.get(run.report_id)
    assert (
        doc is not None and doc["errorType"] == "system" and doc["failureClassifiedBy"] == "rules"
    )
    assert len([a for a in ledger.audit_entries() if a.command == "reclassify"]) == 2


def test_non_terminal_failure_gets_classification_but_keeps_state_and_store(
    ledger: Ledger, store: LocalReportStore, llm: FakeLLMServer
) -> None:
    run = failed_run(ledger, store, state=RunState.FAILED_RETRYING)
    llm.script(WIRE.ok(answer("platform")))
    res = enrich_run(ledger, store, _id(run), configs(llm))
    assert res.status is EnrichStatus.UPDATED and not res.state_moved and not res.store_updated
    row = ledger.get(_id(run))
    assert row is not None and row.state == "failed_retrying" and row.owner == "platform"
    doc = store.get(run.report_id)
    assert doc is not None and doc["status"] == DATA_READY and "errorType" not in doc


def test_report_reset_by_a_manual_retry_is_not_written(
    ledger: Ledger, store: LocalReportStore, llm: FakeLLMServer
) -> None:
    run = failed_run(ledger, store)
    store.set_status(run.report_id, DATA_READY)  # the operator's manual retry
    llm.script(WIRE.ok(answer("platform")))
    res = enrich_run(ledger, store, _id(run), configs(llm))
    assert res.status is EnrichStatus.UPDATED and not res.store_updated
    doc = store.get(run.report_id)
    assert doc is not None and doc["status"] == DATA_READY, "a Failed write would stop the retry"


class _DownStore:
    """The local store, except that writes fail as in an outage."""

    def __init__(self, inner: LocalReportStore) -> None:
        self.inner = inner
        self.name = "down"

    def get(self, report_id: str) -> Mapping[str, Any] | None:
        return self.inner.get(report_id)

    def write_failed(self, report_id: str, fields: Mapping[str, Any]) -> None:
        raise StoreUnavailableError("store down")


def test_store_failure_writes_nothing(
    ledger: Ledger, store: LocalReportStore, llm: FakeLLMServer
) -> None:
    run = failed_run(ledger, store)
    llm.script(WIRE.ok(answer("platform")))
    down: Any = _DownStore(store)
    res = enrich_run(ledger, down, _id(run), configs(llm))
    assert res.status is EnrichStatus.STORE_FAILED
    assert _same_row(ledger.get(_id(run)), run), "ledger and store stay in step"

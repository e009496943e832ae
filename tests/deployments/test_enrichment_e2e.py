"""LLM enrichment end to end: a real Prefect server, `omicsflow serve`, the local report store
and a fake OpenAI-compatible server that answers only when the test lets it."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
import threading
import uuid
from collections.abc import Callable, Iterator

import pytest
from prefect.client.schemas.filters import (
    ArtifactFilter,
    ArtifactFilterFlowRunId,
    ArtifactFilterKey,
)
from prefect.client.schemas.sorting import ArtifactSort

from blocks.llm import save_llm_config
from ledger.models import Run
from omicsflow.stores.base import FAILED
from omicsflow.stores.local import LocalReportStore
from tests.deployments.conftest import Deployment
from tests.omicsflow.llm.fake_llm import FakeLLMServer, OpenAIWire
from tests.support.prefect_api import prefect_client, read_flow_run
from tests.support.serve_process import REPO_ROOT, wait_for

pytestmark = pytest.mark.integration

WIRE = OpenAIWire()
PLATFORM_ANSWER = json.dumps(
    {
        "owner": "platform",
        "category": "node_failure",
        "summary": "The frobnicator stage lost its node: an infrastructure failure.",
        "action": "Rerun; page the platform team if it repeats.",
    }
)


@pytest.fixture
def llm() -> Iterator[FakeLLMServer]:
    server = FakeLLMServer().start()
    yield server
    server.stop()


def _save_local_llm(api_url: str, base_url: str | None) -> None:
    with prefect_client(api_url):  # temporary_settings: the block goes to the test server
        if base_url is None:
            save_llm_config("local", "none")
        else:
            save_llm_config(
                "local",
                "openai",
                model_id=WIRE.model_id,
                api_key=WIRE.api_key,
                base_url=base_url,
                timeout_seconds=30,
                connect_timeout_seconds=5,
                max_retries=0,
            )


@pytest.fixture
def local_llm_block(
    omicsflow: Callable[..., Deployment], llm: FakeLLMServer
) -> Iterator[Deployment]:
    """A serving installation whose "local" integration asks the fake LLM. The block is global
    on the session's Prefect server: it is switched off again afterwards."""
    # A loaded CI box can starve heartbeats; recovery is not what this test is about.
    dep = omicsflow(extra_env={"OMICSFLOW_STALE_AFTER_SECONDS": "60"})
    api_url = dep.env["PREFECT_API_URL"]
    _save_local_llm(api_url, llm.url + "/v1")
    try:
        yield dep
    finally:
        _save_local_llm(api_url, None)


def _row(dep: Deployment, report_id: str) -> Run | None:
    rows = dep.ledger.rows_for_report(report_id)
    return rows[-1] if rows else None


def _card_versions(api_url: str, run: Run) -> list[str]:
    """The failure card's versions on the attempt's flow run, newest first."""
    with prefect_client(api_url) as client:
        arts = client.read_artifacts(
            artifact_filter=ArtifactFilter(
                key=ArtifactFilterKey(any_=[f"failure-card-{run.id}"]),
                flow_run_id=ArtifactFilterFlowRunId(any_=[uuid.UUID(run.flow_run_id or "")]),
            ),
            sort=ArtifactSort.CREATED_DESC,
        )
    return [str(a.data) for a in arts]


def _state_name(api_url: str, run: Run) -> str | None:
    fr = read_flow_run(api_url, run.flow_run_id or "")
    return fr.state.name if fr.state is not None and fr.state.is_final() else None


def test_ambiguous_failure_is_enriched_after_its_status_write(
    local_llm_block: Deployment, llm: FakeLLMServer
) -> None:
    dep = local_llm_block
    api_url = dep.env["PREFECT_API_URL"]
    store = LocalReportStore(dep.ledger.engine)
    release = threading.Event()
    llm.script(dataclasses.replace(WIRE.ok(PLATFORM_ANSWER), hold=release))

    report_id = store.create(None, "enrich1", {"mode": "ambiguous_fail"})

    # The enrichment flow has asked the LLM and is waiting for its answer...
    wait_for(lambda: llm.requests, 90, "the enrichment flow to ask the LLM")
    # ...while the status write already happened, with the deterministic classification.
    row = _row(dep, report_id)
    assert row is not None and row.state == "failed_permanent", (row, dep.serve.log_tail(20000))
    assert row.owner == "ambiguous" and row.classified_by == "rules" and row.error_type == "user"
    doc = store.get(report_id)
    assert doc is not None and doc["status"] == FAILED
    assert doc["failureOwner"] == "ambiguous" and doc["errorType"] == "user"
    assert not release.is_set()
    (asked,) = llm.requests
    assert asked.path == "/v1/chat/completions"
    assert "frobnicator" in json.dumps(asked.body), "the evidence reached the model"
    attempt = row
    first_card = wait_for(lambda: _card_versions(api_url, attempt), 30, "the first failure card")
    assert "AI-assisted" not in first_card[0] and "deterministic rules" in first_card[0]

    release.set()

    def enriched() -> Run | None:
        r = _row(dep, report_id)
        return r if r is not None and r.classified_by == "llm" else None

    try:
        row = wait_for(enriched, 60, "the LLM classification in the ledger")
    except AssertionError as exc:
        raise AssertionError(f"{exc}\n{dep.serve.log_tail()}") from None
    assert row.owner == "platform" and row.error_type == "system"
    assert row.rule == f"llm:openai:{WIRE.model_id}"
    # The one rule moved the row, and every surface followed.
    assert row.state == "system_error"
    doc = store.get(report_id)
    assert doc is not None and doc["status"] == FAILED
    assert doc["failureOwner"] == "platform" and doc["errorType"] == "system"
    assert doc["failureClassifiedBy"] == "llm" and doc["failureCategory"] == "node_failure"
    assert doc["failureSummary"].startswith("The frobnicator stage lost its node")
    assert doc["failureAction"] == "Rerun; page the platform team if it repeats."
    wait_for(
        lambda: _state_name(api_url, attempt) == "SystemError", 60, "the attempt's SystemError"
    )

    def revised() -> list[str] | None:
        cards = _card_versions(api_url, attempt)
        return cards if len(cards) >= 2 else None

    cards = wait_for(revised, 30, "a revised failure card")
    assert "AI-assisted" in cards[0] and f"llm:openai:{WIRE.model_id}" in cards[0]
    assert "earlier version read: owner `ambiguous`" in cards[0]
    assert len(llm.requests) == 1, "one failure, one LLM call"

    # An operator reclassifies without the LLM: the deterministic answer comes back, the row
    # returns to failed_permanent and Prefect follows (UserError).
    res = subprocess.run(
        [sys.executable, "-m", "omicsflow.cli", "runs", "reclassify", str(row.id), "--llm", "off"],
        env=dep.env,
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert res.returncode == 0, res.stdout + res.stderr
    out = json.loads(res.stdout)
    assert out["status"] == "updated" and out["state"] == "failed_permanent"
    assert out["classification"]["owner"] == "ambiguous"
    assert out["classification"]["classified_by"] == "rules"
    assert out["prefect"] == "updated"
    final = _row(dep, report_id)
    assert (
        final is not None and final.state == "failed_permanent" and final.classified_by == "rules"
    )
    doc = store.get(report_id)
    assert doc is not None and doc["errorType"] == "user" and doc["failureClassifiedBy"] == "rules"
    assert _state_name(api_url, final) == "UserError"
    assert any(a.command == "reclassify" and a.actor == "cli" for a in dep.ledger.audit_entries())
    assert "deterministic rules" in _card_versions(api_url, final)[0]

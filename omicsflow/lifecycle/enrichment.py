"""Enrichment of a failed attempt's classification after its status write. No Prefect.

The deterministic classifier decides inline, at failure time, and its error type decides the
terminal state. This module runs afterwards (the `omicsflow-enrich` flow, triggered by the
`omicsflow.run.failed` event, or `omicsflow runs reclassify`):

- `enrich_run(..., reclassify=False)` asks the integration's LLM (if one is configured) and
  keeps its answer only if `enrich()` does. It is idempotent: a row the LLM already classified
  is skipped, and an answer equal to the deterministic one writes nothing.
- `enrich_run(..., reclassify=True)` is the explicit operator reclassification, the one case
  that may overwrite a classification: the deterministic classifier runs again on the stored
  evidence, then the LLM (when a configuration is given). It is recorded in the audit log.

If the error type changes on a finished failure (failed_permanent / system_error), the one rule
(`terminal_failure_state`) moves the row, report store first: the report document is already
Failed, so rewriting its fields never changes what the status said or when it said it.
"""

from __future__ import annotations

import enum
import json
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError
from sqlalchemy import update
from sqlmodel import col

from classifiers.classify import classify
from classifiers.taxonomy import Classification, ClassifiedBy, Owner
from ledger.models import Run
from ledger.repo import Ledger
from omicsflow.domain.states import RunState, terminal_failure_state
from omicsflow.errors import ReportNotFoundError, StoreUnavailableError, StoreWriteError
from omicsflow.lifecycle.evidence import evidence_of
from omicsflow.llm.config import LLMConfig
from omicsflow.llm.enrich import enrich
from omicsflow.llm.providers import LLMProvider
from omicsflow.stores.base import FAILED, ReportStore

log = logging.getLogger(__name__)

#: Integration name → its LLM configuration or None (`blocks.llm.load_llm_config`).
ConfigsLoader = Callable[[str], LLMConfig | None]

# The finished failures a reclassification may move between (the one rule's two outcomes).
RECLASSIFIABLE_STATES: frozenset[RunState] = frozenset(
    {RunState.FAILED_PERMANENT, RunState.SYSTEM_ERROR}
)


class EnrichStatus(str, enum.Enum):
    NOT_FOUND = "not_found"  # no such ledger row
    NO_EVIDENCE = "no_evidence"  # the row holds no failure evidence
    ALREADY_LLM = "already_llm"  # classified by the LLM before, and no reclassify asked
    NO_LLM = "no_llm"  # the integration has no (enabled) LLM configuration
    UNCHANGED = "unchanged"  # the answer equals what the row holds: nothing written
    UPDATED = "updated"  # a new classification was written
    CONFLICT = "conflict"  # the row's classification changed while we worked: nothing written
    STORE_FAILED = "store_failed"  # the report store refused the write: nothing written


@dataclass(frozen=True)
class EnrichResult:
    run_id: int
    status: EnrichStatus
    # What the row holds afterwards (None when the row was not found or had no evidence).
    classification: Classification | None = None
    previous: Classification | None = None
    state_before: RunState | None = None
    state_after: RunState | None = None
    store_updated: bool = False
    flow_run_id: str | None = None
    detail: str = ""
    notes: list[str] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return self.status is EnrichStatus.UPDATED

    @property
    def state_moved(self) -> bool:
        return self.state_before is not None and self.state_after is not self.state_before

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready summary (the flow's return value, the CLI's output)."""
        return {
            "run_id": self.run_id,
            "status": self.status.value,
            "classification": self.classification.as_record() if self.classification else None,
            "previous": self.previous.as_record() if self.previous else None,
            "state_before": self.state_before.value if self.state_before else None,
            "state": self.state_after.value if self.state_after else None,
            "state_moved": self.state_moved,
            "store_updated": self.store_updated,
            "detail": self.detail,
        }


# ------------------------------------------------------------------------------ pure helpers


def has_failure_evidence(run: Run) -> bool:
    return any(
        (
            run.ev_failure_reason,
            run.ev_status_message,
            run.ev_error_message,
            run.ev_error_report,
            run.ev_tasks,
            run.ev_log_tail,
        )
    ) or (run.exit_code is not None and run.exit_code != 0)


def classification_of(run: Run) -> Classification | None:
    """The classification the row holds, or None when it has none (or it no longer parses)."""
    if not run.classified_by or not run.owner:
        return None
    try:
        return Classification(
            owner=Owner(run.owner),
            category=run.category or "unclassified",
            summary=run.summary or "-",
            action=run.action or "-",
            classified_by=ClassifiedBy(run.classified_by),
            rule=run.rule or "unknown",
        )
    except (ValueError, ValidationError):
        return None


def store_classification_fields(c: Classification, state: RunState) -> dict[str, Any]:
    """The report document's classification fields (camelCase, like `terminal.store_fields`)."""
    return {
        "errorType": c.error_type.value,
        "failureOwner": c.owner.value,
        "failureSummary": c.summary[:1000],
        "failureAction": c.action[:1000],
        "failureCategory": c.category,
        "failureClassifiedBy": c.classified_by.value,
        "omicsflowState": state.value,
    }


def _same(a: Classification | None, b: Classification | None) -> bool:
    return a is not None and b is not None and a.as_record() == b.as_record()


# -------------------------------------------------------------------------------- the action


def enrich_run(
    ledger: Ledger,
    store: ReportStore,
    run_id: int,
    configs_loader: ConfigsLoader,
    reclassify: bool = False,
    *,
    temp_fail_exit_code: int | None = None,
    provider: LLMProvider | None = None,
    actor: str = "llm-enrichment",
) -> EnrichResult:
    """Refine (or, with `reclassify`, redo) one attempt's classification. Never raises for
    an LLM problem: a failing or disabled LLM leaves the row as it is."""
    run = ledger.get(run_id)
    if run is None:
        return EnrichResult(run_id, EnrichStatus.NOT_FOUND, detail=f"no run {run_id}")
    state = RunState(run.state)

    def left_alone(status: EnrichStatus, held: Classification | None, detail: str) -> EnrichResult:
        return EnrichResult(
            run_id, status, held, held, state, state, flow_run_id=run.flow_run_id, detail=detail
        )

    if not has_failure_evidence(run):
        return left_alone(EnrichStatus.NO_EVIDENCE, None, "no failure evidence")
    held = classification_of(run)
    if held is not None and held.classified_by is ClassifiedBy.LLM and not reclassify:
        return left_alone(EnrichStatus.ALREADY_LLM, held, "already classified by the LLM")
    evidence = evidence_of(run, temp_fail_exit_code)
    # The deterministic answer the LLM refines: the row's own unless an operator asked for a
    # fresh one (or the row has none that still parses).
    deterministic = classify(evidence) if (reclassify or held is None) else held
    config = configs_loader(evidence.platform.value)
    if config is not None and not config.enabled:
        config = None
    if config is None and not reclassify:
        detail = f"no LLM configured for {evidence.platform.value}"
        return left_alone(EnrichStatus.NO_LLM, held, detail)
    answer = enrich(evidence, deterministic, config, provider=provider) if config else deterministic
    if _same(answer, held):
        result = left_alone(EnrichStatus.UNCHANGED, held, "same answer")
    else:
        result = _write(ledger, store, run, held, answer)
    if reclassify:
        summary = result.as_dict()
        keys = ("previous", "classification", "state_before", "state")
        ledger.audit(
            actor,
            "reclassify",
            result.status.value,
            run_id=run_id,
            report_id=run.report_id,
            detail=json.dumps({k: summary[k] for k in keys}),
        )
    elif result.state_moved:
        before, after = result.state_before, result.state_after
        ledger.audit(
            actor,
            "enrich",
            result.status.value,
            run_id=run_id,
            report_id=run.report_id,
            detail=f"{before.value if before else '-'} -> {after.value if after else '-'}",
        )
    return result


def _write(
    ledger: Ledger,
    store: ReportStore,
    run: Run,
    held: Classification | None,
    new: Classification,
) -> EnrichResult:
    assert run.id is not None
    state = RunState(run.state)
    target = state
    if state in RECLASSIFIABLE_STATES:
        target = terminal_failure_state(new.error_type)
    notes: list[str] = []

    # Report store first: the document of a finished failure carries the classification, and
    # a state change is a terminal write like any other. The document is already Failed.
    store_updated = False
    if state in RECLASSIFIABLE_STATES:
        try:
            if _is_own_failed_document(store.get(run.report_id), run):
                store.write_failed(run.report_id, store_classification_fields(new, target))
                store_updated = True
            else:
                notes.append("the report document no longer shows this run's failure; not written")
        except ReportNotFoundError:
            notes.append("report document no longer exists; store not written")
        except (StoreUnavailableError, StoreWriteError) as exc:
            log.warning("run %s: report store refused the reclassification: %s", run.id, exc)
            return EnrichResult(
                run.id,
                EnrichStatus.STORE_FAILED,
                held,
                held,
                state,
                state,
                flow_run_id=run.flow_run_id,
                detail=f"report store write failed: {exc}"[:500],
            )

    if not _compare_and_set(ledger, run, new):
        now = ledger.get(run.id)
        return EnrichResult(
            run.id,
            EnrichStatus.CONFLICT,
            classification_of(now) if now else None,
            held,
            state,
            RunState(now.state) if now else state,
            store_updated,
            run.flow_run_id,
            detail="the row's classification changed meanwhile; left as it is",
            notes=notes,
        )
    after = state
    if target is not state:
        moved, _ = ledger.transition(run.id, target, [state])
        if moved:
            after = target
        else:
            now = ledger.get(run.id)
            after = RunState(now.state) if now else state
            notes.append(f"row left {state.value} meanwhile; not moved")
    detail = f"{held.classified_by.value if held else 'none'} -> {new.classified_by.value}"
    if notes:
        detail += "; " + "; ".join(notes)
    return EnrichResult(
        run.id,
        EnrichStatus.UPDATED,
        new,
        held,
        state,
        after,
        store_updated,
        run.flow_run_id,
        detail=detail,
        notes=notes,
    )


def _is_own_failed_document(doc: Mapping[str, Any] | None, run: Run) -> bool:
    """True if the report document still shows this run's failure (not a manual retry's)."""
    if doc is None or doc.get("status") != FAILED:
        return False
    owner_run = doc.get("omicsflowRunId")
    return owner_run is None or str(owner_run) == str(run.id)


def _compare_and_set(ledger: Ledger, run: Run, new: Classification) -> bool:
    """Write `new` only if the row still holds the classification we read (two enrichments of
    one run, or an enrichment racing an operator's reclassify, cannot interleave)."""
    cond = [col(Run.id) == run.id]
    for column, value in (
        (Run.classified_by, run.classified_by),
        (Run.rule, run.rule),
        (Run.owner, run.owner),
        (Run.summary, run.summary),
    ):
        cond.append(col(column).is_(None) if value is None else col(column) == value)
    with ledger.session() as s:
        res = s.execute(update(Run).where(*cond).values(**new.as_record()))
        s.commit()
        return res.rowcount == 1  # type: ignore[attr-defined]


def revision_note(result: EnrichResult) -> str | None:
    """What the failure card says the classification replaced (None if nothing changed)."""
    prev = result.previous
    if not result.changed or prev is None:
        return None
    moved = ""
    if result.state_moved and result.state_before and result.state_after:
        moved = f"; run state {result.state_before.value} → {result.state_after.value}"
    return (
        f"owner `{prev.owner.value}`, error type `{prev.error_type.value}`, decided by "
        f"{prev.classified_by.value} (rule `{prev.rule}`){moved}"
    )

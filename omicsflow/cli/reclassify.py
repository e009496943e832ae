"""`omicsflow runs reclassify RUN_ID`: classify a failed attempt again, now, in this process.

The deterministic classifier runs on the stored evidence, then (with --llm on, the default)
the integration's LLM. The new classification is written to the ledger and, for a finished
failure, to the (already Failed) report document; a flipped error type moves the row to the
other terminal state and the attempt's Prefect flow run follows. Recorded in the audit log.
"""

from __future__ import annotations

import json
import sys
from typing import TYPE_CHECKING, Literal

from rich.console import Console

if TYPE_CHECKING:
    from ledger.repo import Ledger

err = Console(stderr=True)


def reclassify_cmd(run_id: int, *, llm: Literal["off", "on"] = "on") -> int:
    """Classify a failed run again (deterministic rules, then the LLM unless --llm off);
    prints the result as JSON."""
    from omicsflow.cli.context import adopt_serve_environment

    adopt_serve_environment()
    from omicsflow.lifecycle.enrichment import EnrichStatus, enrich_run, revision_note
    from omicsflow.llm.config import LLMConfig
    from omicsflow.runtime import build_runtime

    rt = build_runtime()
    try:
        run = rt.ledger.get(run_id)
        policy = rt.services.get(run.service) if run is not None else None

        def no_llm(integration: str) -> LLMConfig | None:
            return None

        if llm == "on":
            from blocks.llm import load_llm_config

            loader = load_llm_config
        else:
            loader = no_llm
        result = enrich_run(
            rt.ledger,
            rt.store,
            run_id,
            loader,
            reclassify=True,
            temp_fail_exit_code=policy.temp_fail_exit_code if policy is not None else None,
            actor="cli",
        )
        out = result.as_dict()
        if result.changed:
            note = revision_note(result)
            out["prefect"] = _follow_in_prefect(rt.ledger, run_id, result.state_moved, note)
        print(json.dumps(out))
        if result.status in (EnrichStatus.NOT_FOUND, EnrichStatus.NO_EVIDENCE):
            err.print(f"run {run_id}: {result.detail}")
            return 1
        return 0 if result.status is not EnrichStatus.STORE_FAILED else 1
    finally:
        rt.close()


def _follow_in_prefect(ledger: Ledger, run_id: int, state_moved: bool, note: str | None) -> str:
    """New failure-card version and, if the state moved, the attempt flow run's state.
    Best effort: the ledger and the report store are already written."""
    try:
        from omicsflow.domain.states import RunState
        from tasks.enrich_tasks import AttemptStillRunning, mirror_state_to, publish_card_for

        run = ledger.get(run_id)
        if run is None or not run.flow_run_id:
            return "no flow run"
        publish_card_for(run, note)
        if state_moved:
            message = f"Reclassified: {run.summary}"
            try:
                mirror_state_to(run.flow_run_id, RunState(run.state), message)
            except AttemptStillRunning:
                return "card published; attempt still running, its state not changed"
        return "updated"
    except Exception as exc:  # the Prefect API may be down: the ledger is the record
        print(f"warning: Prefect not updated ({type(exc).__name__}: {exc})", file=sys.stderr)
        return "not updated"

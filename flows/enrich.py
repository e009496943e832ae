"""The enrichment flow: refine a failed attempt's classification after its status write.

Triggered by the `omicsflow.run.failed` event (emitted after the attempt's terminal write), so
it can never delay a status write. Orchestration only.
"""

from __future__ import annotations

from typing import Any

from prefect import flow, get_run_logger

from omicsflow.lifecycle.enrichment import revision_note
from tasks.enrich_tasks import enrich_classification, mirror_attempt_state, publish_revised_card


@flow(name="omicsflow-enrich", log_prints=False)
def enrich_flow(run_id: int, reclassify: bool = False) -> dict[str, Any]:
    logger = get_run_logger()
    result = enrich_classification(run_id, reclassify)
    logger.info("run %s: %s (%s)", run_id, result.status.value, result.detail)
    if result.changed:
        publish_revised_card(run_id, revision_note(result))
    if result.state_moved and result.flow_run_id:
        mirror_attempt_state(run_id)
    return result.as_dict()

"""The markdown "failure card" attached to each failed attempt's flow run. Pure."""

from __future__ import annotations

import re

from ledger.models import Run

OWNER_WORDS = {
    "lab": "the lab (input data)",
    "bioinformatician": "the bioinformatician (workflow, container, parameters, resources)",
    "platform": "the platform team (cloud or infrastructure)",
    "ambiguous": "unclear: a person must look at the evidence",
}
FIELD_LIMIT = 4000


def _block(text: str | None) -> str:
    if not text:
        return "_(none)_"
    text = text[-FIELD_LIMIT:]
    # Longer than any backtick run in the text, so no log line can close the block early.
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    fence = "`" * max(3, longest + 1)
    return f"{fence}\n{text}\n{fence}"


def render_failure_card(run: Run, revised_from: str | None = None) -> str:
    """`revised_from`: how the classification read before a later revision (LLM enrichment or
    an operator's reclassify), so the card says which version decided and what it replaced."""
    decided = {
        "lookup": "documented platform failure code",
        "rules": "deterministic rules",
        "llm": "AI-assisted (LLM) — verify before acting",
    }.get(run.classified_by or "", "not classified yet")
    lines = [
        f"# Failure: {run.service} · report `{run.report_id}` · attempt {run.attempt}",
        "",
        f"**Who must act:** {OWNER_WORDS.get(run.owner or '', run.owner or 'unknown')}",
        f"**Error type:** `{run.error_type or '-'}` · **category:** `{run.category or '-'}`",
        f"**Run state:** `{run.state}`",
        "",
        f"**What went wrong:** {run.summary or run.reason or '-'}",
        "",
        f"**What to do:** {run.action or '-'}",
        "",
        f"_Decided by: {decided}" + (f" (rule `{run.rule}`)_" if run.rule else "_"),
        "",
        *(
            [f"_Revised after the failure; the earlier version read: {revised_from}_", ""]
            if revised_from
            else []
        ),
        "## Evidence (each field as the platform reported it)",
        "",
        "| field | value |",
        "|---|---|",
        f"| backend | `{run.backend}` |",
        f"| exit code | `{run.exit_code if run.exit_code is not None else '-'}` |",
        f"| elapsed | {f'{run.ev_elapsed_seconds:.1f} s' if run.ev_elapsed_seconds else '-'} |",
        f"| backend run id | `{run.backend_run_id or '-'}` |",
        f"| log file | `{run.log_path or '-'}` |",
        "",
    ]
    for title, value in (
        ("failureReason", run.ev_failure_reason),
        ("statusMessage", run.ev_status_message),
        ("errorMessage", run.ev_error_message),
        ("errorReport", run.ev_error_report),
    ):
        if value:
            lines += [f"### {title}", _block(value), ""]
    for task in run.ev_tasks or []:
        lines += [
            f"### Failing task `{task.get('name') or '?'}`",
            f"- status: `{task.get('status') or '-'}`, exit code: `{task.get('exit_code')}`",
            f"- failureReason: {task.get('failure_reason') or '-'}",
            f"- statusMessage: {task.get('status_message') or '-'}",
            f"- log: `{task.get('log_location') or '-'}`",
            "",
        ]
    lines += ["### Log tail", _block(run.ev_log_tail)]
    return "\n".join(lines)

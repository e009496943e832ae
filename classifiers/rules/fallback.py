"""The last rule: nothing recognised the evidence, so say so honestly."""

from __future__ import annotations

import re

from classifiers.lookup import generic_code
from classifiers.rules.base import EvidenceView, FunctionRule, bound, clean_line, make
from classifiers.taxonomy import Classification, Owner

# Lines that carry no information about the cause (Nextflow boilerplate, separators).
_NOISE = re.compile(
    r"^\W*$"
    r"|^(?:ERROR ~ )?Error executing process >"
    r"|^Caused by:\s*$"
    r"|^Workflow execution completed unsuccessfully"
    r"|-- Check '\.nextflow\.log' file for details"
    r"|^Command (?:executed|output|error|exit status):\s*$"
    r"|^Work dir:\s*$"
    r"|^Tip: ",
    re.IGNORECASE,
)
_MAX_LINES = 200


def first_meaningful_line(view: EvidenceView) -> str | None:
    """The first informative line of evidence, most telling field first.

    Logs are read from the end (the last lines of a tail explain the failure); messages
    and reports from the start.
    """
    ev = view.evidence
    fields: list[tuple[str | None, bool]] = [
        (ev.error_message, False),
        (ev.status_message, False),
        (ev.failure_reason, False),
        *((t.status_message, False) for t in ev.tasks[:16]),
        *((t.failure_reason, False) for t in ev.tasks[:16]),
        (ev.error_report, False),
        (ev.log_tail, True),
    ]
    for text, from_end in fields:
        if not text:
            continue
        lines = bound(text).splitlines()
        ordered = reversed(lines[-_MAX_LINES:]) if from_end else iter(lines[:_MAX_LINES])
        for line in ordered:
            if not _NOISE.search(line):
                cleaned = clean_line(line)
                if cleaned:
                    return cleaned
    return None


def _unclassified(view: EvidenceView) -> Classification:
    """Nothing recognised the failure: owner `ambiguous`, category `unclassified`.

    The summary quotes the first meaningful line of evidence (truncated) and, for a generic
    HealthOmics code, what that code means, so a person can pick it up from there.
    """
    line = first_meaningful_line(view)
    codes = ", ".join(str(c) for c in view.exit_codes)
    generic = generic_code(view.evidence)
    summary = "No rule recognised this failure"
    if generic is not None:
        summary += f" (HealthOmics {generic.code}: {generic.summary.rstrip('.')})"
    if codes:
        summary += f"; exit code {codes}"
    summary += "."
    if line is None:
        summary += " No failure text was recorded."
    action = "Read the full evidence (error report, failing task logs) and decide who fixes it."
    if generic is not None:
        action = f"{generic.action} Then decide who fixes it."
    return make("fallback.unclassified", Owner.AMBIGUOUS, "unclassified", summary, action, line)


def _fallback(view: EvidenceView) -> Classification | None:
    return _unclassified(view)


_fallback.__doc__ = _unclassified.__doc__

FALLBACK = FunctionRule("fallback.unclassified", _fallback)

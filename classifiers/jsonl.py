"""The `omicsflow classify` JSON-lines contract, as pure functions.

Input: one JSON object per line with any of `platform`, `exit_code`, `failure_reason`,
`status_message`, `error_message`, `error_report`, `log_tail`, `tasks` (objects with `name`,
`status`, `failure_reason`, `status_message`, `exit_code`, `log_location`), plus optional
`elapsed_seconds` and `temp_fail_exit_code`. Unknown keys are ignored.
Output: exactly one JSON line per input line: the classification record (`error_type`,
`owner`, `category`, `summary`, `action`, `classified_by`, `rule`), or `{"error": "..."}`
saying what is wrong with that line. Never raises, never drops a line.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from pydantic import ValidationError

from classifiers.classify import classify
from classifiers.evidence import Evidence
from classifiers.taxonomy import Classification

# An optional second opinion (the CLI's --llm on) injected by the caller; this module stays pure.
Refine = Callable[[Evidence, Classification], Classification]

# Error messages quote at most this much of the offending input.
_ERROR_CHARS = 300


def _validation_message(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors()[:5]:
        where = ".".join(str(p) for p in err.get("loc", ())) or "(line)"
        parts.append(f"{where}: {err.get('msg', 'invalid')}")
    return "invalid evidence: " + "; ".join(parts)


def classify_json_line(obj: dict[str, Any], refine: Refine | None = None) -> dict[str, str]:
    """Classify one decoded input object; an `{"error": ...}` dict if it is not evidence."""
    if not isinstance(obj, dict):
        return {"error": f"expected a JSON object, got {type(obj).__name__}"}
    try:
        evidence = Evidence.model_validate(obj)
    except ValidationError as exc:
        return {"error": _validation_message(exc)[: _ERROR_CHARS * 2]}
    except Exception as exc:  # e.g. RecursionError on absurd nesting
        return {"error": f"invalid evidence: {type(exc).__name__}"}
    try:
        result = classify(evidence)
        return (refine(evidence, result) if refine else result).as_record()
    except Exception as exc:  # classify does not raise; this keeps the contract if it ever did
        return {"error": f"internal error: {type(exc).__name__}"}


def classify_line(line: str, refine: Refine | None = None) -> str:
    """One input line to one output line (no trailing newline)."""
    text = line.strip()
    if not text:
        out: dict[str, str] = {"error": "empty line"}
    else:
        try:
            obj = json.loads(text)
        except (ValueError, RecursionError) as exc:
            out = {"error": f"invalid JSON: {str(exc)[:_ERROR_CHARS]}"}
        else:
            out = classify_json_line(obj, refine)
    return json.dumps(out, ensure_ascii=False, separators=(",", ":"))


def classify_stream(lines: Iterable[str], refine: Refine | None = None) -> Iterator[str]:
    """Classify JSON lines lazily, one output line (without newline) per input line."""
    for line in lines:
        try:
            yield classify_line(line, refine)
        except Exception as exc:  # never lose a line, whatever happened
            yield json.dumps({"error": f"internal error: {type(exc).__name__}"})

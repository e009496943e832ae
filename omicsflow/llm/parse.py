"""Strict parsing of a model's answer into the closed taxonomy.

Anything that is not exactly one JSON object with exactly the four expected keys, valid
values and sane lengths is discarded (None) and the deterministic answer stands. Being strict
is cheap here: the fallback is optional, while a half-parsed answer could put free text from an
injected log line into a ledger row and a Firestore document.
"""

from __future__ import annotations

import json
import re
from typing import Any

from pydantic import ValidationError

from classifiers.taxonomy import Classification, ClassifiedBy, Owner

# Used with fullmatch: "$" would also accept a trailing newline.
CATEGORY_RE = re.compile(r"[a-z][a-z0-9_]{0,63}")
MAX_TEXT_CHARS = 500
MAX_RULE_CHARS = 100  # Classification.rule's limit
EXPECTED_KEYS = frozenset({"owner", "category", "summary", "action"})

# A whole answer wrapped in one code fence (```json ... ``` or ``` ... ```), nothing outside.
_FENCE_RE = re.compile(r"\A```[a-zA-Z]*[ \t]*\n(?P<body>.*?)\n?```\Z", re.DOTALL)


class _DuplicateKey(ValueError):
    pass


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    # json.loads keeps the last duplicate silently; an answer such as
    # {"owner": "lab", ..., "owner": "platform"} is ambiguous, so refuse it.
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise _DuplicateKey(key)
        out[key] = value
    return out


def llm_rule(provider: str, model_id: str) -> str:
    """`llm:<provider>:<model>`, cut to the ledger's rule length (model ARNs can be long)."""
    return f"llm:{provider}:{model_id}"[:MAX_RULE_CHARS]


def extract_json_text(answer: str) -> str:
    """The answer with surrounding whitespace and at most one enclosing code fence removed."""
    text = answer.strip()
    fenced = _FENCE_RE.match(text)
    return fenced.group("body").strip() if fenced else text


def parse_answer(answer: str, *, provider: str, model_id: str) -> Classification | None:
    """The model's answer as a Classification (classified_by=llm), or None if it is invalid."""
    try:
        data = json.loads(extract_json_text(answer), object_pairs_hook=_no_duplicates)
    except (ValueError, RecursionError):  # JSONDecodeError and _DuplicateKey are ValueErrors
        return None
    if not isinstance(data, dict) or set(data) != EXPECTED_KEYS:
        return None
    owner, category = data["owner"], data["category"]
    summary, action = data["summary"], data["action"]
    if not all(isinstance(v, str) for v in (owner, category, summary, action)):
        return None
    if owner not in {o.value for o in Owner}:
        return None
    if not CATEGORY_RE.fullmatch(category):
        return None
    if not summary.strip() or not action.strip():
        return None
    if len(summary) > MAX_TEXT_CHARS or len(action) > MAX_TEXT_CHARS:
        return None
    try:
        return Classification(
            owner=Owner(owner),
            category=category,
            summary=summary,
            action=action,
            classified_by=ClassifiedBy.LLM,
            rule=llm_rule(provider, model_id),
        )
    except ValidationError:
        return None

"""Strict parsing: one JSON object in the closed taxonomy, or nothing."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from classifiers.taxonomy import Classification, ClassifiedBy, Owner
from omicsflow.llm.parse import llm_rule, parse_answer

GOOD = {
    "owner": "lab",
    "category": "input_not_found",
    "summary": "The input s3://bucket/sample_7.bam does not exist.",
    "action": "Upload the file or fix the sample sheet, then retry.",
}


def _parse(text: str) -> Classification | None:
    return parse_answer(text, provider="openai", model_id="gpt-test")


def test_valid_answer_becomes_an_llm_classification() -> None:
    result = _parse(json.dumps(GOOD))

    assert result is not None
    assert result.owner is Owner.LAB
    assert result.classified_by is ClassifiedBy.LLM
    assert result.rule == "llm:openai:gpt-test"


@pytest.mark.parametrize(
    "text",
    [
        f"```json\n{json.dumps(GOOD)}\n```",
        f"```\n{json.dumps(GOOD)}\n```",
        f"  \n{json.dumps(GOOD, indent=2)}\n  ",
    ],
    ids=["json-fence", "bare-fence", "whitespace"],
)
def test_surrounding_fences_and_whitespace_are_tolerated(text: str) -> None:
    assert _parse(text) is not None


@pytest.mark.parametrize(
    "text",
    [
        "",
        "null",
        "[]",
        json.dumps([GOOD]),
        "Here you go: " + json.dumps(GOOD),
        json.dumps(GOOD) + " " + json.dumps(GOOD),
        f"```json\n{json.dumps(GOOD)}\n```\nHope this helps",
        f"text\n```json\n{json.dumps(GOOD)}\n```",
        # duplicate key: which owner was meant?
        json.dumps(GOOD)[:-1] + ', "owner": "platform"}',
    ],
    ids=[
        "empty",
        "null",
        "list",
        "list-of-one",
        "prefix",
        "two-objects",
        "fence-suffix",
        "fence-prefix",
        "duplicate-key",
    ],
)
def test_anything_but_exactly_one_object_is_discarded(text: str) -> None:
    assert _parse(text) is None


@pytest.mark.parametrize(
    "change",
    [
        {"owner": "everyone"},
        {"owner": "Platform"},
        {"owner": None},
        {"category": "Out Of Memory"},
        {"category": "1st_failure"},
        {"category": "a" * 65},
        {"category": "oom\n"},
        {"summary": ""},
        {"summary": "   "},
        {"action": "x" * 501},
        {"summary": 42},
        {"confidence": 0.9},  # extra key
    ],
    ids=lambda c: next(iter(c)) + "=" + repr(next(iter(c.values())))[:20],
)
def test_schema_violations_are_discarded(change: dict[str, object]) -> None:
    assert _parse(json.dumps({**GOOD, **change})) is None


def test_missing_key_is_discarded() -> None:
    assert _parse(json.dumps({k: v for k, v in GOOD.items() if k != "action"})) is None


def test_limits_are_inclusive() -> None:
    result = _parse(json.dumps({**GOOD, "category": "a" * 64, "summary": "s" * 500}))

    assert result is not None


def test_rule_is_cut_to_the_ledger_limit() -> None:
    model = "arn:aws:bedrock:us-east-1:123456789012:application-inference-profile/" + "x" * 80

    rule = llm_rule("bedrock", model)

    assert len(rule) == 100
    assert rule.startswith("llm:bedrock:arn:aws:bedrock:")
    assert parse_answer(json.dumps(GOOD), provider="bedrock", model_id=model) is not None


@given(st.text(max_size=300))
def test_arbitrary_text_never_raises(text: str) -> None:
    result = _parse(text)

    assert result is None or result.classified_by is ClassifiedBy.LLM

"""Bounded evidence views and the generic rule types."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from classifiers.evidence import Platform
from classifiers.rules.base import (
    DETAIL_CHARS,
    FIELD_HEAD_CHARS,
    FIELD_TAIL_CHARS,
    MAX_TASKS,
    MAX_TEXT_CHARS,
    EvidenceView,
    PatternRule,
    Rx,
    bound,
    clean_line,
    literal_keyword,
    rx,
)
from classifiers.taxonomy import Owner
from tests.classifiers.conftest import ev


def test_bound_keeps_both_ends_of_long_text() -> None:
    text = "HEAD" + "x" * 100_000 + "TAIL"
    out = bound(text)
    assert len(out) <= FIELD_HEAD_CHARS + FIELD_TAIL_CHARS + 10
    assert out.startswith("HEAD") and out.endswith("TAIL")
    assert bound("short") == "short"
    assert bound(None) == ""


def test_last_line_of_every_run_field_is_scanned_even_when_all_are_huge() -> None:
    big = "y" * 200_000
    view = EvidenceView.of(
        ev(
            failure_reason=big,
            status_message=big,
            error_message=big,
            error_report=big,
            log_tail=big + "\nLAST LOG LINE",
            tasks=[{"status": "FAILED", "status_message": big} for _ in range(20)],
        )
    )
    assert "LAST LOG LINE" in view.text
    assert len(view.text) <= MAX_TEXT_CHARS + 5


def test_clean_line_removes_control_characters_and_truncates() -> None:
    out = clean_line("a\x00b\x1b[31m   c" + "z" * 500)
    assert "\x00" not in out and "\x1b" not in out
    assert len(out) == DETAIL_CHARS
    assert out.startswith("a b [31m c")


def test_view_puts_failed_tasks_first_and_caps_their_number() -> None:
    tasks = [{"name": f"ok{i}", "status": "COMPLETED", "exit_code": 0} for i in range(40)]
    tasks.append({"name": "bad", "status": "FAILED", "exit_code": 137})
    view = EvidenceView.of(ev(exit_code=1, tasks=tasks))
    assert view.task_names[0] == "bad"
    assert len(view.task_names) == MAX_TASKS
    assert view.exit_codes == (1, 137, 0)


def _rule(**kw: object) -> PatternRule:
    base: dict[str, object] = {
        "id": "t.rule",
        "doc": "test",
        "owner": Owner.PLATFORM,
        "category": "x",
        "summary": "S.",
        "action": "A.",
    }
    base.update(kw)
    return PatternRule(**base)  # type: ignore[arg-type]


def test_pattern_and_exit_code_both_required_unless_either() -> None:
    both = _rule(pattern=rx("boom"), exit_codes=frozenset({3}))
    either = _rule(pattern=rx("boom"), exit_codes=frozenset({3}), either=True)
    assert both.apply(EvidenceView.of(ev(log_tail="boom", exit_code=3))) is not None
    assert both.apply(EvidenceView.of(ev(log_tail="boom", exit_code=4))) is None
    assert either.apply(EvidenceView.of(ev(log_tail="boom", exit_code=4))) is not None
    assert either.apply(EvidenceView.of(ev(exit_code=3))) is not None
    assert either.apply(EvidenceView.of(ev(exit_code=4))) is None


def test_unless_and_platform_restrict_a_rule() -> None:
    rule = _rule(
        pattern=rx("boom"),
        unless=rx("benign"),
        platforms=frozenset({Platform.BLAST}),
    )
    assert rule.apply(EvidenceView.of(ev(platform="blast", log_tail="boom"))) is not None
    assert rule.apply(EvidenceView.of(ev(platform="local", log_tail="boom"))) is None
    assert rule.apply(EvidenceView.of(ev(platform="blast", log_tail="boom benign"))) is None


def test_summary_quotes_the_matched_line() -> None:
    rule = _rule(pattern=rx("boom"))
    out = rule.apply(EvidenceView.of(ev(log_tail="first\nthe boom line\nlast")))
    assert out is not None
    assert out.summary == 'S. Evidence: "the boom line"'


@pytest.mark.parametrize(
    ("alternative", "keyword"),
    [
        (r"Host EC2 \(instance i-[0-9a-f]{1,32}\) terminated", "host ec2 (instance i-"),
        (r"line \d+:\s+\d+ Killed\s", " killed"),
        (r"Exit Code:?\s*137\b", "exit code"),  # the optional ':' is not required
        (r"fork: (?:retry: )?(?:Cannot allocate memory|x)", "fork: "),  # groups are skipped
        (r"manifest for [^\n]{1,200} not found", "manifest for "),
        (r"^\s*(?:KeyError|ValueError): ", None),  # nothing certain: no prefilter
        (r"a|b", None),
    ],
)
def test_literal_keyword(alternative: str, keyword: str | None) -> None:
    assert literal_keyword(alternative) == keyword


def _all_patterns() -> list[Rx]:
    from classifiers.rules import aws_batch, elasticblast, local, nextflow

    found: list[Rx] = []
    for module in (aws_batch, elasticblast, local, nextflow):
        for value in vars(module).values():
            if isinstance(value, Rx):
                found.append(value)
            elif isinstance(value, PatternRule):
                found.extend(p for p in (value.pattern, value.unless) if p is not None)
    return found


CORPUS_TEXTS = [
    json.dumps(json.loads(line)["evidence"])
    for path in sorted((Path(__file__).parents[1] / "corpus").glob("*.jsonl"))
    for line in path.read_text().splitlines()
]


def test_prefilter_never_hides_a_match_on_the_corpus() -> None:
    patterns = _all_patterns()
    assert len(patterns) > 30
    for raw in CORPUS_TEXTS:
        view = EvidenceView.of(ev(**json.loads(raw)))
        for p in patterns:
            assert (p.regex.search(view.text) is not None) == (p.search(view) is not None), (
                p.regex.pattern[:80],
                raw[:80],
            )


# Includes the long s and the Kelvin sign: they match "s"/"k" under re.IGNORECASE, and the
# prefilter must agree (it casefolds).
@given(
    st.text(
        alphabet=st.sampled_from("KILLED killed Host EC2 ()-:\u017f\u212a\n137 fork space"),
        max_size=80,
    )
)
def test_prefilter_is_sound_on_random_text(text: str) -> None:
    view = EvidenceView.of(ev(log_tail=text))
    for p in _all_patterns():
        if p.regex.search(view.text) is not None:
            assert p.may_match(view), p.regex.pattern[:80]

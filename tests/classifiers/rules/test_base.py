"""Bounded evidence views and the generic rule types."""

from __future__ import annotations

import re

from classifiers.evidence import Platform
from classifiers.rules.base import (
    DETAIL_CHARS,
    FIELD_HEAD_CHARS,
    FIELD_TAIL_CHARS,
    MAX_TASKS,
    EvidenceView,
    PatternRule,
    bound,
    clean_line,
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
    both = _rule(pattern=re.compile("boom"), exit_codes=frozenset({3}))
    either = _rule(pattern=re.compile("boom"), exit_codes=frozenset({3}), either=True)
    assert both.apply(EvidenceView.of(ev(log_tail="boom", exit_code=3))) is not None
    assert both.apply(EvidenceView.of(ev(log_tail="boom", exit_code=4))) is None
    assert either.apply(EvidenceView.of(ev(log_tail="boom", exit_code=4))) is not None
    assert either.apply(EvidenceView.of(ev(exit_code=3))) is not None
    assert either.apply(EvidenceView.of(ev(exit_code=4))) is None


def test_unless_and_platform_restrict_a_rule() -> None:
    rule = _rule(
        pattern=re.compile("boom"),
        unless=re.compile("benign"),
        platforms=frozenset({Platform.BLAST}),
    )
    assert rule.apply(EvidenceView.of(ev(platform="blast", log_tail="boom"))) is not None
    assert rule.apply(EvidenceView.of(ev(platform="local", log_tail="boom"))) is None
    assert rule.apply(EvidenceView.of(ev(platform="blast", log_tail="boom benign"))) is None


def test_summary_quotes_the_matched_line() -> None:
    rule = _rule(pattern=re.compile("boom"))
    out = rule.apply(EvidenceView.of(ev(log_tail="first\nthe boom line\nlast")))
    assert out is not None
    assert out.summary == 'S. Evidence: "the boom line"'

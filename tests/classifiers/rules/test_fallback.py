"""The fallback: honest about not knowing, and quotes the evidence."""

from __future__ import annotations

from classifiers.rules.base import DETAIL_CHARS, EvidenceView
from classifiers.rules.fallback import FALLBACK, first_meaningful_line
from classifiers.taxonomy import Owner
from tests.classifiers.conftest import ev


def test_quotes_first_meaningful_line_skipping_nextflow_boilerplate() -> None:
    report = "ERROR ~ Error executing process > 'X'\n\nCaused by:\n  widget frobnication failed\n"
    view = EvidenceView.of(ev(error_report=report))
    assert first_meaningful_line(view) == "widget frobnication failed"
    out = FALLBACK.apply(view)
    assert out is not None
    assert (out.owner, out.category) == (Owner.AMBIGUOUS, "unclassified")
    assert "widget frobnication failed" in out.summary


def test_log_tail_is_read_from_its_end() -> None:
    view = EvidenceView.of(ev(log_tail="starting\nstep 2\nfinal: widget exploded\n\n"))
    assert first_meaningful_line(view) == "final: widget exploded"


def test_long_lines_are_truncated() -> None:
    view = EvidenceView.of(ev(error_message="w" * 10_000))
    line = first_meaningful_line(view)
    assert line is not None and len(line) == DETAIL_CHARS


def test_no_text_says_so_and_reports_exit_code() -> None:
    out = FALLBACK.apply(EvidenceView.of(ev(exit_code=3)))
    assert out is not None
    assert "No failure text was recorded" in out.summary and "exit code 3" in out.summary

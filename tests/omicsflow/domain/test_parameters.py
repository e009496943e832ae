"""Parameter templates of remote services, filled from report fields."""

from __future__ import annotations

import pytest

from omicsflow.domain.parameters import render_parameters
from omicsflow.errors import InvalidReportError


def test_placeholders_take_report_fields_keeping_their_type() -> None:
    template = {"input": "{report.fastq}", "sample": "{report_id}", "threads": "{report.n}",
                "label": "run-{report_id}-{report.n}", "nested": {"list": ["{report.fastq}", 3]}}
    out = render_parameters(template, "R1", {"fastq": "s3://b/r1.fq.gz", "n": 8})
    assert out == {"input": "s3://b/r1.fq.gz", "sample": "R1", "threads": 8,
                   "label": "run-R1-8", "nested": {"list": ["s3://b/r1.fq.gz", 3]}}


def test_a_missing_field_is_the_labs_problem_with_its_name() -> None:
    with pytest.raises(InvalidReportError, match="no 'fastq' field"):
        render_parameters({"input": "{report.fastq}"}, "R1", {})


def test_field_values_are_never_expanded_again() -> None:
    out = render_parameters({"a": "{report.x}"}, "R1", {"x": "{report_id} {__import__}"})
    assert out == {"a": "{report_id} {__import__}"}


def test_other_braces_stay_literal() -> None:
    assert render_parameters({"a": "{not.a.placeholder}"}, "R1", {}) == {"a": "{not.a.placeholder}"}

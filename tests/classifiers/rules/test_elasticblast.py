"""ElasticBLAST exit-code rules (codes from ncbi/elastic-blast 1.5.0 constants.py)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from classifiers.rules import elasticblast
from classifiers.taxonomy import Owner
from tests.classifiers.conftest import apply, classify_fields

REFERENCE = Path(__file__).resolve().parents[4] / "shared/reference/elasticblast_reference.json"

EXPECTED = {
    2: (Owner.BIOINFORMATICIAN, "blast_database_error"),
    3: (Owner.BIOINFORMATICIAN, "tool_error"),
    4: (Owner.BIOINFORMATICIAN, "out_of_memory"),
    5: (Owner.PLATFORM, "cloud_timeout"),
    6: (Owner.PLATFORM, "permission_denied"),
    7: (Owner.PLATFORM, "cloud_dependency_error"),
    8: (Owner.PLATFORM, "cluster_error"),
    9: (Owner.PLATFORM, "terminated_by_signal"),
    10: (Owner.PLATFORM, "not_ready"),
}


def test_every_documented_error_code_is_covered() -> None:
    documented = {c["code"] for c in json.loads(REFERENCE.read_text())["exit_codes"]}
    # 0 is success, 1 has its own rule, 255 is "unknown" and left to the fallback.
    assert documented - {0, 1, 255} == set(EXPECTED)


@pytest.mark.parametrize(("code", "expected"), sorted(EXPECTED.items()))
def test_exit_code_on_blast(code: int, expected: tuple[Owner, str]) -> None:
    out = classify_fields(platform="blast", exit_code=code)
    assert (out.owner, out.category) == expected
    assert out.rule.startswith(f"blast.exit_{code}_")


@pytest.mark.parametrize("code", [2, 5, 7])
def test_blast_codes_mean_nothing_on_other_platforms(code: int) -> None:
    assert not classify_fields(platform="local", exit_code=code).rule.startswith("blast.")


def test_input_error_splits_query_from_config() -> None:
    config = apply(
        elasticblast.INPUT_ERROR,
        platform="blast",
        exit_code=1,
        log_tail="ERROR: cluster name ElasticBLAST-Test must have all lower case characters",
    )
    assert config is not None and config.owner is Owner.BIOINFORMATICIAN
    unknown = apply(elasticblast.INPUT_ERROR, platform="blast", exit_code=1)
    assert unknown is not None and unknown.owner is Owner.AMBIGUOUS
    assert apply(elasticblast.INPUT_ERROR, platform="local", exit_code=1) is None


def test_missing_query_file_is_the_labs() -> None:
    out = classify_fields(
        platform="blast",
        exit_code=1,
        log_tail="ERROR: Query input s3://bucket/q.fa is not readable or does not exist",
    )
    assert (out.owner, out.category) == (Owner.LAB, "input_missing")


def test_exit_255_is_unclassified() -> None:
    assert classify_fields(platform="blast", exit_code=255).category == "unclassified"

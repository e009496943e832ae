"""The HealthOmics failure-code lookup, checked against the documented code list."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from classifiers.classify import classify
from classifiers.lookup import HEALTHOMICS_CODES, ambiguous_hint, code_of, lookup
from classifiers.taxonomy import ClassifiedBy, Owner
from tests.classifiers.conftest import ev

REFERENCE = Path(__file__).resolve().parents[3] / "shared/reference/healthomics_failure_codes.json"
DOCUMENTED = json.loads(REFERENCE.read_text()) if REFERENCE.exists() else []
CODES = [c["code"] for c in DOCUMENTED]

# Codes that cannot name a cause alone: the rules must look at statusMessage and tasks.
NON_DECIDING = {
    "WORKFLOW_RUN_FAILED",
    "RUN_TASK_FAILED",
    "EXPORT_FAILED",
    "IMPORT_FAILED",
    "INVALID_URI_INPUT",
    "RUN_TIMED_OUT",
}
# Where our owner differs from the reference's proposal, and why (see lookup.py).
OWNER_OVERRIDES = {"ASSUME_ROLE_FAILED": Owner.PLATFORM}  # the run role is deployment config


def test_reference_file_is_present() -> None:
    assert len(CODES) == 24, REFERENCE


def test_table_has_exactly_the_documented_codes() -> None:
    assert set(HEALTHOMICS_CODES) == set(CODES)


@pytest.mark.parametrize("code", CODES)
def test_every_documented_code(code: str) -> None:
    documented = next(c for c in DOCUMENTED if c["code"] == code)
    result = lookup(ev(platform="healthomics", failure_reason=code))
    if code in NON_DECIDING:
        # Falls through: the lookup gives nothing, classification comes from elsewhere.
        assert result is None
        assert documented["proposed_owner"] == "Ambiguous"
        final = classify(ev(platform="healthomics", failure_reason=code))
        assert final.owner is Owner.AMBIGUOUS
        return
    assert result is not None
    assert result.classified_by is ClassifiedBy.LOOKUP
    assert result.rule == f"healthomics.{code}"
    expected = OWNER_OVERRIDES.get(code, Owner(documented["proposed_owner"].lower()))
    assert result.owner is expected
    assert code in result.summary


@pytest.mark.parametrize("code", sorted(NON_DECIDING))
def test_generic_codes_fall_through_to_rules(code: str) -> None:
    result = classify(
        ev(
            platform="healthomics",
            failure_reason=code,
            status_message="OutOfMemoryError: Container killed due to memory usage",
        )
    )
    assert result.classified_by is ClassifiedBy.RULES
    assert result.rule == "aws.container_oom"
    assert result.owner is Owner.BIOINFORMATICIAN


def test_task_code_decides_when_run_code_is_generic() -> None:
    evidence = ev(
        platform="healthomics",
        failure_reason="RUN_TASK_FAILED",
        tasks=[
            {"name": "ok", "status": "COMPLETED"},
            {"name": "align", "status": "FAILED", "failure_reason": "OUT_OF_MEMORY_ERROR"},
        ],
    )
    result = classify(evidence)
    assert result.classified_by is ClassifiedBy.LOOKUP
    assert result.rule == "healthomics.OUT_OF_MEMORY_ERROR"


def test_non_deciding_code_with_area_gives_ambiguous_hint_after_rules() -> None:
    result = classify(ev(platform="healthomics", failure_reason="IMPORT_FAILED"))
    assert (result.owner, result.category) == (Owner.AMBIGUOUS, "input_import_failed")
    assert result.classified_by is ClassifiedBy.LOOKUP
    assert ambiguous_hint(ev(failure_reason="RUN_TASK_FAILED")) is None


def test_import_failed_with_missing_fastq_goes_to_lab() -> None:
    result = classify(
        ev(
            platform="healthomics",
            failure_reason="IMPORT_FAILED",
            status_message="s3://lab-bucket/run42/S1_R1_001.fastq.gz does not exist",
        )
    )
    assert (result.owner, result.category) == (Owner.LAB, "input_missing")


def test_generic_code_alone_is_unclassified_and_says_what_the_code_means() -> None:
    result = classify(ev(platform="healthomics", failure_reason="WORKFLOW_RUN_FAILED"))
    assert result.category == "unclassified"
    assert "WORKFLOW_RUN_FAILED" in result.summary
    assert "engineLogStream" in result.action


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("SERVICE_ERROR", "SERVICE_ERROR"),
        ("  OUT_OF_MEMORY_ERROR: task align", "OUT_OF_MEMORY_ERROR"),
        ("service_error", None),  # codes are upper case
        ("NOT_A_CODE", None),
        ("SERVICE_ERRORS", None),
        ("", None),
        (None, None),
    ],
)
def test_code_of(text: str | None, code: str | None) -> None:
    assert code_of(text) == code


def test_every_entry_reads_as_plain_words() -> None:
    for entry in HEALTHOMICS_CODES.values():
        assert entry.summary.endswith(".")
        assert entry.action.endswith(".")
        assert entry.decides == (entry.code not in NON_DECIDING)

"""classify(): order of sources, and properties that must hold for any evidence."""

from __future__ import annotations

import time

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from classifiers.classify import classify
from classifiers.evidence import Evidence, Platform, TaskEvidence
from classifiers.taxonomy import Classification, ClassifiedBy, ErrorType, Owner
from tests.classifiers.conftest import ev

# --- order of the sources ------------------------------------------------------------------


def test_lookup_wins_over_rules() -> None:
    # The text would make the rules say platform/disk_full; the documented code decides.
    out = classify(
        ev(failure_reason="OUT_OF_MEMORY_ERROR", status_message="No space left on device")
    )
    assert out.classified_by is ClassifiedBy.LOOKUP
    assert out.category == "out_of_memory"


def test_rules_before_ambiguous_hint() -> None:
    out = classify(
        ev(
            failure_reason="EXPORT_FAILED",
            status_message="Access Denied (Service: "
            "Amazon S3; Status Code: 403; Error Code: AccessDenied)",
        )
    )
    assert (out.owner, out.category) == (Owner.PLATFORM, "permission_denied")


def test_error_type_follows_owner() -> None:
    assert classify(ev(failure_reason="SERVICE_ERROR")).error_type is ErrorType.SYSTEM
    assert classify(ev(exit_code=137)).error_type is ErrorType.USER
    assert classify(ev()).error_type is ErrorType.USER


def test_empty_evidence_is_unclassified() -> None:
    out = classify(Evidence())
    assert (out.owner, out.category, out.rule) == (
        Owner.AMBIGUOUS,
        "unclassified",
        "fallback.unclassified",
    )


def test_one_megabyte_report_with_cause_at_the_end_is_found() -> None:
    report = ("INFO harmless line\n" * 60_000) + "Memory cgroup out of memory: Killed process 9"
    assert len(report) > 1_000_000
    started = time.perf_counter()
    out = classify(ev(platform="seqera", error_report=report))
    elapsed = time.perf_counter() - started
    assert out.category == "out_of_memory"
    assert elapsed < 0.25  # bounded scanning: generous limit for slow CI machines


def test_cause_in_the_unscanned_middle_is_not_seen() -> None:
    # Documents the bound: the middle of a huge field is skipped on purpose.
    report = "x\n" * 20_000 + "No space left on device\n" + "y\n" * 20_000
    assert classify(ev(error_report=report)).category != "disk_full"


def test_pathological_backtracking_input_is_fast() -> None:
    nasty = ("Host EC2 " + " " * 5_000 + "\n") * 3 + "Unable to read script: " + "a" * 15_000
    started = time.perf_counter()
    classify(ev(log_tail=nasty, error_report=nasty, status_message=nasty))
    assert time.perf_counter() - started < 0.25


# --- properties ----------------------------------------------------------------------------

junk_text = st.one_of(
    st.none(),
    st.text(max_size=300),
    st.binary(max_size=300).map(lambda b: b.decode("latin-1")),
    st.sampled_from(
        [
            "RUN_TASK_FAILED",
            "OUT_OF_MEMORY_ERROR",
            "Command exit status:\n  137",
            "No such file or directory: S1_R1.fastq.gz",
            "CannotPullContainerError: ",
            "\x00\x01\x02",
            "\n\n\n",
        ]
    ),
)
exit_codes = st.one_of(st.none(), st.integers(min_value=-(2**63), max_value=2**63))
tasks = st.lists(
    st.builds(
        TaskEvidence,
        name=junk_text,
        status=st.one_of(st.none(), st.sampled_from(["FAILED", "COMPLETED", "x"])),
        failure_reason=junk_text,
        status_message=junk_text,
        exit_code=exit_codes,
        log_location=junk_text,
    ),
    max_size=5,
)
evidence = st.builds(
    Evidence,
    platform=st.sampled_from(list(Platform)),
    exit_code=exit_codes,
    failure_reason=junk_text,
    status_message=junk_text,
    error_message=junk_text,
    error_report=junk_text,
    tasks=tasks.map(tuple),
    log_tail=junk_text,
    elapsed_seconds=st.one_of(st.none(), st.floats(allow_nan=True)),
    temp_fail_exit_code=exit_codes,
)


def _valid(out: Classification) -> None:
    # Re-validating the record proves every field still satisfies the taxonomy's constraints.
    Classification.model_validate(out.model_dump())
    record = out.as_record()
    assert set(record) == {
        "error_type",
        "owner",
        "category",
        "summary",
        "action",
        "classified_by",
        "rule",
    }
    assert "\n" not in record["summary"] and len(record["summary"]) <= 500
    record["summary"].encode("utf-8")  # no lone surrogates


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(evidence)
def test_any_evidence_yields_a_valid_deterministic_classification(e: Evidence) -> None:
    first = classify(e)
    _valid(first)
    assert classify(e) == first


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    # Random bytes repeated to 1 MB: hypothesis cannot draw megabytes itself.
    st.binary(min_size=1, max_size=256).map(
        lambda b: (b * (1_000_000 // len(b) + 1))[:1_000_000].decode("latin-1")
    ),
    st.sampled_from(["error_report", "log_tail", "status_message"]),
)
def test_megabyte_binary_junk_in_any_field(junk: str, field: str) -> None:
    e = Evidence.model_validate({"platform": "seqera", field: junk})
    _valid(classify(e))


def test_many_tasks_are_bounded() -> None:
    many = tuple(
        TaskEvidence(name=f"t{i}", status="FAILED", status_message="x" * 20_000) for i in range(500)
    )
    started = time.perf_counter()
    _valid(classify(Evidence(tasks=many)))
    assert time.perf_counter() - started < 0.5

"""What a local pipeline's exit means: success, inputs-not-ready, failure or cancel."""

from __future__ import annotations

import pytest

from classifiers.evidence import Platform
from classifiers.taxonomy import Classification, ClassifiedBy, ErrorType, Owner
from omicsflow.domain.outcomes import (
    failure_outcome,
    failure_reason,
    local_evidence,
    local_outcome_kind,
)
from omicsflow.domain.routing import OutcomeKind
from omicsflow.sandbox.spec import PipelineResult
from omicsflow.services import ServicePolicy

POLICY = ServicePolicy(temp_fail_exit_code=75)


def result(
    exit_code: int = 0,
    *,
    timed_out: bool = False,
    cancelled: bool = False,
    elapsed: float = 12.5,
    log_tail: str = "done\n",
) -> PipelineResult:
    return PipelineResult(
        exit_code=exit_code,
        timed_out=timed_out,
        cancelled=cancelled,
        elapsed_seconds=elapsed,
        log_tail=log_tail,
        sandboxed=True,
    )


def test_exit_zero_is_success() -> None:
    assert local_outcome_kind(result(0), POLICY) is OutcomeKind.SUCCEEDED


def test_the_services_temp_fail_code_means_inputs_not_ready() -> None:
    assert local_outcome_kind(result(75), POLICY) is OutcomeKind.TEMP_FAILED


def test_a_different_temp_fail_code_is_honoured() -> None:
    policy = ServicePolicy(temp_fail_exit_code=3)
    assert local_outcome_kind(result(3), policy) is OutcomeKind.TEMP_FAILED
    assert local_outcome_kind(result(75), policy) is OutcomeKind.FAILED


def test_without_a_temp_fail_code_every_nonzero_exit_is_a_failure() -> None:
    policy = ServicePolicy(temp_fail_exit_code=None)
    assert local_outcome_kind(result(75), policy) is OutcomeKind.FAILED


@pytest.mark.parametrize("code", [1, 2, 124, 137, 255])
def test_other_nonzero_exits_are_failures(code: int) -> None:
    assert local_outcome_kind(result(code), POLICY) is OutcomeKind.FAILED


def test_operator_cancel_wins_over_the_exit_code() -> None:
    assert local_outcome_kind(result(0, cancelled=True), POLICY) is OutcomeKind.CANCELLED
    assert local_outcome_kind(result(75, cancelled=True), POLICY) is OutcomeKind.CANCELLED
    assert local_outcome_kind(result(137, cancelled=True), POLICY) is OutcomeKind.CANCELLED


def test_a_timeout_is_a_failure_even_if_the_exit_code_is_zero() -> None:
    assert local_outcome_kind(result(0, timed_out=True), POLICY) is OutcomeKind.FAILED


def test_a_timeout_is_never_a_temp_fail() -> None:
    # Temp fails retry without bound; a pipeline that keeps timing out must not loop forever
    # just because the service chose the timeout's exit code as its temp-fail code.
    policy = ServicePolicy(temp_fail_exit_code=124)
    assert local_outcome_kind(result(124, timed_out=True), policy) is OutcomeKind.FAILED
    assert local_outcome_kind(result(124), policy) is OutcomeKind.TEMP_FAILED


def test_failure_reason_names_the_exit_code() -> None:
    assert failure_reason(result(2)) == "pipeline exited with code 2"


def test_failure_reason_names_the_signal() -> None:
    assert failure_reason(result(137)) == "pipeline killed by signal 9 (exit 137)"


def test_failure_reason_names_the_timeout() -> None:
    assert failure_reason(result(124, timed_out=True, elapsed=3600.4)) == (
        "pipeline timed out after 3600s"
    )


def test_local_evidence_keeps_exit_code_log_and_temp_fail_code() -> None:
    ev = local_evidence(result(3, log_tail="ERROR: no reads\n", elapsed=7.0), POLICY)
    assert ev.platform is Platform.LOCAL
    assert ev.exit_code == 3
    assert ev.log_tail == "ERROR: no reads\n"
    assert ev.elapsed_seconds == 7.0
    assert ev.temp_fail_exit_code == 75
    # Local runs have no platform messages: nothing is invented.
    assert ev.failure_reason is None and ev.error_message is None


@pytest.mark.parametrize(
    ("owner", "error_type"),
    [
        (Owner.LAB, ErrorType.USER),
        (Owner.BIOINFORMATICIAN, ErrorType.USER),
        (Owner.AMBIGUOUS, ErrorType.USER),
        (Owner.PLATFORM, ErrorType.SYSTEM),
    ],
)
def test_failure_outcome_carries_the_classifications_error_type(
    owner: Owner, error_type: ErrorType
) -> None:
    c = Classification(
        owner=owner,
        category="some_category",
        summary="s",
        action="a",
        classified_by=ClassifiedBy.RULES,
        rule="r",
    )
    out = failure_outcome(c, "pipeline exited with code 1")
    assert out.kind is OutcomeKind.FAILED
    assert out.error_type is error_type
    assert out.reason == "pipeline exited with code 1"

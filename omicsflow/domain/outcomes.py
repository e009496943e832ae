"""From what a local pipeline did to an Outcome and its Evidence. Pure."""

from __future__ import annotations

from classifiers.evidence import Evidence, Platform
from classifiers.taxonomy import Classification
from omicsflow.domain.routing import Outcome, OutcomeKind
from omicsflow.sandbox.spec import PipelineResult
from omicsflow.services import ServicePolicy


def local_evidence(result: PipelineResult, policy: ServicePolicy) -> Evidence:
    return Evidence(
        platform=Platform.LOCAL,
        exit_code=result.exit_code,
        log_tail=result.log_tail,
        elapsed_seconds=result.elapsed_seconds,
        temp_fail_exit_code=policy.temp_fail_exit_code,
    )


def local_outcome_kind(result: PipelineResult, policy: ServicePolicy) -> OutcomeKind:
    if result.cancelled:
        return OutcomeKind.CANCELLED
    if result.exit_code == 0 and not result.timed_out:
        return OutcomeKind.SUCCEEDED
    if result.timed_out:
        # Our timeout's kill (exit 124) is a failure even when a service uses 124 as its
        # temp-fail code: temp fails retry without bound and consume no retry.
        return OutcomeKind.FAILED
    if policy.temp_fail_exit_code is not None and result.exit_code == policy.temp_fail_exit_code:
        return OutcomeKind.TEMP_FAILED
    return OutcomeKind.FAILED


def failure_outcome(classification: Classification, reason: str) -> Outcome:
    return Outcome(OutcomeKind.FAILED, classification.error_type, reason)


def failure_reason(result: PipelineResult) -> str:
    if result.timed_out:
        return f"pipeline timed out after {result.elapsed_seconds:.0f}s"
    if result.exit_code > 128:
        return f"pipeline killed by signal {result.exit_code - 128} (exit {result.exit_code})"
    return f"pipeline exited with code {result.exit_code}"

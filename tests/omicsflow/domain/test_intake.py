"""Intake rules: which report documents become runs, when, and which are duplicates."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from omicsflow.domain.intake import (
    MAX_DOCUMENT_FIELDS,
    MAX_REPORT_ID_LENGTH,
    Create,
    ExistingRow,
    Ignore,
    Reject,
    decide_intake,
    is_safe_report_id,
    validate_document,
)
from omicsflow.domain.states import DEDUP_BLOCKING_STATES, RunState
from omicsflow.services import ServiceConfig

NOW = datetime(2026, 3, 1, 9, 30, tzinfo=UTC)
WGS = ServiceConfig(name="wgs-qc", command=("bash", "run.sh"), cooldown_seconds=900)
FAST = ServiceConfig(name="fast", command=("bash", "fast.sh"), cooldown_seconds=0)
SERVICES = {"wgs-qc": WGS, "fast": FAST}


def doc(**fields: Any) -> dict[str, Any]:
    return {"status": "Data Ready", "service": "wgs-qc", **fields}


# ---------------------------------------------------------------------------- report ids


@pytest.mark.parametrize(
    "report_id",
    [
        "",
        ".",
        "..",
        "a/b",
        "../etc",
        "/abs",
        "a\\b",
        "..\\x",
        "\x00",
        "a\x00b",
        "a\nb",
        "a\tb",
        "x" * (MAX_REPORT_ID_LENGTH + 1),
        "\x1b[31m",
    ],
)
def test_unsafe_report_ids_are_refused(report_id: str) -> None:
    assert not is_safe_report_id(report_id)
    res = decide_intake(report_id, doc(), SERVICES, [], NOW)
    assert isinstance(res, Reject)
    assert "report id" in res.reason


@pytest.mark.parametrize(
    "report_id", ["a", "rpt-0a1b2c", "...", "sample_01.v2", "Ü-ß", "x" * MAX_REPORT_ID_LENGTH]
)
def test_ordinary_report_ids_are_accepted(report_id: str) -> None:
    assert is_safe_report_id(report_id)
    assert isinstance(decide_intake(report_id, doc(), SERVICES, [], NOW), Create)


def test_reject_message_does_not_echo_a_huge_id() -> None:
    res = validate_document("/" * 10_000, doc(), SERVICES)
    assert isinstance(res, Reject)
    assert len(res.reason) < 400


# ----------------------------------------------------------------------- document checks


def test_missing_service_is_rejected_by_name() -> None:
    res = validate_document("r1", {"status": "Data Ready"}, SERVICES)
    assert isinstance(res, Reject)
    assert "no 'service' field" in res.reason


def test_unknown_service_is_rejected_and_the_configured_ones_listed() -> None:
    res = validate_document("r1", doc(service="rna-seq"), SERVICES)
    assert isinstance(res, Reject)
    assert "unknown service 'rna-seq'" in res.reason
    assert "fast, wgs-qc" in res.reason


def test_unknown_service_with_nothing_configured_says_none() -> None:
    res = validate_document("r1", doc(), {})
    assert isinstance(res, Reject)
    assert "configured: none" in res.reason


@pytest.mark.parametrize(
    ("value", "type_name"), [(42, "int"), (["wgs-qc"], "list"), (True, "bool")]
)
def test_non_string_service_is_rejected(value: object, type_name: str) -> None:
    res = validate_document("r1", doc(service=value), SERVICES)
    assert isinstance(res, Reject)
    assert "'service' must be a string" in res.reason
    assert type_name in res.reason


@pytest.mark.parametrize(("value", "type_name"), [("true", "str"), (1, "int"), (None, "NoneType")])
def test_non_bool_manual_hold_release_is_rejected(value: object, type_name: str) -> None:
    res = validate_document("r1", doc(manualHoldRelease=value), SERVICES)
    assert isinstance(res, Reject)
    assert "'manualHoldRelease' must be true or false" in res.reason
    assert type_name in res.reason


def test_document_with_too_many_fields_is_rejected() -> None:
    big = doc(**{f"f{i}": i for i in range(MAX_DOCUMENT_FIELDS)})
    res = validate_document("r1", big, SERVICES)
    assert isinstance(res, Reject)
    assert "fields" in res.reason


def test_valid_document_yields_its_service() -> None:
    assert validate_document("r1", doc(service="fast"), SERVICES) is FAST


def test_rejection_wins_over_dedup() -> None:
    # A bad document is reported even when a row exists, so the operator learns about it.
    existing = [ExistingRow(1, RunState.RUNNING)]
    assert isinstance(decide_intake("r1", doc(service="nope"), SERVICES, existing, NOW), Reject)


# ------------------------------------------------------------------------ create / cooldown


def test_new_report_waits_for_the_service_cooldown() -> None:
    res = decide_intake("r1", doc(), SERVICES, [], NOW)
    assert res == Create(WGS, 1, RunState.WAITING_COOLDOWN, NOW + timedelta(seconds=900))


def test_manual_hold_release_skips_the_cooldown() -> None:
    res = decide_intake("r1", doc(manualHoldRelease=True), SERVICES, [], NOW)
    assert res == Create(WGS, 1, RunState.QUEUED, NOW)


def test_manual_hold_release_false_keeps_the_cooldown() -> None:
    res = decide_intake("r1", doc(manualHoldRelease=False), SERVICES, [], NOW)
    assert isinstance(res, Create)
    assert res.state is RunState.WAITING_COOLDOWN


def test_service_without_cooldown_is_queued_at_once() -> None:
    res = decide_intake("r1", doc(service="fast"), SERVICES, [], NOW)
    assert res == Create(FAST, 1, RunState.QUEUED, NOW)


# ----------------------------------------------------------------------------------- dedup


@pytest.mark.parametrize("state", sorted(DEDUP_BLOCKING_STATES))
def test_replayed_added_is_ignored_while_a_blocking_row_exists(state: RunState) -> None:
    res = decide_intake("r1", doc(), SERVICES, [ExistingRow(1, state)], NOW)
    assert isinstance(res, Ignore)
    assert state.value in res.reason


@pytest.mark.parametrize("state", sorted(DEDUP_BLOCKING_STATES))
def test_manual_hold_release_does_not_bypass_dedup(state: RunState) -> None:
    res = decide_intake("r1", doc(manualHoldRelease=True), SERVICES, [ExistingRow(1, state)], NOW)
    assert isinstance(res, Ignore)


@pytest.mark.parametrize(
    "state", [RunState.FAILED_PERMANENT, RunState.SYSTEM_ERROR, RunState.CANCELLED]
)
def test_terminal_failure_does_not_block_and_opens_a_new_generation(state: RunState) -> None:
    res = decide_intake("r1", doc(), SERVICES, [ExistingRow(3, state)], NOW)
    assert isinstance(res, Create)
    assert res.generation == 4


@pytest.mark.parametrize(
    "state", [RunState.FAILED_PERMANENT, RunState.SYSTEM_ERROR, RunState.CANCELLED]
)
def test_manual_retry_works_after_a_series_with_retries(state: RunState) -> None:
    # The usual history of a failed report: temp fails and retries, then the terminal row.
    # The earlier rows handed over to their successors; they must not block the retry.
    history = [
        ExistingRow(1, RunState.TEMP_FAILED),
        ExistingRow(1, RunState.FAILED_RETRYING),
        ExistingRow(1, RunState.FAILED_SYNC),
        ExistingRow(2, RunState.FAILED_RETRYING),
        ExistingRow(2, state),
    ]
    res = decide_intake("r1", doc(), SERVICES, history, NOW)
    assert isinstance(res, Create)
    assert res.generation == 3


@pytest.mark.parametrize(
    "state", [RunState.FAILED_RETRYING, RunState.TEMP_FAILED, RunState.FAILED_SYNC]
)
def test_newest_row_waiting_for_its_successor_still_blocks(state: RunState) -> None:
    history = [ExistingRow(1, RunState.FAILED_PERMANENT), ExistingRow(2, state)]
    assert isinstance(decide_intake("r1", doc(), SERVICES, history, NOW), Ignore)


def test_success_blocks_even_after_earlier_failed_generations() -> None:
    history = [ExistingRow(1, RunState.SYSTEM_ERROR), ExistingRow(2, RunState.SUCCEEDED)]
    res = decide_intake("r1", doc(manualHoldRelease=True), SERVICES, history, NOW)
    assert isinstance(res, Ignore)
    assert "succeeded" in res.reason


def test_blocking_row_anywhere_in_the_history_blocks() -> None:
    existing = [ExistingRow(1, RunState.FAILED_PERMANENT), ExistingRow(2, RunState.QUEUED)]
    assert isinstance(decide_intake("r1", doc(), SERVICES, existing, NOW), Ignore)


def test_manual_retry_after_several_failed_generations_uses_the_highest_plus_one() -> None:
    existing = [
        ExistingRow(1, RunState.SYSTEM_ERROR),
        ExistingRow(5, RunState.CANCELLED),
        ExistingRow(2, RunState.FAILED_PERMANENT),
    ]
    res = decide_intake("r1", doc(manualHoldRelease=True), SERVICES, existing, NOW)
    assert res == Create(WGS, 6, RunState.QUEUED, NOW)

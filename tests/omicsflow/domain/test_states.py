"""The run-state table: what is active, what blocks dedup, what may follow what."""

from __future__ import annotations

import pytest

from classifiers.taxonomy import ErrorType
from omicsflow.domain.states import (
    ACTIVE_STATES,
    DEDUP_BLOCKING_STATES,
    PENDING_STATES,
    PREFECT_STATE_FOR,
    TERMINAL_FAILURE_STATES,
    TRANSITIONS,
    IllegalTransition,
    RunState,
    blocks_new_run,
    can_transition,
    is_active,
    terminal_failure_state,
)

S = RunState
OUTCOME_STATES = set(RunState) - ACTIVE_STATES


def test_every_state_has_a_transition_entry() -> None:
    assert set(TRANSITIONS) == set(RunState)


def test_active_states_are_exactly_the_documented_ones() -> None:
    assert {
        S.RECEIVED,
        S.MANUAL_HOLD,
        S.WAITING_COOLDOWN,
        S.QUEUED,
        S.RUNNING,
    } == ACTIVE_STATES
    assert all(is_active(s) for s in ACTIVE_STATES)
    assert not any(is_active(s) for s in OUTCOME_STATES)


def test_pending_states_are_the_active_states_before_a_process_starts() -> None:
    assert ACTIVE_STATES - {S.RUNNING} == PENDING_STATES


# A reclassification that flips the error type may move a finished failure to the other
# terminal failure state; that is the only way a finished row ever changes.
RECLASSIFY = {
    S.FAILED_PERMANENT: frozenset({S.SYSTEM_ERROR}),
    S.SYSTEM_ERROR: frozenset({S.FAILED_PERMANENT}),
}


@pytest.mark.parametrize("state", sorted(OUTCOME_STATES))
def test_attempt_outcomes_are_final_for_their_row(state: RunState) -> None:
    # Retries are new rows, never a revived one: no finished row becomes active again.
    assert TRANSITIONS[state] == RECLASSIFY.get(state, frozenset())
    assert not any(can_transition(state, dst) for dst in ACTIVE_STATES)


def test_reclassification_flips_only_between_the_two_terminal_failures() -> None:
    assert can_transition(S.FAILED_PERMANENT, S.SYSTEM_ERROR)
    assert can_transition(S.SYSTEM_ERROR, S.FAILED_PERMANENT)
    assert not can_transition(S.CANCELLED, S.FAILED_PERMANENT)
    assert not can_transition(S.SUCCEEDED, S.FAILED_PERMANENT)
    assert not can_transition(S.FAILED_PERMANENT, S.SUCCEEDED)


@pytest.mark.parametrize("state", sorted(ACTIVE_STATES))
def test_every_active_row_can_be_cancelled(state: RunState) -> None:
    assert can_transition(state, S.CANCELLED)


def test_only_a_running_row_reaches_an_attempt_outcome() -> None:
    for dst in (S.SUCCEEDED, S.FAILED_RETRYING, S.TEMP_FAILED, S.FAILED_SYNC):
        sources = {src for src, dsts in TRANSITIONS.items() if dst in dsts}
        assert sources == {S.RUNNING}, dst
    # system_error: from running, or a finished user failure reclassified as system.
    sources = {src for src, dsts in TRANSITIONS.items() if S.SYSTEM_ERROR in dsts}
    assert sources == {S.RUNNING, S.FAILED_PERMANENT}


def test_a_row_cannot_skip_back_to_an_earlier_active_state() -> None:
    assert not can_transition(S.RUNNING, S.QUEUED)
    assert not can_transition(S.RUNNING, S.WAITING_COOLDOWN)
    assert not can_transition(S.QUEUED, S.WAITING_COOLDOWN)
    assert not can_transition(S.QUEUED, S.RECEIVED)
    assert not can_transition(S.RECEIVED, S.RUNNING)  # must be queued or wait its cooldown


def test_every_active_state_leads_somewhere_and_running_is_reachable() -> None:
    for src in ACTIVE_STATES:
        assert TRANSITIONS[src], src
    reachable = {S.RECEIVED}
    frontier = [S.RECEIVED]
    while frontier:
        for dst in TRANSITIONS[frontier.pop()]:
            if dst not in reachable:
                reachable.add(dst)
                frontier.append(dst)
    assert reachable == set(RunState)


def test_dedup_blocks_on_active_and_on_rows_with_a_successor_or_success() -> None:
    assert (
        ACTIVE_STATES
        | {
            S.SUCCEEDED,
            S.FAILED_RETRYING,
            S.TEMP_FAILED,
            S.FAILED_SYNC,
        }
        == DEDUP_BLOCKING_STATES
    )


@pytest.mark.parametrize("state", [S.FAILED_PERMANENT, S.SYSTEM_ERROR, S.CANCELLED])
def test_terminal_failures_do_not_block_a_manual_retry(state: RunState) -> None:
    assert state in TERMINAL_FAILURE_STATES
    assert not blocks_new_run(state)


def test_blocking_and_terminal_failure_states_partition_all_states() -> None:
    assert DEDUP_BLOCKING_STATES.isdisjoint(TERMINAL_FAILURE_STATES)
    assert set(RunState) == DEDUP_BLOCKING_STATES | TERMINAL_FAILURE_STATES


def test_terminal_failure_state_system_means_system_error() -> None:
    assert terminal_failure_state(ErrorType.SYSTEM) is S.SYSTEM_ERROR


def test_terminal_failure_state_user_means_failed_permanent() -> None:
    assert terminal_failure_state(ErrorType.USER) is S.FAILED_PERMANENT


def test_both_terminal_failure_states_are_reachable_from_running() -> None:
    for et in ErrorType:
        assert can_transition(S.RUNNING, terminal_failure_state(et))


def test_every_outcome_is_mirrored_to_a_prefect_state() -> None:
    assert set(PREFECT_STATE_FOR) == OUTCOME_STATES
    assert PREFECT_STATE_FOR[S.SUCCEEDED] == ("COMPLETED", "Completed")
    assert PREFECT_STATE_FOR[S.FAILED_PERMANENT] == ("FAILED", "UserError")
    assert PREFECT_STATE_FOR[S.SYSTEM_ERROR] == ("FAILED", "SystemError")
    assert PREFECT_STATE_FOR[S.FAILED_RETRYING] == ("FAILED", "Retrying")
    assert PREFECT_STATE_FOR[S.TEMP_FAILED] == ("FAILED", "TempFailed")
    assert PREFECT_STATE_FOR[S.CANCELLED] == ("CANCELLED", "Cancelled")
    # Distinct names, so the UI can tell the outcomes apart.
    names = [name for _, name in PREFECT_STATE_FOR.values()]
    assert len(names) == len(set(names))


def test_illegal_transition_names_both_states() -> None:
    err = IllegalTransition(S.SUCCEEDED, S.RUNNING)
    assert "succeeded -> running" in str(err)
    assert isinstance(err, ValueError)
    assert (err.src, err.dst) == (S.SUCCEEDED, S.RUNNING)


def test_state_values_are_the_strings_stored_in_the_ledger() -> None:
    assert RunState("failed_permanent") is S.FAILED_PERMANENT
    assert S.SYSTEM_ERROR == "system_error"

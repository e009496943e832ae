"""The registry: every rule registered once, documented, and in a deliberate order."""

from __future__ import annotations

import pytest

from classifiers.rules import aws_batch, elasticblast, local, nextflow
from classifiers.rules.base import Rule
from classifiers.rules.registry import FALLBACK, RULES, rule_by_id


def _module_rules() -> list[Rule]:
    found = []
    for module in (aws_batch, elasticblast, local, nextflow):
        found.extend(v for v in vars(module).values() if isinstance(v, Rule))
    return found


def test_every_rule_defined_in_a_module_is_registered() -> None:
    registered = {id(r) for r in RULES}
    missing = [r.id for r in _module_rules() if id(r) not in registered]
    assert missing == []


def test_ids_are_unique_and_dotted() -> None:
    ids = [r.id for r in (*RULES, FALLBACK)]
    assert len(ids) == len(set(ids))
    assert all("." in i and i == i.lower() for i in ids)


@pytest.mark.parametrize("rule", [*RULES, FALLBACK], ids=lambda r: r.id)
def test_every_rule_is_documented(rule: Rule) -> None:
    assert len(rule.doc) >= 20, rule.id


def _pos(rule_id: str) -> int:
    return [r.id for r in RULES].index(rule_id)


@pytest.mark.parametrize(
    ("before", "after"),
    [
        # Infrastructure causes beat the symptoms they produce.
        ("host.memory_starved", "exit.137_sigkill_oom"),
        ("aws.host_terminated", "exit.137_sigkill_oom"),
        ("os.disk_full", "container.pull_failed"),
        ("timeout.task_time_limit", "nextflow.terminated_externally"),
        # Specific messages beat exit codes and generic failures.
        ("container.engine_missing", "exit.127_command_not_found"),
        ("exit.137_sigkill_oom", "files.missing"),
        ("files.missing", "blast.input_error"),
        ("aws.resource_initialization", "cloud.access_denied"),
        ("nextflow.params_validation", "files.missing"),
        ("tool.exception", "nextflow.task_failed"),
        ("nextflow.task_failed", "nextflow.config_selector_warning"),
    ],
)
def test_order(before: str, after: str) -> None:
    assert _pos(before) < _pos(after)


def test_policy_rule_is_first_and_fallback_is_separate() -> None:
    assert RULES[0].id == "local.temp_fail_exit_code"
    assert FALLBACK not in RULES
    assert rule_by_id("fallback.unclassified") is FALLBACK
    with pytest.raises(KeyError):
        rule_by_id("nope")

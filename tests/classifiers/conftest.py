"""Helpers shared by the classifier tests."""

from __future__ import annotations

from typing import Any

from classifiers.classify import classify
from classifiers.evidence import Evidence
from classifiers.rules.base import EvidenceView, Rule
from classifiers.taxonomy import Classification


def ev(**fields: Any) -> Evidence:
    return Evidence.model_validate(fields)


def apply(rule: Rule, **fields: Any) -> Classification | None:
    """Run one rule alone on evidence built from `fields`."""
    return rule.apply(EvidenceView.of(ev(**fields)))


def classify_fields(**fields: Any) -> Classification:
    return classify(ev(**fields))

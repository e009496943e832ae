"""`classify(evidence)`: lookup, then rules in registry order, then the fallback.

Pure and deterministic: no I/O, no clock, no randomness. It never raises, and its cost is
bounded whatever the input (see `classifiers.rules.base`):
- each run-level text field is cut to its first 2 KiB + last 8 KiB, each task field to
  1 KiB + 3 KiB, at most 8 tasks (failed ones first), at most 64 KiB scanned in total;
- regexes are precompiled, free of nested quantifiers, and only run when one of their
  literal keywords occurs in the casefolded text (a cheap substring test);
- an unexpected error inside a rule is contained to that rule.
Measured with bench/bench_classifier.py: well under 1 ms CPU per typical evidence, a few ms
for megabyte-sized junk.
"""

from __future__ import annotations

from classifiers.evidence import Evidence
from classifiers.lookup import ambiguous_hint, lookup
from classifiers.rules.base import EvidenceView
from classifiers.rules.registry import FALLBACK, RULES
from classifiers.taxonomy import Classification, ClassifiedBy, Owner


def classify(evidence: Evidence) -> Classification:
    """Who must fix this failure, what went wrong and what to do."""
    try:
        found = lookup(evidence)
        if found is not None:
            return found
        view = EvidenceView.of(evidence)
        for rule in RULES:
            try:
                found = rule.apply(view)
            except Exception:  # a broken rule must not block a status write
                continue
            if found is not None:
                return found
        hint = ambiguous_hint(evidence)
        if hint is not None:
            return hint
        result = FALLBACK.apply(view)
        if result is not None:
            return result
    except Exception:
        pass
    return _last_resort()


def _last_resort() -> Classification:
    # Reached only if the classifier itself is broken; still a valid, honest answer.
    return Classification(
        owner=Owner.AMBIGUOUS,
        category="unclassified",
        summary="The failure could not be classified automatically.",
        action="Read the run's evidence and decide who fixes it.",
        classified_by=ClassifiedBy.RULES,
        rule="fallback.internal_error",
    )

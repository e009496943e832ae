"""The development corpus: real failure texts with their confirmed owner and category.

Each line of corpus/*.jsonl: {"evidence": {...}, "expected": {"owner", "category"},
"source": URL, "note": why}. Entries whose text cannot reveal the cause are expected
`ambiguous`, not forced to a guess.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from classifiers.classify import classify
from classifiers.evidence import Evidence
from classifiers.taxonomy import Owner

CORPUS_DIR = Path(__file__).parent / "corpus"


def load_corpus() -> list[tuple[str, dict[str, Any]]]:
    entries = []
    for path in sorted(CORPUS_DIR.glob("*.jsonl")):
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
            if line.strip():
                entries.append((f"{path.stem}:{n}", json.loads(line)))
    return entries


CORPUS = load_corpus()


def test_corpus_is_large_and_spread_across_owners() -> None:
    assert len(CORPUS) >= 60
    owners = Counter(e["expected"]["owner"] for _, e in CORPUS)
    for owner in ("lab", "bioinformatician", "platform"):
        assert owners[owner] >= 10, owners


@pytest.mark.parametrize(("where", "entry"), CORPUS, ids=[w for w, _ in CORPUS])
def test_corpus_entry(where: str, entry: dict[str, Any]) -> None:
    assert set(entry) == {"evidence", "expected", "source", "note"}, where
    assert entry["source"] and entry["note"]
    Owner(entry["expected"]["owner"])  # the expectation itself uses the closed taxonomy
    result = classify(Evidence.model_validate(entry["evidence"]))
    assert (result.owner.value, result.category) == (
        entry["expected"]["owner"],
        entry["expected"]["category"],
    ), f"{where}: {entry['note']} -> {result.rule}: {result.summary}"

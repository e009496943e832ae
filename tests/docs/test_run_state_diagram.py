"""docs/run-states.md must show exactly the transitions the code allows, no more, no less."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from omicsflow.domain.states import TRANSITIONS, RunState

DOC = Path(__file__).resolve().parents[2] / "docs" / "run-states.md"
ARROW = re.compile(r"^\s*(\[\*\]|\w+)\s*-->\s*(\[\*\]|\w+)\s*(?::\s*(.*))?$")
START_END = "[*]"


def mermaid_block(markdown: str) -> list[str]:
    blocks = re.findall(r"```mermaid\n(.*?)```", markdown, flags=re.DOTALL)
    assert len(blocks) == 1, "expected exactly one mermaid block"
    lines = blocks[0].splitlines()
    assert lines[0].strip() == "stateDiagram-v2"
    return lines[1:]


def arrows(markdown: str) -> list[tuple[str, str, str]]:
    out = []
    for line in mermaid_block(markdown):
        if "-->" not in line:
            continue
        m = ARROW.match(line)
        assert m, f"unparseable arrow: {line!r}"
        out.append((m.group(1), m.group(2), (m.group(3) or "").strip()))
    return out


def state_edges(markdown: str) -> list[tuple[str, str]]:
    return [(s, d) for s, d, _ in arrows(markdown) if START_END not in (s, d)]


def expected_edges() -> set[tuple[str, str]]:
    return {(src.value, dst.value) for src, dsts in TRANSITIONS.items() for dst in dsts}


def test_diagram_edges_equal_the_transition_table() -> None:
    edges = state_edges(DOC.read_text(encoding="utf-8"))
    assert set(edges) == expected_edges()


def test_one_arrow_per_transition() -> None:
    edges = state_edges(DOC.read_text(encoding="utf-8"))
    assert len(edges) == len(set(edges)) == len(expected_edges())


def test_every_transition_arrow_names_its_trigger() -> None:
    for src, dst, label in arrows(DOC.read_text(encoding="utf-8")):
        if START_END not in (src, dst):
            assert label, f"{src} --> {dst} has no trigger label"


def test_every_state_in_the_diagram_is_a_real_state() -> None:
    names = {n for s, d, _ in arrows(DOC.read_text(encoding="utf-8")) for n in (s, d)}
    assert names - {START_END} == {s.value for s in RunState}


def test_the_table_explains_every_state() -> None:
    text = DOC.read_text(encoding="utf-8")
    rows = re.findall(r"^\| `(\w+)` \|", text, flags=re.MULTILINE)
    assert sorted(rows) == sorted(s.value for s in RunState)


# The checker itself must catch drift, or the tests above prove nothing.
SAMPLE = """
```mermaid
stateDiagram-v2
    [*] --> queued
    queued --> running: a slot is free
    running --> succeeded: ok
    succeeded --> [*]
```
"""


def test_checker_reads_edges_and_ignores_start_end_markers() -> None:
    assert state_edges(SAMPLE) == [("queued", "running"), ("running", "succeeded")]


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ("    running --> succeeded: pipeline finished OK\n", ""),  # a missing edge
        ("    running --> succeeded:", "    running --> queued: bogus\n    running --> succeeded:"),
    ],
)
def test_checker_detects_a_missing_or_extra_edge(old: str, new: str) -> None:
    text = DOC.read_text(encoding="utf-8")
    assert old in text
    assert set(state_edges(text.replace(old, new, 1))) != expected_edges()

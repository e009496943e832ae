"""Building blocks shared by every rule: the bounded evidence view and the rule types.

Rules never look at raw `Evidence` text directly. `EvidenceView.of` copies each text field
once, bounded (see the limits below), so the cost of classifying is independent of how much a
platform chose to say: a 1 MB Seqera error report costs the same as a 16 KB one.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from classifiers.evidence import Evidence, Platform, TaskEvidence
from classifiers.taxonomy import Classification, ClassifiedBy, Owner

# Scan limits, per text field. Failures are usually stated at the end of a log or report
# (the last error wins) and sometimes at its start (Nextflow's "Error executing process" and
# "Caused by:" header), so we keep both ends and drop the middle.
FIELD_HEAD_CHARS = 4_096
FIELD_TAIL_CHARS = 12_288
# Only the first failing tasks matter for attribution; a run with 5 000 failed tasks must not
# cost 5 000 times more to classify.
MAX_TASKS = 16
# Matched lines quoted back to operators are cut to this length.
DETAIL_CHARS = 160

_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")
_SPACES = re.compile(r"\s+")


def bound(text: str | None) -> str:
    """The head and tail of a field, never more than FIELD_HEAD_CHARS + FIELD_TAIL_CHARS."""
    if not text:
        return ""
    if len(text) <= FIELD_HEAD_CHARS + FIELD_TAIL_CHARS:
        return text
    return text[:FIELD_HEAD_CHARS] + "\n...\n" + text[-FIELD_TAIL_CHARS:]


def clean_line(line: str, limit: int = DETAIL_CHARS) -> str:
    """A single printable line, whitespace collapsed, cut to `limit` characters."""
    line = _SPACES.sub(" ", _CONTROL.sub(" ", line)).strip()
    # Lone surrogates (possible in JSON input) would break UTF-8 encoding downstream.
    line = line.encode("utf-8", "replace").decode("utf-8")
    if len(line) > limit:
        line = line[: limit - 1].rstrip() + "…"
    return line


def line_around(text: str, start: int, end: int) -> str:
    """The line of `text` holding the match [start, end), cleaned for quoting."""
    line_start = text.rfind("\n", 0, start) + 1
    line_end = text.find("\n", end)
    if line_end < 0:
        line_end = len(text)
    line = text[line_start:line_end]
    if not line.strip():
        line = text[start:end]
    return clean_line(line)


@dataclass(frozen=True)
class EvidenceView:
    """Evidence prepared once for all rules: bounded texts and every exit code seen."""

    evidence: Evidence
    # All bounded text fields, run-level first, then failing tasks, joined by newlines.
    text: str
    # The run's exit code first, then the tasks' (duplicates removed, order kept).
    exit_codes: tuple[int, ...]
    # Task names in evidence order, for summaries.
    task_names: tuple[str, ...] = field(default_factory=tuple)

    @classmethod
    def of(cls, evidence: Evidence) -> EvidenceView:
        tasks = _failing_tasks_first(evidence)[:MAX_TASKS]
        parts = [
            evidence.failure_reason,
            evidence.status_message,
            evidence.error_message,
            evidence.error_report,
            evidence.log_tail,
        ]
        for task in tasks:
            parts.extend((task.failure_reason, task.status_message))
        text = "\n".join(bound(p) for p in parts if p)
        codes: list[int] = []
        for code in [evidence.exit_code, *(t.exit_code for t in tasks)]:
            if code is not None and code not in codes:
                codes.append(code)
        names = tuple(t.name for t in tasks if t.name)
        return cls(evidence=evidence, text=text, exit_codes=tuple(codes), task_names=names)

    @property
    def platform(self) -> Platform:
        return self.evidence.platform


def _failing_tasks_first(evidence: Evidence) -> list[TaskEvidence]:
    """Failed tasks carry the cause; keep the others after them (stable order)."""
    tasks = list(evidence.tasks)
    return sorted(tasks, key=lambda t: 0 if (t.status or "").upper() == "FAILED" else 1)


def make(
    rule_id: str,
    owner: Owner,
    category: str,
    summary: str,
    action: str,
    detail: str | None = None,
) -> Classification:
    """A rules classification; quotes the evidence line that triggered it in the summary."""
    text = summary
    if detail:
        text = f'{summary} Evidence: "{detail}"'
    return Classification(
        owner=owner,
        category=category,
        summary=text[:500],
        action=action[:500],
        classified_by=ClassifiedBy.RULES,
        rule=rule_id,
    )


class Rule:
    """A rule: an id, its documentation (`doc`) and `apply(view)` -> Classification or None."""

    id: str
    doc: str

    def apply(self, view: EvidenceView) -> Classification | None:  # pragma: no cover
        raise NotImplementedError


@dataclass(frozen=True)
class PatternRule(Rule):
    """Fires when every given condition holds: text pattern, exit code, platform.

    `pattern` is searched in the bounded evidence text; `exit_codes` must contain one of the
    evidence's exit codes; `platforms` restricts the rule to some backends; `unless` vetoes.
    With both `pattern` and `exit_codes`, `either=True` makes one of them enough.
    """

    id: str
    doc: str
    owner: Owner
    category: str
    summary: str
    action: str
    pattern: re.Pattern[str] | None = None
    exit_codes: frozenset[int] = frozenset()
    platforms: frozenset[Platform] = frozenset()
    unless: re.Pattern[str] | None = None
    either: bool = False

    def apply(self, view: EvidenceView) -> Classification | None:
        if self.platforms and view.platform not in self.platforms:
            return None
        detail: str | None = None
        text_hit = False
        if self.pattern is not None:
            m = self.pattern.search(view.text)
            if m is not None:
                text_hit = True
                detail = line_around(view.text, m.start(), m.end())
        code = next((c for c in view.exit_codes if c in self.exit_codes), None)
        code_hit = code is not None
        if self.pattern is not None and self.exit_codes:
            hit = (text_hit or code_hit) if self.either else (text_hit and code_hit)
        elif self.pattern is not None:
            hit = text_hit
        else:
            hit = code_hit
        if not hit:
            return None
        if self.unless is not None and self.unless.search(view.text):
            return None
        if detail is None and code is not None:
            detail = f"exit code {code}"
        return make(self.id, self.owner, self.category, self.summary, self.action, detail)


@dataclass(frozen=True)
class FunctionRule(Rule):
    """A rule whose decision needs more than one pattern; its docstring is its documentation."""

    id: str
    func: Callable[[EvidenceView], Classification | None]

    @property
    def doc(self) -> str:  # type: ignore[override]
        return (self.func.__doc__ or "").strip()

    def apply(self, view: EvidenceView) -> Classification | None:
        return self.func(view)


def rx(*alternatives: str, flags: int = re.IGNORECASE) -> re.Pattern[str]:
    """One precompiled alternation. Callers keep each branch free of nested quantifiers."""
    return re.compile("|".join(f"(?:{a})" for a in alternatives), flags)


def first_match(pattern: re.Pattern[str], text: str) -> str | None:
    m = pattern.search(text)
    return None if m is None else line_around(text, m.start(), m.end())


def ids(rules: Iterable[Rule]) -> list[str]:
    return [r.id for r in rules]

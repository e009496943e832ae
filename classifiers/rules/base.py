"""Building blocks shared by every rule: the bounded evidence view and the rule types.

Rules never look at raw `Evidence` text directly. `EvidenceView.of` copies each text field
once, bounded (see the limits below), so the cost of classifying is independent of how much a
platform chose to say: a 1 MB Seqera error report costs the same as a 10 KB one.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from classifiers.evidence import Evidence, Platform, TaskEvidence
from classifiers.taxonomy import Classification, ClassifiedBy, Owner

# Scan limits, per text field. Failures are usually stated at the end of a log or report
# (the last error wins) and sometimes at its start (Nextflow's "Error executing process" and
# "Caused by:" header), so we keep both ends and drop the middle.
FIELD_HEAD_CHARS = 2_048
FIELD_TAIL_CHARS = 8_192
# Task messages are short status reasons; a long one is cut harder.
TASK_FIELD_HEAD_CHARS = 1_024
TASK_FIELD_TAIL_CHARS = 3_072
# Only the first failing tasks matter for attribution; a run with 5 000 failed tasks must not
# cost 5 000 times more to classify.
MAX_TASKS = 8
# Cap on everything scanned together: every rule scans this text, so it bounds the worst-case
# latency. Run-level fields (at most 5 x 10 KiB) always fit whole; tasks use what is left.
MAX_TEXT_CHARS = 65_536
# Matched lines quoted back to operators are cut to this length.
DETAIL_CHARS = 160

_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")
_SPACES = re.compile(r"\s+")


def bound(text: str | None, head: int = FIELD_HEAD_CHARS, tail: int = FIELD_TAIL_CHARS) -> str:
    """The head and tail of a field, never more than `head + tail` characters (plus a marker)."""
    if not text:
        return ""
    if len(text) <= head + tail:
        return text
    return text[:head] + "\n...\n" + text[-tail:]


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
    # `text.casefold()`, for the cheap keyword prefilter of `Rx.search`.
    folded: str
    # The run's exit code first, then the tasks' (duplicates removed, order kept).
    exit_codes: tuple[int, ...]
    # Task names in evidence order, for summaries.
    task_names: tuple[str, ...] = field(default_factory=tuple)

    @classmethod
    def of(cls, evidence: Evidence) -> EvidenceView:
        tasks = _failing_tasks_first(evidence)[:MAX_TASKS]
        parts = [
            bound(p)
            for p in (
                evidence.failure_reason,
                evidence.status_message,
                evidence.error_message,
                evidence.error_report,
                evidence.log_tail,
            )
            if p
        ]
        size = sum(len(p) + 1 for p in parts)
        for task in tasks:
            for p in (task.failure_reason, task.status_message):
                if p and size < MAX_TEXT_CHARS:
                    part = bound(p, TASK_FIELD_HEAD_CHARS, TASK_FIELD_TAIL_CHARS)
                    part = part[: MAX_TEXT_CHARS - size]
                    parts.append(part)
                    size += len(part) + 1
        text = "\n".join(parts)
        codes: list[int] = []
        for code in [evidence.exit_code, *(t.exit_code for t in tasks)]:
            if code is not None and code not in codes:
                codes.append(code)
        names = tuple(t.name for t in tasks if t.name)
        return cls(
            evidence=evidence,
            text=text,
            folded=text.casefold(),
            exit_codes=tuple(codes),
            task_names=names,
        )

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
    pattern: Rx | None = None
    exit_codes: frozenset[int] = frozenset()
    platforms: frozenset[Platform] = frozenset()
    unless: Rx | None = None
    either: bool = False

    def apply(self, view: EvidenceView) -> Classification | None:
        if self.platforms and view.platform not in self.platforms:
            return None
        detail: str | None = None
        text_hit = False
        if self.pattern is not None:
            m = self.pattern.search(view)
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
        if self.unless is not None and self.unless.search(view):
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


_QUANT = frozenset("*?{")


def literal_keyword(alternative: str) -> str | None:
    """The longest literal run that every match of `alternative` must contain, casefolded.

    Only text outside groups and character classes counts; a character made optional by a
    following quantifier is dropped. None when no run of 3+ characters is certain (or the
    alternative has a top-level `|`), which disables the prefilter for its pattern.
    """
    best, depth, i, n = "", 0, 0, len(alternative)
    cur: list[str] = []

    def flush() -> None:
        nonlocal best, cur
        run = "".join(cur)
        if len(run) > len(best):
            best = run
        cur = []

    while i < n:
        c = alternative[i]
        lit: str | None = None
        if c == "\\":
            nxt = alternative[i + 1] if i + 1 < n else ""
            i += 2
            if nxt and not nxt.isalnum():
                lit = nxt
            else:  # \d \s \w \b \n ...: not a literal character
                flush()
                continue
        elif c == "[":
            flush()
            i += 1
            if i < n and alternative[i] == "^":
                i += 1
            if i < n and alternative[i] == "]":
                i += 1
            while i < n and alternative[i] != "]":
                i += 2 if alternative[i] == "\\" else 1
            i += 1
            continue
        elif c == "(":
            depth += 1
            flush()
            i += 1
            continue
        elif c == ")":
            depth -= 1
            flush()
            i += 1
            continue
        elif c == "|":
            if depth == 0:
                return None
            i += 1
            continue
        elif c in _QUANT:
            if cur:
                cur.pop()
            flush()
            if c == "{":
                while i < n and alternative[i] != "}":
                    i += 1
            i += 1
            continue
        elif c == "+" or c in ".^$":
            flush()
            i += 1
            continue
        else:
            lit = c
            i += 1
        if depth == 0 and lit is not None:
            cur.append(lit)
        elif depth > 0:
            continue
    flush()
    return best.casefold() if len(best) >= 3 else None


class Rx:
    """A precompiled alternation with a literal-keyword prefilter.

    Python's `re` scans an alternation position by position (~10 MB/s on 40 rules); a plain
    `in` test on the casefolded text is ~100x faster. Each alternative contributes its
    longest certain literal (`literal_keyword`); the regex only runs when one of them is
    present. Alternatives are kept free of nested quantifiers (no catastrophic backtracking).
    """

    def __init__(self, *alternatives: str, flags: int = re.IGNORECASE) -> None:
        self.regex = re.compile("|".join(f"(?:{a})" for a in alternatives), flags)
        keywords = [literal_keyword(a) for a in alternatives]
        self.keywords: tuple[str, ...] | None = (
            None if any(k is None for k in keywords) else tuple(k for k in keywords if k)
        )

    def may_match(self, view: EvidenceView) -> bool:
        return self.keywords is None or any(k in view.folded for k in self.keywords)

    def search(self, view: EvidenceView) -> re.Match[str] | None:
        return self.regex.search(view.text) if self.may_match(view) else None

    def finditer(self, view: EvidenceView) -> Iterator[re.Match[str]]:
        return self.regex.finditer(view.text) if self.may_match(view) else iter(())


def rx(*alternatives: str, flags: int = re.IGNORECASE) -> Rx:
    """One precompiled, prefiltered alternation (see `Rx`)."""
    return Rx(*alternatives, flags=flags)


def first_match(pattern: Rx, view: EvidenceView) -> str | None:
    m = pattern.search(view)
    return None if m is None else line_around(view.text, m.start(), m.end())

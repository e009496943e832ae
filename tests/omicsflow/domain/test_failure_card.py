"""The failure card: tells a person who must act and shows the evidence as reported."""

from __future__ import annotations

import re

from ledger.models import Run
from omicsflow.domain.failure_card import FIELD_LIMIT, OWNER_WORDS, render_failure_card


def run(**fields: object) -> Run:
    base: dict[str, object] = {
        "id": 7,
        "report_id": "rpt-42",
        "service": "wgs-qc",
        "attempt": 2,
        "state": "failed_permanent",
        "backend": "local",
    }
    return Run(**{**base, **fields})


def _fenced_blocks(md: str) -> list[str]:
    """Contents of fenced code blocks, honouring the CommonMark rule that a block closes
    only on a fence at least as long as the opening one."""
    blocks, lines, i = [], md.split("\n"), 0
    while i < len(lines):
        m = re.fullmatch(r"(`{3,})", lines[i])
        if not m:
            i += 1
            continue
        fence, body, i = m.group(1), [], i + 1
        while i < len(lines) and not re.fullmatch(rf"`{{{len(fence)},}}", lines[i]):
            body.append(lines[i])
            i += 1
        blocks.append("\n".join(body))
        i += 1
    return blocks


def test_card_names_who_must_act_and_what_to_do() -> None:
    md = render_failure_card(
        run(
            owner="lab",
            error_type="user",
            category="bad_input",
            summary="The FASTQ files are truncated.",
            action="Re-upload the FASTQ files and set the report to Data Ready.",
            classified_by="rules",
            rule="local.truncated_fastq",
        )
    )
    assert md.startswith("# Failure: wgs-qc · report `rpt-42` · attempt 2")
    assert f"**Who must act:** {OWNER_WORDS['lab']}" in md
    assert "**Error type:** `user` · **category:** `bad_input`" in md
    assert "**Run state:** `failed_permanent`" in md
    assert "**What went wrong:** The FASTQ files are truncated." in md
    assert "**What to do:** Re-upload the FASTQ files" in md
    assert "_Decided by: deterministic rules (rule `local.truncated_fastq`)_" in md


def test_each_owner_is_explained_in_words() -> None:
    for owner, words in OWNER_WORDS.items():
        assert f"**Who must act:** {words}" in render_failure_card(run(owner=owner))


def test_llm_classification_is_flagged_for_verification() -> None:
    md = render_failure_card(run(classified_by="llm", owner="ambiguous"))
    assert "AI-assisted (LLM) — verify before acting" in md


def test_unclassified_run_says_so_and_falls_back_to_the_reason() -> None:
    md = render_failure_card(run(reason="pipeline exited with code 3"))
    assert "not classified yet" in md
    assert "**Who must act:** unknown" in md
    assert "**What went wrong:** pipeline exited with code 3" in md
    assert "**What to do:** -" in md


def test_platform_fields_are_shown_apart_and_verbatim() -> None:
    md = render_failure_card(
        run(
            backend="healthomics",
            backend_run_id="1234567",
            ev_failure_reason="RESOURCE_NOT_FOUND",
            ev_status_message="Unable to access s3://lab/in.bam",
        )
    )
    assert "### failureReason\n```\nRESOURCE_NOT_FOUND\n```" in md
    assert "### statusMessage\n```\nUnable to access s3://lab/in.bam\n```" in md
    assert "### errorMessage" not in md  # absent fields are not invented
    assert "| backend run id | `1234567` |" in md


def test_exit_code_zero_and_missing_exit_code_are_told_apart() -> None:
    assert "| exit code | `0` |" in render_failure_card(run(exit_code=0))
    assert "| exit code | `-` |" in render_failure_card(run())


def test_failing_tasks_are_listed() -> None:
    md = render_failure_card(
        run(
            ev_tasks=[
                {
                    "name": "ALIGN (sample1)",
                    "status": "FAILED",
                    "exit_code": 137,
                    "failure_reason": "OutOfMemory",
                    "log_location": "s3://logs/align.log",
                }
            ]
        )
    )
    assert "### Failing task `ALIGN (sample1)`" in md
    assert "exit code: `137`" in md
    assert "- failureReason: OutOfMemory" in md
    assert "- log: `s3://logs/align.log`" in md


def test_log_tail_is_cut_to_its_last_part() -> None:
    tail = "HEAD-MARK\n" + "x" * (FIELD_LIMIT + 100) + "\nLAST LINE"
    md = render_failure_card(run(ev_log_tail=tail))
    (block,) = _fenced_blocks(md)
    assert block.endswith("LAST LINE")
    assert "HEAD-MARK" not in md
    assert len(block) == FIELD_LIMIT


def test_missing_log_tail_says_none() -> None:
    assert render_failure_card(run()).endswith("### Log tail\n_(none)_")


def test_backticks_in_the_evidence_cannot_escape_the_code_block() -> None:
    # A log is arbitrary text: whatever fences it contains, it must stay one verbatim block
    # and never turn into markdown (links, headings) on the card.
    for fence in ("```", "````", "`````"):
        tail = f"step 1\n{fence}\n# Injected heading\n[click](http://evil)\n{fence}\nstep 2"
        md = render_failure_card(run(ev_log_tail=tail))
        assert _fenced_blocks(md) == [tail], fence

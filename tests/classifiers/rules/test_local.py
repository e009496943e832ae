"""Local-pipeline rules on real log texts (sources in comments)."""

from __future__ import annotations

from typing import Any

import pytest

from classifiers.rules import local
from classifiers.rules.base import Rule
from classifiers.taxonomy import ClassifiedBy, Owner
from tests.classifiers.conftest import apply, classify_fields

L, B, P = Owner.LAB, Owner.BIOINFORMATICIAN, Owner.PLATFORM

POSITIVE: list[tuple[Rule, dict[str, Any], Owner, str]] = [
    (local.TEMP_FAIL, {"exit_code": 75, "temp_fail_exit_code": 75}, L, "input_not_ready"),
    # DataBiosphere/azul#190
    (
        local.READ_ONLY_FS,
        {"exit_code": 1, "log_tail": "OSError: [Errno 30] Read-only file system: '/home/sbx'"},
        B,
        "write_outside_sandbox",
    ),
    # nf-core/chipseq#361
    (
        local.DISK_FULL,
        {
            "log_tail": 'awk: cmd. line:1: fatal: print to "standard output" failed '
            "(No space left on device)"
        },
        P,
        "disk_full",
    ),
    # mmotti/pihole-gravity-optimise#1
    (
        local.HOST_MEMORY_STARVED,
        {
            "exit_code": 137,
            "log_tail": "/usr/local/bin/gravityOptimise.sh: fork: Cannot allocate memory",
        },
        P,
        "host_memory_exhausted",
    ),
    # nf-core/rnaseq#1898
    (
        local.COMMAND_NOT_FOUND,
        {"log_tail": ".command.sh: line 2: fq: command not found"},
        B,
        "command_not_found",
    ),
    (local.COMMAND_NOT_FOUND, {"exit_code": 127}, B, "command_not_found"),
    # aws-samples/aws-genomics-workflows#142
    (
        local.NOT_EXECUTABLE,
        {"exit_code": 126, "log_tail": "/bin/bash: /var/scratch/fetch_and_run.sh: Is a directory"},
        B,
        "command_not_executable",
    ),
    # epi2me-labs/wf-pore-c#42
    (
        local.SIGKILL_137,
        {
            "log_tail": ".command.sh: line 2:    33 Killed                  minimap2 -x map-ont "
            '-d "reference.fasta.mmi" "reference.fasta"'
        },
        B,
        "out_of_memory",
    ),
    (local.SIGKILL_137, {"exit_code": 137}, B, "out_of_memory"),
    # nextflow-io/nextflow#756
    (
        local.TOOL_CRASHED,
        {
            "log_tail": ".command.sh: line 2:  4804 Segmentation fault      (core dumped) "
            "polishpair -q FF10801_Pool3_S8_R1_001.fastq.gz"
        },
        B,
        "tool_crashed",
    ),
    (local.TOOL_CRASHED, {"exit_code": 139}, B, "tool_crashed"),
    (local.TERMINATED_BY_SIGNAL, {"exit_code": 143}, P, "terminated_by_signal"),
    (local.TIMEOUT_124, {"exit_code": 124}, B, "task_timed_out"),
    # the message gzip prints for a missing FASTQ
    (
        local.MISSING_FILE,
        {
            "exit_code": 1,
            "log_tail": "gzip: /data/run7/S1_L001_R1_001.fastq.gz: No such file or directory",
        },
        L,
        "input_missing",
    ),
    # nf-core/eager#479
    (
        local.MISSING_FILE,
        {
            "log_tail": "java.nio.file.NoSuchFileException: /projects1/03-preprocessing/Reference/"
            "GRCh38.fa"
        },
        B,
        "reference_missing",
    ),
    # nf-core/taxprofiler#277
    (
        local.MISSING_FILE,
        {
            "error_message": "ERROR nextflow.cli.Launcher - Unable to read script: "
            "'/root/.nextflow/"
            "assets/nf-core/taxprofiler/./workflows/taxprofiler.nf' -- cause: "
            "/home/nextflow/samplesheet.csv"
        },
        L,
        "input_missing",
    ),
]


@pytest.mark.parametrize(("rule", "fields", "owner", "category"), POSITIVE)
def test_rule_fires_on_real_text(
    rule: Rule, fields: dict[str, Any], owner: Owner, category: str
) -> None:
    out = apply(rule, **fields)
    assert out is not None
    assert (out.owner, out.category) == (owner, category)
    assert out.rule.startswith(rule.id)
    assert out.classified_by is ClassifiedBy.RULES
    # And the whole classifier picks this very rule (nothing earlier steals it).
    assert classify_fields(**fields).rule == out.rule


NEGATIVE: list[tuple[Rule, dict[str, Any]]] = [
    (local.TEMP_FAIL, {"exit_code": 1, "temp_fail_exit_code": 75}),
    (local.TEMP_FAIL, {"exit_code": 75}),  # no temp-fail code configured for the service
    (local.READ_ONLY_FS, {"log_tail": "mounted read-write"}),
    (local.HOST_MEMORY_STARVED, {"log_tail": "cat: write error: Cannot allocate memory"}),
    (local.COMMAND_NOT_FOUND, {"exit_code": 1, "log_tail": "fq lint failed"}),
    (local.SIGKILL_137, {"exit_code": 1, "log_tail": "Killed 3 duplicate reads"}),
    (local.TERMINATED_BY_SIGNAL, {"exit_code": 1}),
    # A missing work-dir intermediate names no input, reference or script.
    (local.MISSING_FILE, {"log_tail": "cannot stat 'out/tmp_000': No such file or directory"}),
]


@pytest.mark.parametrize(("rule", "fields"), NEGATIVE)
def test_rule_does_not_fire_on_near_miss(rule: Rule, fields: dict[str, Any]) -> None:
    assert apply(rule, **fields) is None


def test_host_starvation_beats_sigkill() -> None:
    out = classify_fields(
        exit_code=137, log_tail="bash: fork: retry: Resource temporarily unavailable"
    )
    assert out.owner is P and out.category == "host_memory_exhausted"


def test_temp_fail_beats_a_log_that_looks_like_missing_input() -> None:
    out = classify_fields(
        exit_code=75,
        temp_fail_exit_code=75,
        log_tail="ls: S1_R1.fastq.gz: No such file or directory",
    )
    assert out.category == "input_not_ready"


def test_missing_executable_is_the_bioinformaticians() -> None:
    out = classify_fields(log_tail="/usr/bin/env: python3.12: No such file or directory")
    assert (out.owner, out.category) == (B, "command_not_found")

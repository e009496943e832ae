"""Nextflow/Seqera rules on real error messages and reports (sources in comments)."""

from __future__ import annotations

from typing import Any

import pytest

from classifiers.rules import nextflow
from classifiers.rules.base import Rule
from classifiers.taxonomy import Owner
from tests.classifiers.conftest import apply, classify_fields

L, B, P, A = Owner.LAB, Owner.BIOINFORMATICIAN, Owner.PLATFORM, Owner.AMBIGUOUS

POSITIVE: list[tuple[Rule, dict[str, Any], Owner, str]] = [
    # nf-core/mag#996
    (
        nextflow.KERNEL_OOM,
        {
            "error_report": "Memory cgroup out of memory: Killed process 1739457 (SemiBin2) "
            "total-vm:472319276kB, anon-rss:36381296kB"
        },
        B,
        "out_of_memory",
    ),
    # nextflow-io/nextflow#1285
    (
        nextflow.SCHEDULER_MEMLIMIT,
        {"log_tail": "slurmstepd: error: Exceeded step memory limit at some point."},
        B,
        "out_of_memory",
    ),
    # broadinstitute/gatk#8264
    (
        nextflow.JVM_OOM,
        {
            "error_report": 'Command exit status:\n  1\n...\n  Exception in thread "main" '
            "java.lang.OutOfMemoryError: Java heap space"
        },
        B,
        "out_of_memory",
    ),
    # nf-core/rnaseq#887
    (
        nextflow.ENGINE_MISSING,
        {
            "error_report": "Command error:\n  env: \u2018singularity\u2019: No such file or "
            "directory"
        },
        P,
        "container_engine_missing",
    ),
    # nextflow-io/nextflow#1561
    (
        nextflow.TIME_LIMIT,
        {
            "error_report": "Process `RNASEQ:DESEQ2_QC_STAR_SALMON` terminated for an "
            "unknown reason "
            "-- Likely it has been terminated by the external system\nslurmstepd: error: *** JOB "
            "157490 ON node19 CANCELLED AT 2021-02-17T19:43:41 DUE TO TIME LIMIT ***"
        },
        B,
        "task_timed_out",
    ),
    # nf-core/sarek#568
    (
        nextflow.TERMINATED_EXTERNALLY,
        {
            "error_report": "Caused by:\n  Process `StrelkaBP (T-CCB070010_vs_N-CCB070010)` "
            "terminated for an unknown reason -- Likely it has been terminated by the external "
            "system"
        },
        P,
        "terminated_externally",
    ),
    # nf-core/rnaseq#1609
    (
        nextflow.PARAMS_VALIDATION,
        {
            "error_report": "WARN: The following invalid input values have been detected:\n\n* "
            "--custom_config_base: https://raw.githubusercontent.com/nf-core/configs/master\n...\n"
            "ERROR ~ Validation of pipeline parameters failed!"
        },
        B,
        "parameters_invalid",
    ),
    (
        nextflow.PARAMS_VALIDATION,
        {
            "error_report": "ERROR ~ Validation of pipeline parameters failed!\n\n* --input "
            "(samplesheet.csv): the file or directory 'samplesheet.csv' does not exist"
        },
        L,
        "samplesheet_invalid",
    ),
    # cgroza/GraffiTE#82
    (
        nextflow.WORKFLOW_CODE,
        {
            "error_message": "Cannot find a component with name 'bamtags_to_BED' in module: "
            "/shared/home/dhassan/.nextflow/assets/cgroza/GraffiTE/panmethyl/module/main.nf"
        },
        B,
        "workflow_code_error",
    ),
    # nf-core/rnaseq#1052
    (
        nextflow.SAMPLESHEET,
        {
            "error_report": "ERROR: Please check samplesheet header -> sample,fastq_1,fastq_2,"
            "run_accession != sample,fastq_1,fastq_2,strandedness"
        },
        L,
        "samplesheet_invalid",
    ),
    # bigbio/quantms#247
    (
        nextflow.TOOL_EXCEPTION,
        {
            "error_report": "Command exit status:\n  1\n\nCommand output:\n  "
            "No decoy peptides found "
            "-> only showing target peptides\n\nCommand error:\n  KeyError: 0"
        },
        B,
        "tool_error",
    ),
    # CDCgov/aquascope#18
    (
        nextflow.TASK_FAILED,
        {
            "error_report": "**ERROR** ~ Error executing process > "
            "'NFCORE_AQUASCOPE:AQUASCOPE:MULTIQC'\nCaused by:\n  Process "
            "`NFCORE_AQUASCOPE:AQUASCOPE:MULTIQC` terminated with an error exit status (1)"
        },
        A,
        "task_failed",
    ),
    # nf-core/taxprofiler#100
    (
        nextflow.CONFIG_SELECTOR_WARNING,
        {
            "error_message": "WARN: There's no process matching config selector: "
            "NFCORE_TAXPROFILER:TAXPROFILER:PROFILING:MEGAN_RMA2INFO"
        },
        B,
        "workflow_config_error",
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
    assert classify_fields(**fields).rule == out.rule


NEGATIVE: list[tuple[Rule, dict[str, Any]]] = [
    (nextflow.KERNEL_OOM, {"log_tail": "memory usage: 3.2 GB of 8 GB"}),
    (nextflow.JVM_OOM, {"log_tail": "java -Xmx4g -jar picard.jar MarkDuplicates"}),
    (nextflow.TASK_FAILED, {"error_report": "Process `FASTQC` completed"}),
    (nextflow.TOOL_EXCEPTION, {"log_tail": "no KeyError here: all keys found"}),
    (nextflow.SAMPLESHEET, {"log_tail": "samplesheet parsed: 12 samples"}),
]


@pytest.mark.parametrize(("rule", "fields"), NEGATIVE)
def test_rule_does_not_fire_on_near_miss(rule: Rule, fields: dict[str, Any]) -> None:
    assert apply(rule, **fields) is None


def test_task_failed_names_the_step_and_exit_status() -> None:
    out = classify_fields(
        error_message="Process `NFCORE_RNASEQ:RNASEQ:QUALIMAP_RNASEQ (mysamplename)` terminated "
        "with an error exit status (1) ERROR"
    )
    assert "QUALIMAP_RNASEQ" in out.summary and "exit status 1" in out.summary


def test_oom_137_in_a_nextflow_report_is_out_of_memory() -> None:
    # epi2me-labs/wf-single-cell#40
    out = classify_fields(
        error_report="Workflow execution completed unsuccessfully!\nThe exit "
        "status of the task that caused the workflow execution to fail was: 137."
    )
    assert (out.owner, out.category) == (B, "out_of_memory")


def test_samplesheet_check_process_failure_is_the_labs() -> None:
    # nf-core/pathogensurveillance#86
    out = classify_fields(
        error_message="[07/dea46a] NOTE: Process `PATHOGENSURVEILLANCE:"
        "PREPARE_INPUT:SAMPLESHEET_CHECK (ncbi_and_usda_3516_metadata.csv)` "
        "terminated with an error exit status (1) -- Execution is retried (1)"
    )
    assert (out.owner, out.category) == (L, "samplesheet_invalid")

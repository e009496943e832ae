"""The ordered rule registry. Order is specificity: the first rule that fires wins.

Why this order:
1. Service policy (temp-fail exit code) is an explicit statement by the pipeline.
2. Infrastructure events that explain everything after them (host terminated, host out of
   memory, disk full) come before the symptoms they cause (exit 137, a missing file).
3. Specific messages (OOM, image pull, container start, timeouts, cloud API errors, parameter
   and sample-sheet validation) before generic file/exit-code rules.
4. Exit codes without text (127, 137, signals, ElasticBLAST codes).
5. Generic "a tool failed" rules, which only say where to look.
The fallback is kept apart: `classify` tries the lookup's ambiguous hint before it.
"""

from __future__ import annotations

from classifiers.rules import aws_batch, elasticblast, local, nextflow
from classifiers.rules.base import Rule
from classifiers.rules.fallback import FALLBACK

RULES: tuple[Rule, ...] = (
    # 1. policy
    local.TEMP_FAIL,
    # 2. infrastructure events
    aws_batch.HOST_TERMINATED,
    local.HOST_MEMORY_STARVED,
    local.DISK_FULL,
    local.READ_ONLY_FS,
    # 3. specific messages
    aws_batch.CONTAINER_OOM,
    nextflow.KERNEL_OOM,
    nextflow.SCHEDULER_MEMLIMIT,
    nextflow.JVM_OOM,
    nextflow.ENGINE_MISSING,
    aws_batch.PULL_FAILED,
    aws_batch.RESOURCE_INITIALIZATION,
    aws_batch.START_FAILED,
    aws_batch.CONTAINER_RUNTIME,
    nextflow.TIME_LIMIT,
    nextflow.TERMINATED_EXTERNALLY,
    aws_batch.THROTTLED,
    aws_batch.CAPACITY,
    aws_batch.ACCESS_DENIED,
    aws_batch.SERVICE_ERROR,
    nextflow.PARAMS_VALIDATION,
    nextflow.WORKFLOW_CODE,
    nextflow.SAMPLESHEET,
    local.COMMAND_NOT_FOUND,
    local.SIGKILL_137,
    local.MISSING_FILE,
    # 4. exit codes
    local.NOT_EXECUTABLE,
    local.TOOL_CRASHED,
    local.TERMINATED_BY_SIGNAL,
    local.TIMEOUT_124,
    elasticblast.INPUT_ERROR,
    elasticblast.BLASTDB_ERROR,
    elasticblast.ENGINE_ERROR,
    elasticblast.OUT_OF_MEMORY,
    elasticblast.TIMEOUT,
    elasticblast.PERMISSIONS,
    elasticblast.DEPENDENCY,
    elasticblast.CLUSTER,
    elasticblast.INTERRUPTED,
    elasticblast.NOT_READY,
    # 5. generic
    nextflow.TOOL_EXCEPTION,
    nextflow.TASK_FAILED,
    nextflow.CONFIG_SELECTOR_WARNING,
)

__all__ = ["FALLBACK", "RULES", "rule_by_id"]


def rule_by_id(rule_id: str) -> Rule:
    """The registered rule (or the fallback) with this id; KeyError if none."""
    for rule in (*RULES, FALLBACK):
        if rule.id == rule_id:
            return rule
    raise KeyError(rule_id)

"""Rules for Nextflow / Seqera Platform error messages and error reports.

Texts and patterns come from real reports (shared/reference/nextflow_failure_examples.json and
public issue threads). A Nextflow error report has a fixed shape: "Error executing process >
'NAME'", "Caused by:", "Command exit status:", "Command error:"; the cause is in "Caused by"
and "Command error", which these rules read.
"""

from __future__ import annotations

import re

from classifiers.rules.base import (
    EvidenceView,
    FunctionRule,
    PatternRule,
    clean_line,
    first_match,
    make,
    rx,
)
from classifiers.taxonomy import Classification, Owner

_L, _B, _P, _A = Owner.LAB, Owner.BIOINFORMATICIAN, Owner.PLATFORM, Owner.AMBIGUOUS

KERNEL_OOM = PatternRule(
    id="oom.kernel_killer",
    doc="The kernel OOM killer or a cgroup memory limit killed the task: 'Memory cgroup out of "
    "memory: Killed process', 'Out of memory: Killed process', OOMKilled.",
    owner=_B,
    category="out_of_memory",
    summary="A pipeline step used more memory than its limit and the kernel killed it.",
    action="Give the step more memory (process label/memory directive or service limit), then "
    "rerun.",
    pattern=rx(
        r"Memory cgroup out of memory",
        r"Out of memory: Kill(?:ed)? process",
        r"\bOOMKilled\b",
        r"oom-kill(?:er)?\b",
    ),
)

SCHEDULER_MEMLIMIT = PatternRule(
    id="oom.scheduler_memlimit",
    doc="A batch scheduler killed the job for exceeding its memory request (SLURM 'Exceeded "
    "job memory limit', LSF TERM_MEMLIMIT).",
    owner=_B,
    category="out_of_memory",
    summary="The scheduler killed a pipeline step for using more memory than it requested.",
    action="Request more memory for the step (process memory directive), then rerun.",
    pattern=rx(
        r"Exceeded (?:job|step) memory limit",
        r"\bTERM_MEMLIMIT\b",
        r"oom_kill event",
    ),
)

JVM_OOM = PatternRule(
    id="oom.jvm_heap",
    doc="A Java tool (GATK, Picard, Nextflow itself) ran out of heap: java.lang.OutOfMemoryError, "
    "'GC overhead limit exceeded', 'Could not reserve enough space for ... object heap'.",
    owner=_B,
    category="out_of_memory",
    summary="A Java program in the pipeline ran out of memory (heap too small).",
    action="Raise the Java heap (-Xmx / task memory) for that step, or NXF_OPTS if it is "
    "Nextflow itself, then rerun.",
    pattern=rx(
        r"java\.lang\.OutOfMemoryError",
        r"GC overhead limit exceeded",
        r"Could not reserve enough space for [^\n]{0,40}object heap",
    ),
)

ENGINE_MISSING = PatternRule(
    id="container.engine_missing",
    doc="The container engine the pipeline profile needs is not installed on the host: "
    "\"env: 'singularity': No such file or directory\", 'docker: command not found'.",
    owner=_P,
    category="container_engine_missing",
    summary="The container engine (Singularity/Apptainer/Docker) is not installed or not on the "
    "PATH of the machine running the pipeline.",
    action="Install the container engine on the compute host (or switch the service to an "
    "engine that is installed), then retry.",
    pattern=rx(
        r"env: .{1,3}(?:singularity|apptainer|docker|podman).{1,3}: No such file or directory",
        r"\b(?:singularity|apptainer|docker|podman): command not found",
        r"Cannot run program \"(?:singularity|apptainer|docker|podman)\"",
    ),
)

TIME_LIMIT = PatternRule(
    id="timeout.task_time_limit",
    doc="A scheduler stopped the task at its time limit: SLURM 'CANCELLED ... DUE TO TIME "
    "LIMIT', LSF TERM_RUNLIMIT, AWS Batch 'Job attempt duration exceeded timeout'.",
    owner=_B,
    category="task_timed_out",
    summary="A pipeline step ran longer than its time limit and was stopped.",
    action="Raise the step's time limit or make it faster; check whether the input is unusually "
    "large. Then rerun.",
    pattern=rx(
        r"DUE TO TIME LIMIT",
        r"\bTERM_RUNLIMIT\b",
        r"Job attempt duration exceeded timeout",
        r"exceeded the (?:maximum )?(?:run|wall) ?time",
    ),
)

TERMINATED_EXTERNALLY = PatternRule(
    id="nextflow.terminated_externally",
    doc="Nextflow lost the task: 'terminated for an unknown reason -- Likely it has been "
    "terminated by the external system', 'Cannot read exitstatus for task', pod not found. "
    "The scheduler/cloud removed it (spot reclaim, node failure), not the task's own code.",
    owner=_P,
    category="terminated_externally",
    summary="The task was removed by the compute system (scheduler or cloud), not by an error "
    "in the task.",
    action="Retry the run; if it recurs, check the scheduler/cloud logs for node failures or "
    "spot reclaims.",
    pattern=rx(
        r"terminated for an unknown reason",
        r"Likely it has been terminated by the external system",
        r"Cannot read exitstatus for task",
        r"Unable to find pod [^\n]{0,80}",
    ),
)

# --- Parameters and sample sheets ----------------------------------------------------------

_PARAMS = rx(
    r"Validation of pipeline parameters failed",
    r"The following invalid input values have been detected",
    r"Found unexpected parameters",
    r"Bad parameter configuration",
    r"Missing required parameter",
)
# An invalid --input / samplesheet value is the submission's problem, not the launcher's.
_PARAMS_INPUT = re.compile(
    r"^\s*\*\s*--(?:input|samplesheet|reads|fastq\w*)\b[^\n]{0,300}",
    re.IGNORECASE | re.MULTILINE,
)
_PARAM_DETAIL = re.compile(r"^\s*\*\s*--?\w[^\n]{0,200}", re.MULTILINE)


def _params(view: EvidenceView) -> Classification | None:
    """nf-schema/nf-validation rejected the pipeline parameters.

    An invalid `--input`/samplesheet value -> lab `samplesheet_invalid`; any other parameter
    (paths to references, options the launcher sets, unknown parameters) -> bioinformatician
    `parameters_invalid`, since the service's parameters are set by its maintainer.
    """
    head = first_match(_PARAMS, view)
    if head is None:
        return None
    m = _PARAMS_INPUT.search(view.text)
    if m is not None:
        return make(
            "nextflow.params_validation.input",
            _L,
            "samplesheet_invalid",
            "The pipeline rejected the sample input (sample sheet or read paths).",
            "Fix the sample sheet / input paths named in the error and resubmit.",
            clean_line(m.group(0)),
        )
    d = _PARAM_DETAIL.search(view.text)
    return make(
        "nextflow.params_validation.parameters",
        _B,
        "parameters_invalid",
        "The pipeline rejected its parameters before starting.",
        "Fix the parameter named in the error in the service's configuration, then rerun.",
        clean_line(d.group(0)) if d is not None else head,
    )


PARAMS_VALIDATION = FunctionRule("nextflow.params_validation", _params)

WORKFLOW_CODE = PatternRule(
    id="nextflow.workflow_code_error",
    doc="The workflow script itself is broken: 'Missing process or function', 'Cannot find a "
    "component with name', 'Can't find a matching module file for include', compilation "
    "errors, unknown variables/methods.",
    owner=_B,
    category="workflow_code_error",
    summary="The workflow code has an error (missing process, module or function).",
    action="Fix the workflow code or pin a working pipeline revision, then rerun.",
    pattern=rx(
        r"Missing process or function",
        r"Cannot find a component with name",
        r"Can't find a matching module file for include",
        r"Script compilation error",
        r"Unknown method invocation",
        r"No signature of method",
        r"No such variable: ",
        r"Module compilation error",
    ),
)

SAMPLESHEET = PatternRule(
    id="input.samplesheet_invalid",
    doc="The pipeline's sample-sheet check failed: 'ERROR: Please check samplesheet ...', a "
    "failing SAMPLESHEET_CHECK / INPUT_CHECK process. The sample sheet comes with the "
    "submission, so the lab fixes it.",
    owner=_L,
    category="samplesheet_invalid",
    summary="The sample sheet submitted with the run is invalid or points to missing files.",
    action="Correct the sample sheet (header, columns, file paths) as the error says and resubmit.",
    pattern=rx(
        r"Please check (?:input )?samplesheet",
        r"\bSAMPLESHEET_CHECK\b",
        r":INPUT_CHECK\b",
        r"check_samplesheet\.py",
    ),
)

# --- Task failures with no specific cause --------------------------------------------------

TOOL_EXCEPTION = PatternRule(
    id="tool.exception",
    doc="A tool/script raised an unhandled exception (Python traceback, Java 'Exception in "
    "thread \"main\"', R 'Error in ...: '). Code that crashes on its input is the "
    "bioinformatician's to look at first, even when bad data triggered it.",
    owner=_B,
    category="tool_error",
    summary="A tool or script in the pipeline stopped with an unhandled error.",
    action="Read the step's error output (Command error) and fix or update the tool/script; if "
    "the input data triggered it, tell the lab what is wrong with it.",
    pattern=rx(
        r"Traceback \(most recent call last\)",
        r"Exception in thread \"main\"",
        # One alternative per exception name, so each has a literal for the prefilter.
        *(
            rf"^\s*{name}: "
            for name in (
                "KeyError",
                "ValueError",
                "IndexError",
                "TypeError",
                "AttributeError",
                "ZeroDivisionError",
                "AssertionError",
                "RuntimeError",
            )
        ),
        r"^\s*Error in [\w.$]{1,60}\(",
        flags=re.MULTILINE,
    ),
)

_TASK_EXIT = rx(
    r"terminated with an error exit status \((\d{1,3})\)",
    r"Command exit status:\s*(\d{1,3})\b",
    r"execution to fail was: (\d{1,3})\b",
)
_PROCESS_NAME = re.compile(r"Process `([^`\n]{1,200})`|Error executing process > '([^'\n]{1,200})'")


def _task_failed(view: EvidenceView) -> Classification | None:
    """A Nextflow task exited non-zero and no earlier rule recognised why.

    Exit status 1 (or any other code not covered by a signal rule) only says "the command
    failed"; the cause is in the task's Command error. Honest answer: ambiguous
    `task_failed`, naming the step and exit status so a person can look.
    """
    m = _TASK_EXIT.search(view)
    if m is None:
        return None
    status = next(g for g in m.groups() if g is not None)
    p = _PROCESS_NAME.search(view.text)
    step = ""
    if p is not None:
        step = f" ({clean_line(p.group(1) or p.group(2), 120)})"
    return make(
        "nextflow.task_failed",
        _A,
        "task_failed",
        f"A pipeline step{step} failed with exit status {status}; the evidence does not say why.",
        "Read the step's 'Command error' / .command.err: a tool or script bug goes to the "
        "bioinformatician, bad input data to the lab.",
    )


TASK_FAILED = FunctionRule("nextflow.task_failed", _task_failed)

CONFIG_SELECTOR_WARNING = PatternRule(
    id="nextflow.config_selector_warning",
    doc="Only a 'There's no process matching config selector' warning was recorded. It does not "
    "stop a run by itself, but it is the one concrete problem in the evidence: the "
    "configuration names a process the workflow does not have.",
    owner=_B,
    category="workflow_config_error",
    summary="The pipeline configuration refers to a process that does not exist (a warning; the "
    "real failure may be recorded elsewhere).",
    action="Fix the process selector in the service's Nextflow configuration, and check the "
    ".nextflow.log for the actual failure.",
    pattern=rx(r"There's no process matching config selector"),
)

"""Rules for local (sandboxed bash) pipelines: exit codes, signals and log tails.

Exit codes follow the shell convention: 126 not executable, 127 command not found, 128+n
killed by signal n (137 = SIGKILL, usually the OOM killer; 143 = SIGTERM; 139 = SIGSEGV).
These rules also read exit codes of Nextflow/Batch tasks, which follow the same convention.
"""

from __future__ import annotations

import re

from classifiers.rules.base import (
    EvidenceView,
    FunctionRule,
    PatternRule,
    line_around,
    make,
    rx,
)
from classifiers.taxonomy import Classification, Owner

_L, _B, _P = Owner.LAB, Owner.BIOINFORMATICIAN, Owner.PLATFORM


def _temp_fail(view: EvidenceView) -> Classification | None:
    """The pipeline exited with the service's temp-fail code: its inputs are not there yet.

    Each service declares this code (`evidence.temp_fail_exit_code`); pipelines use it to say
    "sequencing data not delivered yet". The lab owns the data, and the run is retried later
    without consuming a retry, so the category is `input_not_ready`.
    """
    ev = view.evidence
    if ev.temp_fail_exit_code is None or ev.exit_code != ev.temp_fail_exit_code:
        return None
    return make(
        "local.temp_fail_exit_code",
        _L,
        "input_not_ready",
        "The pipeline reported that its input data is not ready yet "
        f"(temp-fail exit code {ev.exit_code}).",
        "Nothing to fix if the data is still being delivered: the run is retried automatically. "
        "If it keeps waiting, check the sample's data was uploaded to the expected place.",
    )


TEMP_FAIL = FunctionRule("local.temp_fail_exit_code", _temp_fail)

READ_ONLY_FS = PatternRule(
    id="sandbox.read_only_fs",
    doc="A write hit a read-only file system (EROFS, errno 30). In the bubblewrap sandbox the "
    "root is read-only, so the pipeline wrote outside its per-service write whitelist.",
    owner=_B,
    category="write_outside_sandbox",
    summary="The pipeline tried to write to a read-only location, outside the directories its "
    "sandbox lets it write.",
    action="Make the pipeline write only to its scratch/output directories (or $TMPDIR), or add "
    "the path to the service's write whitelist, then rerun.",
    pattern=rx(r"Read-only file system", r"\bEROFS\b", r"\[Errno 30\]", r"os error 30\b"),
)

DISK_FULL = PatternRule(
    id="os.disk_full",
    doc="The disk (or tmpfs, or docker storage) filled up: ENOSPC / 'No space left on device', "
    "disk quota exceeded, or Kubernetes evicting for ephemeral storage. Host sizing is the "
    "platform's job; HealthOmics' own FILE_SYSTEM_OUT_OF_SPACE is decided by the lookup.",
    owner=_P,
    category="disk_full",
    summary="The machine ran out of disk space while the run was working.",
    action="Free or enlarge the disk behind the work/scratch/tmp directories (or the Batch "
    "instance volume), then retry. If one sample is unusually large, tell the lab.",
    pattern=rx(
        r"No space left on device",
        r"\bENOSPC\b",
        r"\[Errno 28\]",
        r"Disk quota exceeded",
        r"\bEDQUOT\b",
        r"low on resource: ephemeral-storage",
    ),
)

HOST_MEMORY_STARVED = PatternRule(
    id="host.memory_starved",
    doc="The host itself was out of memory: fork() failing with ENOMEM/EAGAIN, or Kubernetes "
    "evicting the pod because the node was low on memory. This beats the OOM rules: the task "
    "did not exceed its own limit, the machine was overcommitted.",
    owner=_P,
    category="host_memory_exhausted",
    summary="The host machine ran out of memory (it could not even start new processes); the "
    "pipeline's own memory limit was not the cause.",
    action="Reduce how many runs share the host (max_workers / concurrency limit) or give the "
    "host more memory, then retry.",
    pattern=rx(
        r"fork: (?:retry: )?(?:Cannot allocate memory|Resource temporarily unavailable)",
        r"Unable to fork: Cannot allocate memory",
        r"fork failed: Cannot allocate memory",
        r"node was low on resource: memory",
        r"node had condition: \[MemoryPressure\]",
    ),
)

COMMAND_NOT_FOUND = PatternRule(
    id="exit.127_command_not_found",
    doc="Exit 127 or 'command not found': a tool the pipeline calls is not installed in its "
    "container/environment (or is misspelled).",
    owner=_B,
    category="command_not_found",
    summary="A command the pipeline runs was not found in its environment or container.",
    action="Add the missing tool to the pipeline's container/environment (or fix the command "
    "name), then rerun.",
    pattern=rx(
        r"command not found",
        r"exit status \(127\)",
        r"Command exit status:\s*127\b",
        r"execution to fail was: 127\b",
        r"bad interpreter: No such file or directory",
    ),
    exit_codes=frozenset({127}),
    either=True,
)

NOT_EXECUTABLE = PatternRule(
    id="exit.126_not_executable",
    doc="Exit 126: the command exists but cannot be executed (no execute bit, a directory, "
    "wrong binary format).",
    owner=_B,
    category="command_not_executable",
    summary="A command the pipeline runs exists but could not be executed (permissions or "
    "binary format).",
    action="Fix the script's execute permission or the binary's architecture in the pipeline, "
    "then rerun.",
    pattern=rx(r"exit status \(126\)", r"Command exit status:\s*126\b"),
    exit_codes=frozenset({126}),
    either=True,
)

SIGKILL_137 = PatternRule(
    id="exit.137_sigkill_oom",
    doc="Exit 137 (128+SIGKILL) or a '.command.sh: line N: PID Killed' line: the task was "
    "killed, in practice almost always by the OOM killer for exceeding its memory. Host-level "
    "starvation and host termination are separate, earlier rules.",
    owner=_B,
    category="out_of_memory",
    summary="A pipeline step was killed (SIGKILL, exit 137), almost always because it used more "
    "memory than it was given.",
    action="Give the step more memory (process label/memory directive or the service's limit) or "
    "reduce its memory use, then rerun.",
    pattern=rx(
        r"exit status \(137\)",
        r"Command exit status:\s*137\b",
        r"execution to fail was: 137\b",
        r"line \d+:\s+\d+ Killed\s",
        r"Exit Code:?\s*137\b",
    ),
    exit_codes=frozenset({137}),
    either=True,
)

TOOL_CRASHED = PatternRule(
    id="signal.tool_crashed",
    doc="A tool crashed on its own: SIGSEGV (139), SIGABRT (134), SIGBUS (135), SIGILL (132), "
    "SIGFPE (136), 'Segmentation fault', 'core dumped', 'stack smashing detected'.",
    owner=_B,
    category="tool_crashed",
    summary="A tool in the pipeline crashed (segmentation fault / abort).",
    action="Reproduce the step from its work directory; update or rebuild the tool, or work "
    "around the input that triggers the crash, then rerun.",
    pattern=rx(
        r"Segmentation fault",
        r"core dumped",
        r"stack smashing detected",
        r"Illegal instruction",
        r"exit status \((?:132|134|135|136|139)\)",
        r"Command exit status:\s*(?:132|134|135|136|139)\b",
        r"execution to fail was: (?:132|134|135|136|139)\b",
    ),
    exit_codes=frozenset({132, 134, 135, 136, 139}),
    either=True,
)

TERMINATED_BY_SIGNAL = PatternRule(
    id="signal.terminated",
    doc="SIGTERM (143), SIGINT (130) or SIGHUP (129) from outside the pipeline: host "
    "shutdown, scheduler preemption or an operator stop. Time limits are matched earlier.",
    owner=_P,
    category="terminated_by_signal",
    summary="The pipeline was stopped from outside (SIGTERM/SIGINT/SIGHUP), not by its own error.",
    action="Check whether the host was restarted or the run was stopped on purpose; if not, "
    "retry the run.",
    pattern=rx(
        r"exit status \((?:129|130|143)\)",
        r"Command exit status:\s*(?:129|130|143)\b",
        r"execution to fail was: (?:129|130|143)\b",
    ),
    exit_codes=frozenset({129, 130, 143}),
    either=True,
)

TIMEOUT_124 = PatternRule(
    id="exit.124_timeout",
    doc="Exit 124 is what coreutils `timeout` returns when it had to stop the command.",
    owner=_B,
    category="task_timed_out",
    summary="A pipeline step hit its time limit and was stopped (exit 124).",
    action="Raise the step's time limit or make it faster; check whether the input is unusually "
    "large. Then rerun.",
    pattern=rx(r"exit status \(124\)", r"Command exit status:\s*124\b"),
    exit_codes=frozenset({124}),
    either=True,
)

# --- Missing files -------------------------------------------------------------------------

_MISSING = rx(
    r"No such file or directory",
    r"NoSuchFileException",
    r"FileNotFoundException",
    r"NoSuchKey",
    r"does not exist\b",
    r"Cannot access input file",
    r"Can't open (?:file|input)",
    r"Unable to read file",
    r"Unable to read script: .{0,300}-- cause:",
)
# Sequencing reads and sample sheets come from the lab.
_SAMPLE_DATA = re.compile(
    r"\.(?:fastq|fq|bam|cram|ubam|sam|pod5|fast5|bcl|sra|csv|tsv)(?:\.gz|\.bz2|\.zst)?\b"
    r"|sample ?sheet|\bsample\b|\bfastq_?[12]\b|\bR[12]_\d{3}\b|query input|\breads?\b",
    re.IGNORECASE,
)
# References, indexes and annotations are chosen and maintained by the bioinformatician.
_REFERENCE = re.compile(
    r"\.(?:fa|fasta|fna|fai|dict|gtf|gff3?|bed|mmi|2bit|bwt|amb|ann|pac|sa|idx)(?:\.gz)?\b"
    r"|\breference\b|\bgenome\b|\bindex\b",
    re.IGNORECASE,
)
_EXECUTABLE = re.compile(
    r"bad interpreter|\benv: |\bexec(?::|\s)|\.(?:sh|py|pl|R|jar)\b[^.]|/(?:usr/)?bin/",
    re.IGNORECASE,
)


def _missing_file(view: EvidenceView) -> Classification | None:
    """A file the run needs does not exist. Who fixes it depends on what the file is.

    Looks at the lines saying "No such file or directory" / "NoSuchFileException" / "does not
    exist": a sample's reads or sample sheet (FASTQ/BAM/CRAM/CSV...) -> lab `input_missing`;
    a reference, index or annotation (FASTA/GTF/BED...) -> bioinformatician
    `reference_missing`; a script or interpreter -> bioinformatician `command_not_found`.
    Other missing paths (work-dir intermediates, outputs) are left to later rules.
    """
    text = view.text
    for n, m in enumerate(_MISSING.finditer(view)):
        if n >= 8:  # a log full of missing-file lines says nothing more after a few
            break
        line = line_around(text, m.start(), m.end())
        if _EXECUTABLE.search(line) and not _SAMPLE_DATA.search(line):
            return make(
                "files.missing.executable",
                _B,
                "command_not_found",
                "A script or interpreter the pipeline runs does not exist.",
                "Fix the script path or install the interpreter in the pipeline's "
                "container/environment, then rerun.",
                line,
            )
        if _SAMPLE_DATA.search(line):
            return make(
                "files.missing.input",
                _L,
                "input_missing",
                "An input file of the sample (reads or sample sheet) does not exist where the "
                "run looked for it.",
                "Check the sample's files were delivered and the paths in the submission/sample "
                "sheet are correct, then resubmit.",
                line,
            )
        if _REFERENCE.search(line):
            return make(
                "files.missing.reference",
                _B,
                "reference_missing",
                "A reference, index or annotation file the pipeline uses does not exist.",
                "Fix the reference path in the service's parameters or restore the reference "
                "files, then rerun.",
                line,
            )
    return None


MISSING_FILE = FunctionRule("files.missing", _missing_file)

"""Lookup of the documented AWS HealthOmics run failure codes.

Source: https://docs.aws.amazon.com/omics/latest/dev/workflows-run-errors.html (24 codes, as
copied in shared/reference/healthomics_failure_codes.json; tests check this table against that
file). The table is embedded so classification never does I/O.

Owners are our decision, made for this lab's split of work:
- lab: the submitted sample data is missing, archived, changed or too big;
- bioinformatician: workflow code, containers, parameters, resource sizing;
- platform: cloud capacity, service errors, and the run role / IAM that omicsflow's deployment
  provisions (the service configuration, not the workflow, holds the role ARN here).

Codes that do not identify a cause by themselves (`decides=False`) fall through to the rules,
which read statusMessage and the failing tasks. If no rule recognises the evidence, a
non-deciding code with a `category` still gives an honest `ambiguous` classification; the
purely generic ones (WORKFLOW_RUN_FAILED, RUN_TASK_FAILED) leave it to the final fallback.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

from classifiers.evidence import Evidence
from classifiers.taxonomy import Classification, ClassifiedBy, Owner


@dataclass(frozen=True)
class LookupEntry:
    code: str
    owner: Owner
    # None for the purely generic codes: the fallback rule handles them.
    category: str | None
    summary: str
    action: str
    decides: bool = True


_L, _B, _P, _A = Owner.LAB, Owner.BIOINFORMATICIAN, Owner.PLATFORM, Owner.AMBIGUOUS

_ENTRIES = (
    LookupEntry(
        "ASSUME_ROLE_FAILED",
        _P,
        "run_role_misconfigured",
        "HealthOmics could not assume the run's IAM service role.",
        "Add omics.amazonaws.com to the run role's trust relationship (the role configured for "
        "this service), then retry the run.",
    ),
    LookupEntry(
        "CANNOT_START_CONTAINER_ERROR",
        _B,
        "container_start_failed",
        "A workflow task's container could not be started from its image.",
        "Check the task image is valid and runnable on x86_64, fix it in the workflow, then rerun.",
    ),
    LookupEntry(
        "CANNOT_START_CONTAINER_SIZE_ERROR",
        _B,
        "container_image_too_large",
        "A task's container image is larger than HealthOmics allows (45 GiB; 95 GiB on GPU).",
        "Shrink the container image below the limit, push it again, then rerun.",
    ),
    LookupEntry(
        "ECR_PERMISSION_ERROR",
        _B,
        "container_registry_permission",
        "HealthOmics is not allowed to pull the task image from Amazon ECR.",
        "Make sure the private ECR repository exists and its repository policy lets the "
        "HealthOmics service principal pull (cross-account grants if shared), then rerun.",
    ),
    LookupEntry(
        "EXPORT_FAILED",
        _A,
        "output_export_failed",
        "Writing the run's outputs to the output location failed.",
        "Check the output bucket exists and the run role can write to it; if both are fine the "
        "S3 error may have been transient, so rerun.",
        decides=False,
    ),
    LookupEntry(
        "FILE_SYSTEM_OUT_OF_SPACE",
        _B,
        "run_storage_full",
        "The run's file system ran out of space.",
        "Raise storageCapacity (STATIC) or use storageType=DYNAMIC for this workflow; also check "
        "whether the inputs are unusually large. Then rerun.",
    ),
    LookupEntry(
        "IMAGE_VERIFICATION_FAILURE",
        _B,
        "container_image_invalid",
        "HealthOmics could not verify a task's container image.",
        "Pull the image and push it again to the ECR repository, then rerun.",
    ),
    LookupEntry(
        "IMPORT_FAILED",
        _A,
        "input_import_failed",
        "Staging an input file for the run failed.",
        "Check the input file exists (lab) and the run role can read it (platform), then rerun.",
        decides=False,
    ),
    LookupEntry(
        "INACTIVE_OMICS_STORAGE_RESOURCE",
        _L,
        "input_archived",
        "An input read set in HealthOmics storage is not active (for example it was archived).",
        "Activate the read set in HealthOmics storage, then rerun.",
    ),
    LookupEntry(
        "INPUT_URI_NOT_FOUND",
        _L,
        "input_missing",
        "An input file given to the run does not exist at its URI.",
        "Check the sample's input path is correct and the file was uploaded, then rerun.",
    ),
    LookupEntry(
        "INSTANCE_RESERVATION_FAILED",
        _P,
        "capacity_unavailable",
        "AWS did not have enough instance capacity for the run.",
        "Nothing to fix in the data or workflow: retry later.",
    ),
    LookupEntry(
        "INVALID_ECR_IMAGE_URI",
        _B,
        "container_image_uri_invalid",
        "A task's ECR image URI is not a valid URI.",
        "Fix the image URI in the workflow definition or parameters, then rerun.",
    ),
    LookupEntry(
        "INVALID_TASK_RESOURCE_VALUE",
        _B,
        "task_resources_invalid",
        "A task asks for CPU, GPU or memory above what is available or below the minimum of 1.",
        "Fix the task's resource values in the workflow definition, then rerun.",
    ),
    LookupEntry(
        "INVALID_URI_INPUT",
        _A,
        "input_uri_invalid",
        "A URI parameter of the run is not a valid URI.",
        "Check whether the bad URI came from the sample submission (lab) or from the workflow's "
        "parameters (bioinformatician); fix it and rerun.",
        decides=False,
    ),
    LookupEntry(
        "MODIFIED_INPUT_RESOURCE",
        _L,
        "input_modified_during_run",
        "An input file was changed after the run started.",
        "Do not modify input files while a run uses them; rerun once they are final.",
    ),
    LookupEntry(
        "OUT_OF_MEMORY_ERROR",
        _B,
        "out_of_memory",
        "A workflow task ran out of memory.",
        "Increase the task's memory in the workflow definition, then rerun.",
    ),
    LookupEntry(
        "RUN_TASK_FAILED",
        _A,
        None,
        "The run failed because one of its tasks failed.",
        "Open the failed task (ListRunTasks status=FAILED) and its CloudWatch log stream to find "
        "the cause.",
        decides=False,
    ),
    LookupEntry(
        "RUN_TIMED_OUT",
        _A,
        "run_timed_out",
        "The run exceeded its maximum duration.",
        "Check the run group / account maximum duration, whether the workflow got slower, and "
        "whether the inputs are unusually large; then raise the limit or optimise.",
        decides=False,
    ),
    LookupEntry(
        "SERVICE_ERROR",
        _P,
        "service_error",
        "A transient error inside the HealthOmics service.",
        "Nothing to fix in the data or workflow: retry the run.",
    ),
    LookupEntry(
        "TASK_TIMED_OUT",
        _B,
        "task_timed_out",
        "A task exceeded its time limit.",
        "Raise the task's time limit in the workflow or make the task faster, then rerun.",
    ),
    LookupEntry(
        "UNSUPPORTED_INPUT_SIZE",
        _L,
        "input_too_large",
        "The total size of the run's inputs is larger than HealthOmics accepts.",
        "Submit less input data per run (split the sample set), then rerun.",
    ),
    LookupEntry(
        "WORKFLOW_RUN_FAILED",
        _A,
        None,
        "The workflow engine reported a generic failure.",
        "Read the engine log stream (logLocation.engineLogStream) to find the cause.",
        decides=False,
    ),
    LookupEntry(
        "WORKFLOW_VER_VALIDATION_FAILED",
        _B,
        "engine_version_unsupported",
        "The workflow asks for a Nextflow version HealthOmics does not support.",
        "Change the workflow to a supported Nextflow version, then rerun.",
    ),
    LookupEntry(
        "UNSUPPORTED_GPU_INSTANCE_TYPE",
        _B,
        "gpu_instance_unsupported",
        "The requested GPU instance type is not available in this Region.",
        "Request a GPU type supported in the Region in the workflow, then rerun.",
    ),
)

HEALTHOMICS_CODES: Mapping[str, LookupEntry] = MappingProxyType({e.code: e for e in _ENTRIES})

# failureReason is a free string (1-64 chars): accept the code alone or followed by detail.
_CODE = re.compile(r"\s*([A-Z][A-Z0-9_]{2,63})\b")


def code_of(failure_reason: str | None) -> str | None:
    """The documented code a failureReason starts with, if any."""
    if not failure_reason:
        return None
    m = _CODE.match(failure_reason[:128])
    if m is None or m.group(1) not in HEALTHOMICS_CODES:
        return None
    return m.group(1)


def _codes(evidence: Evidence) -> list[str]:
    """Documented codes in evidence: the run's first, then each failing task's."""
    found: list[str] = []
    for reason in [evidence.failure_reason, *(t.failure_reason for t in evidence.tasks[:64])]:
        code = code_of(reason)
        if code is not None and code not in found:
            found.append(code)
    return found


def _classification(entry: LookupEntry, category: str) -> Classification:
    return Classification(
        owner=entry.owner,
        category=category,
        summary=f"HealthOmics {entry.code}: {entry.summary}",
        action=entry.action,
        classified_by=ClassifiedBy.LOOKUP,
        rule=f"healthomics.{entry.code}",
    )


def lookup(evidence: Evidence) -> Classification | None:
    """The classification of the first deciding documented code, or None.

    A run whose own code is generic (RUN_TASK_FAILED) is decided by a failing task's code
    when that one decides (e.g. the task failed with OUT_OF_MEMORY_ERROR).
    """
    for code in _codes(evidence):
        entry = HEALTHOMICS_CODES[code]
        if entry.decides and entry.category is not None:
            return _classification(entry, entry.category)
    return None


def ambiguous_hint(evidence: Evidence) -> Classification | None:
    """After the rules found nothing: an ambiguous classification for a known, non-deciding
    code that still names the failure area (e.g. IMPORT_FAILED), else None."""
    for code in _codes(evidence):
        entry = HEALTHOMICS_CODES[code]
        if not entry.decides and entry.category is not None:
            return _classification(entry, entry.category)
    return None


def generic_code(evidence: Evidence) -> LookupEntry | None:
    """The first documented generic code in evidence (used by the fallback's wording)."""
    for code in _codes(evidence):
        entry = HEALTHOMICS_CODES[code]
        if entry.category is None:
            return entry
    return None

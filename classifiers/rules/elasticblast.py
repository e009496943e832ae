"""Rules for ElasticBLAST exit codes (platform `blast`).

Source: ncbi/elastic-blast 1.5.0, src/elastic_blast/constants.py and the places each code is
raised (shared/reference/elasticblast_reference.json). Exit codes only mean this on the
`blast` platform; text rules earlier in the registry (disk full, throttling, access denied)
are more specific and win when they match the log.
"""

from __future__ import annotations

from classifiers.evidence import Platform
from classifiers.rules.base import EvidenceView, FunctionRule, PatternRule, first_match, make, rx
from classifiers.taxonomy import Classification, Owner

_L, _B, _P, _A = Owner.LAB, Owner.BIOINFORMATICIAN, Owner.PLATFORM, Owner.AMBIGUOUS
_BLAST = frozenset({Platform.BLAST})

# Messages ElasticBLAST raises with INPUT_ERROR that concern the submitted queries.
_QUERY = rx(
    r"Query input [^\n]{0,200}(?:not readable|does not exist)",
    r"query (?:file|sequence)s? [^\n]{0,100}(?:empty|missing|invalid|not found)",
)
# ... and those that concern the search configuration.
_CONFIG = rx(
    r"Batch size led to",
    r"batch-len",
    r"must have all lower case characters",
    r"has already been submitted",
    r"configuration",
    r"\.ini\b",
    r"--\w",
)


def _input_error(view: EvidenceView) -> Classification | None:
    """ElasticBLAST exit 1 (INPUT_ERROR): bad queries (lab), bad config/options
    (bioinformatician), or unknown from the evidence (ambiguous)."""
    if view.platform is not Platform.BLAST or 1 not in view.exit_codes:
        return None
    q = first_match(_QUERY, view)
    if q is not None:
        return make(
            "blast.input_error.query",
            _L,
            "input_invalid",
            "ElasticBLAST rejected the query sequences (missing, unreadable or invalid).",
            "Check the query FASTA exists at the submitted location and is valid, then resubmit.",
            q,
        )
    c = first_match(_CONFIG, view)
    if c is not None:
        return make(
            "blast.input_error.config",
            _B,
            "parameters_invalid",
            "ElasticBLAST rejected the search configuration or BLAST options.",
            "Fix the ElasticBLAST configuration/options named in the error (e.g. batch-len, "
            "cluster name, results location), then rerun.",
            c,
        )
    return make(
        "blast.input_error.unknown",
        _A,
        "blast_input_error",
        "ElasticBLAST reported an input error (exit 1): either the queries or the configuration.",
        "Read the ElasticBLAST log: bad queries go to the lab, bad configuration to the "
        "bioinformatician.",
        "exit code 1",
    )


INPUT_ERROR = FunctionRule("blast.input_error", _input_error)


def _code_rule(
    code: int, name: str, owner: Owner, category: str, summary: str, action: str
) -> PatternRule:
    return PatternRule(
        id=f"blast.exit_{code}_{name.lower()}",
        doc=f"ElasticBLAST exit {code} ({name}).",
        owner=owner,
        category=category,
        summary=summary,
        action=action,
        exit_codes=frozenset({code}),
        platforms=_BLAST,
    )


BLASTDB_ERROR = _code_rule(
    2,
    "BLASTDB_ERROR",
    _B,
    "blast_database_error",
    "The BLAST database is invalid, missing or its metadata cannot be read.",
    "Check the database name/location in the service configuration, then rerun.",
)
ENGINE_ERROR = _code_rule(
    3,
    "BLAST_ENGINE_ERROR",
    _B,
    "tool_error",
    "The BLAST engine itself failed.",
    "Read the BLAST job logs; check the BLAST options and database version, then rerun.",
)
OUT_OF_MEMORY = _code_rule(
    4,
    "OUT_OF_MEMORY_ERROR",
    _B,
    "out_of_memory",
    "BLAST ran out of memory.",
    "Raise mem-limit or choose a larger machine-type in the ElasticBLAST configuration, then "
    "rerun.",
)
TIMEOUT = _code_rule(
    5,
    "TIMEOUT_ERROR",
    _P,
    "cloud_timeout",
    "Creating or deleting the ElasticBLAST cloud stack timed out.",
    "Retry; if it recurs, check CloudFormation events for the stack.",
)
PERMISSIONS = _code_rule(
    6,
    "PERMISSIONS_ERROR",
    _P,
    "permission_denied",
    "ElasticBLAST lacked cloud permissions (credentials, results bucket write, IAM).",
    "Grant the credentials/role access named in the log (results bucket, Batch, IAM), then retry.",
)
DEPENDENCY = _code_rule(
    7,
    "DEPENDENCY_ERROR",
    _P,
    "cloud_dependency_error",
    "A cloud dependency was unavailable (quota, instance type, CloudFormation stack or a "
    "required tool).",
    "Check quotas and the CloudFormation stack events; clean up the failed stack and retry.",
)
CLUSTER = _code_rule(
    8,
    "CLUSTER_ERROR",
    _P,
    "cluster_error",
    "The ElasticBLAST cluster failed, is not responding, or a search already uses the same "
    "results location.",
    "Delete the old search/cluster for this results location (or use a new one), then retry.",
)
INTERRUPTED = _code_rule(
    9,
    "INTERRUPT_ERROR",
    _P,
    "terminated_by_signal",
    "ElasticBLAST was interrupted (SIGINT).",
    "Retry the search if the interruption was not intended.",
)
NOT_READY = _code_rule(
    10,
    "NOT_READY_ERROR",
    _P,
    "not_ready",
    "ElasticBLAST reported that a resource was not ready.",
    "Retry later.",
)

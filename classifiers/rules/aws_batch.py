"""Rules for AWS Batch / ECS status reasons and cloud API errors.

Nextflow and Seqera quote these reasons in their error messages ("Task failed to start -
CannotPullContainerError: ..."), and omicsflow's own backends may record them as status
messages, so the rules match the text wherever it appears.
"""

from __future__ import annotations

from classifiers.rules.base import EvidenceView, FunctionRule, PatternRule, first_match, make, rx
from classifiers.taxonomy import Classification, Owner

_B, _P, _A = Owner.BIOINFORMATICIAN, Owner.PLATFORM, Owner.AMBIGUOUS

HOST_TERMINATED = PatternRule(
    id="aws.host_terminated",
    doc="The instance running the task went away: 'Host EC2 (instance i-...) terminated.' "
    "(spot reclaim or scale-in), ECS 'Your Spot Task was interrupted', or a Kubernetes pod lost "
    "to a node shutdown. Transient infrastructure: retry.",
    owner=_P,
    category="host_terminated",
    summary="The cloud machine running the task was terminated (typically a spot instance "
    "reclaimed by AWS).",
    action="Nothing to fix in the data or workflow: retry. If it keeps happening, move the "
    "queue to on-demand instances or allow spot retries.",
    pattern=rx(
        r"Host EC2 \(instance i-[0-9a-f]{1,32}\) terminated",
        r"Host EC2 [^\n]{0,60}terminated",
        r"Your Spot Task was interrupted",
        r"Spot Instance interruption",
        r"evicted by a node shutdown event",
    ),
)

CONTAINER_OOM = PatternRule(
    id="aws.container_oom",
    doc="ECS/Batch 'OutOfMemoryError: Container killed due to memory usage': the container used "
    "more than the memory its job definition gave it.",
    owner=_B,
    category="out_of_memory",
    summary="The task's container was killed for using more memory than it was given.",
    action="Give the task more memory (job definition / process memory directive), then rerun.",
    pattern=rx(r"OutOfMemoryError: Container killed due to memory usage"),
)

# --- Container image pulls -----------------------------------------------------------------

_PULL = rx(
    r"CannotPullContainerError",
    r"Failed to pull singularity image",
    r"While making image from oci registry",
    r"\bErrImagePull\b",
    r"\bImagePullBackOff\b",
    r"Failed to pull image",
    r"Unable to find image '[^'\n]{1,200}' locally",
    r"pull access denied for",
)
# Registry/network/host trouble: someone running the infrastructure must act.
_PULL_INFRA = rx(
    r"toomanyrequests",
    r"pull rate limit",
    r"i/o timeout",
    r"context deadline exceeded",
    r"TLS handshake timeout",
    r"connection (?:refused|reset)",
    r"network is unreachable",
    r"no such host",
    r"Service Unavailable",
    r"pull is only supported for shub URIs",
)
# The image reference itself is wrong or private: the workflow's author must fix it.
_PULL_IMAGE = rx(
    r"manifest unknown",
    r"manifest for [^\n]{1,200} not found",
    r"repository does not exist",
    r"pull access denied",
    r"requested access to the resource is denied",
    r"authentication required",
    r"invalid reference format",
    r"name unknown",
    r"not found: manifest",
)


def _pull_failed(view: EvidenceView) -> Classification | None:
    """A container image could not be pulled (Docker/ECS, Singularity/Apptainer, Kubernetes).

    Registry rate limits, network timeouts and an outdated Singularity on the host ->
    platform `container_pull_failed`; an image that does not exist or is private (manifest
    unknown, pull access denied) -> bioinformatician `container_image_unavailable`; a pull
    failure that says neither -> ambiguous. A full disk during the pull is matched earlier
    by `os.disk_full`.
    """
    head = first_match(_PULL, view)
    if head is None:
        return None
    infra = first_match(_PULL_INFRA, view)
    if infra is not None:
        return make(
            "container.pull_failed.infrastructure",
            _P,
            "container_pull_failed",
            "A container image could not be downloaded because of the registry, the network or "
            "the host's container tooling.",
            "Check registry rate limits/credentials, network access from the compute "
            "environment and the container runtime version (or mirror the image to a private "
            "registry), then retry.",
            infra,
        )
    image = first_match(_PULL_IMAGE, view)
    if image is not None:
        return make(
            "container.pull_failed.image",
            _B,
            "container_image_unavailable",
            "The container image the pipeline asks for does not exist or is not accessible.",
            "Fix the image name/tag in the workflow, or push the image / grant pull access to "
            "its repository, then rerun.",
            image,
        )
    return make(
        "container.pull_failed.unknown",
        _A,
        "container_pull_failed",
        "A container image could not be pulled and the evidence does not say why.",
        "Check the image name/tag exists (bioinformatician) and the registry is reachable "
        "from the compute environment (platform).",
        head,
    )


PULL_FAILED = FunctionRule("container.pull_failed", _pull_failed)

RESOURCE_INITIALIZATION = PatternRule(
    id="aws.resource_initialization",
    doc="ECS 'ResourceInitializationError' (unable to pull secrets or registry auth, ENI/volume "
    "setup): the task's networking, execution role or secrets are misconfigured.",
    owner=_P,
    category="task_init_failed",
    summary="The cloud could not prepare the task's environment (network, execution role or "
    "secrets).",
    action="Check the compute environment's subnets/NAT or VPC endpoints, security-group egress "
    "and the task execution role, then retry.",
    pattern=rx(r"ResourceInitializationError"),
)

_START = rx(
    r"CannotStartContainerError",
    r"CannotCreateContainerError",
    r"OCI runtime create failed",
    r"exec format error",
    r"executable file not found in \$PATH",
)
_START_INFRA = rx(
    r"failed to initialize logging driver",
    r"RequestError: send request failed",
    r"i/o timeout",
    r"dial tcp",
)


def _start_failed(view: EvidenceView) -> Classification | None:
    """A container was pulled but could not start (CannotStartContainerError, OCI runtime).

    Usually the image: a missing entrypoint, wrong architecture ("exec format error"). When
    the failure is the host's logging driver or network (CloudWatch unreachable), it is the
    platform's.
    """
    head = first_match(_START, view)
    if head is None:
        return None
    infra = first_match(_START_INFRA, view)
    if infra is not None:
        return make(
            "container.start_failed.infrastructure",
            _P,
            "container_runtime_error",
            "The container could not start because the host could not reach a cloud service "
            "(logging or network).",
            "Check the compute environment's network access (NAT/VPC endpoints for CloudWatch "
            "Logs) and retry.",
            infra,
        )
    return make(
        "container.start_failed.image",
        _B,
        "container_start_failed",
        "The task's container could not be started from its image (entrypoint, command or "
        "architecture).",
        "Check the image's entrypoint and architecture (x86_64) and the command it runs; fix the "
        "image in the workflow, then rerun.",
        head,
    )


START_FAILED = FunctionRule("container.start_failed", _start_failed)

CONTAINER_RUNTIME = PatternRule(
    id="aws.container_runtime_error",
    doc="ECS agent / Docker daemon trouble on the host: CannotInspectContainerError, "
    "CgroupError, DockerTimeoutError, CannotStopContainerError. Not the workflow's fault.",
    owner=_P,
    category="container_runtime_error",
    summary="The container runtime on the host failed (ECS agent or Docker daemon).",
    action="Retry; if it recurs, update the compute environment's AMI / ECS agent.",
    pattern=rx(
        r"CannotInspectContainerError",
        r"\bCgroupError\b",
        r"DockerTimeoutError",
        r"CannotStopContainerError",
        r"ContainerRuntimeTimeoutError",
    ),
)

THROTTLED = PatternRule(
    id="cloud.throttled",
    doc="A cloud API refused requests for rate: TooManyRequestsException, ThrottlingException, "
    "'Rate exceeded', RequestLimitExceeded, S3 SlowDown.",
    owner=_P,
    category="api_throttled",
    summary="A cloud API throttled the run's requests (rate limit).",
    action="Retry later; if it recurs, lower the submit/poll rate or ask for a quota increase.",
    pattern=rx(
        r"TooManyRequestsException",
        r"ThrottlingException",
        r"Rate exceeded",
        r"RequestLimitExceeded",
        r"Error Code: SlowDown",
        r"Please reduce your request rate",
    ),
)

CAPACITY = PatternRule(
    id="cloud.capacity_unavailable",
    doc="The cloud had no capacity or quota for the requested machines: "
    "InsufficientInstanceCapacity, vCPU limit, Kubernetes 'nodes are available: ... "
    "Insufficient'.",
    owner=_P,
    category="capacity_unavailable",
    summary="There was not enough cloud capacity or quota to run the task.",
    action="Retry later, or raise the vCPU/instance quota or widen the allowed instance types.",
    pattern=rx(
        r"InsufficientInstanceCapacity",
        r"insufficient capacity",
        r"VcpuLimitExceeded",
        r"You have requested more vCPU capacity",
        r"nodes are available: [^\n]{0,200}Insufficient",
    ),
)

ACCESS_DENIED = PatternRule(
    id="cloud.access_denied",
    doc="Cloud permissions/credentials: S3 'Access Denied' (403), AccessDeniedException, 'is "
    "not authorized to perform', missing or expired credentials. IAM and bucket policies are "
    "the platform's; the ECR pull case is matched earlier as an image problem.",
    owner=_P,
    category="permission_denied",
    summary="The run was denied access to a cloud resource (IAM role, bucket policy or "
    "credentials).",
    action="Grant the run's role/credentials access to the resource named in the error (or "
    "renew the credentials), then retry.",
    pattern=rx(
        r"Access Denied \(Service",
        r"Error Code: AccessDenied",
        r"AccessDeniedException",
        r"Status Code: 403\b",
        r"is not authorized to perform",
        r"Unable to locate credentials",
        r"NoCredentialsError",
        r"ExpiredToken",
        r"The security token included in the request is (?:invalid|expired)",
    ),
)

SERVICE_ERROR = PatternRule(
    id="cloud.service_error",
    doc="A cloud service failed on its side: HTTP 5xx, InternalServerException, "
    "ServiceUnavailable. Transient: retry.",
    owner=_P,
    category="service_error",
    summary="A cloud service returned an internal error.",
    action="Nothing to fix in the data or workflow: retry.",
    pattern=rx(
        r"InternalServerException",
        r"InternalFailure",
        r"ServiceUnavailable(?:Exception)?",
        r"Status Code: 5\d\d\b",
        r"Error 500\b",
    ),
)

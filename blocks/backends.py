"""Prefect blocks holding what remote backends need but a services file must not:
the HealthOmics run role and output location, and the Seqera access token (a Secret)."""

from __future__ import annotations

from prefect.blocks.core import Block
from pydantic import Field, SecretStr

DEFAULT_HEALTHOMICS_BLOCK = "omicsflow-healthomics"
DEFAULT_SEQERA_TOKEN_BLOCK = "omicsflow-seqera-token"


class HealthOmicsAccount(Block):
    """Run role and output location of the AWS account runs are started in."""

    _block_type_name = "omicsflow HealthOmics account"
    _block_type_slug = "omicsflow-healthomics-account"

    role_arn: str = Field(description="IAM role HealthOmics assumes for runs")
    output_uri: str = Field(description="s3:// prefix for run outputs")
    region: str | None = Field(default=None, description="Overrides the service's region")
    endpoint_url: str | None = Field(default=None, description="Only for tests and VPC endpoints")


class SeqeraToken(Block):
    """A Seqera Platform personal access token. Shown only as 'has token: yes/no'."""

    _block_type_name = "omicsflow Seqera token"
    _block_type_slug = "omicsflow-seqera-token"

    token: SecretStr
    api_url: str | None = Field(default=None, description="Overrides the service's api_url")

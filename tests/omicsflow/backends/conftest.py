"""Fixtures for the remote backends: wire-level fakes on 127.0.0.1 (ephemeral ports)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.omicsflow.backends.helpers import REGION
from tests.support.fakes.healthomics_fake import HealthOmicsFake
from tests.support.fakes.seqera_fake import SeqeraFake


@pytest.fixture
def healthomics_fake() -> Iterator[HealthOmicsFake]:
    with HealthOmicsFake(region=REGION) as fake:
        yield fake
    assert fake.auth_failures == [], "a request reached the fake without SigV4 signing"


@pytest.fixture
def seqera_fake() -> Iterator[SeqeraFake]:
    with SeqeraFake() as fake:
        yield fake
    assert fake.spec_errors == [], "traffic did not match seqera-api.yml"

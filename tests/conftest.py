"""Shared test configuration. Integration fixtures live next to the tests that use them."""

from collections.abc import Iterator

import pytest

from tests.support.prefect_server import PrefectServer


@pytest.fixture(scope="session")
def prefect_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrefectServer]:
    server = PrefectServer(tmp_path_factory.mktemp("prefect-home"))
    server.start()
    yield server
    server.stop()

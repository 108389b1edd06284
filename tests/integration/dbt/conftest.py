"""Fixtures for the example dbt project: fake credentials and a moto S3 server.

dbt runs in a subprocess, so it cannot share moto's in-process mock: it talks to a
ThreadedMotoServer over HTTP, as the embedded runtime does.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto.server import ThreadedMotoServer
from tests.integration.dbt.helpers import FAKE_CREDENTIALS, REGION


@pytest.fixture(scope="session", autouse=True)
def _fake_aws_credentials() -> Iterator[None]:
    with pytest.MonkeyPatch.context() as patch:
        for name, value in FAKE_CREDENTIALS.items():
            patch.setenv(name, value)
        yield


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    """host:port of a moto server (DuckDB's s3_endpoint takes no scheme)."""
    port = _free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield f"127.0.0.1:{port}"
    finally:
        server.stop()


@pytest.fixture(scope="session")
def s3(moto_endpoint: str) -> Any:
    return boto3.client("s3", endpoint_url=f"http://{moto_endpoint}", region_name=REGION)

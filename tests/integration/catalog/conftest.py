"""Fake credentials and region for the catalog's moto tests (never a real account)."""

import os

import pytest
from moto import mock_aws
from tests.integration.catalog.support import Env, make_env

os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")


@pytest.fixture
def env() -> Env:
    with mock_aws():
        yield make_env()

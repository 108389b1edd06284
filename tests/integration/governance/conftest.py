"""moto-backed fixtures for the governance engine (fake credentials, one region)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

ACCOUNT = "123456789012"  # moto's default account


@pytest.fixture(autouse=True)
def aws_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_SESSION_TOKEN", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-1")
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)


@pytest.fixture
def lakeformation() -> Iterator[Any]:
    with mock_aws():
        yield boto3.client("lakeformation", region_name="eu-west-1")


def held(lf: Any) -> dict[tuple[str, str], set[str]]:
    """Every (principal, resource JSON) -> permissions, as moto reports them."""
    import json

    out: dict[tuple[str, str], set[str]] = {}
    for p in lf.list_permissions()["PrincipalResourcePermissions"]:
        key = (
            p["Principal"]["DataLakePrincipalIdentifier"],
            json.dumps(p["Resource"], sort_keys=True),
        )
        out.setdefault(key, set()).update(p["Permissions"])
    return {k: v for k, v in out.items() if v}

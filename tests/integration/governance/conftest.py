"""moto-backed fixtures for the governance engine (fake credentials, one region)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

ACCOUNT = "123456789012"  # moto's default account
CARDS_COLUMNS = ["card_id", "customer_id", "card_number", "country", "partition_dt"]


@pytest.fixture(autouse=True)
def aws_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_SESSION_TOKEN", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-1")
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)


# what the engine's tests grant on: Lake Formation refuses a grant on what Glue lacks
GRANTED_ON = {
    "sales": ["orders", *(f"t{i}" for i in range(45))],
    "bdb4834_formatted": ["audit_control"],
    "bdb4834_formatted_stg": [],
}


@pytest.fixture
def lakeformation() -> Iterator[Any]:
    with mock_aws():
        glue = boto3.client("glue", region_name="eu-west-1")
        for database, tables in GRANTED_ON.items():
            glue.create_database(DatabaseInput={"Name": database})
            for table in tables:
                glue.create_table(DatabaseName=database, TableInput={"Name": table})
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


@pytest.fixture
def aws() -> Iterator[dict[str, Any]]:
    """moto with the blog's lake: a formatted database of three tables, a staging one."""
    from lakegov.governance.access import AccessPolicy
    from lakegov.local import moto_lakeformation

    moto_lakeformation.install()
    with mock_aws():
        glue = boto3.client("glue", region_name="eu-west-1")
        lf = boto3.client("lakeformation", region_name="eu-west-1")
        for db, tables in {
            "lakegov_dev_formatted": {
                "mwaa_blog_cards": CARDS_COLUMNS,
                "mwaa_blog_customers": ["customer_id", "name", "email", "partition_dt"],
                "hr_salaries": ["employee_id", "salary", "partition_dt"],
            },
            "lakegov_dev_formatted_stg": {"mwaa_blog_cards": ["raw", "partition_dt"]},
        }.items():
            glue.create_database(DatabaseInput={"Name": db})
            for table, columns in tables.items():
                glue.create_table(
                    DatabaseName=db,
                    TableInput={
                        "Name": table,
                        "StorageDescriptor": {
                            "Columns": [{"Name": c, "Type": "string"} for c in columns[:-1]]
                        },
                        "PartitionKeys": [{"Name": columns[-1], "Type": "string"}],
                    },
                )
        yield {"glue": glue, "lf": lf, "policy": AccessPolicy(lf, glue, catalog_id=ACCOUNT)}

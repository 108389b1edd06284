"""Governance over time, on the embedded runtime: drift both ways, and deleting a document.

The stack's own Lake Formation grants (template.yaml's PrincipalPermissions for the
crawler, dbt and catalog roles) are provisioned as on AWS; the drift function runs with
the template's settings (which databases and roles are the stack's), first reporting,
then with reconciling switched on.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
from tests.conftest import ROOT
from tests.e2e.test_mesh import _delete
from tests.e2e.test_query_governance import run, upload

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("runtime")]

ACCOUNT = "123456789012"
ANALYST = f"arn:aws:iam::{ACCOUNT}:role/analyst"
AUDITOR = f"arn:aws:iam::{ACCOUNT}:role/auditor"
BY_HAND = f"arn:aws:iam::{ACCOUNT}:role/made-in-the-console"
DB = "lakegov_dev_formatted_stg"
CUSTOMERS = {"Table": {"CatalogId": ACCOUNT, "DatabaseName": DB, "Name": "mwaa_blog_customers"}}


def _grant(role: str, permissions: list[str]) -> dict[str, Any]:
    return {
        "role_arn": role,
        "access_type": "GRANT",
        "named_data_catalog": [{"Database": DB, "Table": "mwaa_blog_customers"}],
        "table_permissions": permissions,
    }


@pytest.fixture(scope="module")
def lake(service: Any) -> Any:
    service.client("s3").put_object(
        Bucket=service.outputs["RawBucketName"],
        Key="mwaa/blog/partition_dt=2026-11-20/customers.json",
        Body=(ROOT / "examples/data/customers.json").read_bytes(),
    )
    service.wait_for_event("DatasetRefreshed", lambda d: d["table"] == "mwaa_blog_customers")
    return service


def _grants(lake: Any) -> dict[str, set[str]]:
    """principal -> permissions held on the customers table (named)."""
    out: dict[str, set[str]] = {}
    listed = lake.client("lakeformation").list_permissions(CatalogId=ACCOUNT)
    for p in listed["PrincipalResourcePermissions"]:
        if p["Resource"] == CUSTOMERS:
            out.setdefault(p["Principal"]["DataLakePrincipalIdentifier"], set()).update(
                p["Permissions"]
            )
    return out


def _stack_grants(lake: Any) -> list[tuple[str, str]]:
    listed = lake.client("lakeformation").list_permissions(CatalogId=ACCOUNT)
    stack_roles = lake.function("DriftFunction").environment["STACK_PRINCIPALS"].split(",")
    return sorted(
        (p["Principal"]["DataLakePrincipalIdentifier"], str(sorted(p["Permissions"])))
        for p in listed["PrincipalResourcePermissions"]
        if p["Principal"]["DataLakePrincipalIdentifier"] in stack_roles
    )


def _drift(lake: Any, *, reconcile: bool) -> dict[str, Any]:
    function = lake.function("DriftFunction")
    if reconcile:  # the DriftReconcile parameter, switched on for this run
        function = dataclasses.replace(
            function, environment={**function.environment, "DRIFT_RECONCILE": "true"}
        )
    invocation = lake.invoke(function, {"source": "aws.events", "detail": {}})
    assert invocation.ok, invocation.error
    return dict(invocation.result)


def test_drift_both_ways_then_a_deleted_document_takes_back_only_its_grants(lake: Any) -> None:
    # Given two documents in force, both granting the auditor, one granting the analyst
    upload(
        lake, "governance/analysts.json", [_grant(ANALYST, ["SELECT"]), _grant(AUDITOR, ["SELECT"])]
    )
    upload(lake, "governance/auditors.json", [_grant(AUDITOR, ["SELECT", "DESCRIBE"])])
    stack_before = _stack_grants(lake)
    assert stack_before, "the stack's own grants are provisioned"
    # and a grant made by hand in the console on a governed table
    lake.client("lakeformation").grant_permissions(
        Principal={"DataLakePrincipalIdentifier": BY_HAND},
        Resource=CUSTOMERS,
        Permissions=["SELECT"],
    )

    # When the drift check runs (reconciling off, the template's default)
    outcome = _drift(lake, reconcile=False)
    # Then the hand-made grant is reported, and nothing else
    assert outcome["drifted"] and outcome["differences"] == 1
    event = lake.wait_for_event("DriftDetected", lambda d: not d["reconciled"])
    (difference,) = event["detail"]["differences"]
    assert difference["kind"] == "unrequested_permission"
    assert difference["change"]["principal"] == BY_HAND
    assert BY_HAND in _grants(lake)

    # When reconciling is switched on
    _drift(lake, reconcile=True)
    lake.wait_for_event("DriftDetected", lambda d: d["reconciled"])
    # Then the hand-made grant is revoked; the documents' and the stack's grants stay
    grants = _grants(lake)
    assert BY_HAND not in grants
    assert grants[ANALYST] == {"SELECT"} and grants[AUDITOR] == {"SELECT", "DESCRIBE"}
    assert _stack_grants(lake) == stack_before
    assert _drift(lake, reconcile=False)["drifted"] is False

    # When analysts.json is deleted
    removed = _delete(lake, "governance/analysts.json")
    assert removed["status"] == "REMOVED" and removed["summary"]["revokes"] == 1
    # Then exactly its own grant goes: the analyst's; the auditor's (auditors.json's too) stays
    grants = _grants(lake)
    assert ANALYST not in grants and grants[AUDITOR] == {"SELECT", "DESCRIBE"}
    assert run(lake, ANALYST, "SELECT count(*) FROM mwaa_blog_customers")["state"] == "FAILED"
    assert run(lake, AUDITOR, "SELECT count(*) FROM mwaa_blog_customers")["rows"] == [["32"]]
    assert _stack_grants(lake) == stack_before
    # and the drift check agrees: nothing differs
    assert _drift(lake, reconcile=False)["drifted"] is False

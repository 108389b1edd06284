"""The consumer side of sharing, on the embedded runtime, across three accounts.

The service stack (central bus, producer) shares a table with a domain through a
subscription's read access. The domains are the real templates/domain.yaml in their own
account ids; their share function runs on the runtime in their account: it accepts the
RAM invitation, links the shared table in the domain's catalog, grants the role the
subscription names and reports back (AccessLinked, audited centrally). The domain's role
then queries through local Athena; the other domain cannot.
"""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
from tests.conftest import ROOT
from tests.e2e.test_query_governance import run

from lakegov.audit import AuditStore
from lakegov.local.domains import deploy_domain
from lakegov.local.runtime import LocalRuntime

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("runtime")]

ALPHA, BETA, GAMMA = "555500000001", "555500000002", "555500000003"
ALPHA_ANALYST = f"arn:aws:iam::{ALPHA}:role/analyst"
BETA_ANALYST = f"arn:aws:iam::{BETA}:role/analyst"
DB = "lakegov_dev_formatted_stg"
TABLE = "mwaa_blog_customers"
LINKED = f"shared_{DB}.{TABLE}"


@pytest.fixture(scope="module")
def runtime():
    # the domains report back on the central bus: its policy lets their accounts put events
    with LocalRuntime(
        ROOT / "template.yaml",
        stack_name="sharing",
        parameters={"ProducerAccountIds": f"{ALPHA},{BETA}"},
    ) as rt:
        key = "mwaa/blog/partition_dt=2026-11-20/customers.json"
        rt.client("s3").put_object(
            Bucket=rt.outputs["RawBucketName"],
            Key=key,
            Body=(ROOT / "examples/data/customers.json").read_bytes(),
        )
        rt.wait_for_event("DatasetRefreshed", lambda d: d["table"] == TABLE)
        yield rt


def _upload(runtime: LocalRuntime, key: str, document: Any) -> None:
    runtime.client("s3").put_object(
        Bucket=runtime.outputs["ConfigBucketName"], Key=key, Body=json.dumps(document).encode()
    )


def _central(runtime: LocalRuntime) -> str:
    return runtime.outputs["CentralEventBusArn"].rsplit("/", 1)[1]


def _report(runtime: LocalRuntime, account: str, action: str) -> dict[str, Any]:
    event = runtime.wait_for_event(
        "AccessLinked",
        lambda d: d["consumer_account"] == account and d["action"] == action,
        bus=_central(runtime),
        timeout=60,
    )
    return dict(event["detail"])


def _audited(runtime: LocalRuntime, account: str, key: str, timeout: float = 20) -> list[dict]:
    audit = AuditStore(runtime.outputs["AuditTableName"], runtime.client("dynamodb"))
    deadline = time.monotonic() + timeout
    while True:
        items = audit.versions("access", f"{account}/{key}")
        if items or time.monotonic() > deadline:
            return items
        time.sleep(0.2)


def test_a_subscribed_domain_links_the_share_and_queries_it_the_other_cannot(runtime):
    alpha = deploy_domain(runtime, "alpha", ALPHA)
    beta = deploy_domain(runtime, "beta", BETA)
    # Given alpha subscribes with read access for its analyst role, beta without
    read_access = {
        "tables": [{"Database": DB, "Table": TABLE}],
        "permissions": ["SELECT", "DESCRIBE"],
        "grant_option": True,
        "consumer_roles": [ALPHA_ANALYST],
    }
    alpha_key = "subscriptions/alpha.json"
    _upload(runtime, alpha_key, alpha.subscription(["mwaa/blog/*"], read_access=read_access))
    _upload(runtime, "subscriptions/beta.json", beta.subscription(["mwaa/blog/*"]))
    applied = runtime.wait_for_event(
        "GovernanceApplied", lambda d: d["document"]["key"] == alpha_key, timeout=30
    )
    assert applied["detail"]["failed"] == 0

    # Then alpha's share function accepted the RAM invitation and linked the table
    report = _report(runtime, ALPHA, "linked")
    assert report["status"] == "DONE", report["problems"]
    assert len(report["invitations_accepted"]) == 1
    (link,) = report["links"]
    assert (link["database"], link["table"], link["change"]) == (f"shared_{DB}", TABLE, "created")
    assert report["granted_roles"] == [
        {
            "role": ALPHA_ANALYST,
            "database": f"shared_{DB}",
            "table": TABLE,
            "permissions": ["DESCRIBE", "SELECT"],
        }
    ]
    (invitation,) = alpha.client("ram").get_resource_share_invitations()["resourceShareInvitations"]
    assert invitation["status"] == "ACCEPTED" and invitation["senderAccountId"] == runtime.account
    assert beta.client("ram").get_resource_share_invitations()["resourceShareInvitations"] == []
    linked = alpha.client("glue").get_table(DatabaseName=f"shared_{DB}", Name=TABLE)["Table"]
    assert linked["TargetTable"] == {
        "CatalogId": runtime.account,
        "DatabaseName": DB,
        "Name": TABLE,
    }
    # and the central account audited the report
    (audited,) = _audited(runtime, ALPHA, alpha_key)
    assert audited["status"] == "LINKED_DONE"

    # When alpha's analyst queries through the link, Then it reads the producer's rows
    counted = run(runtime, ALPHA_ANALYST, f"SELECT count(*) AS n FROM {LINKED}")
    assert counted["state"] == "SUCCEEDED", counted["reason"]
    assert counted["rows"] == [["32"]]
    # while beta has no such table, and a link beta makes by hand reads nothing: not shared
    missing = run(runtime, BETA_ANALYST, f"SELECT count(*) FROM {LINKED}")
    assert missing["state"] == "FAILED" and "SCHEMA_NOT_FOUND" in missing["reason"]
    beta_glue = beta.client("glue")
    beta_glue.create_database(
        DatabaseInput={
            "Name": f"shared_{DB}",
            "TargetDatabase": {"CatalogId": runtime.account, "DatabaseName": DB},
        }
    )
    beta.client("lakeformation").grant_permissions(
        Principal={"DataLakePrincipalIdentifier": BETA_ANALYST},
        Resource={"Table": {"CatalogId": runtime.account, "DatabaseName": DB, "Name": TABLE}},
        Permissions=["SELECT"],
    )
    refused = run(runtime, BETA_ANALYST, f"SELECT count(*) FROM {LINKED}")
    assert refused["state"] == "FAILED"
    assert "AccessDeniedException" in refused["reason"] and f"account {BETA}" in refused["reason"]
    # and a role of alpha the subscription did not name reads nothing either
    other = run(runtime, f"arn:aws:iam::{ALPHA}:role/intern", f"SELECT count(*) FROM {LINKED}")
    assert other["state"] == "FAILED" and "AccessDeniedException" in other["reason"]

    # When the subscription is deleted, Then the revoke reaches alpha: the link goes
    from tests.e2e.test_mesh import _delete

    removed = _delete(runtime, alpha_key)
    assert removed["summary"]["read_access"]["status"] == "REVOKED"
    unlinked = _report(runtime, ALPHA, "unlinked")
    assert unlinked["status"] == "DONE", unlinked["problems"]
    assert [link["change"] for link in unlinked["links"]] == ["removed"]
    gone = run(runtime, ALPHA_ANALYST, f"SELECT count(*) FROM {LINKED}")
    assert gone["state"] == "FAILED" and "TABLE_NOT_FOUND" in gone["reason"]


def test_a_share_is_read_through_a_link_only_once_its_invitation_is_accepted(runtime):
    """On AWS the shared table is invisible to the consumer account until it accepts the
    RAM invitation: the local Athena refuses the read until then too."""
    gamma = deploy_domain(runtime, "gamma", GAMMA)
    gamma_analyst = f"arn:aws:iam::{GAMMA}:role/analyst"
    shared = {"Table": {"CatalogId": runtime.account, "DatabaseName": DB, "Name": TABLE}}
    # Given a grant to gamma's account made directly (no AccessGranted: nothing accepts it)
    runtime.client("lakeformation").grant_permissions(
        Principal={"DataLakePrincipalIdentifier": GAMMA},
        Resource=shared,
        Permissions=["SELECT", "DESCRIBE"],
        PermissionsWithGrantOption=["SELECT", "DESCRIBE"],
    )
    # and gamma's administrator linking it and granting its analyst by hand
    gamma.client("glue").create_database(
        DatabaseInput={
            "Name": f"shared_{DB}",
            "TargetDatabase": {"CatalogId": runtime.account, "DatabaseName": DB},
        }
    )
    gamma.client("lakeformation").grant_permissions(
        Principal={"DataLakePrincipalIdentifier": gamma_analyst},
        Resource=shared,
        Permissions=["SELECT"],
    )
    (invitation,) = gamma.client("ram").get_resource_share_invitations()["resourceShareInvitations"]
    assert invitation["status"] == "PENDING"
    # When the analyst queries before the invitation is accepted, Then it is refused
    refused = run(runtime, gamma_analyst, f"SELECT count(*) AS n FROM {LINKED}")
    assert refused["state"] == "FAILED" and "not accepted the RAM share" in refused["reason"]
    # When gamma accepts, Then the same query reads the producer's rows
    gamma.client("ram").accept_resource_share_invitation(
        resourceShareInvitationArn=invitation["resourceShareInvitationArn"]
    )
    counted = run(runtime, gamma_analyst, f"SELECT count(*) AS n FROM {LINKED}")
    assert counted["state"] == "SUCCEEDED", counted["reason"]
    assert counted["rows"] == [["32"]]

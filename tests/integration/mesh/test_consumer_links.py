"""The consumer domain's share logic on moto: RAM, resource links, grants, idempotency."""

from __future__ import annotations

from typing import Any

import boto3
import pytest
from moto import mock_aws

from lakegov.errors import PermanentError
from lakegov.events import validate_detail
from lakegov.local import moto_lakeformation, moto_ram
from lakegov.mesh.consumer import AccessChange, link_shared_access, unlink_shared_access

PRODUCER, CONSUMER = "123456789012", "444400000009"
ROLE = f"arn:aws:iam::{CONSUMER}:role/analyst"
ORDERS = {"Table": {"CatalogId": PRODUCER, "DatabaseName": "sales", "Name": "orders"}}


@pytest.fixture
def accounts():
    moto_lakeformation.install()
    moto_ram.install()
    with mock_aws():
        producer = {s: boto3.client(s, region_name="us-east-1") for s in ("glue", "lakeformation")}
        producer["glue"].create_database(DatabaseInput={"Name": "sales"})
        producer["glue"].create_table(DatabaseName="sales", TableInput={"Name": "orders"})
        creds = boto3.client("sts", region_name="us-east-1").assume_role(
            RoleArn=f"arn:aws:iam::{CONSUMER}:role/admin", RoleSessionName="consumer-admin"
        )["Credentials"]
        consumer = {
            s: boto3.client(
                s,
                region_name="us-east-1",
                aws_access_key_id=creds["AccessKeyId"],
                aws_secret_access_key=creds["SecretAccessKey"],
                aws_session_token=creds["SessionToken"],
            )
            for s in ("glue", "lakeformation", "ram")
        }
        yield producer, consumer


def _event(detail_type: str, grants: list[dict[str, Any]], roles: list[str]) -> dict[str, Any]:
    detail: dict[str, Any] = {
        "consumer_account": CONSUMER,
        "producer_account": PRODUCER,
        "document": {"bucket": "cfg", "key": "subscriptions/d.json"},
        "grants": grants,
    }
    if detail_type == "AccessGranted":
        detail.update(consumer_roles=roles, granted_at="2026-11-30T10:00:00.000Z")
    else:
        detail["revoked_at"] = "2026-11-30T11:00:00.000Z"
    validate_detail(detail_type, detail)
    return {"id": "e1", "source": "lakegov", "detail-type": detail_type, "detail": detail}


def _link(consumer: dict[str, Any], event: dict[str, Any]) -> dict[str, Any]:
    report = link_shared_access(
        AccessChange.from_event(event),
        ram=consumer["ram"],
        glue=consumer["glue"],
        lakeformation=consumer["lakeformation"],
        account_id=CONSUMER,
        domain="d",
    )
    validate_detail("AccessLinked", report)
    return report


def _held(consumer: dict[str, Any], principal: str) -> list[dict[str, Any]]:
    listed = consumer["lakeformation"].list_permissions(CatalogId=CONSUMER)
    return [
        p
        for p in listed["PrincipalResourcePermissions"]
        if p["Principal"]["DataLakePrincipalIdentifier"] == principal
    ]


def test_a_share_is_accepted_linked_and_granted_once_however_often_it_arrives(accounts):
    producer, consumer = accounts
    # Given the producer grants the consumer account SELECT with the grant option
    producer["lakeformation"].grant_permissions(
        Principal={"DataLakePrincipalIdentifier": CONSUMER},
        Resource=ORDERS,
        Permissions=["SELECT", "DESCRIBE"],
        PermissionsWithGrantOption=["SELECT"],
    )
    (invitation,) = consumer["ram"].get_resource_share_invitations()["resourceShareInvitations"]
    assert invitation["status"] == "PENDING" and invitation["senderAccountId"] == PRODUCER
    grant = {
        "database": "sales",
        "table": "orders",
        "permissions": ["DESCRIBE", "SELECT"],
        "grantable": ["SELECT"],
    }
    event = _event("AccessGranted", [grant], [ROLE])

    # When the access event arrives
    first = _link(consumer, event)
    # Then the invitation is accepted, the table linked, the role granted
    assert first["status"] == "DONE" and first["invitations_accepted"] == [
        invitation["resourceShareInvitationArn"]
    ]
    assert [(link["database"], link["table"], link["change"]) for link in first["links"]] == [
        ("shared_sales", "orders", "created")
    ]
    link = consumer["glue"].get_table(DatabaseName="shared_sales", Name="orders")["Table"]
    assert link["TargetTable"] == {"CatalogId": PRODUCER, "DatabaseName": "sales", "Name": "orders"}
    held = {str(sorted(p["Permissions"])): p["Resource"] for p in _held(consumer, ROLE)}
    assert held == {
        "['DESCRIBE']": {
            "Table": {"CatalogId": CONSUMER, "DatabaseName": "shared_sales", "Name": "orders"}
        },
        "['SELECT']": ORDERS,
    }

    # When it arrives again (a duplicate delivery)
    again = _link(consumer, event)
    # Then nothing more happens, and the report says so
    assert again["status"] == "DONE" and again["invitations_accepted"] == []
    assert [link["change"] for link in again["links"]] == ["unchanged"]
    assert len(_held(consumer, ROLE)) == 2

    # When the producer revokes SELECT, Then the link and the role's grants go, once
    revoked = _event(
        "AccessRevoked", [{"database": "sales", "table": "orders", "permissions": ["SELECT"]}], []
    )
    gone = unlink_shared_access(
        AccessChange.from_event(revoked),
        glue=consumer["glue"],
        lakeformation=consumer["lakeformation"],
        account_id=CONSUMER,
    )
    assert [link["change"] for link in gone["links"]] == ["removed"]
    assert _held(consumer, ROLE) == []
    with pytest.raises(consumer["glue"].exceptions.EntityNotFoundException):
        consumer["glue"].get_table(DatabaseName="shared_sales", Name="orders")
    twice = unlink_shared_access(
        AccessChange.from_event(revoked),
        glue=consumer["glue"],
        lakeformation=consumer["lakeformation"],
        account_id=CONSUMER,
    )
    assert [link["change"] for link in twice["links"]] == ["absent"] and twice["status"] == "DONE"


def test_a_whole_database_is_linked_as_a_database_and_roles_need_the_grant_option(accounts):
    _, consumer = accounts
    grant = {"database": "sales", "table": None, "permissions": ["SELECT"], "grantable": []}
    report = _link(consumer, _event("AccessGranted", [grant], [ROLE]))
    # the database link is made; the role is not granted (nothing was grantable), and said so
    assert [(link["database"], link["change"]) for link in report["links"]] == [
        ("shared_sales", "created")
    ]
    database = consumer["glue"].get_database(Name="shared_sales")["Database"]
    assert database["TargetDatabase"] == {"CatalogId": PRODUCER, "DatabaseName": "sales"}
    assert report["status"] == "PARTIAL" and "grant option" in report["problems"][0]
    assert _held(consumer, ROLE) == []


def test_an_event_for_another_account_is_refused(accounts):
    _, consumer = accounts
    event = _event("AccessGranted", [], [])
    change = AccessChange.from_event(event)
    with pytest.raises(PermanentError, match="not to this one"):
        link_shared_access(
            change,
            ram=consumer["ram"],
            glue=consumer["glue"],
            lakeformation=consumer["lakeformation"],
            account_id="999999999999",
        )


def test_accepting_an_invitation_of_another_account_or_twice_fails_as_on_aws(accounts):
    producer, consumer = accounts
    producer["lakeformation"].grant_permissions(
        Principal={"DataLakePrincipalIdentifier": CONSUMER}, Resource=ORDERS, Permissions=["SELECT"]
    )
    (invitation,) = consumer["ram"].get_resource_share_invitations()["resourceShareInvitations"]
    arn = invitation["resourceShareInvitationArn"]
    with pytest.raises(consumer["ram"].exceptions.ClientError, match="OperationNotPermitted"):
        boto3.client("ram", region_name="us-east-1").accept_resource_share_invitation(
            resourceShareInvitationArn=arn
        )
    consumer["ram"].accept_resource_share_invitation(resourceShareInvitationArn=arn)
    with pytest.raises(consumer["ram"].exceptions.ClientError, match="AlreadyAccepted"):
        consumer["ram"].accept_resource_share_invitation(resourceShareInvitationArn=arn)
    # a second grant to the same account reuses the accepted share: no new invitation
    producer["lakeformation"].grant_permissions(
        Principal={"DataLakePrincipalIdentifier": CONSUMER},
        Resource=ORDERS,
        Permissions=["DESCRIBE"],
    )
    listed = consumer["ram"].get_resource_share_invitations()["resourceShareInvitations"]
    assert [i["status"] for i in listed] == ["ACCEPTED"]


def _refuse(operation: str):
    def refuse(**_: Any) -> None:
        raise AssertionError(f"{operation} on a resource link updates its target on AWS")

    return refuse


def test_a_link_to_another_target_is_made_again_never_updated(accounts):
    """On AWS, UpdateDatabase / UpdateTable on a resource link follow it and change the
    producer's database or table; a link must be deleted and created to re-point it."""
    producer, consumer = accounts
    producer["glue"].create_database(DatabaseInput={"Name": "old"})
    producer["glue"].create_table(DatabaseName="old", TableInput={"Name": "orders"})
    consumer["glue"].create_database(
        DatabaseInput={
            "Name": "shared_sales",
            "TargetDatabase": {"CatalogId": PRODUCER, "DatabaseName": "old"},
        }
    )
    consumer["glue"].create_database(DatabaseInput={"Name": "shared_crm"})
    consumer["glue"].create_table(
        DatabaseName="shared_crm",
        TableInput={
            "Name": "orders",
            "TargetTable": {"CatalogId": PRODUCER, "DatabaseName": "old", "Name": "orders"},
        },
    )
    producer["glue"].create_database(DatabaseInput={"Name": "crm"})
    producer["glue"].create_table(DatabaseName="crm", TableInput={"Name": "orders"})
    for operation in ("UpdateDatabase", "UpdateTable"):
        consumer["glue"].meta.events.register(f"before-call.glue.{operation}", _refuse(operation))
    grants = [
        {"database": "sales", "table": None, "permissions": ["SELECT"], "grantable": []},
        {"database": "crm", "table": "orders", "permissions": ["SELECT"], "grantable": []},
    ]
    report = _link(consumer, _event("AccessGranted", grants, []))
    assert sorted(link["change"] for link in report["links"]) == ["updated", "updated"]
    database = consumer["glue"].get_database(Name="shared_sales")["Database"]
    assert database["TargetDatabase"] == {"CatalogId": PRODUCER, "DatabaseName": "sales"}
    table = consumer["glue"].get_table(DatabaseName="shared_crm", Name="orders")["Table"]
    assert table["TargetTable"] == {"CatalogId": PRODUCER, "DatabaseName": "crm", "Name": "orders"}


def _calls(client: Any, operation: str) -> list[dict[str, Any]]:
    """The parameters of each ``operation`` call ``client`` makes from now on."""
    seen: list[dict[str, Any]] = []
    client.meta.events.register(
        f"provide-client-params.lakeformation.{operation}", lambda params, **_: seen.append(params)
    )
    return seen


def test_eleven_roles_are_granted_in_batches_of_at_most_twenty_entries(accounts):
    """Two entries a role: eleven roles are 22 entries, over BatchGrantPermissions' 20."""
    _, consumer = accounts
    roles = [f"arn:aws:iam::{CONSUMER}:role/analyst{i}" for i in range(11)]
    grant = {
        "database": "sales",
        "table": "orders",
        "permissions": ["SELECT"],
        "grantable": ["SELECT"],
    }
    batches = _calls(consumer["lakeformation"], "BatchGrantPermissions")
    report = _link(consumer, _event("AccessGranted", [grant], roles))
    assert report["status"] == "DONE", report["problems"]
    assert sorted(g["role"] for g in report["granted_roles"]) == sorted(roles)
    assert [len(b["Entries"]) for b in batches] == [20, 2]
    assert all(len(_held(consumer, role)) == 2 for role in roles)


def test_a_revoke_of_several_tables_lists_the_grants_once_and_revokes_each_once(accounts):
    producer, consumer = accounts
    producer["glue"].create_table(DatabaseName="sales", TableInput={"Name": "customers"})
    grants = [
        {"database": "sales", "table": t, "permissions": ["SELECT"], "grantable": ["SELECT"]}
        for t in ("orders", "customers")
    ]
    _link(consumer, _event("AccessGranted", grants, [ROLE]))
    assert len(_held(consumer, ROLE)) == 4
    listings = _calls(consumer["lakeformation"], "ListPermissions")
    revokes = _calls(consumer["lakeformation"], "BatchRevokePermissions")
    gone = unlink_shared_access(
        AccessChange.from_event(_event("AccessRevoked", grants, [])),
        glue=consumer["glue"],
        lakeformation=consumer["lakeformation"],
        account_id=CONSUMER,
    )
    assert gone["status"] == "DONE", gone["problems"]
    assert [link["change"] for link in gone["links"]] == ["removed", "removed"]
    assert len(listings) == 1 and [len(r["Entries"]) for r in revokes] == [4]
    assert _held(consumer, ROLE) == []

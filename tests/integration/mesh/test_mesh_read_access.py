"""The read-access grant of a subscription through the real governance engine.

Lake Formation is the governance tests' in-memory fake (moto drops grant options); the
central bus, the config bucket and the audit table are moto.
"""

import dataclasses
import json

import pytest
from tests.conftest import ROOT, create_audit_table
from tests.integration.mesh.mesh_helpers import CENTRAL_ACCOUNT, CONFIG_BUCKET, client_in
from tests.unit.governance.fakes import FakeLakeFormation

from lakegov.audit import AuditStore
from lakegov.events import EventPublisher
from lakegov.governance import apply, plan, validate
from lakegov.governance.documents import governance_kind
from lakegov.mesh.grants import grant_state_key
from lakegov.mesh.subscriptions import subscription_kind
from lakegov.metadata.kinds import DocumentRef
from lakegov.metadata.service import process_delete, process_upload

MARKETING = json.loads((ROOT / "examples" / "subscriptions" / "marketing.json").read_text())
KEY = "subscriptions/marketing.json"
DOMAIN_ACCOUNT = "222222222222"
DB = "lakegov_dev_formatted"


def table(name):
    return {"Table": {"CatalogId": CENTRAL_ACCOUNT, "DatabaseName": DB, "Name": name}}


def access(*tables, grant_option=False):
    out = {"tables": [{"Database": DB, "Table": t} for t in tables]}
    if grant_option:
        out["grant_option"] = True
    return out


@pytest.fixture
def world(central):
    ddb = client_in("dynamodb")
    create_audit_table(ddb)
    central.events.create_event_bus(Name="lakegov-service")
    lf = FakeLakeFormation()
    applied = []

    def apply_grant(document, ctx):
        """The governance engine on the fake Lake Formation, recording each document."""
        applied.append(document)
        the_plan = plan(validate(document, source=ctx.document.key), lf, catalog_id=CENTRAL_ACCOUNT)
        result = apply(the_plan, lf, sleep=lambda _: None)
        return {"changes": len(the_plan.changes), "failed": len(result.failed)}

    return {
        "central": central,
        "audit": AuditStore("audit", ddb),
        "publisher": EventPublisher(central.events, ("lakegov-service",)),
        "lf": lf,
        "applied": applied,
        "kind": subscription_kind(
            validate_grant=governance_kind().validate, apply_grant=apply_grant
        ),
    }


def upload(world, document, version, key=KEY):
    central = world["central"]
    central.s3.put_object(Bucket=CONFIG_BUCKET, Key=key, Body=json.dumps(document).encode())
    return process_upload(
        DocumentRef(bucket=CONFIG_BUCKET, key=key, etag=version),
        {world["kind"].prefix: world["kind"]},
        s3=central.s3,
        publisher=world["publisher"],
        audit=world["audit"],
        context=central.ctx(key),
    )


def delete(world, key=KEY):
    central = world["central"]
    central.s3.delete_object(Bucket=CONFIG_BUCKET, Key=key)  # the deletion the event reports
    return process_delete(
        DocumentRef(bucket=CONFIG_BUCKET, key=key, version_id="d1"),
        {world["kind"].prefix: world["kind"]},
        s3=central.s3,
        audit=world["audit"],
        context=central.ctx(key),
    )


def grant_state(world, key=KEY):
    s3 = world["central"].s3
    try:
        body = s3.get_object(Bucket=CONFIG_BUCKET, Key=grant_state_key(key))["Body"].read()
    except s3.exceptions.NoSuchKey:
        return None
    return json.loads(body)["document"]


def audit_status(world, version, key=KEY):
    item = world["audit"].get("metadata", f"s3://{CONFIG_BUCKET}/{key}", version)
    return item["status"]


def test_read_access_refused_by_the_deployment_guardrails_changes_nothing(world):
    # Given a deployment whose guardrails refuse cross-account grants (the offline upload
    # check does not know them)
    central = world["central"]
    strict = json.dumps({"allow_cross_account": False})
    central.settings = dataclasses.replace(central.settings, governance_guardrails=strict)
    # When a subscription asking read access for the domain account is uploaded
    result = upload(world, MARKETING, "v1")
    # Then it is refused before anything changed: no rule, no grant, no grant state
    assert result["status"] == "REJECTED"
    assert "guardrails" in result["errors"][0]["message"]
    assert central.rules() == {}
    assert world["applied"] == [] and world["lf"].grants == {}
    assert grant_state(world) is None


def test_a_failed_grant_is_counted_and_not_remembered(world):
    # Given Lake Formation refusing the grant once
    lf = world["lf"]
    lf.fail_entries.append(("batch_grant_permissions", lambda e: True, "AccessDeniedException", 1))
    # When the subscription is uploaded
    result = upload(world, MARKETING, "v1")
    # Then the failure is counted (the audit says FAILED) and the grant state is not saved
    summary = result["summary"]
    assert summary["failed"] == 1 and summary["read_access"]["status"] == "FAILED"
    assert audit_status(world, "v1") == "FAILED"
    assert grant_state(world) is None
    # When it is uploaded again and succeeds, Then it is applied and remembered
    result = upload(world, MARKETING, "v2")
    assert result["summary"]["failed"] == 0 and audit_status(world, "v2") == "APPLIED"
    assert grant_state(world) == result["summary"]["read_access"]["document"]


def test_a_failed_revoke_keeps_the_previous_grant_state_so_it_is_retried(world):
    lf = world["lf"]
    upload(world, {**MARKETING, "read_access": access("a", "b")}, "v1")
    lf.fail_entries.append(("batch_revoke_permissions", lambda e: True, "AccessDeniedException", 1))
    result = upload(world, {**MARKETING, "read_access": access("a")}, "v2")
    assert result["summary"]["failed"] == 1 and audit_status(world, "v2") == "FAILED"
    assert lf.held(DOMAIN_ACCOUNT, table("b")) == {"SELECT", "DESCRIBE"}
    # the next upload still owes the revoke, and makes it
    result = upload(world, {**MARKETING, "read_access": access("a")}, "v3")
    assert result["summary"]["failed"] == 0
    assert lf.held(DOMAIN_ACCOUNT, table("b")) == set()


def test_dropping_the_grant_option_takes_it_back_and_keeps_the_permissions(world):
    # Given read access on a with the grant option
    lf = world["lf"]
    upload(world, {**MARKETING, "read_access": access("a", grant_option=True)}, "v1")
    assert lf.grants[(DOMAIN_ACCOUNT, json.dumps(table("a"), sort_keys=True))][1] == {
        "SELECT",
        "DESCRIBE",
    }
    # When the grant option is dropped
    result = upload(world, {**MARKETING, "read_access": access("a")}, "v2")
    # Then the domain keeps SELECT and DESCRIBE on a, without the grant option
    assert result["summary"]["failed"] == 0
    key = (DOMAIN_ACCOUNT, json.dumps(table("a"), sort_keys=True))
    assert lf.grants[key] == [{"SELECT", "DESCRIBE"}, set()]
    assert [d[0]["access_type"] for d in world["applied"][1:]] == ["REVOKE", "GRANT"]


def test_a_revoke_spares_what_another_subscription_still_grants(world):
    # Given two subscriptions of the same account both reading table a
    lf = world["lf"]
    other_key = "subscriptions/sales-analytics.json"
    other = {
        **MARKETING,
        "domain": "analytics",
        "event_bus_arn": MARKETING["event_bus_arn"].replace("marketing", "analytics"),
        "read_access": access("a"),
    }
    upload(world, {**MARKETING, "read_access": access("a", "b")}, "v1")
    upload(world, other, "o1", key=other_key)
    # When the marketing subscription is deleted
    result = delete(world)
    # Then b is revoked, a stays (the other subscription grants it), and the result says so
    assert lf.held(DOMAIN_ACCOUNT, table("b")) == set()
    assert lf.held(DOMAIN_ACCOUNT, table("a")) == {"SELECT", "DESCRIBE"}
    warnings = result["summary"]["read_access"]["warnings"]
    assert any("kept SELECT on lakegov_dev_formatted.a" in w and other_key in w for w in warnings)
    assert any("governance/ documents" in w for w in warnings)
    assert grant_state(world) == []

"""Subscription documents through the config-bucket path, and the read-access grant."""

import json

import pytest
from tests.conftest import ROOT, create_audit_table
from tests.integration.mesh.mesh_helpers import CONFIG_BUCKET, client_in

from lakegov.audit import AuditStore
from lakegov.events import EventPublisher
from lakegov.mesh.grants import grant_state_key
from lakegov.mesh.subscriptions import subscription_kind
from lakegov.metadata.kinds import DocumentRef
from lakegov.metadata.service import process_delete, process_upload, result_key

MARKETING = json.loads((ROOT / "examples" / "subscriptions" / "marketing.json").read_text())
KEY = "subscriptions/marketing.json"


@pytest.fixture
def service(central):
    ddb = client_in("dynamodb")
    create_audit_table(ddb)
    central.events.create_event_bus(Name="lakegov-service")
    return {
        "audit": AuditStore("audit", ddb),
        "publisher": EventPublisher(central.events, ("lakegov-service",), record=True),
    }


def _upload(central, service, kind, document, version):
    body = document if isinstance(document, bytes) else json.dumps(document).encode()
    central.s3.put_object(Bucket=CONFIG_BUCKET, Key=KEY, Body=body)
    ref = DocumentRef(bucket=CONFIG_BUCKET, key=KEY, etag=version)
    return process_upload(
        ref,
        {kind.prefix: kind},
        s3=central.s3,
        publisher=service["publisher"],
        audit=service["audit"],
        context=central.ctx(KEY),
    )


def _result(central):
    body = central.s3.get_object(Bucket=CONFIG_BUCKET, Key=result_key(KEY))["Body"].read()
    return json.loads(body)


def test_a_valid_upload_is_applied_and_explained_under_results(central, service):
    kind = subscription_kind()
    result = _upload(central, service, kind, MARKETING, "v1")
    assert result["status"] == "APPLIED"
    stored = _result(central)
    assert stored["status"] == "APPLIED" and len(stored["summary"]["created"]) == 2
    # without a governance engine wired, the grant is shown but not applied
    access = stored["summary"]["read_access"]
    assert access["status"] == "NOT_APPLIED"
    assert access["document"][0]["role_arn"] == "222222222222"
    assert len(central.rules()) == 2
    (applied,) = service["publisher"].published
    assert applied.detail_type == "GovernanceApplied" and applied.detail["changes"] == 2


def test_a_bad_upload_changes_nothing_and_says_why(central, service):
    kind = subscription_kind()
    bad = {**MARKETING, "datasets": ["*"], "account_id": "2222"}
    result = _upload(central, service, kind, bad, "v1")
    assert result["status"] == "REJECTED"
    paths = sorted(e["path"] for e in _result(central)["errors"])
    assert paths == ["$.account_id"]  # the schema first; semantic checks after it passes
    assert central.rules() == {}
    result = _upload(central, service, kind, {**MARKETING, "datasets": ["*"]}, "v2")
    assert [e["path"] for e in result["errors"]] == ["$.datasets[0]"]
    assert "allow_all_datasets" in result["errors"][0]["message"]
    assert central.rules() == {}


def test_deleting_the_document_removes_the_rules_and_writes_the_outcome(central, service):
    kind = subscription_kind()
    _upload(central, service, kind, MARKETING, "v1")
    central.s3.delete_object(Bucket=CONFIG_BUCKET, Key=KEY)  # what the event reports
    result = process_delete(
        DocumentRef(bucket=CONFIG_BUCKET, key=KEY, version_id="d1"),
        {kind.prefix: kind},
        s3=central.s3,
        audit=service["audit"],
        context=central.ctx(KEY),
    )
    assert result["status"] == "REMOVED" and len(result["summary"]["deleted"]) == 2
    assert central.rules() == {}
    assert _result(central)["status"] == "REMOVED"


def test_read_access_is_granted_narrowed_and_revoked_through_the_governance_engine(
    central, service
):
    # Given a governance engine stand-in that records the documents it is asked to apply
    applied = []

    def apply_grant(document, ctx):
        applied.append(document)
        return {"changes": len(document)}

    kind = subscription_kind(apply_grant=apply_grant)
    two_tables = {
        **MARKETING,
        "read_access": {
            "tables": [
                {"Database": "lakegov_dev_formatted", "Table": "a"},
                {"Database": "lakegov_dev_formatted", "Table": "b"},
            ]
        },
    }
    # When the subscription is applied: one GRANT for the domain account
    _upload(central, service, kind, two_tables, "v1")
    (grant,) = applied.pop()
    assert grant["access_type"] == "GRANT" and grant["role_arn"] == "222222222222"
    assert _result(central)["summary"]["read_access"]["status"] == "APPLIED"
    # When one table is dropped: the new grant, then a REVOKE of exactly that table
    one_table = {**two_tables, "read_access": {"tables": two_tables["read_access"]["tables"][:1]}}
    _upload(central, service, kind, one_table, "v2")
    (revoke,) = applied.pop()
    assert revoke["access_type"] == "REVOKE"
    assert revoke["named_data_catalog"] == [{"Database": "lakegov_dev_formatted", "Table": "b"}]
    (regrant,) = applied.pop()
    assert regrant["access_type"] == "GRANT"
    # When the document is deleted: a REVOKE of what is still granted, and no state left
    central.s3.delete_object(Bucket=CONFIG_BUCKET, Key=KEY)
    process_delete(
        DocumentRef(bucket=CONFIG_BUCKET, key=KEY, version_id="d1"),
        {kind.prefix: kind},
        s3=central.s3,
        audit=service["audit"],
        context=central.ctx(KEY),
    )
    (final,) = applied.pop()
    assert final["access_type"] == "REVOKE"
    assert final["named_data_catalog"] == [{"Database": "lakegov_dev_formatted", "Table": "a"}]
    state = json.loads(
        central.s3.get_object(Bucket=CONFIG_BUCKET, Key=grant_state_key(KEY))["Body"].read()
    )
    assert state["document"] == []
    assert applied == []


def test_a_delete_event_while_the_document_still_exists_removes_nothing(central, service):
    # an old version deleted, or a late event after a re-upload: the document stands
    kind = subscription_kind()
    _upload(central, service, kind, MARKETING, "v1")
    rules = central.rules()
    result = process_delete(
        DocumentRef(bucket=CONFIG_BUCKET, key=KEY, version_id="old"),
        {kind.prefix: kind},
        s3=central.s3,
        audit=service["audit"],
        context=central.ctx(KEY),
    )
    assert result["status"] == "IGNORED"
    assert central.rules() == rules

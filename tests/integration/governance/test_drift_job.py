"""The drift schedule on moto: documents in force vs Lake Formation, DriftDetected, reconcile."""

import json

import boto3
import pytest
from moto import mock_aws
from tests.conftest import RecordingPublisher, create_audit_table

from lakegov.audit import AuditStore
from lakegov.governance import apply, plan, validate
from lakegov.governance.drift_job import check_drift
from lakegov.governance.validate import Guardrails

ROLE = "arn:aws:iam::123456789012:role/analyst"
DOC = [
    {
        "role_arn": ROLE,
        "access_type": "GRANT",
        "lf_tags": [],
        "named_data_catalog": [{"Database": "sales", "Table": "orders"}],
        "table_permissions": ["SELECT"],
    }
]


@pytest.fixture
def world():
    with mock_aws():
        s3 = boto3.client("s3", region_name="us-east-1")
        s3.create_bucket(Bucket="cfg-bucket")
        s3.put_bucket_versioning(Bucket="cfg-bucket", VersioningConfiguration={"Status": "Enabled"})
        ddb = boto3.client("dynamodb", region_name="us-east-1")
        create_audit_table(ddb)
        glue = boto3.client("glue", region_name="us-east-1")
        glue.create_database(DatabaseInput={"Name": "sales"})
        glue.create_table(DatabaseName="sales", TableInput={"Name": "orders"})
        lf = boto3.client("lakeformation", region_name="us-east-1")
        audit = AuditStore("audit", ddb)
        # the document in force: uploaded, applied and audited as APPLIED at its version
        version = s3.put_object(
            Bucket="cfg-bucket", Key="governance/sales.json", Body=json.dumps(DOC).encode()
        )["VersionId"]
        audit.claim("metadata", "s3://cfg-bucket/governance/sales.json", version)
        audit.record("metadata", "s3://cfg-bucket/governance/sales.json", version, "APPLIED")
        apply(plan(validate(DOC, source="sales.json"), lf, glue, catalog_id="123456789012"), lf)
        yield {"s3": s3, "lf": lf, "glue": glue, "audit": audit}


def _check(world, publisher, reconcile=False):
    return check_drift(
        s3=world["s3"],
        config_bucket="cfg-bucket",
        audit=world["audit"],
        lakeformation=world["lf"],
        glue=world["glue"],
        publisher=publisher,
        catalog_id="123456789012",
        guardrails=Guardrails(),
        reconcile=reconcile,
    )


def test_no_drift_publishes_nothing(world):
    publisher = RecordingPublisher()
    assert _check(world, publisher) == {"documents": 1, "drifted": False, "differences": 0}
    assert publisher.events == []


def test_a_revoke_behind_our_back_is_detected_and_reconciled_only_when_asked(world):
    world["lf"].revoke_permissions(
        Principal={"DataLakePrincipalIdentifier": ROLE},
        Resource={
            "Table": {"CatalogId": "123456789012", "DatabaseName": "sales", "Name": "orders"}
        },
        Permissions=["SELECT"],
    )
    publisher = RecordingPublisher()
    outcome = _check(world, publisher)
    assert outcome["drifted"] and outcome["differences"] == 1
    ((detail_type, detail),) = publisher.events
    assert detail_type == "DriftDetected" and detail["reconciled"] is False
    assert _check(world, RecordingPublisher())["drifted"]  # nothing was changed

    reconciled = RecordingPublisher()
    _check(world, reconciled, reconcile=True)
    assert reconciled.events[0][1]["reconciled"] is True
    assert _check(world, RecordingPublisher())["drifted"] is False


def test_a_refused_upload_does_not_become_the_reference(world):
    # a later version of the document was refused: the applied version stays in force
    world["s3"].put_object(Bucket="cfg-bucket", Key="governance/sales.json", Body=b"[{broken")
    assert _check(world, RecordingPublisher()) == {
        "documents": 1,
        "drifted": False,
        "differences": 0,
    }


def _upload_applied(world, monkeypatch, key, document, applied_at):
    """Upload ``document`` at ``key`` and audit it APPLIED at ``applied_at`` (its LF changes
    are made too, as the upload path would)."""
    version = world["s3"].put_object(
        Bucket="cfg-bucket", Key=key, Body=json.dumps(document).encode()
    )["VersionId"]
    monkeypatch.setattr("lakegov.audit.utc_now", lambda: applied_at)
    world["audit"].claim("metadata", f"s3://cfg-bucket/{key}", version)
    world["audit"].record("metadata", f"s3://cfg-bucket/{key}", version, "APPLIED")
    monkeypatch.undo()
    validated = validate(document, source=key)
    apply(plan(validated, world["lf"], world["glue"], catalog_id="123456789012"), world["lf"])
    return version


def _select_on_customers(lf):
    held = set()
    for p in lf.list_permissions()["PrincipalResourcePermissions"]:
        table = p["Resource"].get("Table", {})
        if p["Principal"]["DataLakePrincipalIdentifier"] == ROLE and table.get("Name") == (
            "customers"
        ):
            held |= set(p["Permissions"])
    return "SELECT" in held


def test_documents_are_merged_in_the_order_they_were_applied_not_by_key(world, monkeypatch):
    # Given z.json granting SELECT on customers applied on Monday, and a.json revoking it
    # applied on Tuesday (so Lake Formation no longer holds it)
    world["glue"].create_table(DatabaseName="sales", TableInput={"Name": "customers"})
    on_customers = [{"Database": "sales", "Table": "customers"}]
    grant = [{**DOC[0], "named_data_catalog": on_customers}]
    revoke = [{**DOC[0], "access_type": "REVOKE", "named_data_catalog": on_customers}]
    _upload_applied(world, monkeypatch, "governance/z.json", grant, "2026-11-16T09:00:00.000Z")
    _upload_applied(world, monkeypatch, "governance/a.json", revoke, "2026-11-17T09:00:00.000Z")
    assert not _select_on_customers(world["lf"])
    # When the drift schedule runs with reconciling on
    publisher = RecordingPublisher()
    outcome = _check(world, publisher, reconcile=True)
    # Then the Tuesday revoke wins: no drift, nothing re-granted
    assert outcome == {"documents": 3, "drifted": False, "differences": 0}
    assert publisher.events == []
    assert not _select_on_customers(world["lf"])


def test_a_refused_upload_is_never_read_in_place_of_an_expired_version(world):
    # Given the applied version of sales.json is gone and the current object is a refused
    # upload (valid JSON asking for more than was applied)
    s3, audit = world["s3"], world["audit"]
    subject = "s3://cfg-bucket/governance/sales.json"
    (applied,) = [v["version"] for v in audit.versions("metadata", subject)]
    refused = [{**DOC[0], "table_permissions": ["SELECT", "INSERT"]}]
    version = s3.put_object(
        Bucket="cfg-bucket", Key="governance/sales.json", Body=json.dumps(refused).encode()
    )["VersionId"]
    audit.claim("metadata", subject, version)
    audit.record("metadata", subject, version, "REJECTED")
    s3.delete_object(Bucket="cfg-bucket", Key="governance/sales.json", VersionId=applied)
    # When the drift schedule runs with reconciling on
    publisher = RecordingPublisher()
    outcome = _check(world, publisher, reconcile=True)
    # Then the refused upload is not the reference: nothing granted, the key is reported
    assert outcome == {"documents": 0, "drifted": False, "unreadable": ["governance/sales.json"]}
    assert publisher.events == []


def test_an_etag_keyed_version_is_read_only_while_it_is_the_current_object(world):
    # Given an unversioned bucket whose document was applied under its ETag, then replaced
    # by an upload that was refused
    s3, audit = world["s3"], world["audit"]
    s3.create_bucket(Bucket="plain-bucket")
    put = s3.put_object(Bucket="plain-bucket", Key="governance/x.json", Body=json.dumps(DOC))
    subject = "s3://plain-bucket/governance/x.json"
    audit.claim("metadata", subject, put["ETag"])
    audit.record("metadata", subject, put["ETag"], "APPLIED")
    args = {
        "s3": s3,
        "config_bucket": "plain-bucket",
        "audit": audit,
        "lakeformation": world["lf"],
        "glue": world["glue"],
        "catalog_id": "123456789012",
        "guardrails": Guardrails(),
    }
    assert check_drift(publisher=RecordingPublisher(), reconcile=False, **args)["drifted"] is False
    refused = [{**DOC[0], "table_permissions": ["SELECT", "INSERT"]}]
    s3.put_object(Bucket="plain-bucket", Key="governance/x.json", Body=json.dumps(refused))
    # When the drift schedule runs with reconciling on
    publisher = RecordingPublisher()
    outcome = check_drift(publisher=publisher, reconcile=True, **args)
    # Then the refused content is not read as the document in force
    assert outcome == {"documents": 0, "drifted": False, "unreadable": ["governance/x.json"]}
    assert publisher.events == []


def test_any_other_read_error_is_raised_not_papered_over_with_the_current_object(world):
    # Given reading the applied version is denied (only NoSuchVersion may fall back)
    from botocore.exceptions import ClientError

    class Denied:
        def __init__(self, s3):
            self._s3 = s3

        def __getattr__(self, name):
            return getattr(self._s3, name)

        def get_object(self, **kwargs):
            if "VersionId" in kwargs:
                raise ClientError({"Error": {"Code": "AccessDenied"}}, "GetObject")
            return self._s3.get_object(**kwargs)

    # When the drift schedule runs, Then the error surfaces
    with pytest.raises(ClientError):
        _check({**world, "s3": Denied(world["s3"])}, RecordingPublisher())

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

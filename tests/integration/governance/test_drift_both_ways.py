"""Drift both ways, and revokes when a document is narrowed or deleted, on moto.

The documents in force are uploaded, applied through the config-bucket kind (so the audit
records what was applied, as on the upload path) and compared with Lake Formation.
"""

import json
from typing import Any

import boto3
import pytest
from moto import mock_aws
from tests.conftest import RecordingPublisher, create_audit_table

from lakegov.audit import AuditStore
from lakegov.governance.documents import governance_kind
from lakegov.governance.drift_job import check_drift
from lakegov.governance.validate import Guardrails
from lakegov.local.moto_lakeformation import install
from lakegov.metadata.kinds import ApplyContext, DocumentClients, DocumentRef
from lakegov.metadata.service import process_delete
from lakegov.settings import Settings

ACCOUNT = "123456789012"
ANALYST = f"arn:aws:iam::{ACCOUNT}:role/analyst"
AUDITOR = f"arn:aws:iam::{ACCOUNT}:role/auditor"
INTRUDER = f"arn:aws:iam::{ACCOUNT}:role/made-by-hand"
CRAWLER = f"arn:aws:iam::{ACCOUNT}:role/stack-crawler"
ADMIN = f"arn:aws:iam::{ACCOUNT}:role/governance-admin"
STACK_DB = "lakegov_dev_formatted_stg"
BUCKET = "cfg-bucket"


def _entry(role: str, table: str, permissions: list[str], database: str = "sales") -> dict:
    return {
        "role_arn": role,
        "access_type": "GRANT",
        "lf_tags": [],
        "named_data_catalog": [{"Database": database, "Table": table}],
        "table_permissions": permissions,
    }


def _table(database: str, name: str) -> dict[str, Any]:
    return {"Table": {"CatalogId": ACCOUNT, "DatabaseName": database, "Name": name}}


@pytest.fixture
def world():
    install()
    with mock_aws():
        s3 = boto3.client("s3", region_name="us-east-1")
        s3.create_bucket(Bucket=BUCKET)
        s3.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})
        ddb = boto3.client("dynamodb", region_name="us-east-1")
        create_audit_table(ddb)
        glue = boto3.client("glue", region_name="us-east-1")
        for database, tables in {
            "sales": ["orders", "customers"],
            STACK_DB: ["landed"],
            "elsewhere": ["private"],
        }.items():
            glue.create_database(DatabaseInput={"Name": database})
            for table in tables:
                glue.create_table(
                    DatabaseName=database,
                    TableInput={
                        "Name": table,
                        "StorageDescriptor": {"Columns": [{"Name": "id", "Type": "int"}]},
                    },
                )
        lf = boto3.client("lakeformation", region_name="us-east-1")
        lf.put_data_lake_settings(
            CatalogId=ACCOUNT,
            DataLakeSettings={"DataLakeAdmins": [{"DataLakePrincipalIdentifier": ADMIN}]},
        )
        settings = Settings(
            environment="dev",
            region="us-east-1",
            raw_bucket="raw",
            formatted_bucket="formatted",
            config_bucket=BUCKET,
            service_bus="bus",
            audit_table="audit",
            account_id=ACCOUNT,
            stack_databases=(STACK_DB,),
            stack_principals=(CRAWLER,),
        )
        events = boto3.client("events", region_name="us-east-1")
        clients = {"s3": s3, "glue": glue, "lakeformation": lf, "dynamodb": ddb, "events": events}
        yield {**clients, "audit": AuditStore("audit", ddb), "settings": settings}


def _ctx(world, key: str, version: str) -> ApplyContext:
    return ApplyContext(
        document=DocumentRef(BUCKET, key, version_id=version),
        settings=world["settings"],
        clients=DocumentClients.from_factory(lambda service: world[service]),
        audit=world["audit"],
    )


def upload(world, key: str, document: Any) -> dict[str, Any]:
    """Upload and apply ``document`` as the config function does; return the summary."""
    version = world["s3"].put_object(Bucket=BUCKET, Key=key, Body=json.dumps(document).encode())[
        "VersionId"
    ]
    subject = f"s3://{BUCKET}/{key}"
    world["audit"].claim("metadata", subject, version)
    summary = governance_kind().apply(document, _ctx(world, key, version))
    assert summary["failed"] == 0, summary["failures"]
    world["audit"].record("metadata", subject, version, "APPLIED", attributes={"summary": summary})
    return summary


def delete(world, key: str) -> dict[str, Any]:
    marker = world["s3"].delete_object(Bucket=BUCKET, Key=key)["VersionId"]
    kinds = {"governance/": governance_kind()}
    result = process_delete(
        DocumentRef(BUCKET, key, version_id=marker),
        kinds,
        s3=world["s3"],
        audit=world["audit"],
        context=_ctx(world, key, marker),
    )
    assert result["status"] == "REMOVED", result
    return result["summary"]


def held(world, principal: str, resource: dict[str, Any]) -> set[str]:
    out: set[str] = set()
    for p in world["lakeformation"].list_permissions(CatalogId=ACCOUNT)[
        "PrincipalResourcePermissions"
    ]:
        if p["Principal"]["DataLakePrincipalIdentifier"] == principal and p["Resource"] == resource:
            out |= set(p["Permissions"])
    return out


def grant(world, principal: str, resource: dict[str, Any], permissions: list[str]) -> None:
    world["lakeformation"].grant_permissions(
        CatalogId=ACCOUNT,
        Principal={"DataLakePrincipalIdentifier": principal},
        Resource=resource,
        Permissions=permissions,
    )


def check(world, reconcile: bool = False) -> tuple[dict[str, Any], RecordingPublisher]:
    publisher = RecordingPublisher()
    settings = world["settings"]
    outcome = check_drift(
        s3=world["s3"],
        config_bucket=BUCKET,
        audit=world["audit"],
        lakeformation=world["lakeformation"],
        glue=world["glue"],
        publisher=publisher,
        catalog_id=ACCOUNT,
        guardrails=Guardrails(),
        reconcile=reconcile,
        stack_databases=settings.stack_databases,
        stack_principals=settings.stack_principals,
    )
    return outcome, publisher


def test_a_grant_made_by_hand_is_reported_then_revoked_by_reconcile_only(world):
    # Given a document in force, the stack's own grants, and grants made by hand
    upload(world, "governance/sales.json", [_entry(ANALYST, "orders", ["SELECT"])])
    grant(world, CRAWLER, _table(STACK_DB, "landed"), ["SELECT", "ALTER"])  # the stack's role
    grant(world, ADMIN, _table("sales", "orders"), ["SELECT"])  # a data lake administrator
    grant(world, INTRUDER, _table("elsewhere", "private"), ["SELECT"])  # not governed
    grant(world, INTRUDER, _table("sales", "orders"), ["SELECT", "DELETE"])  # governed table
    grant(world, INTRUDER, _table(STACK_DB, "landed"), ["SELECT"])  # the stack's database
    grant(world, ANALYST, _table("sales", "orders"), ["INSERT"])  # more than asked for

    # When the drift check runs (reconcile off)
    outcome, publisher = check(world)

    # Then exactly the grants nobody asked for on governed resources are reported
    assert outcome["drifted"] and outcome["differences"] == 3
    ((detail_type, detail),) = publisher.events
    assert detail_type == "DriftDetected" and detail["reconciled"] is False
    reported = sorted(
        (
            d["kind"],
            d["change"]["principal"],
            d["change"]["resource_name"],
            *d["change"]["permissions"],
        )
        for d in detail["differences"]
    )
    assert reported == [
        ("unrequested_permission", ANALYST, "table sales.orders", "INSERT"),
        ("unrequested_permission", INTRUDER, f"table {STACK_DB}.landed", "SELECT"),
        ("unrequested_permission", INTRUDER, "table sales.orders", "DELETE", "SELECT"),
    ]
    assert held(world, INTRUDER, _table("sales", "orders")) == {"SELECT", "DELETE"}

    # When reconciling is on
    outcome, publisher = check(world, reconcile=True)
    assert publisher.events[0][1]["reconciled"] is True
    # Then the unrequested grants are gone, the asked-for and the stack's ones untouched
    assert held(world, INTRUDER, _table("sales", "orders")) == set()
    assert held(world, INTRUDER, _table(STACK_DB, "landed")) == set()
    assert held(world, ANALYST, _table("sales", "orders")) == {"SELECT"}
    assert held(world, CRAWLER, _table(STACK_DB, "landed")) == {"SELECT", "ALTER"}
    assert held(world, ADMIN, _table("sales", "orders")) == {"SELECT"}
    assert held(world, INTRUDER, _table("elsewhere", "private")) == {"SELECT"}
    assert check(world)[0]["drifted"] is False


def test_a_tag_assigned_by_hand_with_a_governed_key_is_reported_and_removed(world):
    # Given a document declaring the LF-Tag "tier" and assigning it to orders only
    document = {
        "version": 1,
        "lf_tags": [{"TagKey": "tier", "TagValues": ["gold", "bronze"]}],
        "assignments": [
            {
                "Database": "sales",
                "Table": "orders",
                "lf_tags": [{"TagKey": "tier", "TagValues": ["gold"]}],
            },
            {
                "Database": "sales",
                "Table": "customers",
                "lf_tags": [{"TagKey": "tier", "TagValues": ["gold"]}],
            },
        ],
        "entries": [],
    }
    upload(world, "governance/tags.json", document)
    # and, by hand, a tag the documents declare on a database they name; one they don't
    world["lakeformation"].create_lf_tag(CatalogId=ACCOUNT, TagKey="owner", TagValues=["bob"])
    table = _table("sales", "orders")
    for key, value in (("owner", "bob"),):
        world["lakeformation"].add_lf_tags_to_resource(
            CatalogId=ACCOUNT, Resource=table, LFTags=[{"TagKey": key, "TagValues": [value]}]
        )
    # When the check runs
    outcome, publisher = check(world)
    # Then the tag outside the documents' keys is not lakegov's: no drift
    assert outcome["drifted"] is False
    # When a governed tag is re-pointed by hand on customers' database
    world["lakeformation"].add_lf_tags_to_resource(
        CatalogId=ACCOUNT,
        Resource={"Database": {"CatalogId": ACCOUNT, "Name": "sales"}},
        LFTags=[{"TagKey": "tier", "TagValues": ["bronze"]}],
    )
    outcome, publisher = check(world)
    # Then it is not reported: the database is not named by a document (only its tables)
    assert outcome["drifted"] is False
    # When a document names the database and the hand-made tag is there
    upload(
        world,
        "governance/db.json",
        [{**_entry(AUDITOR, "*", ["DESCRIBE"])}],
    )
    outcome, publisher = check(world)
    ((_, detail),) = publisher.events
    (difference,) = detail["differences"]
    assert difference["kind"] == "unrequested_lf_tags"
    assert difference["change"]["lf_tags"] == [{"TagKey": "tier", "TagValues": ["bronze"]}]
    check(world, reconcile=True)
    tags = world["lakeformation"].get_resource_lf_tags(
        CatalogId=ACCOUNT, Resource={"Database": {"CatalogId": ACCOUNT, "Name": "sales"}}
    )
    assert tags.get("LFTagOnDatabase", []) == []
    assert check(world)[0]["drifted"] is False


def test_deleting_a_document_revokes_exactly_what_it_alone_granted(world):
    # Given two documents in force; both grant the auditor SELECT on orders
    upload(
        world,
        "governance/a.json",
        [_entry(ANALYST, "orders", ["SELECT", "DESCRIBE"]), _entry(AUDITOR, "orders", ["SELECT"])],
    )
    upload(world, "governance/b.json", [_entry(AUDITOR, "orders", ["SELECT", "DESCRIBE"])])
    grant(world, INTRUDER, _table("sales", "orders"), ["SELECT"])  # not a's to take back
    # When a.json is deleted
    summary = delete(world, "governance/a.json")
    # Then the analyst's grant (a's alone) is revoked, the auditor's (b's too) stays
    assert summary["revokes"] == 1 and summary["failed"] == 0
    assert held(world, ANALYST, _table("sales", "orders")) == set()
    assert held(world, AUDITOR, _table("sales", "orders")) == {"SELECT", "DESCRIBE"}
    assert held(world, INTRUDER, _table("sales", "orders")) == {"SELECT"}


def test_a_narrower_replacement_revokes_the_difference(world):
    upload(
        world,
        "governance/a.json",
        [
            _entry(ANALYST, "orders", ["SELECT", "DESCRIBE"]),
            _entry(ANALYST, "customers", ["SELECT"]),
        ],
    )
    upload(world, "governance/b.json", [_entry(ANALYST, "customers", ["SELECT"])])
    # When a.json is replaced by one granting DESCRIBE on orders only
    summary = upload(world, "governance/a.json", [_entry(ANALYST, "orders", ["DESCRIBE"])])
    # Then SELECT on orders is revoked; customers stays (b.json grants it too)
    assert [c["action"] for c in summary["plan"]["changes"]] == ["revoke"]
    assert held(world, ANALYST, _table("sales", "orders")) == {"DESCRIBE"}
    assert held(world, ANALYST, _table("sales", "customers")) == {"SELECT"}
    # and uploading the same version again changes nothing
    assert (
        upload(world, "governance/a.json", [_entry(ANALYST, "orders", ["DESCRIBE"])])["changes"]
        == 0
    )


def test_lakegov_plan_shows_the_revokes_of_a_deletion_or_replacement_before_anything(
    world, tmp_path, capsys
):
    from lakegov.cli import main

    upload(world, "governance/a.json", [_entry(ANALYST, "orders", ["SELECT", "DESCRIBE"])])
    upload(world, "governance/b.json", [_entry(ANALYST, "orders", ["DESCRIBE"])])
    outputs = tmp_path / "outputs.json"
    outputs.write_text(
        json.dumps({"ConfigBucketName": BUCKET, "AuditTableName": "audit", "Region": "us-east-1"})
    )
    common = ["--outputs", str(outputs), "--catalog-id", ACCOUNT, "--json"]
    # deleting a.json would revoke SELECT (DESCRIBE is b.json's too)
    assert main(["plan", "--delete", "governance/a.json", *common]) == 0
    changes = json.loads(capsys.readouterr().out)["changes"]
    assert [(c["action"], c["principal"], c["permissions"]) for c in changes] == [
        ("revoke", ANALYST, ["SELECT"])
    ]
    # replacing it with a document granting nothing on orders would do the same
    narrower = tmp_path / "a.json"
    narrower.write_text(json.dumps([_entry(AUDITOR, "orders", ["DESCRIBE"])]))
    assert main(["plan", str(narrower), "--key", "governance/a.json", *common]) == 0
    changes = json.loads(capsys.readouterr().out)["changes"]
    assert sorted((c["action"], c["principal"]) for c in changes) == [
        ("grant", AUDITOR),
        ("revoke", ANALYST),
    ]
    # and nothing happened
    assert held(world, ANALYST, _table("sales", "orders")) == {"SELECT", "DESCRIBE"}


def test_a_document_uploaded_again_after_its_deletion_retires_nothing_of_the_deleted_one(world):
    upload(world, "governance/a.json", [_entry(ANALYST, "orders", ["SELECT", "DESCRIBE"])])
    delete(world, "governance/a.json")
    assert held(world, ANALYST, _table("sales", "orders")) == set()
    # Given SELECT granted again by hand after the deletion
    grant(world, ANALYST, _table("sales", "orders"), ["SELECT"])
    # When a.json comes back, narrower: its deleted version is not what it replaces
    summary = upload(world, "governance/a.json", [_entry(ANALYST, "orders", ["DESCRIBE"])])
    # Then nothing is revoked by the upload (the drift check is what reports the hand grant)
    assert summary["revokes"] == 0
    assert held(world, ANALYST, _table("sales", "orders")) == {"SELECT", "DESCRIBE"}


def test_a_failed_revoke_of_a_deleted_document_is_retried_not_forgotten(world):
    from lakegov.errors import RetryableError

    upload(world, "governance/a.json", [_entry(ANALYST, "orders", ["SELECT"])])
    lf = world["lakeformation"]

    class Refusing:
        def __getattr__(self, name):
            return getattr(lf, name)

        def batch_revoke_permissions(self, **kwargs):
            return {
                "Failures": [
                    {"RequestEntry": e, "Error": {"ErrorCode": "AccessDeniedException"}}
                    for e in kwargs["Entries"]
                ]
            }

    # When the deletion's revoke is refused, Then the deletion fails (to be retried)
    with pytest.raises(RetryableError, match="AccessDeniedException"):
        delete({**world, "lakeformation": Refusing()}, "governance/a.json")
    assert held(world, ANALYST, _table("sales", "orders")) == {"SELECT"}
    # and the retry, with Lake Formation answering again, revokes it
    key, marker = "governance/a.json", None
    versions = world["s3"].list_object_versions(Bucket=BUCKET, Prefix=key)["DeleteMarkers"]
    marker = versions[0]["VersionId"]
    result = process_delete(
        DocumentRef(BUCKET, key, version_id=marker),
        {"governance/": governance_kind()},
        s3=world["s3"],
        audit=world["audit"],
        context=_ctx(world, key, marker),
    )
    assert result["status"] == "REMOVED" and result["summary"]["revokes"] == 1
    assert held(world, ANALYST, _table("sales", "orders")) == set()


def test_grants_on_a_data_location_or_the_catalog_are_never_revoked(world):
    """The stack's data location (and catalog-level grants) are outside what lakegov governs,
    whoever holds them: reconcile leaves them, as the governed scope promises."""
    upload(world, "governance/sales.json", [_entry(ANALYST, "orders", ["SELECT"])])
    location = {"DataLocation": {"CatalogId": ACCOUNT, "ResourceArn": "arn:aws:s3:::lake/sales"}}
    world["lakeformation"].register_resource(ResourceArn="arn:aws:s3:::lake/sales")
    grant(world, INTRUDER, location, ["DATA_LOCATION_ACCESS"])
    grant(world, INTRUDER, {"Catalog": {}}, ["CREATE_DATABASE"])
    outcome, _ = check(world, reconcile=True)
    assert outcome["differences"] == 0
    assert held(world, INTRUDER, location) == {"DATA_LOCATION_ACCESS"}
    assert held(world, INTRUDER, {"Catalog": {}}) == {"CREATE_DATABASE"}


def test_with_no_document_in_force_the_stack_s_databases_are_still_governed(world):
    """The stack's own databases are governed whether or not any document is in force."""
    grant(world, CRAWLER, _table(STACK_DB, "landed"), ["SELECT", "ALTER"])  # the stack's role
    grant(world, INTRUDER, _table(STACK_DB, "landed"), ["SELECT"])  # made by hand
    outcome, publisher = check(world)
    assert outcome["drifted"] and outcome["differences"] == 1
    ((_, detail),) = publisher.events
    assert [d["change"]["principal"] for d in detail["differences"]] == [INTRUDER]
    check(world, reconcile=True)
    assert held(world, INTRUDER, _table(STACK_DB, "landed")) == set()
    assert held(world, CRAWLER, _table(STACK_DB, "landed")) == {"SELECT", "ALTER"}

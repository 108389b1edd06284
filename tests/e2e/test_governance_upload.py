"""Governance documents uploaded to the config bucket, on the embedded runtime."""

import json

import pytest
from tests.conftest import ROOT

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("runtime")]
EXAMPLE = (ROOT / "examples" / "governance" / "lf_tags_metadata.json").read_bytes()


def _result(service, key):
    body = (
        service.client("s3")
        .get_object(Bucket=service.outputs["ConfigBucketName"], Key=f"results/{key}.result.json")[
            "Body"
        ]
        .read()
    )
    return json.loads(body)


def test_an_upload_applies_and_writes_its_result(service):
    key = "governance/lf_tags_metadata.json"
    service.client("s3").put_object(
        Bucket=service.outputs["ConfigBucketName"], Key=key, Body=EXAMPLE
    )
    detail = service.wait_for_event("GovernanceApplied", lambda d: d["document"]["key"] == key)[
        "detail"
    ]
    assert detail["failed"] == 0 and detail["changes"] >= 3
    result = _result(service, key)
    assert result["status"] == "APPLIED"
    # the stray space in " lakegov_dev_formatted_stg" is normalised with a warning naming the field
    assert any(w["path"] == "$[1].named_data_catalog[1].Database" for w in result["warnings"])
    lf = service.client("lakeformation")
    principals = {
        p["Principal"]["DataLakePrincipalIdentifier"]
        for p in lf.list_permissions()["PrincipalResourcePermissions"]
    }
    assert "arn:aws:iam::123456789012:role/data-engineer" in principals
    tags = {t["TagKey"]: t["TagValues"] for t in lf.list_lf_tags()["LFTags"]}
    assert tags["domain"] == ["mwaa_blog"]


def test_reuploading_a_document_in_force_changes_nothing(service):
    first = "governance/first.json"
    service.client("s3").put_object(
        Bucket=service.outputs["ConfigBucketName"], Key=first, Body=EXAMPLE
    )
    service.wait_for_event("GovernanceApplied", lambda d: d["document"]["key"] == first)
    key = "governance/again.json"
    service.client("s3").put_object(
        Bucket=service.outputs["ConfigBucketName"], Key=key, Body=EXAMPLE
    )
    detail = service.wait_for_event("GovernanceApplied", lambda d: d["document"]["key"] == key)[
        "detail"
    ]
    assert detail["changes"] == 0 and detail["write_calls"] == 0


def test_a_bad_document_is_refused_with_paths_and_changes_nothing(service):
    lf = service.client("lakeformation")
    before = lf.list_permissions()["PrincipalResourcePermissions"]
    bad = json.loads(EXAMPLE)
    bad[0]["access_type"] = "GIVE"
    bad[1]["role_arn"] = "arn:aws:iam::123456789012:role/new-team"
    key = "governance/bad.json"
    service.client("s3").put_object(
        Bucket=service.outputs["ConfigBucketName"], Key=key, Body=json.dumps(bad).encode()
    )
    detail = service.wait_for_event("GovernanceRejected", lambda d: d["document"]["key"] == key)[
        "detail"
    ]
    assert any(e["path"] == "$[0].access_type" for e in detail["errors"])
    assert _result(service, key)["status"] == "REJECTED"
    assert lf.list_permissions()["PrincipalResourcePermissions"] == before


def test_a_file_that_is_not_json_is_refused(service):
    key = "governance/broken.json"
    service.client("s3").put_object(
        Bucket=service.outputs["ConfigBucketName"], Key=key, Body=b'[{"role_arn": '
    )
    detail = service.wait_for_event("GovernanceRejected", lambda d: d["document"]["key"] == key)[
        "detail"
    ]
    assert detail["errors"][0]["path"] == "$" and "not valid JSON" in detail["errors"][0]["message"]

"""The custom resource that makes the stack's governance roles data lake administrators."""

from __future__ import annotations

import boto3
import pytest
from moto import mock_aws

from lakegov.governance.admins import apply_custom_resource

CONFIG = "arn:aws:iam::123456789012:role/lakegov-dev-ConfigFunctionRole-1"
DRIFT = "arn:aws:iam::123456789012:role/lakegov-dev-DriftFunctionRole-1"
PEOPLE = "arn:aws:iam::123456789012:role/data-platform-admins"


@pytest.fixture
def lakeformation():
    with mock_aws():
        client = boto3.client("lakeformation", region_name="us-east-1")
        client.put_data_lake_settings(
            DataLakeSettings={
                "DataLakeAdmins": [{"DataLakePrincipalIdentifier": PEOPLE}],
                "CreateDatabaseDefaultPermissions": [],
                "CreateTableDefaultPermissions": [],
                "TrustedResourceOwners": ["111122223333"],
            }
        )
        yield client


def _admins(client):
    settings = client.get_data_lake_settings()["DataLakeSettings"]
    return [p["DataLakePrincipalIdentifier"] for p in settings["DataLakeAdmins"]], settings


def _event(request, principals, old=None):
    event = {"RequestType": request, "ResourceProperties": {"Principals": principals}}
    if old is not None:
        event["OldResourceProperties"] = {"Principals": old}
    return event


def test_create_adds_the_roles_and_keeps_the_other_administrators_and_settings(lakeformation):
    apply_custom_resource(lakeformation, _event("Create", [CONFIG, DRIFT]))
    admins, settings = _admins(lakeformation)
    assert admins == [PEOPLE, CONFIG, DRIFT]
    assert settings["TrustedResourceOwners"] == ["111122223333"]
    apply_custom_resource(lakeformation, _event("Create", [CONFIG, DRIFT]))  # a retry
    assert _admins(lakeformation)[0] == [PEOPLE, CONFIG, DRIFT]


def test_update_swaps_exactly_the_changed_roles(lakeformation):
    apply_custom_resource(lakeformation, _event("Create", [CONFIG, DRIFT]))
    renamed = CONFIG.replace("-1", "-2")
    apply_custom_resource(lakeformation, _event("Update", [renamed, DRIFT], old=[CONFIG, DRIFT]))
    assert _admins(lakeformation)[0] == [PEOPLE, DRIFT, renamed]


def test_delete_removes_exactly_the_stacks_roles(lakeformation):
    apply_custom_resource(lakeformation, _event("Create", [CONFIG, DRIFT]))
    other = "arn:aws:iam::123456789012:role/added-meanwhile"
    _, settings = _admins(lakeformation)
    settings["DataLakeAdmins"].append({"DataLakePrincipalIdentifier": other})
    lakeformation.put_data_lake_settings(DataLakeSettings=settings)
    apply_custom_resource(lakeformation, _event("Delete", [CONFIG, DRIFT]))
    assert _admins(lakeformation)[0] == [PEOPLE, other]


def test_the_handler_reports_success_and_failure_to_cloudformation(
    lakeformation, monkeypatch, lambda_context
):
    from handlers import lf_admins

    sent = []
    monkeypatch.setattr(lf_admins, "respond", lambda url, body: sent.append((url, body)))
    monkeypatch.setattr(lf_admins, "get_app", lambda: _App(lakeformation))
    base = {
        "StackId": "arn:aws:cloudformation:us-east-1:123456789012:stack/s/1",
        "RequestId": "r1",
        "LogicalResourceId": "GovernanceRolesAreLakeAdmins",
        "ResponseURL": "https://cloudformation-response.example/x",
    }
    lf_admins.handler({**base, **_event("Create", [CONFIG])}, lambda_context)
    url, body = sent[-1]
    assert url == base["ResponseURL"] and body["Status"] == "SUCCESS"
    assert CONFIG in body["Data"]["Administrators"]
    lf_admins.handler({**base, **_event("Rename", [CONFIG])}, lambda_context)
    assert sent[-1][1]["Status"] == "FAILED" and "Rename" in sent[-1][1]["Reason"]


class _App:
    def __init__(self, client):
        self._client = client

    def client(self, service):
        assert service == "lakeformation"
        return self._client


DBT_ROLE = "arn:aws:iam::123456789012:role/lakegov-dev-DbtBuildRole-1"
DBT_TAGS = {"domain": ["mwaa_blog"], "classification": ["confidential", "restricted", "pii"]}


def _tag_event(request, tags, old=None):
    import json

    event = {
        "RequestType": request,
        "ResourceType": "Custom::LakeFormationTagAssociation",
        "ResourceProperties": {"Principal": DBT_ROLE, "Tags": json.dumps(tags)},
    }
    if old is not None:
        event["OldResourceProperties"] = {"Principal": DBT_ROLE, "Tags": json.dumps(old)}
    return event


def _tag_grants(client):
    found = {}
    for entry in client.list_permissions()["PrincipalResourcePermissions"]:
        if entry["Principal"]["DataLakePrincipalIdentifier"] != DBT_ROLE:
            continue
        tag = entry["Resource"]["LFTag"]
        found[tag["TagKey"]] = (sorted(tag["TagValues"]), sorted(entry["Permissions"]))
    return found


def test_the_dbt_role_may_associate_its_tags_which_exist_and_stay(lakeformation):
    from lakegov.governance.admins import apply_tag_association

    lakeformation.create_lf_tag(TagKey="domain", TagValues=["finance"])  # from a document
    apply_tag_association(lakeformation, _tag_event("Create", DBT_TAGS))
    assert sorted(lakeformation.get_lf_tag(TagKey="domain")["TagValues"]) == [
        "finance",
        "mwaa_blog",
    ]
    assert sorted(lakeformation.get_lf_tag(TagKey="classification")["TagValues"]) == [
        "confidential",
        "pii",
        "restricted",
    ]
    assert _tag_grants(lakeformation) == {
        "domain": (["mwaa_blog"], ["ASSOCIATE", "DESCRIBE"]),
        "classification": (["confidential", "pii", "restricted"], ["ASSOCIATE", "DESCRIBE"]),
    }
    apply_tag_association(lakeformation, _tag_event("Delete", DBT_TAGS))
    assert _tag_grants(lakeformation) == {}
    assert "mwaa_blog" in lakeformation.get_lf_tag(TagKey="domain")["TagValues"]


class _RevokesLikeAws:
    """The moto client, but ``RevokePermissions`` of a grant the principal does not hold
    fails as on AWS (moto accepts it silently)."""

    def __init__(self, client):
        self._client = client

    def __getattr__(self, name):
        return getattr(self._client, name)

    def revoke_permissions(self, **kwargs):
        from botocore.exceptions import ClientError

        held = [
            e
            for e in self._client.list_permissions()["PrincipalResourcePermissions"]
            if e["Principal"] == kwargs["Principal"] and e["Resource"] == kwargs["Resource"]
        ]
        if not held:
            raise ClientError(
                {
                    "Error": {
                        "Code": "InvalidInputException",
                        "Message": "No permissions revoked. Revoking Tag permissions on Tags "
                        "that grantee does not have permissions on.",
                    }
                },
                "RevokePermissions",
            )
        return self._client.revoke_permissions(**kwargs)


def test_a_rollback_after_a_failed_create_deletes_cleanly(lakeformation):
    """CloudFormation sends Delete after a Create that failed before any grant: revoking
    what was never granted must not fail, or the stack is stuck in ROLLBACK_FAILED."""
    from lakegov.governance.admins import apply_tag_association

    client = _RevokesLikeAws(lakeformation)
    lakeformation.create_lf_tag(TagKey="domain", TagValues=["mwaa_blog"])
    lakeformation.grant_permissions(
        Principal={"DataLakePrincipalIdentifier": DBT_ROLE},
        Resource={"LFTag": {"TagKey": "domain", "TagValues": ["mwaa_blog"]}},
        Permissions=["ASSOCIATE", "DESCRIBE"],
    )  # the first grant went through, the second never happened
    apply_tag_association(client, _tag_event("Delete", DBT_TAGS))
    assert _tag_grants(lakeformation) == {}


def test_a_revoke_refused_for_another_reason_still_fails(lakeformation):
    from botocore.exceptions import ClientError

    from lakegov.governance.admins import apply_tag_association

    class _Refuses(_RevokesLikeAws):
        def revoke_permissions(self, **kwargs):
            raise ClientError(
                {"Error": {"Code": "AccessDeniedException", "Message": "not allowed"}},
                "RevokePermissions",
            )

    with pytest.raises(ClientError):
        apply_tag_association(_Refuses(lakeformation), _tag_event("Delete", DBT_TAGS))


def test_a_malformed_tags_parameter_fails_create_but_not_the_rollback(lakeformation):
    from lakegov.governance.admins import apply_tag_association

    event = {
        "RequestType": "Create",
        "ResourceType": "Custom::LakeFormationTagAssociation",
        "ResourceProperties": {"Principal": DBT_ROLE, "Tags": '{"domain": ["mwaa_blog"'},
    }
    with pytest.raises(ValueError):
        apply_tag_association(lakeformation, event)
    assert apply_tag_association(lakeformation, {**event, "RequestType": "Delete"}) == {}


def test_the_outcome_is_sent_again_when_the_first_put_fails(monkeypatch):
    # CloudFormation waits for this reply: a transient network error must not lose it
    import urllib.error

    from handlers import lf_admins

    calls = []

    class Reply:
        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

        def read(self):
            return b""

    def urlopen(request, timeout):
        calls.append(request.full_url)
        if len(calls) == 1:
            raise urllib.error.URLError("connection reset")
        return Reply()

    monkeypatch.setattr(lf_admins.urllib.request, "urlopen", urlopen)
    monkeypatch.setattr(lf_admins.time, "sleep", lambda _s: None)
    lf_admins.respond("https://cloudformation-response.example/x", {"Status": "SUCCESS"})
    assert calls == ["https://cloudformation-response.example/x"] * 2

"""Who the local Athena endpoint says signed a request."""

from __future__ import annotations

import io
import json

from lakegov.local.athena.server import AthenaMiddleware

DEPLOYER = "arn:aws:sts::123456789012:user/moto"


class _Athena:
    def __init__(self):
        self.principals = []

    def start_query_execution(self, body, principal):
        self.principals.append(principal)
        return {"QueryExecutionId": "q"}


def _call(middleware, authorization):
    body = json.dumps({"QueryString": "SELECT 1"}).encode()
    environ = {
        "HTTP_X_AMZ_TARGET": "AmazonAthena.StartQueryExecution",
        "CONTENT_LENGTH": str(len(body)),
        "wsgi.input": io.BytesIO(body),
    }
    if authorization is not None:
        environ["HTTP_AUTHORIZATION"] = authorization
    answer = {}
    out = middleware(environ, lambda status, headers: answer.update(status=status))
    return answer["status"], json.loads(b"".join(out))


def _auth(key):
    return (
        f"AWS4-HMAC-SHA256 Credential={key}/20261130/us-east-1/athena/aws4_request, "
        "SignedHeaders=host, Signature=0"
    )


def test_an_access_key_nobody_issued_is_refused_not_taken_for_the_deployer():
    athena = _Athena()
    middleware = AthenaMiddleware(None, lambda: athena, DEPLOYER, "testing")
    for authorization in (_auth("AKIAMADEUP"), None):
        status, payload = _call(middleware, authorization)
        assert status.startswith("400")
        assert payload["__type"] == "UnrecognizedClientException"
    assert athena.principals == []
    status, payload = _call(middleware, _auth("testing"))
    assert status.startswith("200") and athena.principals == [DEPLOYER]


def test_a_deactivated_user_key_and_an_expired_session_are_not_principals():
    import datetime

    import boto3
    from moto import mock_aws

    from lakegov.local.athena.server import principal_of

    with mock_aws():
        iam = boto3.client("iam", region_name="us-east-1")
        iam.create_user(UserName="analyst")
        key = iam.create_access_key(UserName="analyst")["AccessKey"]["AccessKeyId"]
        assert principal_of(_auth(key)) == "arn:aws:iam::123456789012:user/analyst"
        iam.update_access_key(UserName="analyst", AccessKeyId=key, Status="Inactive")
        assert principal_of(_auth(key)) is None

        iam.create_role(RoleName="r", AssumeRolePolicyDocument="{}")
        sts = boto3.client("sts", region_name="us-east-1")
        creds = sts.assume_role(
            RoleArn="arn:aws:iam::123456789012:role/r",
            RoleSessionName="analyst-session",
            DurationSeconds=900,
        )["Credentials"]
        assert principal_of(_auth(creds["AccessKeyId"])) == "arn:aws:iam::123456789012:role/r"
        from moto.sts.models import sts_backends

        for backend in sts_backends["123456789012"].values():
            for role in backend.assumed_roles:
                role.expiration = datetime.datetime(2000, 1, 1)
        assert principal_of(_auth(creds["AccessKeyId"])) is None

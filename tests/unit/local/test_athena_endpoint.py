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

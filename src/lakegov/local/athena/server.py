"""The embedded runtime's AWS endpoint: moto's application, with Athena's API answered here.

Requests whose ``X-Amz-Target`` is one of Athena's query actions go to :class:`LocalAthena`
(which runs the SQL); everything else, Athena's workgroups included, goes to moto.
"""

from __future__ import annotations

import datetime
import json
import re
import threading
from collections.abc import Callable, Iterable
from typing import Any

from lakegov.local.athena.service import InvalidRequest, LocalAthena
from lakegov.observability import logger

_ACTIONS = {
    "StartQueryExecution",
    "GetQueryExecution",
    "BatchGetQueryExecution",
    "GetQueryResults",
    "GetQueryRuntimeStatistics",
    "ListQueryExecutions",
    "StopQueryExecution",
}
_CREDENTIAL = re.compile(r"Credential=([^/,\s]+)/")


class UnrecognizedClient(Exception):
    """Athena's ``UnrecognizedClientException``: the request's access key is unknown."""


def _snake(action: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", action).lower()


def principal_of(authorization: str) -> str | None:
    """The IAM principal (role or user ARN) moto knows behind the request's access key id;
    None for keys moto did not issue, an expired session's and a deactivated user key."""
    match = _CREDENTIAL.search(authorization or "")
    if not match:
        return None
    key = match.group(1)
    from moto.iam.models import iam_backends
    from moto.sts.models import sts_backends

    now = datetime.datetime.now(datetime.UTC).replace(tzinfo=None)
    for by_partition in list(sts_backends.values()):
        for backend in list(by_partition.values()):
            for role in list(backend.assumed_roles):
                # an expired session's keys are refused, as AWS does (ExpiredToken)
                if role.access_key_id == key and _naive(role.expiration) > now:
                    return str(role.role_arn)
    for iam_by_partition in list(iam_backends.values()):
        for iam in list(iam_by_partition.values()):
            for user in list(iam.users.values()):
                if any(k.access_key_id == key and k.status == "Active" for k in user.access_keys):
                    return str(user.arn)
    return None


def _naive(moment: datetime.datetime) -> datetime.datetime:
    """A UTC datetime without its zone (moto's are naive UTC)."""
    if moment.tzinfo is not None:
        moment = moment.astimezone(datetime.UTC).replace(tzinfo=None)
    return moment


class AthenaMiddleware:
    """WSGI: Athena's query actions answered by ``athena()``, the rest passed to ``app``."""

    def __init__(
        self,
        app: Any,
        athena: Callable[[], LocalAthena],
        deployer: str,
        deployer_key: str = "testing",
    ) -> None:
        self.app = app
        self.athena = athena
        self.deployer = deployer
        self.deployer_key = deployer_key

    def principal(self, authorization: str) -> str:
        """Who signed the request: a principal moto issued the key to, or the deployer for
        the runtime's own key. Any other key (or none) is refused, as AWS refuses a key it
        did not issue: it never falls back to the deployer, who reads everything."""
        found = principal_of(authorization)
        if found:
            return found
        match = _CREDENTIAL.search(authorization or "")
        if match and match.group(1) == self.deployer_key:
            return self.deployer
        raise UnrecognizedClient("The security token included in the request is invalid.")

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        target = environ.get("HTTP_X_AMZ_TARGET", "")
        service, _, action = target.partition(".")
        if service != "AmazonAthena" or action not in _ACTIONS:
            return self.app(environ, start_response)  # type: ignore[no-any-return,unused-ignore]
        length = int(environ.get("CONTENT_LENGTH") or 0)
        raw = environ["wsgi.input"].read(length) if length else b""
        try:
            body = json.loads(raw or b"{}")
            principal = self.principal(environ.get("HTTP_AUTHORIZATION", ""))
            handler = getattr(self.athena(), _snake(action))
            answer = handler(body, principal) if action == "StartQueryExecution" else handler(body)
            status, payload = "200 OK", answer
        except InvalidRequest as exc:
            status = "400 Bad Request"
            payload = {"__type": InvalidRequest.code, "Message": str(exc)}
        except UnrecognizedClient as exc:
            status = "400 Bad Request"
            payload = {"__type": "UnrecognizedClientException", "message": str(exc)}
        except json.JSONDecodeError as exc:
            status = "400 Bad Request"
            payload = {"__type": "SerializationException", "Message": str(exc)}
        except Exception as exc:
            logger.exception("local Athena API failed", extra={"action": action})
            status = "500 Internal Server Error"
            payload = {"__type": "InternalServerException", "Message": str(exc)}
        data = json.dumps(payload, default=str).encode()
        start_response(
            status,
            [
                ("Content-Type", "application/x-amz-json-1.1"),
                ("Content-Length", str(len(data))),
                ("x-amzn-RequestId", "local"),
            ],
        )
        return [data]


class LocalEndpoint:
    """moto's server application behind :class:`AthenaMiddleware`, on a threaded server."""

    def __init__(self, host: str, port: int, wrap: Callable[[Any], Any]) -> None:
        self.host, self.port, self.wrap = host, port, wrap
        self._server: Any = None
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        from moto.moto_server.werkzeug_app import (
            DomainDispatcherApplication,
            MotoRequestHandler,
            create_backend_app,
        )
        from werkzeug.serving import make_server

        app = self.wrap(DomainDispatcherApplication(create_backend_app))
        self._server = make_server(
            self.host, self.port, app, threaded=True, request_handler=MotoRequestHandler
        )
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="lakegov-endpoint", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None

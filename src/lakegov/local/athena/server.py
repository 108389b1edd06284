"""The embedded runtime's AWS endpoint: moto's application, with Athena's API answered here.

Requests whose ``X-Amz-Target`` is one of Athena's query actions go to :class:`LocalAthena`
(which runs the SQL); everything else, Athena's workgroups included, goes to moto.
"""

from __future__ import annotations

import datetime
import json
import re
import selectors
import socket
import threading
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from lakegov.local.athena.service import InvalidRequest, LocalAthena
from lakegov.local.serving import ServerThread
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


def _moto_application() -> Any:
    """moto's dispatching application, with the backend lookup per host remembered: moto
    lists its package folder (some 150 ``isdir`` calls) on every request otherwise."""
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app

    class Dispatcher(DomainDispatcherApplication):
        def __init__(self) -> None:
            super().__init__(create_backend_app)
            self._backends: dict[str | None, Any] = {}

        def get_backend_for_host(self, host: str | None) -> Any:
            if host not in self._backends:
                self._backends[host] = super().get_backend_for_host(host)
            return self._backends[host]

    return Dispatcher()


class _CountedInput:
    """A request body stream that knows how much of its ``length`` was read, and reads no
    further (so what the application left can be drained before the next request)."""

    def __init__(self, stream: Any, length: int) -> None:
        self._stream = stream
        self.remaining = length

    def read(self, size: int | None = -1) -> bytes:
        if size is None or size < 0 or size > self.remaining:
            size = self.remaining
        data: bytes = self._stream.read(size) if size else b""
        self.remaining -= len(data)
        return data

    def readline(self, size: int | None = -1) -> bytes:
        if size is None or size < 0 or size > self.remaining:
            size = self.remaining
        data: bytes = self._stream.readline(size) if size else b""
        self.remaining -= len(data)
        return data

    def readinto(self, buffer: Any) -> int:
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)

    def readlines(self, hint: int = -1) -> list[bytes]:
        return self.read().splitlines(keepends=True)

    def __iter__(self) -> Iterator[bytes]:
        while line := self.readline():
            yield line

    def drain(self) -> None:
        while self.remaining and self.read(min(self.remaining, 65536)):
            pass


_kept_alive = threading.local()  # set while a kept-alive request's response is written


class _Selectors:
    """``selectors`` as werkzeug's server sees it. After each response werkzeug reads
    whatever the client sent next and throws it away (it closes every connection, so that
    can only be the rest of an unread body): on a kept-alive connection that would be the
    next request, so there the read finds nothing (the body was drained exactly instead)."""

    EVENT_READ = selectors.EVENT_READ

    class _Nothing:
        def register(self, *args: Any) -> None:
            pass

        def select(self, timeout: float | None = None) -> list[Any]:
            return []

        def close(self) -> None:
            pass

    def DefaultSelector(self) -> Any:
        if getattr(_kept_alive, "active", False):
            return self._Nothing()
        return selectors.DefaultSelector()


def _request_handler() -> Any:
    import werkzeug.serving
    from moto.moto_server.werkzeug_app import MotoRequestHandler

    werkzeug.serving.selectors = _Selectors()  # type: ignore[assignment]

    class Handler(MotoRequestHandler):
        """Keeps connections open between requests: werkzeug's server closes each one
        ("Connection: close", because http.server cannot drain an unread body), which costs
        a TCP connection and a thread per AWS call. Here the body of a request that says
        its length is counted and drained after the response; any other request closes."""

        protocol_version = "HTTP/1.1"
        _body: _CountedInput | None = None
        _keep = False

        def setup(self) -> None:
            super().setup()
            # no Nagle: the body, written after the headers, does not wait for a delayed ACK
            self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

        def make_environ(self) -> dict[str, Any]:
            environ: dict[str, Any] = super().make_environ()
            self._body = None
            length = environ.get("CONTENT_LENGTH") or ""
            unknown = environ.get("wsgi.input_terminated") or not length.isdigit()
            if unknown and environ.get("REQUEST_METHOD") not in ("GET", "HEAD", "DELETE"):
                self._keep = False  # a body of unknown length: close after it
                _kept_alive.active = False  # and let werkzeug discard what is left
                return environ
            self._keep = True
            self._body = _CountedInput(environ["wsgi.input"], int(length or 0))
            environ["wsgi.input"] = self._body
            return environ

        def send_header(self, keyword: str, value: str) -> None:
            if keyword.lower() == "connection" and value.lower() == "close" and self._keep:
                return
            super().send_header(keyword, value)

        def run_wsgi(self) -> None:
            self._keep = False
            _kept_alive.active = True
            try:
                super().run_wsgi()
            finally:
                _kept_alive.active = False
            if self._body is not None and not self.close_connection:
                try:
                    self._body.drain()
                except OSError:
                    self.close_connection = True
            self._keep = False

    return Handler


class LocalEndpoint:
    """moto's server application behind :class:`AthenaMiddleware`, on a threaded server."""

    def __init__(self, host: str, port: int, wrap: Callable[[Any], Any]) -> None:
        self.host, self.port, self.wrap = host, port, wrap
        self._served: ServerThread[Any] | None = None

    def start(self) -> None:
        from werkzeug.serving import make_server

        app = self.wrap(_moto_application())
        server = make_server(
            self.host, self.port, app, threaded=True, request_handler=_request_handler()
        )
        self._served = ServerThread(server, name="lakegov-endpoint", join_timeout=10).start()

    def stop(self) -> None:
        if self._served is not None:
            self._served.stop()
            self._served = None

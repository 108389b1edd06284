"""The template's Step Functions state machines, run by the embedded runtime.

moto stores state machines but runs none of their states, and never a Distributed Map. This
module runs the definition ``template.yaml`` declares (its ``DefinitionSubstitutions``
resolved as the stack resolves them) with the runtime's own function invocation
(:meth:`LocalRuntime.invoke`): a ``lambda:invoke`` task calls the function's handler in
process, a Distributed Map lists the bucket with ``ListObjectsV2``; what runs, and what
fails as not supported, is :mod:`lakegov.local.states_language`'s (the interpreter).
``StartExecution``, ``DescribeExecution`` and ``StopExecution`` on these state machines are
answered here (the rest of Step Functions goes to moto), so the command line starts a
local run exactly as it starts one on AWS. moto runs in the endpoint's own process and the
functions in the runtime's: the endpoint's :class:`StatesForwarder` sends those three calls
to the runtime's :class:`StatesListener`, which answers the ones for the template's state
machines.
"""

from __future__ import annotations

import http.client
import json
import threading
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from lakegov.local.serving import ServerThread
from lakegov.local.states_language import (
    MAX_PAYLOAD_BYTES,
    Interpreter,
    StatesError,
    check_execution_name,
)
from lakegov.observability import logger

if TYPE_CHECKING:
    from lakegov.local.runtime import LocalRuntime

_ACTIONS = {"StartExecution", "DescribeExecution", "StopExecution"}
STATES_HEADER = "X-Lakegov-States"  # "pass": not for the local state machines


@dataclass
class Execution:
    arn: str
    state_machine_arn: str
    name: str
    input: str
    status: str = "RUNNING"
    output: str | None = None
    error: str = ""
    cause: str = ""
    start: datetime = field(default_factory=lambda: datetime.now(UTC))
    stop: datetime | None = None
    stop_requested: threading.Event = field(default_factory=threading.Event)

    def describe(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "executionArn": self.arn,
            "stateMachineArn": self.state_machine_arn,
            "name": self.name,
            "status": self.status,
            "startDate": self.start.timestamp(),
            "input": self.input,
        }
        if self.stop is not None:
            out["stopDate"] = self.stop.timestamp()
        if self.output is not None:
            out["output"] = self.output
        if self.error:
            out["error"] = self.error
            out["cause"] = self.cause
        return out


class LocalStateMachines:
    """Executions of the template's state machines on the embedded runtime."""

    def __init__(self, runtime: LocalRuntime) -> None:
        self.runtime = runtime
        self.executions: dict[str, Execution] = {}
        self._lock = threading.Lock()

    def definitions(self) -> dict[str, dict[str, Any]]:
        return self.runtime.stack.state_machines if self.runtime.stack is not None else {}

    def handles(self, body: Mapping[str, Any]) -> bool:
        arn = str(body.get("stateMachineArn") or body.get("executionArn") or "")
        if "executionArn" in body:
            return arn in self.executions
        return arn in self.definitions()

    def _invoke(self, function_arn: str, payload: Any) -> Any:
        name = function_arn.rsplit(":", 1)[-1]
        stack = self.runtime.stack
        assert stack is not None
        spec = next((f for f in stack.functions.values() if name in (f.name, f.logical_id)), None)
        if spec is None:
            raise StatesError("Lambda.ResourceNotFoundException", f"no function {function_arn}")
        invocation = self.runtime.invoke(spec, payload, source="states:lambda:invoke")
        if not invocation.ok:
            error, _, cause = invocation.error.partition(": ")
            raise StatesError(error or "Lambda.Unknown", cause or invocation.error)
        return invocation.result

    def start_execution(self, body: Mapping[str, Any]) -> dict[str, Any]:
        machine_arn = str(body["stateMachineArn"])
        name = str(body.get("name") or uuid.uuid4())
        check_execution_name(name)
        if len(str(body.get("input") or "{}").encode()) > MAX_PAYLOAD_BYTES:
            raise StatesError(
                "InvalidExecutionInput", f"the input is larger than {MAX_PAYLOAD_BYTES} bytes"
            )
        arn = machine_arn.replace(":stateMachine:", ":execution:") + f":{name}"
        execution = Execution(arn, machine_arn, name, str(body.get("input") or "{}"))
        with self._lock:
            if arn in self.executions:
                raise StatesError("ExecutionAlreadyExists", f"execution {name} already exists")
            self.executions[arn] = execution
        thread = threading.Thread(
            target=self._run, args=(execution,), name=f"lakegov-states-{name}", daemon=True
        )
        thread.start()
        return {"executionArn": arn, "startDate": execution.start.timestamp()}

    def _run(self, execution: Execution) -> None:
        definition = self.definitions()[execution.state_machine_arn]
        interpreter = Interpreter(
            definition,
            invoke=self._invoke,
            s3=lambda: self.runtime.client("s3"),
            sqs=lambda: self.runtime.client("sqs"),
            stopped=execution.stop_requested,
        )
        try:
            output = interpreter.run(json.loads(execution.input))
            execution.output = json.dumps(output, default=str)
            execution.status = "SUCCEEDED"
        except StatesError as exc:
            execution.error, execution.cause = exc.error, exc.cause
            execution.status = "ABORTED" if exc.error == "States.Aborted" else "FAILED"
        except Exception as exc:  # an interpreter bug fails the execution, loudly
            logger.exception("local state machine failed", extra={"execution": execution.arn})
            execution.error, execution.cause = "States.Runtime", f"{type(exc).__name__}: {exc}"
            execution.status = "FAILED"
        execution.stop = datetime.now(UTC)

    def stop(self) -> None:
        """Abort every running execution (the runtime is stopping: its endpoint goes away)."""
        for execution in list(self.executions.values()):
            execution.stop_requested.set()

    def describe_execution(self, body: Mapping[str, Any]) -> dict[str, Any]:
        return self.executions[str(body["executionArn"])].describe()

    def stop_execution(self, body: Mapping[str, Any]) -> dict[str, Any]:
        execution = self.executions[str(body["executionArn"])]
        execution.stop_requested.set()
        return {"stopDate": datetime.now(UTC).timestamp()}


def answer(
    machines: LocalStateMachines, action: str, body: Mapping[str, Any]
) -> tuple[int, dict[str, Any]] | None:
    """The HTTP status and JSON reply to a Step Functions ``action`` on the template's state
    machines, or ``None`` when the call is not for them (moto answers it)."""
    if action not in _ACTIONS or not machines.handles(body):
        return None
    try:
        if action == "StartExecution":
            return 200, machines.start_execution(body)
        if action == "DescribeExecution":
            return 200, machines.describe_execution(body)
        return 200, machines.stop_execution(body)
    except StatesError as exc:
        return 400, {"__type": exc.error, "message": exc.cause}


class StatesListener:
    """The runtime's side: answers the Step Functions calls the endpoint process forwards
    (``POST /`` with the call's ``X-Amz-Target`` and JSON body) on 127.0.0.1, a free port.
    A call not for the template's state machines gets ``404`` with ``X-Lakegov-States:
    pass``, and the endpoint hands it to moto."""

    def __init__(self, machines: LocalStateMachines) -> None:
        self.machines = machines
        self._served: ServerThread[ThreadingHTTPServer] | None = None

    @property
    def url(self) -> str:
        assert self._served is not None, "the listener is not started"
        host, port = self._served.server.server_address[:2]
        return f"http://{host!s}:{port}/"

    def start(self) -> StatesListener:
        machines = self.machines

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                _, _, action = self.headers.get("X-Amz-Target", "").partition(".")
                try:
                    reply = answer(machines, action, json.loads(raw or b"{}"))
                except Exception as exc:  # a bug answers 500, loudly, and the server lives on
                    logger.exception("local state machines failed a call")
                    reply = (500, {"__type": "ServiceException", "message": str(exc)})
                if reply is None:
                    self.send_response(404)
                    self.send_header(STATES_HEADER, "pass")
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                data = json.dumps(reply[1], default=str).encode()
                self.send_response(reply[0])
                self.send_header("Content-Type", "application/x-amz-json-1.0")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: Any) -> None:
                pass  # no per-request access log

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        server.daemon_threads = True
        self._served = ServerThread(server, name="lakegov-states-listener", join_timeout=5).start()
        return self

    def stop(self) -> None:
        if self._served is not None:
            self._served.stop()
            self._served = None


class StatesForwarder:
    """WSGI, in the endpoint process: ``StartExecution``, ``DescribeExecution`` and
    ``StopExecution`` go to the runtime's :class:`StatesListener` at ``url`` (which runs
    the template's state machines with the functions it hosts); a call it passes back, and
    the rest of Step Functions, go to ``app`` (moto)."""

    def __init__(self, app: Any, url: str, timeout: float = 30.0) -> None:
        self.app = app
        self.url = url
        self.timeout = timeout

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        target = environ.get("HTTP_X_AMZ_TARGET", "")
        service, _, action = target.partition(".")
        if service != "AWSStepFunctions" or action not in _ACTIONS:
            return self.app(environ, start_response)  # type: ignore[no-any-return,unused-ignore]
        length = int(environ.get("CONTENT_LENGTH") or 0)
        raw = environ["wsgi.input"].read(length) if length else b""
        url = urlsplit(self.url)
        connection = http.client.HTTPConnection(
            url.hostname or "127.0.0.1", url.port, timeout=self.timeout
        )
        try:
            connection.request("POST", url.path or "/", body=raw, headers={"X-Amz-Target": target})
            response = connection.getresponse()
            status, data = response.status, response.read()
            passed = status == 404 and response.getheader(STATES_HEADER) == "pass"
        finally:
            connection.close()
        if passed:
            environ["wsgi.input"] = _Replay(raw)
            return self.app(environ, start_response)  # type: ignore[no-any-return,unused-ignore]
        reason = HTTPStatus(status).phrase
        start_response(
            f"{status} {reason}",
            [
                ("Content-Type", "application/x-amz-json-1.0"),
                ("Content-Length", str(len(data))),
                ("x-amzn-RequestId", "local"),
            ],
        )
        return [data]


class _Replay:
    """A request body already read, readable again by the application behind."""

    def __init__(self, raw: bytes) -> None:
        self._raw = raw
        self._pos = 0

    def read(self, size: int = -1) -> bytes:
        end = len(self._raw) if size is None or size < 0 else self._pos + size
        chunk = self._raw[self._pos : end]
        self._pos += len(chunk)
        return chunk

    def readline(self, size: int = -1) -> bytes:
        return self.read(size)

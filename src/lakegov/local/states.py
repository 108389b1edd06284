"""The template's Step Functions state machines, run by the embedded runtime.

moto stores state machines but runs none of their states, and never a Distributed Map. This
module runs the definition ``template.yaml`` declares (its ``DefinitionSubstitutions``
resolved as the stack resolves them) with the runtime's own function invocation
(:meth:`LocalRuntime.invoke`): a ``lambda:invoke`` task calls the function's handler in
process, a Distributed Map lists the bucket with ``ListObjectsV2`` and hands batches of its
``ItemBatcher`` size to its task, at most ``MaxConcurrency`` at once, failing when more than
``ToleratedFailurePercentage`` of its items failed. ``StartExecution``,
``DescribeExecution`` and ``StopExecution`` on these state machines are answered here (the
rest of Step Functions goes to moto), so the command line starts a local run exactly as it
starts one on AWS. moto runs in the endpoint's own process and the functions in the
runtime's: the endpoint's :class:`StatesForwarder` sends those three calls to the runtime's
:class:`StatesListener`, which answers the ones for the template's state machines.

Supported, and nothing else (any other state type or field fails the execution with
``States.Runtime`` and a message naming what is not supported; Step Functions' limits are
kept: 256 KiB for an input, a state's output and a batch, an execution name of 1-80
allowed characters, ``ToleratedFailurePercentage`` within 0-100): Choice (``Variable`` with ``StringEquals``), Map in
DISTRIBUTED mode over ``s3:listObjectsV2``, Task on ``lambda:invoke`` and
``sqs:sendMessage``, Pass, Succeed, Fail; paths of the form ``$`` or ``$.a.b``; ``Retry``
(waiting at most 0.2 s between attempts) and ``Catch`` on ``States.ALL`` or
the error's name.
"""

from __future__ import annotations

import http.client
import json
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from lakegov.local.serving import ServerThread
from lakegov.observability import logger

if TYPE_CHECKING:
    from lakegov.local.runtime import LocalRuntime

_ACTIONS = {"StartExecution", "DescribeExecution", "StopExecution"}
MAX_LOCAL_RETRY_WAIT_S = 0.2
MAX_PAYLOAD_BYTES = 256 * 1024  # Step Functions' limit on an input, output or batch input
MAX_EXECUTION_NAME = 80
_NAME_FORBIDDEN = set(' <>{}[]?*"#%\\^|~`$&,;:/')

# The fields each state type may have here: any other one (InputPath, ResultSelector,
# ItemSelector, ResultWriter, TimeoutSeconds...) fails the execution rather than being
# silently ignored.
_COMMON = {"Type", "Comment", "Next", "End"}
_FIELDS: dict[str, set[str]] = {
    "Succeed": {"Type", "Comment"},
    "Fail": {"Type", "Comment", "Error", "Cause", "ErrorPath", "CausePath"},
    "Choice": {"Type", "Comment", "Choices", "Default"},
    "Pass": _COMMON | {"Result", "ResultPath"},
    "Task": _COMMON | {"Resource", "Parameters", "OutputPath", "ResultPath", "Retry", "Catch"},
    "Map": _COMMON
    | {
        "ItemReader",
        "ItemBatcher",
        "ItemProcessor",
        "MaxConcurrency",
        "ToleratedFailurePercentage",
        "ResultPath",
        "Catch",
    },
}
_SUB_FIELDS = {
    "Retry": {"ErrorEquals", "IntervalSeconds", "MaxAttempts", "BackoffRate"},
    "Catch": {"ErrorEquals", "ResultPath", "Next"},
    "ItemBatcher": {"MaxItemsPerBatch", "BatchInput"},
    "ItemReader": {"Resource", "Parameters"},
}
STATES_HEADER = "X-Lakegov-States"  # "pass": not for the local state machines


class StatesError(Exception):
    """A state failed with ``error`` (a Step Functions error name) and ``cause``."""

    def __init__(self, error: str, cause: str) -> None:
        super().__init__(f"{error}: {cause}")
        self.error = error
        self.cause = cause


def _unsupported(what: str) -> StatesError:
    return StatesError("States.Runtime", f"the embedded runtime does not support {what}")


def check_fields(name: str, state: Mapping[str, Any]) -> None:
    """Fails on a field this interpreter would not honour."""
    kind = state.get("Type")
    allowed = _FIELDS.get(str(kind))
    if allowed is None:
        raise _unsupported(f"{kind} states")
    extra = sorted(set(state) - allowed)
    for key, fields in _SUB_FIELDS.items():
        blocks = state.get(key) or []
        for block in [blocks] if isinstance(blocks, Mapping) else blocks:
            extra += sorted(f"{key}.{f}" for f in set(block) - fields)
    if extra:
        raise _unsupported(f"the field(s) {', '.join(extra)} of the state {name}")


def payload_size(data: Any) -> int:
    return len(json.dumps(data, default=str, separators=(",", ":")).encode())


def check_payload(data: Any, where: str) -> None:
    if payload_size(data) > MAX_PAYLOAD_BYTES:
        raise StatesError(
            "States.DataLimitExceeded",
            f"{where} is larger than the {MAX_PAYLOAD_BYTES} bytes Step Functions allows",
        )


def check_execution_name(name: str) -> None:
    """Step Functions' rules for an execution's name (the API refuses the others)."""
    if (
        not 1 <= len(name) <= MAX_EXECUTION_NAME
        or set(name) & _NAME_FORBIDDEN
        or any(ord(c) < 0x20 or 0x7F <= ord(c) <= 0x9F for c in name)
    ):
        raise StatesError(
            "InvalidName",
            f"{name!r} is not a valid execution name (1-80 characters, no "
            "blanks, brackets, wildcards or control characters)",
        )


def read_path(data: Any, path: str) -> Any:
    """``$`` or ``$.a.b`` of ``data``."""
    if path == "$":
        return data
    if not path.startswith("$."):
        raise _unsupported(f"the path {path!r}")
    value = data
    for part in path[2:].split("."):
        if not isinstance(value, Mapping) or part not in value:
            raise StatesError("States.Runtime", f"the path {path!r} matches nothing in the input")
        value = value[part]
    return value


def parameters(template: Any, data: Any, context: Mapping[str, Any] | None = None) -> Any:
    """A ``Parameters`` block: keys ending in ``.$`` take the value at their path."""
    if isinstance(template, Mapping):
        out: dict[str, Any] = {}
        for key, value in template.items():
            if key.endswith(".$"):
                source = context if str(value).startswith("$$.") else data
                out[key[:-2]] = read_path(source, str(value)[1:] if source is context else value)
            else:
                out[key] = parameters(value, data, context)
        return out
    if isinstance(template, list):
        return [parameters(v, data, context) for v in template]
    return template


def write_result(data: Any, result_path: Any, result: Any) -> Any:
    if result_path is None:
        return data
    if result_path == "$":
        return result
    if not isinstance(result_path, str) or not result_path.startswith("$."):
        raise _unsupported(f"the ResultPath {result_path!r}")
    out = dict(data) if isinstance(data, Mapping) else {}
    target = out
    parts = result_path[2:].split(".")
    for part in parts[:-1]:
        target[part] = dict(target.get(part) or {})
        target = target[part]
    target[parts[-1]] = result
    return out


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


class Interpreter:
    """Runs one definition; ``invoke(function_arn, payload) -> result`` calls a function."""

    def __init__(
        self,
        definition: Mapping[str, Any],
        *,
        invoke: Callable[[str, Any], Any],
        s3: Callable[[], Any],
        sqs: Callable[[], Any],
        stopped: threading.Event | None = None,
    ) -> None:
        self.definition = definition
        self.invoke = invoke
        self.s3 = s3
        self.sqs = sqs
        self.stopped = stopped or threading.Event()

    def run(self, data: Any) -> Any:
        return self._machine(self.definition, data)

    def _machine(self, machine: Mapping[str, Any], data: Any) -> Any:
        states = machine["States"]
        name = machine["StartAt"]
        while True:
            if self.stopped.is_set():
                raise StatesError("States.Aborted", "the execution was stopped")
            state = states[name]
            check_fields(name, state)
            kind = state["Type"]
            if kind == "Succeed":
                return data
            if kind == "Fail":
                error = read_path(data, state["ErrorPath"]) if "ErrorPath" in state else None
                cause = read_path(data, state["CausePath"]) if "CausePath" in state else None
                raise StatesError(
                    str(error or state.get("Error", "States.Fail")),
                    str(cause or state.get("Cause", "")),
                )
            if kind == "Choice":
                name = self._choose(state, data)
                continue
            try:
                if kind == "Pass":
                    result = state.get("Result", data)
                elif kind == "Task":
                    result = self._task(state, data)
                elif kind == "Map":
                    result = self._map(state, data)
                else:
                    raise _unsupported(f"{kind} states")
                data = write_result(data, state.get("ResultPath", "$"), result)
                # OutputPath after ResultPath; null: the output is {} (input and result dropped)
                output_path = state.get("OutputPath", "$")
                data = {} if output_path is None else read_path(data, output_path)
                check_payload(data, f"the output of the state {name}")
            except StatesError as exc:
                catcher = next(
                    (
                        c
                        for c in state.get("Catch", [])
                        if "States.ALL" in c["ErrorEquals"] or exc.error in c["ErrorEquals"]
                    ),
                    None,
                )
                if catcher is None or exc.error == "States.Aborted":
                    raise
                error = {"Error": exc.error, "Cause": exc.cause}
                data = write_result(data, catcher.get("ResultPath", "$"), error)
                name = catcher["Next"]
                continue
            if state.get("End"):
                return data
            name = state["Next"]

    @staticmethod
    def _choose(state: Mapping[str, Any], data: Any) -> str:
        for choice in state.get("Choices", []):
            if "StringEquals" not in choice or "Variable" not in choice:
                raise _unsupported("Choice rules other than Variable/StringEquals")
            try:
                value = read_path(data, choice["Variable"])
            except StatesError:
                continue
            if value == choice["StringEquals"]:
                return str(choice["Next"])
        if "Default" not in state:
            raise StatesError("States.NoChoiceMatched", "no choice matched and no Default")
        return str(state["Default"])

    def _task(self, state: Mapping[str, Any], data: Any) -> Any:
        retries = state.get("Retry", [])
        attempts: dict[int, int] = {}
        while True:
            try:
                result = self._call(state, data)
                break
            except StatesError as exc:
                index = next(
                    (
                        i
                        for i, r in enumerate(retries)
                        if "States.ALL" in r["ErrorEquals"] or exc.error in r["ErrorEquals"]
                    ),
                    None,
                )
                if index is None or exc.error in ("States.Runtime", "States.Aborted"):
                    raise
                rule = retries[index]
                attempts[index] = attempts.get(index, 0) + 1
                if attempts[index] > int(rule.get("MaxAttempts", 3)):
                    raise
                wait = float(rule.get("IntervalSeconds", 1)) * float(
                    rule.get("BackoffRate", 2.0)
                ) ** (attempts[index] - 1)
                # honest about the attempts, not about the wait: local runs stay quick
                time.sleep(min(wait, MAX_LOCAL_RETRY_WAIT_S))
        return result

    def _call(self, state: Mapping[str, Any], data: Any) -> Any:
        resource = str(state["Resource"])
        args = parameters(state.get("Parameters", {}), data)
        if resource == "arn:aws:states:::lambda:invoke":
            payload = args.get("Payload", data)
            return {"Payload": self.invoke(str(args["FunctionName"]), payload), "StatusCode": 200}
        if resource == "arn:aws:states:::sqs:sendMessage":
            body = args["MessageBody"]
            self.sqs().send_message(
                QueueUrl=args["QueueUrl"],
                MessageBody=body if isinstance(body, str) else json.dumps(body, default=str),
            )
            return {}
        raise _unsupported(f"the task resource {resource}")

    def _map(self, state: Mapping[str, Any], data: Any) -> Any:
        processor = state.get("ItemProcessor") or {}
        mode = (processor.get("ProcessorConfig") or {}).get("Mode")
        reader = state.get("ItemReader") or {}
        if mode != "DISTRIBUTED" or reader.get("Resource") != "arn:aws:states:::s3:listObjectsV2":
            raise _unsupported("Map states other than DISTRIBUTED over s3:listObjectsV2")
        listing = parameters(reader.get("Parameters", {}), data)
        items = list(self._list(str(listing["Bucket"]), str(listing.get("Prefix", ""))))
        batcher = state.get("ItemBatcher") or {}
        size = int(batcher.get("MaxItemsPerBatch", 1)) if batcher else 1
        tolerated = float(state.get("ToleratedFailurePercentage", 0))
        if size < 1 or not 0 <= tolerated <= 100:
            raise StatesError(
                "States.Runtime",
                f"MaxItemsPerBatch must be at least 1 (is {size}) and "
                f"ToleratedFailurePercentage within 0-100 (is {tolerated:g})",
            )
        batch_input = parameters(batcher.get("BatchInput", {}), data)
        if batcher:
            inputs: list[Any] = [
                {"Items": items[i : i + size], "BatchInput": batch_input}
                for i in range(0, len(items), size)
            ]
        else:
            inputs = items
        for child in inputs:
            check_payload(child, "a batch's input")
        workers = max(1, min(int(state.get("MaxConcurrency", 0) or 1000), len(inputs) or 1))
        failed_items = 0
        results: list[Any] = []
        errors: list[str] = []
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="lakegov-map") as pool:
            futures = [pool.submit(self._child, processor, child) for child in inputs]
            for child, future in zip(inputs, futures, strict=True):
                try:
                    results.append(future.result())
                except StatesError as exc:
                    failed_items += len(child["Items"]) if batcher else 1
                    errors.append(exc.cause or exc.error)
                    results.append(None)
        if items and failed_items * 100.0 / len(items) > tolerated:
            raise StatesError(
                "States.ExceedToleratedFailureThreshold",
                f"{failed_items} of {len(items)} items failed (tolerated: {tolerated:g}%): "
                + "; ".join(errors[:3]),
            )
        return results

    def _child(self, processor: Mapping[str, Any], child: Any) -> Any:
        return self._machine(processor, child)

    def _list(self, bucket: str, prefix: str) -> Iterable[dict[str, Any]]:
        """The items ``s3:listObjectsV2`` gives a Distributed Map (one per object)."""
        paginator = self.s3().get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=bucket, Prefix=prefix):
            for obj in page.get("Contents") or []:
                yield {
                    "Key": obj["Key"],
                    "Etag": str(obj.get("ETag", "")),
                    "Size": int(obj.get("Size", 0)),
                    "LastModified": obj["LastModified"].timestamp()
                    if hasattr(obj.get("LastModified"), "timestamp")
                    else obj.get("LastModified"),
                    "StorageClass": obj.get("StorageClass", "STANDARD"),
                }


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

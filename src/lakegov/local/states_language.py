"""The Amazon States Language, interpreted: the subset the template's state machines use.

:class:`Interpreter` runs one definition with the functions it is given: ``invoke`` calls a
function (a ``lambda:invoke`` task), ``s3`` and ``sqs`` give clients (a Distributed Map's
``ListObjectsV2``, a ``sqs:sendMessage`` task). A Distributed Map hands batches of its
``ItemBatcher`` size to its task, at most ``MaxConcurrency`` at once, failing when more
than ``ToleratedFailurePercentage`` of its items failed. :mod:`lakegov.local.states` runs
the template's state machines with it.

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

import json
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any

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

"""The strict layer: refuse in tests what AWS refuses, with AWS's error codes.

moto accepts requests AWS rejects: a 300 KB EventBridge entry, 11 entries in one
PutEvents, a 101-partition BatchCreatePartition, a CopyObject of a 6 GiB object. Code that
passes on moto and breaks on AWS is the worst kind of defect, so every botocore client in
the test process checks its requests against AWS's documented limits before they reach
moto, and raises the ClientError AWS would return.

The seam is botocore's ``before-parameter-build`` event (the caller's parameters, before
serialization), registered as a built-in handler: every
session created afterwards (boto3's default session, each ``lakegov.aws.Clients``
session, the embedded runtime's clients and the handlers it runs in-process) gets it. It
is installed from ``tests/conftest.py`` before any client exists; the ``strict_aws``
fixture there turns it on for every test and hands the limits to tests that lower one.

DynamoDB ``UpdateItem`` results over the item limit are refused by moto itself (it sizes
the item after the update, ``ValidationException``); the layer checks what can be judged
from the request.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote

import botocore.handlers
from botocore.exceptions import ClientError

KiB = 1024
MiB = 1024**2
GiB = 1024**3


@dataclass
class Limits:
    """AWS's documented limits (tests may lower one to reach it with small data)."""

    dynamodb_item_bytes: int = 400 * KiB
    message_bytes: int = 256 * KiB  # SQS (as EventBridge delivers), SNS, EventBridge entries
    put_events_entries: int = 10
    batch_entries: int = 10  # SQS SendMessageBatch, SNS PublishBatch
    lakeformation_batch_entries: int = 20
    glue_batch_create_partitions: int = 100
    glue_batch_delete_partitions: int = 25
    copy_object_bytes: int = 5 * GiB
    upload_part_copy_bytes: int = 5 * GiB
    s3_key_bytes: int = 1024
    lambda_async_payload_bytes: int = 256 * KiB


LIMITS = Limits()
_state = {"on": False}


def _refuse(operation: str, code: str, message: str, status: int = 400) -> None:
    raise ClientError(
        {
            "Error": {"Code": code, "Message": f"{message} (lakegov strict layer: AWS limit)"},
            "ResponseMetadata": {"HTTPStatusCode": status},
        },
        operation,
    )


def attribute_bytes(value: dict[str, Any]) -> int:
    """The size DynamoDB counts for one attribute value (its documented sizing rules)."""
    ((kind, inner),) = value.items()
    if kind == "S":
        return len(str(inner).encode())
    if kind == "N":
        digits = str(inner).lstrip("-").replace(".", "").lstrip("0") or "0"
        return (len(digits) + 1) // 2 + 1
    if kind == "B":
        return len(inner)
    if kind in ("BOOL", "NULL"):
        return 1
    if kind == "SS":
        return sum(len(str(v).encode()) for v in inner)
    if kind == "NS":
        return sum(attribute_bytes({"N": v}) for v in inner)
    if kind == "BS":
        return sum(len(v) for v in inner)
    if kind == "L":
        return 3 + sum(1 + attribute_bytes(v) for v in inner)
    if kind == "M":
        return 3 + sum(1 + len(k.encode()) + attribute_bytes(v) for k, v in inner.items())
    return len(json.dumps(inner, default=str).encode())


def item_bytes(item: dict[str, Any]) -> int:
    return sum(len(name.encode()) + attribute_bytes(value) for name, value in item.items())


def _text_bytes(value: Any) -> int:
    if isinstance(value, bytes | bytearray):
        return len(value)
    return len(str(value or "").encode())


def _attributes_bytes(attributes: dict[str, Any] | None) -> int:
    total = 0
    for name, attr in (attributes or {}).items():
        total += len(name.encode()) + len(str(attr.get("DataType", "")).encode())
        total += _text_bytes(attr.get("StringValue") or attr.get("BinaryValue") or "")
    return total


def _check_dynamodb(op: str, params: dict[str, Any]) -> None:
    items = []
    if op == "PutItem":
        items.append(params.get("Item") or {})
    elif op == "BatchWriteItem":
        for requests in (params.get("RequestItems") or {}).values():
            items.extend((r.get("PutRequest") or {}).get("Item") or {} for r in requests)
    elif op == "TransactWriteItems":
        items.extend(
            (t.get("Put") or {}).get("Item") or {} for t in params.get("TransactItems", [])
        )
    for item in items:
        size = item_bytes(item)
        if size > LIMITS.dynamodb_item_bytes:
            _refuse(
                op,
                "ValidationException",
                f"Item size has exceeded the maximum allowed size ({size} bytes)",
            )


def _check_sqs(op: str, params: dict[str, Any]) -> None:
    if op == "SendMessage":
        size = _text_bytes(params.get("MessageBody")) + _attributes_bytes(
            params.get("MessageAttributes")
        )
        if size > LIMITS.message_bytes:
            _refuse(
                op,
                "InvalidParameterValue",
                f"Message must be shorter than {LIMITS.message_bytes} bytes ({size})",
            )
    elif op == "SendMessageBatch":
        entries = params.get("Entries") or []
        if len(entries) > LIMITS.batch_entries:
            _refuse(
                op, "AWS.SimpleQueueService.TooManyEntriesInBatchRequest", f"{len(entries)} entries"
            )
        total = sum(
            _text_bytes(e.get("MessageBody")) + _attributes_bytes(e.get("MessageAttributes"))
            for e in entries
        )
        if total > LIMITS.message_bytes:
            _refuse(
                op,
                "AWS.SimpleQueueService.BatchRequestTooLong",
                f"Batch requests cannot be longer than {LIMITS.message_bytes} bytes ({total})",
            )


def _event_entry_bytes(entry: dict[str, Any]) -> int:
    # EventBridge's documented entry size: Time (14), Source, DetailType, Detail, Resources
    size = 14 if entry.get("Time") else 0
    size += _text_bytes(entry.get("Source")) + _text_bytes(entry.get("DetailType"))
    size += _text_bytes(entry.get("Detail"))
    size += sum(_text_bytes(r) for r in entry.get("Resources") or [])
    return size


def _check_events(op: str, params: dict[str, Any]) -> None:
    if op != "PutEvents":
        return
    entries = params.get("Entries") or []
    if len(entries) > LIMITS.put_events_entries:
        _refuse(
            op,
            "ValidationException",
            f"1 validation error detected: Value at 'entries' failed to satisfy constraint: Member must have length less than or equal to {LIMITS.put_events_entries} (got {len(entries)})",
        )
    total = sum(_event_entry_bytes(e) for e in entries)
    if total > LIMITS.message_bytes:
        _refuse(
            op,
            "ValidationException",
            f"Total size of the entries in the request is over the limit ({total} bytes)",
        )


def _check_sns(op: str, params: dict[str, Any]) -> None:
    if op == "Publish":
        size = _text_bytes(params.get("Message")) + _attributes_bytes(
            params.get("MessageAttributes")
        )
        if size > LIMITS.message_bytes:
            _refuse(op, "InvalidParameter", f"Invalid parameter: Message too long ({size} bytes)")
    elif op == "PublishBatch":
        entries = params.get("PublishBatchRequestEntries") or []
        if len(entries) > LIMITS.batch_entries:
            _refuse(op, "TooManyEntriesInBatchRequest", f"{len(entries)} entries")
        total = sum(
            _text_bytes(e.get("Message")) + _attributes_bytes(e.get("MessageAttributes"))
            for e in entries
        )
        if total > LIMITS.message_bytes:
            _refuse(op, "BatchRequestTooLong", f"{total} bytes")


def _check_lakeformation(op: str, params: dict[str, Any]) -> None:
    if op in ("BatchGrantPermissions", "BatchRevokePermissions"):
        entries = params.get("Entries") or []
        if len(entries) > LIMITS.lakeformation_batch_entries:
            _refuse(
                op,
                "InvalidInputException",
                f"Entries: at most {LIMITS.lakeformation_batch_entries} ({len(entries)})",
            )


def _check_glue(op: str, params: dict[str, Any]) -> None:
    if op == "BatchCreatePartition":
        n = len(params.get("PartitionInputList") or [])
        if n > LIMITS.glue_batch_create_partitions:
            _refuse(
                op,
                "ValidationException",
                f"1 validation error detected: Value at 'partitionInputList' failed to satisfy constraint: Member must have length less than or equal to {LIMITS.glue_batch_create_partitions} (got {n})",
            )
    elif op == "BatchDeletePartition":
        n = len(params.get("PartitionsToDelete") or [])
        if n > LIMITS.glue_batch_delete_partitions:
            _refuse(
                op,
                "ValidationException",
                f"1 validation error detected: Value at 'partitionsToDelete' failed to satisfy constraint: Member must have length less than or equal to {LIMITS.glue_batch_delete_partitions} (got {n})",
            )


def _source_size(source: Any) -> int | None:
    """The stored size of a copy source, read from moto's backend (no request made)."""
    from moto.s3.models import s3_backends

    if isinstance(source, str):  # botocore has encoded it: bucket/key[?versionId=v]
        path, _, query = source.lstrip("/").partition("?versionId=")
        bucket, _, quoted = path.partition("/")
        key, version = unquote(quoted), (query or None)
    else:
        bucket, key, version = source.get("Bucket"), source.get("Key"), source.get("VersionId")
    for account_backends in list(s3_backends.values()):
        for backend in list(account_backends.values()):
            if bucket in backend.buckets:
                try:
                    obj = backend.get_object(bucket, key, version_id=version)
                except Exception:  # moto answers the missing key itself
                    return None
                return int(obj.size) if obj is not None else None
    return None


def _range_bytes(spec: str | None) -> int | None:
    if not spec or not spec.startswith("bytes="):
        return None
    first, _, last = spec[len("bytes=") :].partition("-")
    return int(last) - int(first) + 1


def _check_s3(op: str, params: dict[str, Any]) -> None:
    key = params.get("Key")
    if (
        key is not None
        and len(str(key).encode()) > LIMITS.s3_key_bytes
        and op
        in (
            "PutObject",
            "CopyObject",
            "CreateMultipartUpload",
        )
    ):
        _refuse(op, "KeyTooLongError", "Your key is too long")
    if op == "CopyObject":
        size = _source_size(params.get("CopySource"))
        if size is not None and size > LIMITS.copy_object_bytes:
            _refuse(
                op,
                "InvalidRequest",
                f"The specified copy source is larger than the maximum allowable size for a copy source: {LIMITS.copy_object_bytes}",
            )
    elif op == "UploadPartCopy":
        size = _range_bytes(params.get("CopySourceRange"))
        if size is None:
            size = _source_size(params.get("CopySource"))
        if size is not None and size > LIMITS.upload_part_copy_bytes:
            _refuse(
                op,
                "InvalidRequest",
                f"The specified copy range is larger than {LIMITS.upload_part_copy_bytes} bytes",
            )


def _check_lambda(op: str, params: dict[str, Any]) -> None:
    if op == "Invoke" and params.get("InvocationType") == "Event":
        size = _text_bytes(params.get("Payload"))
        if size > LIMITS.lambda_async_payload_bytes:
            _refuse(
                op,
                "RequestTooLargeException",
                f"Request must be smaller than {LIMITS.lambda_async_payload_bytes} bytes for the InvokeAsync operation",
                413,
            )


_CHECKS = {
    "dynamodb": _check_dynamodb,
    "sqs": _check_sqs,
    "events": _check_events,
    "sns": _check_sns,
    "lakeformation": _check_lakeformation,
    "glue": _check_glue,
    "s3": _check_s3,
    "lambda": _check_lambda,
}


def _check_request(model: Any, params: Any, **_: Any) -> None:
    if not _state["on"]:
        return
    check = _CHECKS.get(model.service_model.endpoint_prefix) or _CHECKS.get(
        model.service_model.service_name
    )
    if check is not None:
        check(model.name, params if isinstance(params, dict) else {})


def install() -> None:
    """Register the check for every botocore session created from now on (idempotent)."""
    handler = ("before-parameter-build", _check_request)
    if handler not in botocore.handlers.BUILTIN_HANDLERS:
        botocore.handlers.BUILTIN_HANDLERS.append(handler)


def enable(on: bool = True) -> None:
    _state["on"] = on

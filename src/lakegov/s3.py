"""S3 operations whose limits the plain API call does not cover.

``CopyObject`` copies at most 5 GiB in one request; anything larger (up to S3's object
limit) must be copied as a multipart upload of ``UploadPartCopy`` ranges, each 5 MiB to
5 GiB, at most 10,000 of them. :func:`copy_object` picks the right one by the source's size.
``DeleteObjects`` takes at most 1,000 keys and answers 200 even when some were not deleted:
:func:`delete_keys` batches them and fails on any key S3 reports as not deleted.
:func:`upload_file` writes a local file as one ``PutObject`` below the transfer manager's
multipart threshold (boto3's ``upload_file`` starts a thread pool for every file, small
ones included), and through the transfer manager's multipart upload above it.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

from lakegov.errors import PermanentError, RetryableError

MiB = 1024**2
GiB = 1024**3
COPY_OBJECT_LIMIT = 5 * GiB  # the largest object one CopyObject request may copy
MIN_PART_BYTES = 5 * MiB
MAX_PART_BYTES = 5 * GiB
MAX_PARTS = 10_000
MAX_DELETE_KEYS = 1000  # keys one DeleteObjects request may name
DEFAULT_PART_BYTES = 512 * MiB
MULTIPART_THRESHOLD = 8 * MiB  # boto3's default: from it up, a multipart upload


def upload_file(s3: Any, path: str | os.PathLike[str], bucket: str, key: str) -> None:
    """The local file at ``path`` written to ``bucket``/``key``."""
    if os.path.getsize(path) < MULTIPART_THRESHOLD:
        with open(path, "rb") as body:
            s3.put_object(Bucket=bucket, Key=key, Body=body)
    else:
        from boto3.s3.transfer import TransferConfig

        config = TransferConfig(multipart_threshold=MULTIPART_THRESHOLD)
        s3.upload_file(os.fspath(path), bucket, key, Config=config)


def part_ranges(size: int, part_bytes: int = DEFAULT_PART_BYTES) -> list[tuple[int, int]]:
    """Inclusive byte ranges covering ``size`` bytes in at most MAX_PARTS parts."""
    if size <= 0:
        return []
    part = max(part_bytes, MIN_PART_BYTES, -(-size // MAX_PARTS))
    part = -(-part // MiB) * MiB  # whole MiB
    if part > MAX_PART_BYTES:
        raise PermanentError(f"{size} bytes exceed what a multipart copy can hold")
    return [(start, min(start + part, size) - 1) for start in range(0, size, part)]


def copy_object(
    s3: Any,
    *,
    source: Mapping[str, str],
    bucket: str,
    key: str,
    metadata: Mapping[str, str] | None = None,
    size: int | None = None,
    part_bytes: int = DEFAULT_PART_BYTES,
) -> None:
    """Copy ``source`` ({Bucket, Key[, VersionId]}) to ``bucket``/``key``, of any size.

    ``metadata`` replaces the source's user metadata (None keeps it). ``size`` saves a
    HeadObject when the caller already knows it.
    """
    if size is None:
        head_args = {"Bucket": source["Bucket"], "Key": source["Key"]}
        if source.get("VersionId"):
            head_args["VersionId"] = source["VersionId"]
        size = int(s3.head_object(**head_args)["ContentLength"])
    if size <= COPY_OBJECT_LIMIT:
        extra: dict[str, Any] = {}
        if metadata is not None:
            extra = {"MetadataDirective": "REPLACE", "Metadata": dict(metadata)}
        s3.copy_object(Bucket=bucket, Key=key, CopySource=dict(source), **extra)
        return
    _multipart_copy(s3, source, bucket, key, metadata, size, part_bytes)


def _multipart_copy(
    s3: Any,
    source: Mapping[str, str],
    bucket: str,
    key: str,
    metadata: Mapping[str, str] | None,
    size: int,
    part_bytes: int,
) -> None:
    head_args = {"Bucket": source["Bucket"], "Key": source["Key"]}
    if source.get("VersionId"):
        head_args["VersionId"] = source["VersionId"]
    head = s3.head_object(**head_args)
    # Every part is copied from the object the HEAD saw: an overwrite during the copy fails
    # it (412 PreconditionFailed, upload aborted) instead of stitching two objects together.
    same_object = {"CopySourceIfMatch": head["ETag"]}
    # the ranges cover the object being copied (the caller's size may predate an overwrite)
    ranges = part_ranges(int(head.get("ContentLength", size)), part_bytes)
    create: dict[str, Any] = {"Bucket": bucket, "Key": key}
    if metadata is None:  # CopyObject's default: the source's metadata and content type
        create["Metadata"] = head.get("Metadata") or {}
        if head.get("ContentType"):
            create["ContentType"] = head["ContentType"]
    else:
        create["Metadata"] = dict(metadata)
    upload_id = s3.create_multipart_upload(**create)["UploadId"]
    try:
        parts = []
        for number, (first, last) in enumerate(ranges, start=1):
            response = s3.upload_part_copy(
                Bucket=bucket,
                Key=key,
                UploadId=upload_id,
                PartNumber=number,
                CopySource=dict(source),
                CopySourceRange=f"bytes={first}-{last}",
                **same_object,
            )
            parts.append({"PartNumber": number, "ETag": response["CopyPartResult"]["ETag"]})
        s3.complete_multipart_upload(
            Bucket=bucket, Key=key, UploadId=upload_id, MultipartUpload={"Parts": parts}
        )
    except BaseException:
        s3.abort_multipart_upload(Bucket=bucket, Key=key, UploadId=upload_id)
        raise


def delete_keys(s3: Any, bucket: str, keys: Sequence[str]) -> None:
    """Delete ``keys`` (empty ones ignored) in DeleteObjects batches; a key S3 could not
    delete raises :class:`RetryableError` naming it (a missing key is not an error)."""
    wanted = [k for k in keys if k]
    for start in range(0, len(wanted), MAX_DELETE_KEYS):
        chunk = [{"Key": k} for k in wanted[start : start + MAX_DELETE_KEYS]]
        reply = s3.delete_objects(Bucket=bucket, Delete={"Objects": chunk, "Quiet": True})
        errors = reply.get("Errors") or []
        if errors:
            first = errors[0]
            raise RetryableError(
                f"{len(errors)} of {len(chunk)} objects in s3://{bucket} not deleted, e.g. "
                f"{first.get('Key')}: {first.get('Code')} {first.get('Message', '')}".rstrip()
            )

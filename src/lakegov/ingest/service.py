"""Converting one landed object, exactly once, losing nothing.

Order of effects, chosen so that a crash at any point leaves no partial or duplicate output:

1. ``claim`` the object (bucket, key, version or ETag) in the audit table: a duplicate
   delivery of finished work stops here; a concurrent one is retried later.
2. Stream the object through the converter into a local temporary file (``/tmp``).
3. Upload it under its final, deterministic key (one S3 PUT or multipart upload: the object
   appears whole or not at all; a retry overwrites the same key, never adds a second one).
4. Record the outcome, then publish ``FileConverted`` (or ``SchemaChanged`` first).

A bad file (:class:`~lakegov.errors.RejectedFile`) is copied to ``quarantine/`` in the raw
bucket with its reason in the object's metadata, audited as REJECTED and announced with
``FileRejected``; its message is then done (never retried). Anything else releases the
claim and propagates, so SQS retries it and, after a few receives, dead-letters it.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any
from urllib.parse import unquote_plus

import pyarrow as pa
from botocore.exceptions import ClientError

from lakegov.audit import AuditStore
from lakegov.aws import error_code
from lakegov.convert.engine import ConversionResult, convert
from lakegov.convert.options import DatasetDocument, DatasetOptions, load_document, select_document
from lakegov.errors import InvalidDocument, RejectedFile, RetryableError
from lakegov.events import EventPublisher, utc_now
from lakegov.ingest.athena import AthenaConverter
from lakegov.layout import DatasetRef, parse_key
from lakegov.observability import count, logger
from lakegov.schema import schema_columns, schema_from_columns

QUARANTINE_PREFIX = "quarantine/"
ATHENA_FORMATS = ("csv", "json")  # what the Athena path reads; others stay in Lambda
DATASETS_PREFIX = "datasets/"


@dataclass(frozen=True)
class LandedObject:
    bucket: str
    key: str
    size: int = 0
    etag: str | None = None
    version_id: str | None = None
    deleted: bool = False
    sequencer: str = ""  # S3 orders events of one key by it (hex, compare zero-padded)

    @property
    def version(self) -> str:
        return self.version_id or self.etag or "-"

    @property
    def subject(self) -> str:
        return f"s3://{self.bucket}/{self.key}"

    @classmethod
    def from_eventbridge(cls, event: dict[str, Any]) -> LandedObject:
        """From an S3 "Object Created" EventBridge event (detail.bucket / detail.object)."""
        detail = event["detail"]
        obj = detail["object"]
        return cls(
            deleted=event.get("detail-type") == "Object Deleted",
            bucket=detail["bucket"]["name"],
            key=obj["key"],
            size=int(obj.get("size", 0)),
            etag=obj.get("etag") or obj.get("eTag"),
            version_id=obj.get("version-id"),
            sequencer=str(obj.get("sequencer") or ""),
        )


@dataclass
class Outcome:
    status: str  # PROCESSED | REJECTED | DUPLICATE | IGNORED
    key: str
    reason: str = ""
    output_keys: list[str] = field(default_factory=list)
    rows: int = 0


@dataclass
class DatasetDocuments:
    """The ``datasets/`` documents of the config bucket, re-read at most every ``ttl_s``."""

    s3: Any
    bucket: str
    ttl_s: float = 30.0
    _loaded_at: float = -1e9
    _documents: list[DatasetDocument] = field(default_factory=list)

    def all(self) -> list[DatasetDocument]:
        if time.monotonic() - self._loaded_at > self.ttl_s:
            self._documents = list(self._load())
            self._loaded_at = time.monotonic()
        return self._documents

    def _load(self) -> Any:
        paginator = self.s3.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=self.bucket, Prefix=DATASETS_PREFIX):
            for item in page.get("Contents", []):
                key = item["Key"]
                if not key.endswith(".json"):
                    continue
                body = self.s3.get_object(Bucket=self.bucket, Key=key)["Body"].read()
                try:
                    yield load_document(json.loads(body), source=key)
                except (InvalidDocument, ValueError) as exc:
                    # Refused documents are reported by the config path; here they do not apply.
                    logger.warning(
                        "ignoring invalid dataset document", extra={"key": key, "error": str(exc)}
                    )

    def for_key(self, key: str) -> DatasetDocument | None:
        return select_document(self.all(), key)


class Converter:
    """Everything needed to convert landed objects; built once per warm container."""

    def __init__(
        self,
        *,
        s3: Any,
        publisher: EventPublisher,
        audit: AuditStore,
        settings: Any,
        documents: DatasetDocuments | None = None,
        convert_fn: Callable[..., ConversionResult] = convert,
        athena: AthenaConverter | None = None,
    ) -> None:
        self.s3 = s3
        self.publisher = publisher
        self.audit = audit
        self.settings = settings
        self.documents = documents or DatasetDocuments(s3, settings.config_bucket)
        self.convert_fn = convert_fn
        self.athena = athena

    # -- the unit of work --------------------------------------------------------------
    def process(self, landed: LandedObject) -> Outcome:
        outcome = self._process(landed)
        if outcome.status == "IGNORED":
            count("LandedEventsIgnored")
        return outcome

    def _process(self, landed: LandedObject) -> Outcome:
        if landed.key.startswith(QUARANTINE_PREFIX) or landed.key.endswith("/"):
            return Outcome("IGNORED", landed.key, reason="quarantine copy or folder marker")
        if landed.deleted:
            return self._remove(landed)
        key = self._existing_key(landed)
        landed = replace(landed, key=key)
        claim = self.audit.claim(
            "file",
            landed.subject,
            landed.version,
            attributes={
                "bucket": landed.bucket,
                "key": key,
                "size": landed.size,
                "received_at": utc_now(),
            },
        )
        if claim.duplicate:
            count("DuplicateDeliveries")
            logger.info("duplicate delivery; already done", extra={"key": key})
            return Outcome("DUPLICATE", key, reason=str(claim.item.get("status")))
        ref: DatasetRef | None = None
        try:
            ref = parse_key(key)
            document = self.documents.for_key(key)
            options = document.options if document else DatasetOptions()
            if options.table_name:
                ref = ref.with_table_name(options.table_name)
            max_bytes = min(options.max_file_bytes, self.settings.max_file_bytes)
            if landed.size > max_bytes:
                raise RejectedFile(
                    "too_large", f"{landed.size} bytes is over the limit of {max_bytes}"
                )
            fmt = options.format or ref.format
            if (
                self.athena is not None
                and landed.size > self.settings.athena_threshold_bytes
                and fmt in ATHENA_FORMATS
                and options.columns is None
            ):
                query_id = self.athena.start(
                    bucket=landed.bucket,
                    key=key,
                    version=landed.version,
                    ref=ref,
                    fmt=str(fmt),
                    delimiter=options.delimiter or ref.delimiter,
                )
                return Outcome("CONVERTING", key, reason=f"Athena query {query_id}")
            return self._convert(landed, ref, options)
        except RejectedFile as rejected:
            return self._reject(landed, ref, rejected)
        except Exception as exc:
            self.audit.release(
                "file", landed.subject, landed.version, note=f"{type(exc).__name__}: {exc}"
            )
            count("ConversionErrors")
            raise

    def _existing_key(self, landed: LandedObject) -> str:
        """The key as stored: S3 notifications URL-encode keys, EventBridge may not."""
        if "%" not in landed.key and "+" not in landed.key:
            return landed.key
        try:
            self.s3.head_object(Bucket=landed.bucket, Key=landed.key)
            return landed.key
        except ClientError as exc:
            if error_code(exc) not in ("404", "NoSuchKey", "NotFound"):
                raise
        return unquote_plus(landed.key)

    def _previous_schema(self, ref: DatasetRef) -> pa.Schema | None:
        item = self.audit.get("dataset", ref.table_name, "schema")
        if not item or not item.get("columns"):
            return None
        try:
            return schema_from_columns(item["columns"])
        except ValueError as exc:
            # written by an older version in a form no longer read: say so, convert without
            logger.warning(
                "stored schema unreadable; converting without the previous schema",
                extra={"table": ref.table_name, "error": str(exc)},
            )
            return None

    def _still_current(self, landed: LandedObject) -> bool:
        """False when the key was deleted or replaced since this version landed (its own
        event handles the newer version; converting this one would resurrect old data)."""
        try:
            head = self.s3.head_object(Bucket=landed.bucket, Key=landed.key)
        except ClientError as exc:
            if error_code(exc) in ("404", "NoSuchKey", "NotFound"):
                return False
            raise RetryableError(f"checking {landed.subject}: {error_code(exc)}") from exc
        if landed.version_id and head.get("VersionId") not in (None, "null"):
            return bool(head["VersionId"] == landed.version_id)
        return True

    def _convert(self, landed: LandedObject, ref: DatasetRef, options: DatasetOptions) -> Outcome:
        started = utc_now()
        if not self._still_current(landed):
            self.audit.record(
                "file",
                landed.subject,
                landed.version,
                "SUPERSEDED",
                note="deleted or replaced before it was converted",
            )
            count("FilesSuperseded")
            return Outcome("SUPERSEDED", landed.key, reason="no longer the key's current version")
        token = (landed.version_id or landed.etag or "").replace('"', "")[:16]
        output_key = ref.output_key(token)
        exceptions_key = ref.exceptions_key(token)
        previous = self._previous_schema(ref)
        with tempfile.TemporaryDirectory(prefix="lakegov-") as workdir:
            out_path = os.path.join(workdir, "out.parquet")
            exc_path = os.path.join(workdir, "exceptions.jsonl")
            exc_handles: list[Any] = []

            def open_exceptions() -> Any:
                handle = open(exc_path, "wb")  # noqa: SIM115 - closed below, after the conversion
                exc_handles.append(handle)
                return handle

            kwargs: dict[str, Any] = {"VersionId": landed.version_id} if landed.version_id else {}
            try:
                obj = self.s3.get_object(Bucket=landed.bucket, Key=landed.key, **kwargs)
                body = obj["Body"]
                last_modified = obj["LastModified"].isoformat() if obj.get("LastModified") else ""
            except ClientError as exc:
                if error_code(exc) in ("NoSuchKey", "NoSuchVersion"):
                    raise RejectedFile(
                        "missing", "the object was deleted before it could be read"
                    ) from exc
                raise RetryableError(f"reading {landed.subject}: {error_code(exc)}") from exc
            try:
                with open(out_path, "wb") as sink:
                    result = self.convert_fn(
                        body,
                        sink,
                        options=options,
                        source_name=landed.key,
                        previous_schema=previous,
                        exceptions_sink=open_exceptions,
                        workdir=workdir,
                    )
            finally:
                body.close()
                for handle in exc_handles:
                    handle.close()
            self.s3.upload_file(out_path, self.settings.formatted_bucket, output_key)
            wrote_exceptions = bool(exc_handles) and os.path.getsize(exc_path) > 0
            if wrote_exceptions:
                self.s3.upload_file(exc_path, self.settings.formatted_bucket, exceptions_key)
        written = [output_key, *([exceptions_key] if wrote_exceptions else [])]
        superseded = self._make_current(landed, last_modified, written)
        if superseded is not None:
            return superseded
        columns = schema_columns(result.schema)
        self.audit.record(
            "dataset",
            ref.table_name,
            "schema",
            "CURRENT",
            attributes={"columns": columns, "fingerprint": result.schema_fingerprint},
        )
        detail: dict[str, Any] = {
            "bucket": landed.bucket,
            "key": landed.key,
            "version_id": landed.version_id,
            "etag": landed.etag,
            "dataset": ref.dataset_id,
            "table": ref.table_name,
            "partition_values": dict(ref.partitions),
            "output_bucket": self.settings.formatted_bucket,
            "output_keys": [output_key],
            "rows": result.rows_out,
            "rows_in": result.rows_in,
            "bad_rows": result.bad_row_count,
            "exceptions_key": exceptions_key if wrote_exceptions else None,
            "schema_fingerprint": result.schema_fingerprint,
            "columns": columns,
            "schema_changes": options.schema_changes,
            "engine": "lambda",
            "converted_at": utc_now(),
        }
        if options.catalog_mode:
            detail["catalog_mode"] = options.catalog_mode
        self.publisher.publish("FileConverted", detail)
        # marked done only once the event is out: a crash in between redelivers (at least once)
        self.audit.record(
            "file",
            landed.subject,
            landed.version,
            "PROCESSED",
            note=result.summary()[:500],
            attributes={
                "dataset": ref.dataset_id,
                "table": ref.table_name,
                "rows_in": result.rows_in,
                "rows_out": result.rows_out,
                "bad_rows": result.bad_row_count,
                "output_keys": [output_key],
                "exceptions_key": exceptions_key if wrote_exceptions else None,
                "started_at": started,
                "finished_at": utc_now(),
                "format": result.format,
            },
        )
        count("FilesConverted")
        count("RowsConverted", result.rows_out)
        logger.info(
            "converted",
            extra={"key": landed.key, "output": output_key, "summary": result.summary()},
        )
        return Outcome("PROCESSED", landed.key, output_keys=[output_key], rows=result.rows_out)

    def _make_current(
        self, landed: LandedObject, last_modified: str, written: list[str]
    ) -> Outcome | None:
        """A new version of a key replaces the output of the one before: its rows, not both.

        Versions are ordered by S3's event sequencer, then LastModified, then processing
        time (only the embedded runtime, whose sequencer is constant, ever needs the last).
        An older version converted after a newer one removes its own output instead.
        """
        order = f"{landed.sequencer:0>32}|{last_modified}|{utc_now()}"
        won, previous = self.audit.advance_pointer(
            "file-current",
            landed.subject,
            order=order,
            version=landed.version,
            attributes={"output_keys": written},
        )
        if not won:
            self._delete_outputs(written)
            self.audit.record(
                "file",
                landed.subject,
                landed.version,
                "SUPERSEDED",
                note="a newer version of this key was converted first; output removed",
            )
            count("FilesSuperseded")
            return Outcome("SUPERSEDED", landed.key, reason="a newer version is current")
        if previous and previous.get("current_version") != landed.version:
            stale = [k for k in previous.get("output_keys", []) if k not in written]
            self._delete_outputs(stale)
            if stale:
                logger.info(
                    "replaced the previous version's output",
                    extra={"key": landed.key, "removed": stale},
                )
        return None

    def _remove(self, landed: LandedObject) -> Outcome:
        """The landed object was deleted: its Parquet output goes too (nothing else remains)."""
        try:
            self.s3.head_object(Bucket=landed.bucket, Key=landed.key)
            return Outcome("IGNORED", landed.key, reason="the key still has a current version")
        except ClientError as exc:
            if error_code(exc) not in ("404", "NoSuchKey", "NotFound"):
                raise
        pointer = self.audit.clear_pointer("file-current", landed.subject)
        if not pointer and ("%" in landed.key or "+" in landed.key):  # an S3-encoded key
            landed = replace(landed, key=unquote_plus(landed.key))
            pointer = self.audit.clear_pointer("file-current", landed.subject)
        if not pointer:
            return Outcome("IGNORED", landed.key, reason="nothing was converted from this key")
        removed = list(pointer.get("output_keys", []))
        self._delete_outputs(removed)
        self.audit.record(
            "file",
            landed.subject,
            str(pointer.get("current_version", "-")),
            "DELETED",
            note="the landed object was deleted; its output was removed",
            attributes={"removed_keys": removed},
        )
        count("FilesDeleted")
        logger.info(
            "landed object deleted; output removed", extra={"key": landed.key, "removed": removed}
        )
        return Outcome("DELETED", landed.key, output_keys=removed)

    def _delete_outputs(self, keys: list[str]) -> None:
        for start in range(0, len(keys), 1000):
            chunk = [{"Key": k} for k in keys[start : start + 1000] if k]
            if chunk:
                self.s3.delete_objects(
                    Bucket=self.settings.formatted_bucket, Delete={"Objects": chunk, "Quiet": True}
                )

    def _reject(
        self, landed: LandedObject, ref: DatasetRef | None, rejected: RejectedFile
    ) -> Outcome:
        quarantine_key = f"{QUARANTINE_PREFIX}{landed.key}"
        source: dict[str, str] = {"Bucket": landed.bucket, "Key": landed.key}
        if landed.version_id:
            source["VersionId"] = landed.version_id
        try:
            self.s3.copy_object(
                Bucket=landed.bucket,
                Key=quarantine_key,
                CopySource=source,
                MetadataDirective="REPLACE",
                Metadata={
                    "lakegov-reason-code": rejected.reason_code,
                    "lakegov-reason": rejected.reason[:1000].encode("ascii", "replace").decode(),
                },
            )
        except ClientError as exc:
            if error_code(exc) not in ("NoSuchKey", "NoSuchVersion"):
                raise
            quarantine_key = ""
        self.audit.record(
            "file",
            landed.subject,
            landed.version,
            "REJECTED",
            note=f"{rejected.reason_code}: {rejected.reason}"[:500],
            attributes={
                "reason_code": rejected.reason_code,
                "reason": rejected.reason,
                "bad_lines": rejected.bad_lines[:20],
                "quarantine_key": quarantine_key,
                "dataset": ref.dataset_id if ref else None,
                "finished_at": utc_now(),
            },
        )
        if rejected.reason_code == "schema_change" and ref is not None:
            self.publisher.publish(
                "SchemaChanged",
                {
                    "dataset": ref.dataset_id,
                    "table": ref.table_name,
                    "change": "breaking",
                    "action": "rejected",
                    "reason": rejected.reason,
                    "source_key": landed.key,
                    "detected_at": utc_now(),
                },
            )
        self.publisher.publish(
            "FileRejected",
            {
                "bucket": landed.bucket,
                "key": landed.key,
                "version_id": landed.version_id,
                "etag": landed.etag,
                "dataset": ref.dataset_id if ref else None,
                "reason_code": rejected.reason_code,
                "reason": rejected.reason,
                "bad_lines": rejected.bad_lines[:20],
                "quarantine_key": quarantine_key or None,
                "rejected_at": utc_now(),
            },
        )
        count("FilesRejected")
        count(f"FilesRejected_{rejected.reason_code}")
        logger.warning(
            "rejected",
            extra={
                "key": landed.key,
                "reason_code": rejected.reason_code,
                "reason": rejected.reason,
            },
        )
        return Outcome("REJECTED", landed.key, reason=str(rejected))

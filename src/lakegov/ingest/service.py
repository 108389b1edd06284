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

from botocore.exceptions import ClientError

from lakegov.audit import AuditStore
from lakegov.aws import error_code
from lakegov.compaction.service import (
    current_generation,
    follow_generation,
    note_new_file,
    partition_of,
)
from lakegov.convert.engine import ConversionResult, convert
from lakegov.convert.options import DatasetDocument, DatasetOptions, load_document, select_document
from lakegov.errors import InvalidDocument, RejectedFile, RetryableError
from lakegov.events import EventPublisher, utc_now
from lakegov.ingest.athena import AthenaConverter
from lakegov.ingest.landed import LakeVersions, LandedObject, file_converted, reject_landed
from lakegov.layout import QUARANTINE_PREFIX, STAGING_PREFIX, DatasetRef, parse_key
from lakegov.observability import count, logger
from lakegov.settings import Settings

ATHENA_FORMATS = ("csv", "json")  # what the Athena path reads; others stay in Lambda
DATASETS_PREFIX = "datasets/"


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
        settings: Settings,
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
        self.versions = LakeVersions(s3=s3, audit=audit, formatted_bucket=settings.formatted_bucket)

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
            ):
                if not self.versions.still_current(landed):
                    return self._superseded(landed)
                query_id = self.athena.start(
                    landed=landed,
                    ref=ref,
                    fmt=str(fmt),
                    delimiter=options.delimiter or ref.delimiter,
                    options=options,
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

    def _superseded(self, landed: LandedObject) -> Outcome:
        self.audit.record(
            "file",
            landed.subject,
            landed.version,
            "SUPERSEDED",
            note="deleted or replaced before it was converted",
        )
        count("FilesSuperseded")
        return Outcome("SUPERSEDED", landed.key, reason="no longer the key's current version")

    def _convert(self, landed: LandedObject, ref: DatasetRef, options: DatasetOptions) -> Outcome:
        started = utc_now()
        if not self.versions.still_current(landed):
            return self._superseded(landed)
        token = (landed.version_id or landed.etag or "").replace('"', "")[:16]
        partition = partition_of(
            ref,
            bucket=self.settings.formatted_bucket,
            database=self.settings.database(STAGING_PREFIX),
        )
        if options.compaction.enabled:
            generation = note_new_file(
                self.audit,
                partition,
                target_bytes=options.compaction.target_bytes,
                min_files=options.compaction.min_files,
            )
        else:  # a partition compacted before compaction was turned off stays at its generation
            generation = current_generation(self.audit, partition)
        output_key = ref.output_key(token, generation=generation)
        exceptions_key = ref.exceptions_key(token)
        previous = self.versions.previous_schema(ref.table_name)
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
            if options.compaction.enabled or generation:
                # compacted while this file converted: into the partition's new generation
                output_key = follow_generation(
                    self.s3, self.audit, partition, output_key, generation
                )
            wrote_exceptions = bool(exc_handles) and os.path.getsize(exc_path) > 0
            if wrote_exceptions:
                self.s3.upload_file(exc_path, self.settings.formatted_bucket, exceptions_key)
        written = [output_key, *([exceptions_key] if wrote_exceptions else [])]
        if not self.versions.make_current(landed, last_modified, written):
            return Outcome("SUPERSEDED", landed.key, reason="a newer version is current")
        self.versions.record_schema(
            ref.table_name, result.schema, result.schema_fingerprint, previous=previous
        )
        detail = file_converted(
            landed,
            dataset=ref.dataset_id,
            table=ref.table_name,
            partitions=dict(ref.partitions),
            output_bucket=self.settings.formatted_bucket,
            output_keys=[output_key],
            schema=result.schema,
            fingerprint=result.schema_fingerprint,
            rows=result.rows_out,
            rows_in=result.rows_in,
            bad_rows=result.bad_row_count,
            exceptions_key=exceptions_key if wrote_exceptions else None,
            schema_changes=options.schema_changes,
            catalog_mode=options.catalog_mode,
            engine="lambda",
        )
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
        self.versions.delete(removed)
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

    def _reject(
        self, landed: LandedObject, ref: DatasetRef | None, rejected: RejectedFile
    ) -> Outcome:
        def schema_changed() -> None:
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

        reject_landed(
            landed,
            rejected,
            s3=self.s3,
            audit=self.audit,
            publisher=self.publisher,
            dataset=ref.dataset_id if ref else None,
            before_event=schema_changed,
        )
        logger.warning(
            "rejected",
            extra={
                "key": landed.key,
                "reason_code": rejected.reason_code,
                "reason": rejected.reason,
            },
        )
        return Outcome("REJECTED", landed.key, reason=str(rejected))

"""Converting one landed object, exactly once, losing nothing.

Order of effects, chosen so that a crash at any point leaves no partial or duplicate output:

1. ``claim`` the object (bucket, key, version or ETag) in the audit table: a duplicate
   delivery of finished work stops here; a concurrent one is retried later.
2. Stream the object through the converter into a local temporary file (``/tmp``).
3. Upload it under its final, deterministic key (one S3 PUT or multipart upload: the object
   appears whole or not at all; a retry overwrites the same key, never adds a second one).
4. Publish ``FileConverted`` (those of one SQS batch together), then audit it PROCESSED.

Steps 2 and 3 are the Lambda engine's (:mod:`lakegov.ingest.lambda_engine`), or, for a
file over the size threshold, the Athena engine's (:mod:`lakegov.ingest.athena`).

A bad file (:class:`~lakegov.errors.RejectedFile`) is copied to ``quarantine/`` in the raw
bucket with its reason in the object's metadata, audited as REJECTED and announced with
``FileRejected``; its message is then done (never retried). Anything else releases the
claim and propagates, so SQS retries it and, after a few receives, dead-letters it.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from functools import partial
from typing import Any
from urllib.parse import unquote_plus

from botocore.exceptions import ClientError

from lakegov.audit import CURRENT_VERSION_KIND, AuditStore
from lakegov.aws import error_code
from lakegov.convert.databases import DuckDBPool
from lakegov.convert.engine import ConversionResult, convert
from lakegov.convert.options import DatasetOptions
from lakegov.errors import RejectedFile, RetryableError
from lakegov.events import Event, EventPublisher, utc_now
from lakegov.ingest.athena import AthenaConverter
from lakegov.ingest.lambda_engine import ConvertedTarget, LambdaEngine
from lakegov.ingest.landed import LakeVersions, LandedObject, file_converted, reject_landed
from lakegov.ingest.targets import DatasetDocuments, conversion_targets
from lakegov.layout import (
    QUARANTINE_PREFIX,
    STAGING_PREFIX,
    DatasetRef,
    parse_key,
)
from lakegov.observability import count, logger
from lakegov.settings import Settings

ATHENA_FORMATS = ("csv", "json")  # what the Athena path reads; others stay in Lambda


@dataclass
class _Announced:
    """A converted landed object whose events are due; audited PROCESSED once they are out."""

    landed: LandedObject
    ref: DatasetRef
    done: list[ConvertedTarget]
    started: str
    events: list[Event]


@dataclass
class Outcome:
    status: str  # PROCESSED | REJECTED | DUPLICATE | IGNORED
    key: str
    reason: str = ""
    output_keys: list[str] = field(default_factory=list)
    rows: int = 0


class Converter:
    """Everything needed to convert landed objects; built once per warm container.

    With the default engine, the DuckDB database a conversion opens is kept for the next one
    (:class:`~lakegov.convert.databases.DuckDBPool`): a small file costs about as much to
    convert as a database costs to open."""

    def __init__(
        self,
        *,
        s3: Any,
        publisher: EventPublisher,
        audit: AuditStore,
        settings: Settings,
        documents: DatasetDocuments | None = None,
        convert_fn: Callable[..., ConversionResult] | None = None,
        athena: AthenaConverter | None = None,
    ) -> None:
        self.s3 = s3
        self.publisher = publisher
        self.audit = audit
        self.settings = settings
        self.documents = documents or DatasetDocuments(s3, settings.config_bucket)
        self.convert_fn = convert_fn or partial(convert, databases=DuckDBPool())
        self.athena = athena
        self.versions = LakeVersions(s3=s3, audit=audit, formatted_bucket=settings.formatted_bucket)

    # -- the unit of work --------------------------------------------------------------
    def process(self, landed: LandedObject) -> Outcome:
        (outcome,) = self.process_all([landed])
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    def process_all(self, batch: Sequence[LandedObject]) -> list[Outcome | Exception]:
        """Convert each landed object, each its own unit of work (a failure is its own: it
        is returned in its place, its claim released, for its message to be retried).

        The ``FileConverted`` events of the batch go out together (as few PutEvents calls
        as the limits allow) once every object is converted; each conversion is audited
        PROCESSED after its events are out, so a crash in between redelivers it (at least
        once), and one whose event could not be published is retried alone.
        """
        outcomes: list[Outcome | Exception] = []
        due: list[tuple[int, _Announced]] = []
        seen: set[LandedObject] = set()
        for landed in batch:
            if landed in seen:  # the same event twice in one batch: the first copy owns it
                outcomes.append(Outcome("DUPLICATE", landed.key, reason="twice in one batch"))
                continue
            seen.add(landed)
            try:
                outcome = self._process(landed)
            except Exception as exc:  # released by _process
                outcomes.append(exc)
                continue
            if isinstance(outcome, _Announced):
                due.append((len(outcomes), outcome))
                outcomes.append(RetryableError("not announced"))  # replaced below
                continue
            if outcome.status == "IGNORED":
                count("LandedEventsIgnored")
            outcomes.append(outcome)
        if not due:
            return outcomes
        try:
            unpublished = {
                id(e) for e in self.publisher.publish_each(e for _, a in due for e in a.events)
            }
        except Exception as exc:
            for i, announced in due:
                outcomes[i] = self._give_back(announced.landed, exc)
            return outcomes
        for i, announced in due:
            try:
                if any(id(e) in unpublished for e in announced.events):
                    raise RetryableError(f"FileConverted of {announced.landed.key} not published")
                outcomes[i] = self._finish(announced)
            except Exception as exc:
                outcomes[i] = self._give_back(announced.landed, exc)
        return outcomes

    def _give_back(self, landed: LandedObject, exc: Exception) -> Exception:
        """Release the claim of a conversion that failed (its message will be retried)."""
        self.audit.release(
            "file", landed.subject, landed.version, note=f"{type(exc).__name__}: {exc}"
        )
        count("ConversionErrors")
        return exc

    def _process(self, landed: LandedObject) -> Outcome | _Announced:
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
            self._give_back(landed, exc)
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

    def _lambda_engine(self) -> LambdaEngine:
        """The Lambda engine, with this converter's clients and settings as they are now."""
        return LambdaEngine(
            s3=self.s3,
            audit=self.audit,
            versions=self.versions,
            convert_fn=self.convert_fn,
            formatted_bucket=self.settings.formatted_bucket,
            database=self.settings.database(STAGING_PREFIX),
        )

    def _convert(
        self, landed: LandedObject, ref: DatasetRef, options: DatasetOptions
    ) -> Outcome | _Announced:
        started = utc_now()
        try:
            obj = self.versions.open_current(landed)
        except ClientError as exc:
            if error_code(exc) in ("NoSuchKey", "NoSuchVersion"):
                raise RejectedFile(
                    "missing", "the object was deleted before it could be read"
                ) from exc
            raise RetryableError(f"reading {landed.subject}: {error_code(exc)}") from exc
        if obj is None:
            return self._superseded(landed)
        body = obj["Body"]
        last_modified = obj["LastModified"].isoformat() if obj.get("LastModified") else ""
        token = (landed.version_id or landed.etag or "").replace('"', "")[:16]
        done = self._lambda_engine().convert(landed, body, conversion_targets(ref, options), token)
        written = [key for converted in done for key in converted.written]
        if not self.versions.make_current(landed, last_modified, written):
            return Outcome("SUPERSEDED", landed.key, reason="a newer version is current")
        events = [self._announce(landed, converted) for converted in done]
        return _Announced(landed, ref, done, started, events)

    def _finish(self, announced: _Announced) -> Outcome:
        """Audit a conversion PROCESSED, its events being out."""
        landed, ref, done = announced.landed, announced.ref, announced.done
        results = [c.converted for c in done]
        output_keys = [converted.output_key for converted in done]
        # marked done only once the events are out: a crash in between redelivers (at least once)
        self.audit.record(
            "file",
            landed.subject,
            landed.version,
            "PROCESSED",
            note="; ".join(r.summary() for r in results)[:500],
            attributes={
                "dataset": ref.dataset_id,
                "table": done[0].ref.table_name,
                **({"tables": [c.ref.table_name for c in done]} if len(done) > 1 else {}),
                "rows_in": sum(r.rows_in for r in results),
                "rows_out": sum(r.rows_out for r in results),
                "bad_rows": sum(r.bad_row_count for r in results),
                "output_keys": output_keys,
                "exceptions_key": next(
                    (c.exceptions_key for c in done if c.wrote_exceptions), None
                ),
                "started_at": announced.started,
                "finished_at": utc_now(),
                "format": results[0].format,
            },
        )
        rows = sum(r.rows_out for r in results)
        count("FilesConverted")
        count("RowsConverted", rows)
        logger.info(
            "converted",
            extra={
                "key": landed.key,
                "output": output_keys[0] if len(output_keys) == 1 else output_keys,
                "summary": "; ".join(r.summary() for r in results),
            },
        )
        return Outcome("PROCESSED", landed.key, output_keys=output_keys, rows=rows)

    def _announce(self, landed: LandedObject, converted: ConvertedTarget) -> Event:
        """The table's schema item, then its ``FileConverted`` (one per sheet of a workbook),
        to publish."""
        result, ref, options = converted.converted, converted.ref, converted.options
        self.versions.record_schema(
            ref.table_name, result.schema, result.schema_fingerprint, previous=converted.previous
        )
        detail = file_converted(
            landed,
            dataset=ref.dataset_id,
            table=ref.table_name,
            partitions=dict(ref.partitions),
            output_bucket=self.settings.formatted_bucket,
            output_keys=[converted.output_key],
            schema=result.schema,
            fingerprint=result.schema_fingerprint,
            rows=result.rows_out,
            rows_in=result.rows_in,
            bad_rows=result.bad_row_count,
            exceptions_key=converted.exceptions_key if converted.wrote_exceptions else None,
            schema_changes=options.schema_changes,
            catalog_mode=options.catalog_mode,
            engine="lambda",
        )
        if options.sheet is not None:
            detail["sheet"] = options.sheet
        return Event("FileConverted", detail)

    def _remove(self, landed: LandedObject) -> Outcome:
        """The landed object was deleted: its Parquet output goes too (nothing else remains)."""
        try:
            self.s3.head_object(Bucket=landed.bucket, Key=landed.key)
            return Outcome("IGNORED", landed.key, reason="the key still has a current version")
        except ClientError as exc:
            if error_code(exc) not in ("404", "NoSuchKey", "NotFound"):
                raise
        pointer = self.audit.clear_pointer(CURRENT_VERSION_KIND, landed.subject)
        if not pointer and ("%" in landed.key or "+" in landed.key):  # an S3-encoded key
            landed = replace(landed, key=unquote_plus(landed.key))
            pointer = self.audit.clear_pointer(CURRENT_VERSION_KIND, landed.subject)
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


def convert_records(
    converter: Converter, records: Sequence[Mapping[str, Any]]
) -> dict[str, Outcome | Exception]:
    """The convert queue's SQS records (each an S3 "Object Created" EventBridge event) ->
    each message id's outcome, or the exception that fails it (a body that cannot be read
    fails its own record only)."""
    outcomes: dict[str, Outcome | Exception] = {}
    landed: list[tuple[str, LandedObject]] = []
    for record in records:
        message_id = str(record.get("messageId", ""))
        try:
            landed.append((message_id, LandedObject.from_eventbridge(json.loads(record["body"]))))
        except (KeyError, TypeError, ValueError) as exc:
            outcomes[message_id] = exc
    converted = converter.process_all([obj for _, obj in landed])
    outcomes.update(zip((message_id for message_id, _ in landed), converted, strict=True))
    return outcomes

"""A landed object's versions and the output each one leaves in the lake.

Shared by both conversion engines (Lambda and Athena), so that a replaced or deleted
landed file means the same thing whichever engine converted it: a new version of a key
replaces the previous version's output, an older version converted after a newer one
removes its own output, and a deleted key takes its output with it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

import pyarrow as pa
from botocore.exceptions import ClientError

from lakegov.audit import CURRENT_VERSION_KIND, AuditStore
from lakegov.aws import error_code
from lakegov.errors import RejectedFile, RetryableError
from lakegov.events import EventPublisher, utc_now
from lakegov.layout import quarantine_key
from lakegov.observability import count, logger
from lakegov.s3 import copy_object, delete_keys
from lakegov.schema import schema_columns, schema_fingerprint, schema_from_columns


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


def file_converted(
    landed: LandedObject,
    *,
    dataset: str,
    table: str,
    partitions: dict[str, str],
    output_bucket: str,
    output_keys: list[str],
    schema: pa.Schema,
    rows: int,
    engine: str,
    schema_changes: str,
    catalog_mode: str | None,
    rows_in: int | None = None,
    bad_rows: int = 0,
    exceptions_key: str | None = None,
    values_nulled: int | None = None,
    fingerprint: str | None = None,
) -> dict[str, Any]:
    """The ``FileConverted`` detail, whichever engine converted the file: ``bad_rows`` are
    rows set aside (not loaded), ``values_nulled`` values read as NULL because they did not
    fit their column's type (the Athena path casts instead of setting rows aside)."""
    detail: dict[str, Any] = {
        "bucket": landed.bucket,
        "key": landed.key,
        "version_id": landed.version_id,
        "etag": landed.etag,
        "dataset": dataset,
        "table": table,
        "partition_values": dict(partitions),
        "output_bucket": output_bucket,
        "output_keys": output_keys,
        "rows": rows,
        "rows_in": rows + bad_rows if rows_in is None else rows_in,
        "bad_rows": bad_rows,
        "exceptions_key": exceptions_key,
        "schema_fingerprint": fingerprint or schema_fingerprint(schema),
        "columns": schema_columns(schema),
        "schema_changes": schema_changes,
        "engine": engine,
        "converted_at": utc_now(),
    }
    if values_nulled is not None:
        detail["values_nulled"] = values_nulled
    if catalog_mode:
        detail["catalog_mode"] = catalog_mode
    return detail


def reject_landed(
    landed: LandedObject,
    rejected: RejectedFile,
    *,
    s3: Any,
    audit: AuditStore,
    publisher: EventPublisher,
    dataset: str | None,
    note_prefix: str = "",
    before_event: Callable[[], None] | None = None,
) -> str:
    """Quarantine, audit and announce a rejected landed file (the Lambda and Athena paths).

    The file is copied under ``quarantine/`` with its reason as object metadata (any size);
    a file already gone is not quarantined (the key is then empty). ``before_event()``
    runs between the audit record and ``FileRejected`` (the SchemaChanged of a breaking
    change). Returns the quarantine key.
    """
    target = quarantine_key(landed.key)
    source: dict[str, str] = {"Bucket": landed.bucket, "Key": landed.key}
    if landed.version_id:
        source["VersionId"] = landed.version_id
    try:
        # any size: CopyObject stops at 5 GiB, larger files are copied in parts
        copy_object(
            s3,
            source=source,
            bucket=landed.bucket,
            key=target,
            size=landed.size or None,
            metadata={
                "lakegov-reason-code": rejected.reason_code,
                "lakegov-reason": rejected.reason[:1000].encode("ascii", "replace").decode(),
            },
        )
    except ClientError as exc:
        if error_code(exc) not in ("NoSuchKey", "NoSuchVersion", "404", "NotFound"):
            raise
        target = ""
    audit.record(
        "file",
        landed.subject,
        landed.version,
        "REJECTED",
        note=f"{note_prefix}{rejected.reason_code}: {rejected.reason}"[:500],
        attributes={
            "reason_code": rejected.reason_code,
            "reason": rejected.reason,
            "bad_lines": rejected.bad_lines[:20],
            "quarantine_key": target,
            "dataset": dataset,
            "finished_at": utc_now(),
        },
    )
    if before_event is not None:
        before_event()
    publisher.publish(
        "FileRejected",
        {
            "bucket": landed.bucket,
            "key": landed.key,
            "version_id": landed.version_id,
            "etag": landed.etag,
            "dataset": dataset,
            "reason_code": rejected.reason_code,
            "reason": rejected.reason,
            "bad_lines": rejected.bad_lines[:20],
            "quarantine_key": target or None,
            "rejected_at": utc_now(),
        },
    )
    count("FilesRejected")
    count(f"FilesRejected_{rejected.reason_code}")
    return target


class LakeVersions:
    """Which version of each landed key is current, and the output it owns."""

    def __init__(self, *, s3: Any, audit: AuditStore, formatted_bucket: str) -> None:
        self.s3 = s3
        self.audit = audit
        self.formatted_bucket = formatted_bucket

    @staticmethod
    def schema_key(table: str) -> tuple[str, str, str]:
        """The audit key of the table's schema item."""
        return ("dataset", table, "schema")

    def previous_schema(
        self, table: str, *, read: Mapping[tuple[str, str, str], Mapping[str, Any]] | None = None
    ) -> pa.Schema | None:
        """The dataset's schema as its last converted file left it (None: none yet).

        ``read``: items the caller read already (:meth:`AuditStore.get_many` with
        :meth:`schema_key`): the item is taken from there (absent: none) rather than read.
        """
        key = self.schema_key(table)
        item = read.get(key) if read is not None else self.audit.get(*key)
        if not item or not item.get("columns"):
            return None
        try:
            return schema_from_columns(item["columns"])
        except ValueError as exc:
            # written by an older version in a form no longer read: say so, convert without
            logger.warning(
                "stored schema unreadable; converting without the previous schema",
                extra={"table": table, "error": str(exc)},
            )
            return None

    def record_schema(
        self,
        table: str,
        schema: pa.Schema,
        fingerprint: str,
        *,
        previous: pa.Schema | Literal["unread"] | None = "unread",
    ) -> None:
        """One item per table, written when its schema changes (not once per file: the
        item's history would otherwise grow with every conversion). ``previous`` is the
        schema :meth:`previous_schema` gave this conversion (no second read); "unread" when
        the caller has none at hand (the Athena path ends in another invocation)."""
        if isinstance(previous, str):  # "unread"
            item = self.audit.get("dataset", table, "schema")
            before = str(item.get("fingerprint", "")) if item else ""
        else:
            before = schema_fingerprint(previous) if previous is not None else ""
        if before == fingerprint:
            return
        self.audit.record(
            "dataset",
            table,
            "schema",
            "CURRENT",
            attributes={"columns": schema_columns(schema), "fingerprint": fingerprint},
        )

    def still_current(self, landed: LandedObject) -> bool:
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

    def open_current(self, landed: LandedObject) -> dict[str, Any] | None:
        """GetObject of ``landed`` if it is still the key's current version, else None
        (:meth:`still_current`'s answer and the read in one call: the current version's
        GetObject carries its VersionId, as the HEAD would). The caller closes the body.
        Reading the landed version itself raises NoSuchKey / NoSuchVersion as GetObject does.
        """
        try:
            obj: dict[str, Any] = self.s3.get_object(Bucket=landed.bucket, Key=landed.key)
        except ClientError as exc:
            if error_code(exc) in ("404", "NoSuchKey", "NotFound"):
                return None
            raise RetryableError(f"reading {landed.subject}: {error_code(exc)}") from exc
        if not landed.version_id:
            return obj
        current = obj.get("VersionId")
        if current not in (None, "null") and current != landed.version_id:
            obj["Body"].close()
            return None
        if current == landed.version_id:
            return obj
        # The current version has no id (versioning suspended since): as still_current
        # does, the key counts as current, and the landed version itself is what is read.
        obj["Body"].close()
        landed_version: dict[str, Any] = self.s3.get_object(
            Bucket=landed.bucket, Key=landed.key, VersionId=landed.version_id
        )
        return landed_version

    def make_current(self, landed: LandedObject, last_modified: str, written: list[str]) -> bool:
        """A new version of a key replaces the output of the one before: its rows, not both.

        Versions are ordered by LastModified, then S3's event sequencer (versions of one
        second), then processing time (only the embedded runtime, whose sequencer is
        constant, ever needs the last). LastModified comes first because a version
        converted by ``lakegov reprocess`` has no event, hence no sequencer. The version
        that is current already stays current when it is converted again (``--force``).
        An older version converted after a newer one removes its own output instead, is
        audited SUPERSEDED, and False is returned.
        """
        order = f"{last_modified}|{landed.sequencer:0>32}|{utc_now()}"
        won, previous = self.audit.advance_pointer(
            CURRENT_VERSION_KIND,
            landed.subject,
            order=order,
            version=landed.version,
            attributes={"output_keys": written},
        )
        if not won and self.audit.refresh_pointer(
            CURRENT_VERSION_KIND,
            landed.subject,
            version=landed.version,
            attributes={"output_keys": written},
        ):
            return True  # the current version, converted again: same place, same order
        if not won:
            self.delete(written)
            self.audit.record(
                "file",
                landed.subject,
                landed.version,
                "SUPERSEDED",
                note="a newer version of this key was converted first; output removed",
            )
            count("FilesSuperseded")
            return False
        if previous and previous.get("current_version") != landed.version:
            stale = [k for k in previous.get("output_keys", []) if k not in written]
            self.delete(stale)
            if stale:
                logger.info(
                    "replaced the previous version's output",
                    extra={"key": landed.key, "removed": stale},
                )
        return True

    def delete(self, keys: list[str]) -> None:
        delete_keys(self.s3, self.formatted_bucket, keys)

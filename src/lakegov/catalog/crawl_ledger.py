"""The crawl ledger: pending and running markers and per-batch records in the audit table.

What :mod:`lakegov.catalog.crawler` coalesces crawls with (see its docstring for the
protocol). Values are written and read with :mod:`lakegov.dynamodb`, the audit table's one
codec; markers are returned as DynamoDB items, to be put back or deleted as they are.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from lakegov.aws import error_code
from lakegov.catalog.converted import ConvertedFile
from lakegov.dynamodb import from_item, to_attribute, to_item
from lakegov.events import utc_now

if TYPE_CHECKING:
    from lakegov.catalog.crawler import StartRequest

AUDIT_KIND = "crawl"
STALE_AFTER = 1800  # a pending batch older than this lost its start message: re-kick it
MAX_TRACKED_FILES = 1000  # source files listed per batch (the item must stay < 400 KB)


def new_batch_id() -> str:
    return datetime.now(UTC).strftime("%Y%m%dT%H%M%S") + "-" + uuid.uuid4().hex[:8]


def age_seconds(stamp: str) -> float:
    try:
        then = datetime.fromisoformat(stamp.replace("Z", "+00:00"))
    except ValueError:
        return 0.0
    return (datetime.now(UTC) - then).total_seconds()


class CrawlLedger:
    """Pending / running markers and per-batch records, in the audit table.

    Keys: ``pk = crawl#<crawler>``; ``sk`` = ``pending``, ``running#<started>#<batch>`` or
    ``<batch_id>`` (the batch's audit item, with the AuditStore's status history).
    """

    def __init__(self, table: str, dynamodb: Any) -> None:
        self.table = table
        self.ddb = dynamodb

    @staticmethod
    def _key(crawler: str, sk: str) -> dict[str, Any]:
        return to_item({"pk": f"{AUDIT_KIND}#{crawler}", "sk": sk})

    def join(self, request: StartRequest) -> tuple[str, bool, dict[str, Any]]:
        """Join (or open) the crawler's pending batch: (batch_id, opened_here, marker)."""
        candidate = new_batch_id()
        response = self.ddb.update_item(
            TableName=self.table,
            Key=self._key(request.crawler, "pending"),
            UpdateExpression=(
                "SET #b = if_not_exists(#b, :b), #at = if_not_exists(#at, :now), "
                "#req = if_not_exists(#req, :req) ADD #n :one"
            ),
            ExpressionAttributeNames={
                "#b": "batch_id",
                "#at": "requested_at",
                "#req": "request",
                "#n": "files",
            },
            ExpressionAttributeValues=to_item(
                {
                    ":b": candidate,
                    ":now": utc_now(),
                    ":req": json.dumps(request.message(batch_id=candidate)),
                    ":one": 1,
                }
            ),
            ReturnValues="ALL_NEW",
        )
        item = response["Attributes"]
        batch_id = str(from_item(item)["batch_id"])
        return batch_id, batch_id == candidate, item

    def claim_kick(self, crawler: str, batch_id: str) -> bool:
        """Mark a stale pending batch as re-kicked (once per STALE_AFTER)."""
        try:
            self.ddb.update_item(
                TableName=self.table,
                Key=self._key(crawler, "pending"),
                UpdateExpression="SET #k = :now",
                ConditionExpression=("#b = :b AND (attribute_not_exists(#k) OR #k < :old)"),
                ExpressionAttributeNames={"#k": "kicked_at", "#b": "batch_id"},
                ExpressionAttributeValues=to_item(
                    {":b": batch_id, ":now": utc_now(), ":old": _iso_ago(STALE_AFTER)}
                ),
            )
        except ClientError as exc:
            if error_code(exc) == "ConditionalCheckFailedException":
                return False
            raise
        return True

    def record_file(
        self, crawler: str, batch_id: str, file: ConvertedFile, request: StartRequest
    ) -> None:
        """Add one file to the batch's record (source file, partitions, rows)."""
        now = utc_now()
        values = to_item(
            {
                ":rows": file.rows,
                ":one": 1,
                ":kind": AUDIT_KIND,
                ":subject": crawler,
                ":version": batch_id,
                ":now": now,
                ":status": "REQUESTED",
                ":dataset": request.dataset,
                ":database": request.database,
                ":table": request.table,
                ":hist": [{"status": "REQUESTED", "at": now}],
            }
        )
        names = {
            f"#{n}": n
            for n in (
                "kind",
                "subject",
                "version",
                "updated_at",
                "created_at",
                "status",
                "dataset",
                "database",
                "table",
                "history",
                "row_count",
                "files",
                "partitions",
                "source_files",
                "source_files_truncated",
            )
        }
        sets = (
            "SET #kind = :kind, #subject = :subject, #version = :version, #updated_at = :now, "
            "#created_at = if_not_exists(#created_at, :now), "
            "#status = if_not_exists(#status, :status), "
            "#dataset = :dataset, #database = :database, #table = :table, "
            "#history = if_not_exists(#history, :hist)"
        )
        adds = ["#row_count :rows", "#files :one"]
        partitions = [json.dumps(p.to_event(), sort_keys=True) for p in file.partitions if p.items]
        if partitions:
            values[":parts"] = to_attribute(set(partitions))
            adds.append("#partitions :parts")
        tracked = dict(values)
        tracked[":src"] = to_attribute({file.source})
        tracked[":cap"] = to_attribute(MAX_TRACKED_FILES)
        try:
            self.ddb.update_item(
                TableName=self.table,
                Key=self._key(crawler, batch_id),
                **_expression(
                    names,
                    tracked,
                    UpdateExpression=sets + " ADD " + ", ".join([*adds, "#source_files :src"]),
                    ConditionExpression=(
                        "attribute_not_exists(#source_files) OR size(#source_files) < :cap"
                    ),
                ),
            )
        except ClientError as exc:
            if error_code(exc) != "ConditionalCheckFailedException":
                raise
            self.ddb.update_item(  # over the cap: count the file without listing it
                TableName=self.table,
                Key=self._key(crawler, batch_id),
                **_expression(
                    names,
                    {**values, ":t": to_attribute(True)},
                    UpdateExpression=sets + ", #source_files_truncated = :t ADD " + ", ".join(adds),
                ),
            )

    def pending(self, crawler: str) -> dict[str, Any] | None:
        item = self.ddb.get_item(
            TableName=self.table, Key=self._key(crawler, "pending"), ConsistentRead=True
        ).get("Item")
        return dict(item) if item else None

    def seal(self, crawler: str, batch_id: str) -> dict[str, Any] | None:
        """Delete the pending marker if it is still ``batch_id``'s; returns the old marker."""
        try:
            response = self.ddb.delete_item(
                TableName=self.table,
                Key=self._key(crawler, "pending"),
                ConditionExpression="#b = :b",
                ExpressionAttributeNames={"#b": "batch_id"},
                ExpressionAttributeValues=to_item({":b": batch_id}),
                ReturnValues="ALL_OLD",
            )
        except ClientError as exc:
            if error_code(exc) == "ConditionalCheckFailedException":
                return None
            raise
        return dict(response.get("Attributes") or {})

    def restore(self, crawler: str, marker: Mapping[str, Any]) -> bool:
        """Put a sealed marker back (the crawler was busy) unless a newer batch opened."""
        try:
            self.ddb.put_item(
                TableName=self.table,
                Item=dict(marker),
                ConditionExpression="attribute_not_exists(pk)",
            )
        except ClientError as exc:
            if error_code(exc) == "ConditionalCheckFailedException":
                return False
            raise
        return True

    def mark_running(self, crawler: str, batch_id: str) -> None:
        started = utc_now()
        self.ddb.put_item(
            TableName=self.table,
            Item={
                **self._key(crawler, f"running#{started}#{batch_id}"),
                **to_item({"batch_id": batch_id, "started_at": started}),
            },
        )

    def oldest_running(self, crawler: str) -> dict[str, Any] | None:
        response = self.ddb.query(
            TableName=self.table,
            KeyConditionExpression="pk = :pk AND begins_with(sk, :r)",
            ExpressionAttributeValues=to_item({":pk": f"{AUDIT_KIND}#{crawler}", ":r": "running#"}),
            ConsistentRead=True,
            Limit=1,
        )
        items = response.get("Items") or []
        return dict(items[0]) if items else None

    def finish(self, crawler: str, marker: Mapping[str, Any]) -> None:
        self.ddb.delete_item(TableName=self.table, Key={"pk": marker["pk"], "sk": marker["sk"]})

    def batch(self, crawler: str, batch_id: str) -> dict[str, Any]:
        """The batch's record as plain values (sets as sorted lists), empty when none."""
        item = self.ddb.get_item(
            TableName=self.table, Key=self._key(crawler, batch_id), ConsistentRead=True
        ).get("Item")
        return from_item(item or {})


def _expression(
    names: Mapping[str, str], values: Mapping[str, Any], **expressions: str
) -> dict[str, Any]:
    """Expressions with only the names and values they use (DynamoDB rejects unused ones)."""
    text = " ".join(expressions.values())
    used_names = set(re.findall(r"#\w+", text))
    used_values = set(re.findall(r":\w+", text))
    return {
        **expressions,
        "ExpressionAttributeNames": {k: v for k, v in names.items() if k in used_names},
        "ExpressionAttributeValues": {k: v for k, v in values.items() if k in used_values},
    }


def _iso_ago(seconds: int) -> str:
    stamp = datetime.now(UTC) - timedelta(seconds=seconds)
    return stamp.isoformat(timespec="milliseconds").replace("+00:00", "Z")

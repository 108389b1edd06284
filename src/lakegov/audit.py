"""The audit store: one DynamoDB table recording every unit of work and its outcome.

Items are addressed by ``pk = "<kind>#<subject>"`` and ``sk = <version>``:

* ``file``        subject ``s3://bucket/key``, version the object's version id or ETag
* ``run``         subject the product name, version ``<run_id>`` (and ``<run_id>#<model>``
                  for the per-model run audit with the original ``audit_control`` fields)
* ``metadata``    subject ``s3://config-bucket/key``, version the object's version id or ETag
* ``dataset``     subject the dataset id, version ``refresh#<time>``

Each item carries ``status``, ``created_at``, ``updated_at`` and a ``history`` list (status,
time, note), so ``lakegov status`` can show a timeline. Items stay far below DynamoDB's
400 KB item limit however often they are written: the history keeps the latest
:data:`HISTORY_LIMIT` entries (older ones are counted in ``history_dropped``), and an item
that changes rarely (a dataset's current schema) is written only when it changes. Every item
written here expires (``expires_at``, the table's TTL attribute) ``retention_days`` after
its last write, except the state the service reads back (:data:`KEPT_KINDS`,
:data:`KEPT_VERSIONS`). :meth:`AuditStore.claim` is the
idempotency guard: a conditional write that lets exactly one worker own a unit of work,
lets a retry take over a crashed worker's expired lease, and reports duplicates.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from lakegov.aws import error_code
from lakegov.dynamodb import batch_get, from_item, to_attribute, to_item
from lakegov.errors import RetryableError
from lakegov.events import utc_now

IN_PROGRESS = "RECEIVED"
DONE_STATUSES = (
    "PROCESSED",
    "REJECTED",
    "SUCCEEDED",
    "APPLIED",
    "CONVERTING",
    "SUPERSEDED",
    "DELETED",
)
# CONVERTING: handed to a job (Athena) that reports its own end; a redelivery is a duplicate.
# The item naming the current version of a landed file (its "current" version's pointer).
CURRENT_VERSION_KIND = "file-current"
KIND_INDEX = "by_kind"
# The timeline of one item: at most this many entries; when it is full the oldest are
# removed down to HISTORY_KEEP (two extra writes per HISTORY_LIMIT - HISTORY_KEEP records,
# none otherwise).
HISTORY_LIMIT = 50
HISTORY_KEEP = 30
DEFAULT_RETENTION_DAYS = 400
# Items holding state the service reads back never expire: a dataset's current schema, the
# current version of a key, metadata uploads (the drift check finds the governance
# documents in force from their APPLIED items, however old) and each compacted partition's
# generation (readers find its files only there).
KEPT_VERSIONS = frozenset({"schema", "current"})
KEPT_KINDS = frozenset({"metadata", "compaction"})
TTL_ATTRIBUTE = "expires_at"


def _claimable(item: Mapping[str, Any], done: list[str], now: int) -> bool:
    """Whether the claim's condition would let a retry take ``item`` over: not finished,
    and its lease (present) expired."""
    lease = item.get("lease_until")
    return item.get("status") not in done and lease is not None and int(lease) < now


@dataclass(frozen=True)
class Claim:
    """Outcome of :meth:`AuditStore.claim`: ``acquired`` or a ``duplicate`` of finished work."""

    acquired: bool
    item: dict[str, Any]

    @property
    def duplicate(self) -> bool:
        return not self.acquired


class AuditStore:
    """Small adapter over the audit table (a low-level DynamoDB client is passed in)."""

    def __init__(
        self,
        table_name: str,
        dynamodb_client: Any,
        *,
        clock: Any = time.time,
        retention_days: int = DEFAULT_RETENTION_DAYS,
    ) -> None:
        self.table_name = table_name
        self._ddb = dynamodb_client
        self._clock = clock
        self.retention_days = retention_days

    def _expiry(self, kind: str, version: str) -> int | None:
        """The TTL (epoch seconds) of an item written now (None: the item is kept)."""
        if kind in KEPT_KINDS or version in KEPT_VERSIONS or self.retention_days <= 0:
            return None
        return int(self._clock()) + self.retention_days * 86400

    @staticmethod
    def key(kind: str, subject: str, version: str) -> dict[str, Any]:
        return to_item({"pk": f"{kind}#{subject}", "sk": version or "-"})

    def claim(
        self,
        kind: str,
        subject: str,
        version: str,
        *,
        lease_seconds: int = 900,
        attributes: Mapping[str, Any] | None = None,
        done_statuses: Iterable[str] = DONE_STATUSES,
    ) -> Claim:
        """Take ownership of one unit of work, exactly once across concurrent deliveries.

        Returns ``Claim(acquired=False)`` when the work already finished (a duplicate
        delivery). Raises RetryableError while another worker holds an unexpired lease,
        so the message comes back after its visibility timeout.
        """
        now = self._clock()
        stamp = utc_now()
        plain: dict[str, Any] = {
            **(attributes or {}),
            "pk": f"{kind}#{subject}",
            "sk": version or "-",
            "kind": kind,
            "subject": subject,
            "version": version or "-",
            "status": IN_PROGRESS,
            "created_at": stamp,
            "updated_at": stamp,
            "lease_until": int(now + lease_seconds),
            "attempts": 1,
            "history": [{"status": IN_PROGRESS, "at": stamp}],
        }
        expiry = self._expiry(kind, version)
        if expiry:
            plain[TTL_ATTRIBUTE] = expiry
        done = list(done_statuses)
        # The common case, new work, is one write; the item it found otherwise comes back
        # with the refusal (no read before the write, no read after it).
        previous = self._put_if(plain, "attribute_not_exists(pk)")
        if previous is None:
            return Claim(acquired=True, item=from_item(to_item(plain)))
        if not _claimable(previous, done, int(now)):
            return self._not_acquired(previous, done, kind, subject, version)
        history = [
            *previous.get("history", []),
            {"status": IN_PROGRESS, "at": stamp, "note": "retry"},
        ]
        dropped = int(previous.get("history_dropped", 0))
        if len(history) > HISTORY_LIMIT:
            dropped += len(history) - HISTORY_KEEP
            history = history[-HISTORY_KEEP:]
        plain.update(
            created_at=str(previous.get("created_at", stamp)),
            attempts=int(previous.get("attempts", 0)) + 1,
            history=history,
            **({"history_dropped": dropped} if dropped else {}),
        )
        # A retry taking over an expired lease: the same condition decides, in one write,
        # so two workers taking over at once cannot both win.
        names = {"#s": "status"}
        values = to_item({":now": int(now), **{f":d{i}": s for i, s in enumerate(done)}})
        done_terms = [f":d{i}" for i in range(len(done))]
        condition = "attribute_not_exists(pk)"
        if done_terms:
            condition += f" OR (NOT #s IN ({', '.join(done_terms)}) AND lease_until < :now)"
        else:
            condition += " OR lease_until < :now"
        current = self._put_if(plain, condition, names=names if done_terms else None, values=values)
        if current is None:
            return Claim(acquired=True, item=from_item(to_item(plain)))
        return self._not_acquired(current, done, kind, subject, version)

    def _put_if(
        self,
        plain: Mapping[str, Any],
        condition: str,
        *,
        names: Mapping[str, str] | None = None,
        values: Mapping[str, Any] | None = None,
    ) -> dict[str, Any] | None:
        """Put ``plain`` if ``condition`` holds: None when written, else the item that
        refused it (returned with the refusal; read when the service does not return it)."""
        try:
            self._ddb.put_item(
                TableName=self.table_name,
                Item=to_item(dict(plain)),
                ConditionExpression=condition,
                **({"ExpressionAttributeNames": dict(names)} if names else {}),
                **({"ExpressionAttributeValues": dict(values)} if values else {}),
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
        except ClientError as exc:
            if error_code(exc) != "ConditionalCheckFailedException":
                raise
            item = exc.response.get("Item")
            if item:
                return from_item(item)
            return self.get(str(plain["kind"]), str(plain["subject"]), str(plain["version"])) or {}
        return None

    @staticmethod
    def _not_acquired(
        current: Mapping[str, Any], done: list[str], kind: str, subject: str, version: str
    ) -> Claim:
        if current.get("status") in done:
            return Claim(acquired=False, item=dict(current))
        raise RetryableError(f"{kind} {subject} ({version}) is being processed by another worker")

    def record(
        self,
        kind: str,
        subject: str,
        version: str,
        status: str,
        *,
        note: str = "",
        attributes: Mapping[str, Any] | None = None,
    ) -> None:
        """Set the status (appending to the history) and any attributes of one item.

        The history is trimmed to its latest entries once it reaches HISTORY_LIMIT.
        """
        stamp = utc_now()
        entry = {"status": status, "at": stamp, **({"note": note} if note else {})}
        sets = [
            "#s = :s",
            "#upd = :u",
            "#kind = :k",
            "#subj = :subj",
            "#ver = :v",
            "#hist = list_append(if_not_exists(#hist, :empty), :h)",
            "#cre = if_not_exists(#cre, :u)",
        ]
        names = {
            "#s": "status",
            "#upd": "updated_at",
            "#kind": "kind",
            "#subj": "subject",
            "#ver": "version",
            "#hist": "history",
            "#cre": "created_at",
        }
        values = to_item(
            {
                ":s": status,
                ":u": stamp,
                ":k": kind,
                ":subj": subject,
                ":v": version or "-",
                ":h": [entry],
                ":empty": [],
            }
        )
        for i, (name, value) in enumerate((attributes or {}).items()):
            names[f"#a{i}"] = name
            values[f":a{i}"] = to_attribute(value)
            sets.append(f"#a{i} = :a{i}")
        expiry = self._expiry(kind, version or "-")
        if expiry and TTL_ATTRIBUTE not in (attributes or {}):
            names["#ttl"] = TTL_ATTRIBUTE
            values[":ttl"] = to_attribute(expiry)
            sets.append("#ttl = :ttl")
        remove = ""
        if status in DONE_STATUSES:
            names["#lease"] = "lease_until"
            remove = " REMOVE #lease"
        update = {
            "TableName": self.table_name,
            "Key": self.key(kind, subject, version),
            "UpdateExpression": "SET " + ", ".join(sets) + remove,
            "ExpressionAttributeNames": names,
        }
        try:  # the common case: one write, refused only when the history is full
            self._ddb.update_item(
                **update,
                ConditionExpression="attribute_not_exists(#hist) OR size(#hist) < :limit",
                ExpressionAttributeValues={**values, ":limit": {"N": str(HISTORY_LIMIT)}},
            )
        except ClientError as exc:
            if error_code(exc) != "ConditionalCheckFailedException":
                raise
            self._trim_history(kind, subject, version)
            self._ddb.update_item(**update, ExpressionAttributeValues=values)

    def _trim_history(self, kind: str, subject: str, version: str) -> None:
        """Drop the oldest entries of a full history down to HISTORY_KEEP (once: a concurrent
        trim finds the history no longer full and leaves it)."""
        drop = HISTORY_LIMIT - HISTORY_KEEP
        try:
            self._ddb.update_item(
                TableName=self.table_name,
                Key=self.key(kind, subject, version),
                UpdateExpression="REMOVE "
                + ", ".join(f"#hist[{i}]" for i in range(drop))
                + " ADD #dropped :drop",
                ConditionExpression="size(#hist) >= :limit",
                ExpressionAttributeNames={"#hist": "history", "#dropped": "history_dropped"},
                ExpressionAttributeValues={
                    ":drop": {"N": str(drop)},
                    ":limit": {"N": str(HISTORY_LIMIT)},
                },
            )
        except ClientError as exc:
            if error_code(exc) != "ConditionalCheckFailedException":
                raise

    def advance_pointer(
        self, kind: str, subject: str, *, order: str, version: str, attributes: Mapping[str, Any]
    ) -> tuple[bool, dict[str, Any] | None]:
        """Make ``version`` the current one of ``subject`` unless a later one already is.

        ``order`` sorts versions (e.g. the object's LastModified, ISO 8601). Returns
        ``(won, previous)``: whether this version is now current, and the pointer it
        replaced (None if none, or if it lost). One conditional write decides, so two
        versions processed out of order still end with the newest one current.
        """
        item = {
            **{k: to_attribute(v) for k, v in attributes.items()},
            **self.key(kind, subject, "current"),
            "kind": {"S": kind},
            "subject": {"S": subject},
            "version": {"S": "current"},
            "current_version": {"S": version},
            "order": {"S": order},
            "status": {"S": "CURRENT"},
            "updated_at": {"S": utc_now()},
        }
        try:
            response = self._ddb.put_item(
                TableName=self.table_name,
                Item=item,
                ConditionExpression="attribute_not_exists(pk) OR #o < :o OR (#o = :o AND #v = :v)",
                ExpressionAttributeNames={"#o": "order", "#v": "current_version"},
                ExpressionAttributeValues={":o": {"S": order}, ":v": {"S": version}},
                ReturnValues="ALL_OLD",
            )
        except ClientError as exc:
            if error_code(exc) != "ConditionalCheckFailedException":
                raise
            return False, None
        old = response.get("Attributes")
        return True, (from_item(old) if old else None)

    def refresh_pointer(
        self, kind: str, subject: str, *, version: str, attributes: Mapping[str, Any]
    ) -> bool:
        """Update the attributes of the current-version pointer if ``version`` is the current
        one (its order unchanged); False when another version is current."""
        names = {f"#a{i}": name for i, name in enumerate(attributes)}
        values = {f":a{i}": to_attribute(v) for i, v in enumerate(attributes.values())}
        try:
            self._ddb.update_item(
                TableName=self.table_name,
                Key=self.key(kind, subject, "current"),
                UpdateExpression="SET #upd = :u"
                + "".join(f", #a{i} = :a{i}" for i in range(len(attributes))),
                ConditionExpression="#v = :v",
                ExpressionAttributeNames={**names, "#v": "current_version", "#upd": "updated_at"},
                ExpressionAttributeValues={**values, ":v": {"S": version}, ":u": {"S": utc_now()}},
            )
        except ClientError as exc:
            if error_code(exc) != "ConditionalCheckFailedException":
                raise
            return False
        return True

    def clear_pointer(self, kind: str, subject: str) -> dict[str, Any] | None:
        """Remove the current-version pointer; returns what it held."""
        response = self._ddb.delete_item(
            TableName=self.table_name,
            Key=self.key(kind, subject, "current"),
            ReturnValues="ALL_OLD",
        )
        old = response.get("Attributes")
        return from_item(old) if old else None

    def reopen(self, kind: str, subject: str, version: str, *, rerun_id: str, note: str) -> bool:
        """Make finished work claimable again, once per ``rerun_id`` (a reprocess or
        reapply run): True when this call reopened it, False when it is not finished work
        or this run already reopened it (a retried batch must not redo what its first
        attempt did)."""
        stamp = utc_now()
        done = {f":d{i}": {"S": status} for i, status in enumerate(DONE_STATUSES)}
        try:
            self._ddb.update_item(
                TableName=self.table_name,
                Key=self.key(kind, subject, version),
                UpdateExpression="SET #s = :s, #upd = :u, #run = :run, #lease = :zero, "
                "#hist = list_append(if_not_exists(#hist, :empty), :h)",
                ConditionExpression=f"#s IN ({', '.join(done)}) AND "
                "(attribute_not_exists(#run) OR #run <> :run)",
                ExpressionAttributeNames={
                    "#s": "status",
                    "#upd": "updated_at",
                    "#run": "rerun_id",
                    "#lease": "lease_until",
                    "#hist": "history",
                },
                ExpressionAttributeValues={
                    ":s": {"S": "REOPENED"},
                    ":u": {"S": stamp},
                    ":run": {"S": rerun_id},
                    ":zero": {"N": "0"},
                    ":empty": {"L": []},
                    ":h": {"L": [to_attribute({"status": "REOPENED", "at": stamp, "note": note})]},
                    **done,
                },
            )
        except ClientError as exc:
            if error_code(exc) != "ConditionalCheckFailedException":
                raise
            return False
        return True

    def mark_rerun(self, kind: str, subject: str, version: str, *, rerun_id: str) -> None:
        """Note on an item that run ``rerun_id`` has dealt with it (without a status change);
        nothing when there is no such item."""
        try:
            self._ddb.update_item(
                TableName=self.table_name,
                Key=self.key(kind, subject, version),
                UpdateExpression="SET #run = :run",
                ConditionExpression="attribute_exists(pk)",
                ExpressionAttributeNames={"#run": "rerun_id"},
                ExpressionAttributeValues={":run": {"S": rerun_id}},
            )
        except ClientError as exc:
            if error_code(exc) != "ConditionalCheckFailedException":
                raise

    def add_counts(
        self,
        kind: str,
        subject: str,
        version: str,
        counts: Mapping[str, int],
        *,
        defaults: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Add to numeric attributes atomically (a run's converted/skipped/... tallies,
        written by many concurrent workers), setting ``defaults`` where an attribute is
        absent; returns the item as written."""
        counts = {k: v for k, v in counts.items() if v}
        names: dict[str, str] = {"#upd": "updated_at", "#kind": "kind", "#subj": "subject"}
        values: dict[str, Any] = {
            ":u": {"S": utc_now()},
            ":k": {"S": kind},
            ":subj": {"S": subject},
        }
        sets = ["#upd = :u", "#kind = :k", "#subj = :subj"]
        for i, (name, value) in enumerate((defaults or {}).items()):
            names[f"#d{i}"] = name
            values[f":d{i}"] = to_attribute(value)
            sets.append(f"#d{i} = if_not_exists(#d{i}, :d{i})")
        adds = []
        for i, (name, value) in enumerate(counts.items()):
            names[f"#c{i}"] = name
            values[f":c{i}"] = {"N": str(int(value))}
            adds.append(f"#c{i} :c{i}")
        expression = "SET " + ", ".join(sets) + (" ADD " + ", ".join(adds) if adds else "")
        response = self._ddb.update_item(
            TableName=self.table_name,
            Key=self.key(kind, subject, version),
            UpdateExpression=expression,
            ExpressionAttributeNames=names,
            ExpressionAttributeValues=values,
            ReturnValues="ALL_NEW",
        )
        return from_item(response.get("Attributes", {}))

    def of_kind(self, kind: str) -> Iterator[dict[str, Any]]:
        """Every item of one kind (the ``by_kind`` index, all pages)."""
        kwargs: dict[str, Any] = {
            "TableName": self.table_name,
            "IndexName": KIND_INDEX,
            "KeyConditionExpression": "#k = :k",
            "ExpressionAttributeNames": {"#k": "kind"},
            "ExpressionAttributeValues": {":k": {"S": kind}},
        }
        while True:
            page = self._ddb.query(**kwargs)
            yield from (from_item(i) for i in page.get("Items", []))
            if "LastEvaluatedKey" not in page:
                return
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def release(self, kind: str, subject: str, version: str, *, note: str) -> None:
        """Give up a claim after a retryable failure so the next delivery can take it at once."""
        self.record(kind, subject, version, "FAILED", note=note, attributes={"lease_until": 0})

    def get(self, kind: str, subject: str, version: str) -> dict[str, Any] | None:
        response = self._ddb.get_item(
            TableName=self.table_name, Key=self.key(kind, subject, version), ConsistentRead=True
        )
        item = response.get("Item")
        return from_item(item) if item else None

    def get_many(
        self, keys: Iterable[tuple[str, str, str]]
    ) -> dict[tuple[str, str, str], dict[str, Any]]:
        """Several items (``(kind, subject, version)`` each) read at once: BatchGetItem,
        consistent reads, 100 keys a call, unprocessed keys asked again. The answer holds
        the items that exist."""
        wanted = {(k, s, v or "-"): (k, s, v) for k, s, v in keys}
        by_pk_sk = {(f"{k}#{s}", v): key for (k, s, v), key in wanted.items()}
        found: dict[tuple[str, str, str], dict[str, Any]] = {}
        for raw in batch_get(self._ddb, self.table_name, [self.key(*k) for k in wanted]):
            item = from_item(raw)
            found[by_pk_sk[(str(item["pk"]), str(item["sk"]))]] = item
        return found

    def versions(self, kind: str, subject: str) -> list[dict[str, Any]]:
        """Every item of one subject (all versions of a file, all runs of a product)."""
        items: list[dict[str, Any]] = []
        kwargs: dict[str, Any] = {
            "TableName": self.table_name,
            "KeyConditionExpression": "pk = :pk",
            "ExpressionAttributeValues": {":pk": {"S": f"{kind}#{subject}"}},
        }
        while True:
            page = self._ddb.query(**kwargs)
            items.extend(from_item(i) for i in page.get("Items", []))
            if "LastEvaluatedKey" not in page:
                return items
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def recent(self, kind: str, limit: int = 20) -> list[dict[str, Any]]:
        """The latest items of one kind, newest first (the ``by_kind`` index)."""
        page = self._ddb.query(
            TableName=self.table_name,
            IndexName=KIND_INDEX,
            KeyConditionExpression="#k = :k",
            ExpressionAttributeNames={"#k": "kind"},
            ExpressionAttributeValues={":k": {"S": kind}},
            ScanIndexForward=False,
            Limit=limit,
        )
        return [from_item(i) for i in page.get("Items", [])]

"""Running again what is already stored: landed objects (reprocess) and config documents
(reapply), one batch of a Step Functions Distributed Map at a time.

A batch is what the map's ``ItemBatcher`` hands a function: ``{"Items": [...],
"BatchInput": {...}}``, each item one entry of the S3 listing (``Key``, ``Etag``/``ETag``,
``Size``, ``LastModified``) and the batch input the run's settings (:class:`RunInput`).

Every object *version* goes through the same path as an upload, exactly once per run:

* its audit item (the same one the upload path claims, ``file#s3://bucket/key`` or
  ``metadata#s3://bucket/key`` at the object's version id or ETag) says whether it was
  already done; done work is skipped, unless the run forces it (reprocess ``--force``,
  and every reapply);
* forced work is reopened with :meth:`AuditStore.reopen`, which is conditional on the run
  id, so a retried batch (Step Functions retries a failed batch whole) does not do again
  what its first attempt did, and is counted once;
* the run's tallies (converted, skipped, rejected) are added atomically to one audit item
  (``rerun#<run id>``), which the command line reads for its progress bar and summary; an
  object no attempt counted by the end of the run is a failed one.

A file that fails with a transient error fails the batch after the others are done, so the
map's retry (and its tolerated-failure threshold) applies; the ones that succeeded are
skipped by that retry.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from botocore.exceptions import ClientError

from lakegov.audit import DONE_STATUSES, AuditStore
from lakegov.aws import error_code
from lakegov.errors import ConfigurationError, PermanentError, RetryableError
from lakegov.ingest.landed import LandedObject
from lakegov.observability import count, logger

RUN_KIND = "rerun"
# Stop taking items when less than this is left of the invocation: a file converted in
# Lambda takes at most ~50 s (AthenaThresholdBytes at the measured rate), a document less.
TIME_GUARD_MS = 120_000
RUN_VERSION = "run"
TALLIES = ("converted", "skipped", "rejected", "failed")
# Outcome status of the upload path -> the tally it counts in
_TALLY = {
    "PROCESSED": "converted",
    "CONVERTING": "converted",  # handed to Athena: converted by the job it started
    "APPLIED": "converted",
    "REJECTED": "rejected",
}


@dataclass(frozen=True)
class RunInput:
    """A run's settings, as the state machine's ``BatchInput`` carries them."""

    run_id: str
    bucket: str
    target: str  # "landed" (reprocess) | "metadata" (reapply)
    force: bool = False
    since: str = ""  # ISO 8601: objects last modified before it are skipped

    @classmethod
    def from_batch(cls, batch: Mapping[str, Any]) -> RunInput:
        try:
            return cls(
                run_id=str(batch["run_id"]),
                bucket=str(batch["bucket"]),
                target=str(batch.get("target", "landed")),
                force=bool(batch.get("force", False)),
                since=str(batch.get("since") or ""),
            )
        except KeyError as exc:
            raise PermanentError(f"batch input without {exc}") from exc

    def to_input(self, prefix: str) -> dict[str, Any]:
        """The state machine execution's input for this run over ``prefix``."""
        return {
            "run_id": self.run_id,
            "bucket": self.bucket,
            "prefix": prefix,
            "target": self.target,
            "force": self.force,
            "since": self.since,
        }


def new_run_id(target: str) -> str:
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
    return f"{'reprocess' if target == 'landed' else 'reapply'}-{stamp}-{uuid.uuid4().hex[:8]}"


def is_map_batch(event: Any) -> bool:
    """A Distributed Map's ``ItemBatcher`` input (``Items`` and ``BatchInput``)."""
    return isinstance(event, Mapping) and "Items" in event and "BatchInput" in event


def parse_since(text: str) -> datetime | None:
    """``--since`` (a date or an ISO 8601 time; UTC when no zone is given)."""
    if not text:
        return None
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError as exc:
        raise ConfigurationError(
            f"--since {text!r}: expected a date (2026-11-20) or an ISO 8601 time"
        ) from exc
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


@dataclass(frozen=True)
class StoredObject:
    """One object version as a head of the current version found it."""

    bucket: str
    key: str
    size: int
    etag: str
    version_id: str | None
    last_modified: datetime | None

    @property
    def version(self) -> str:
        return self.version_id or self.etag or "-"

    @property
    def subject(self) -> str:
        return f"s3://{self.bucket}/{self.key}"


def head(s3: Any, bucket: str, key: str) -> StoredObject | None:
    """The key's current version (None: deleted since it was listed)."""
    try:
        found = s3.head_object(Bucket=bucket, Key=key)
    except ClientError as exc:
        if error_code(exc) in ("404", "NoSuchKey", "NotFound"):
            return None
        raise RetryableError(f"reading s3://{bucket}/{key}: {error_code(exc)}") from exc
    version = found.get("VersionId")
    return StoredObject(
        bucket=bucket,
        key=key,
        size=int(found.get("ContentLength", 0)),
        etag=str(found.get("ETag", "")).strip('"'),
        version_id=None if version in (None, "null") else str(version),
        last_modified=found.get("LastModified"),
    )


def item_key(item: Mapping[str, Any]) -> str:
    key = item.get("Key")
    if not isinstance(key, str) or not key:
        raise PermanentError(f"batch item without a Key: {dict(item)!r}")
    return key


@dataclass
class Tally:
    converted: int = 0
    skipped: int = 0
    rejected: int = 0
    failed: int = 0
    errors: list[str] = field(default_factory=list)

    def add(self, name: str) -> None:
        setattr(self, name, getattr(self, name) + 1)

    def counts(self) -> dict[str, int]:
        return {name: int(getattr(self, name)) for name in TALLIES}


def run_batch(
    items: Sequence[Mapping[str, Any]],
    run: RunInput,
    *,
    s3: Any,
    audit: AuditStore,
    kind: str,
    process: Callable[[StoredObject], str],
    remaining_ms: Callable[[], int] | None = None,
) -> dict[str, Any]:
    """Run ``process`` (the upload path, returning its outcome status) on each item's current
    version that this run has not dealt with yet; add the batch's tallies to the run's item.

    ``kind`` is the audit kind of the upload path (``file`` or ``metadata``);
    ``remaining_ms`` the invocation's time left (items that would not fit are left to the
    map's retry).
    Raises RetryableError after the whole batch when any item failed transiently.
    """
    since = parse_since(run.since)
    tally = Tally()
    left_over = 0
    for index, item in enumerate(items):
        if remaining_ms is not None and remaining_ms() < TIME_GUARD_MS:
            # the rest would not finish inside the invocation: the map's retry does them
            # (what this attempt did is skipped then)
            left_over = len(items) - index
            break
        key = item_key(item)
        try:
            outcome = _one(key, run, since, s3=s3, audit=audit, kind=kind, process=process)
        except RetryableError as exc:
            tally.add("failed")
            tally.errors.append(f"{key}: {exc}")
            logger.warning("rerun of one object failed", extra={"key": key, "error": str(exc)})
            continue
        if outcome:
            tally.add(outcome)
    # failures are not added: the map retries the batch, and what the retry does is counted
    # then; the command line counts as failed what no attempt counted
    audit.add_counts(
        RUN_KIND,
        run.run_id,
        RUN_VERSION,
        {k: v for k, v in tally.counts().items() if k != "failed"},
    )
    for name, value in tally.counts().items():
        count(f"Rerun{name.capitalize()}", value)
    summary = {**tally.counts(), "items": len(items), "run_id": run.run_id}
    if left_over:
        raise RetryableError(f"out of time with {left_over} of {len(items)} item(s) left")
    if tally.failed:
        # the batch fails, so the map retries it (and counts it against its threshold);
        # the items done above are skipped by the retry, and not counted again
        raise RetryableError(
            f"{tally.failed} of {len(items)} item(s) failed: " + "; ".join(tally.errors[:5])
        )
    return summary


def _one(
    key: str,
    run: RunInput,
    since: datetime | None,
    *,
    s3: Any,
    audit: AuditStore,
    kind: str,
    process: Callable[[StoredObject], str],
) -> str | None:
    """The tally one object counts in, or None when this run already counted it."""
    stored = head(s3, run.bucket, key)
    if stored is None:
        return "skipped"  # deleted since it was listed: its deletion event handles it
    if since is not None and stored.last_modified is not None and stored.last_modified < since:
        return "skipped"
    item = audit.get(kind, stored.subject, stored.version)
    if item and item.get("rerun_id") == run.run_id and item.get("status") in DONE_STATUSES:
        return None  # a retried batch: this run did it already
    if item and item.get("status") in DONE_STATUSES:
        if not run.force:
            audit.mark_rerun(kind, stored.subject, stored.version, rerun_id=run.run_id)
            return "skipped"
        if not audit.reopen(
            kind, stored.subject, stored.version, rerun_id=run.run_id, note=f"rerun {run.run_id}"
        ):
            return None  # another attempt of this run reopened it first
    status = process(stored)
    if status not in ("IGNORED", "DELETED"):  # the outcomes that leave no item at this version
        audit.mark_rerun(kind, stored.subject, stored.version, rerun_id=run.run_id)
    return _TALLY.get(status, "skipped")


def landed_object(stored: StoredObject) -> LandedObject:
    return LandedObject(
        bucket=stored.bucket,
        key=stored.key,
        size=stored.size,
        etag=stored.etag or None,
        version_id=stored.version_id,
    )


def run_totals(audit: AuditStore, run_id: str) -> dict[str, int]:
    """The tallies the run's batches have added so far."""
    item = audit.get(RUN_KIND, run_id, RUN_VERSION) or {}
    return {name: int(item.get(name, 0)) for name in TALLIES}

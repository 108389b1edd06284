"""Crawler mode: one crawl per burst of files, deferred while the crawler runs, never lost.

Coalescing (a "pending" marker per crawler in the audit table plus one delayed message):

1. Each accepted ``FileConverted`` joins the crawler's pending batch with one atomic
   UpdateItem (``batch_id = if_not_exists(batch_id, :new)``). The file that creates the
   batch sends one delayed "start" message (``DelaySeconds`` = the coalescing window) to
   the catalog queue; every other file of the burst only joins. The batch's own audit
   item (``crawl#<crawler>`` / ``<batch_id>``) collects source files, partitions and rows
   for the ``DatasetRefreshed`` at the end.
2. When the start message arrives, the pending marker is deleted (conditionally on its
   batch id, so exactly one start wins), *then* the crawler is started: a file that joined
   before the delete had its Parquet written before it, so the crawl sees it; a later file
   opens a new batch.
3. ``CrawlerRunningException``: the marker is put back and the start message re-sent with
   a delay. Files arriving meanwhile join the same batch, so a crawler that is busy for
   ten minutes still makes one more crawl, not one per file. The message is only
   acknowledged after the re-send, so a crash in between retries it: nothing is lost.
4. A started batch leaves a ``running#<started_at>#<batch>`` marker; the crawler's
   "Glue Crawler State Change" (Succeeded / Failed) closes the oldest one (a crawler runs
   one crawl at a time, so they finish in start order).

A pending marker whose start message went missing (dead-lettered) is re-kicked by the
next file that finds it older than :data:`STALE_AFTER` seconds.

Crawlers are created on demand with: crawl new folders only (``CRAWL_NEW_FOLDERS_ONLY``,
which requires the ``LOG`` schema-change policy: lakegov applies additive schema changes
itself, see :mod:`lakegov.catalog.evolution`), one table per dataset folder
(``TableLevelConfiguration``), partitions inheriting the table schema, the configured role.
A crawler that already exists (declared in the template, say) is used as it is.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from typing import Any, Protocol

from botocore.exceptions import ClientError

from lakegov.audit import AuditStore
from lakegov.aws import error_code, is_transient
from lakegov.catalog.converted import ConvertedFile
from lakegov.catalog.crawl_ledger import AUDIT_KIND, STALE_AFTER, CrawlLedger
from lakegov.catalog.crawl_ledger import age_seconds as _age_seconds
from lakegov.dynamodb import from_item
from lakegov.errors import ConfigurationError, LakegovError, PermanentError, RetryableError
from lakegov.events import utc_now
from lakegov.layout import STAGING_PREFIX
from lakegov.observability import count, logger
from lakegov.settings import Settings

MESSAGE_MARK = "lakegov_catalog"
START_MESSAGE = "start_crawl"
MAX_DELAY = 900  # SQS DelaySeconds limit
BUSY_DELAY = 60  # how long to wait before retrying a start while the crawler runs
EXCLUSIONS = ["_*", "**/_*", ".*", "**/.*"]  # writer markers, hidden temporary files


class CrawlerBusy(LakegovError):
    """The crawler is already running (``CrawlerRunningException``)."""


class StartCrawler(Protocol):
    """Starts one crawler; raises :class:`CrawlerBusy` while it runs."""

    def __call__(self, name: str) -> None: ...


SendLater = Callable[[Mapping[str, Any], int], None]


class GlueCrawlerStarter:
    """The deployed adapter: ``StartCrawler`` on Glue."""

    def __init__(self, glue: Any) -> None:
        self.glue = glue

    def __call__(self, name: str) -> None:
        try:
            self.glue.start_crawler(Name=name)
        except ClientError as exc:
            if error_code(exc) == "CrawlerRunningException":
                raise CrawlerBusy(f"crawler {name} is running") from exc
            if is_transient(exc):
                raise RetryableError(f"StartCrawler {name}: {exc}") from exc
            raise


def sqs_send_later(sqs: Any, queue_url: str) -> SendLater:
    """Send a message to the catalog queue, visible after ``delay`` seconds."""

    def send(body: Mapping[str, Any], delay: int) -> None:
        if not queue_url:
            raise ConfigurationError("CATALOG_QUEUE_URL is not set: crawler mode needs it")
        try:
            sqs.send_message(
                QueueUrl=queue_url,
                MessageBody=json.dumps(dict(body), separators=(",", ":")),
                DelaySeconds=max(0, min(MAX_DELAY, int(delay))),
            )
        except ClientError as exc:
            raise RetryableError(f"cannot queue the crawler start: {exc}") from exc

    return send


def crawler_name(settings: Settings, table: str) -> str:
    """The on-demand crawler of a table: ``lakegov_<env>_<table>`` (the rule's prefix)."""
    return f"{settings.glue_database_prefix}{table}"[:255]


def crawler_definition(
    name: str, *, role: str, database: str, target: str, dataset: str, table: str
) -> dict[str, Any]:
    """``CreateCrawler`` arguments for one dataset folder (``target`` = the table's folder)."""
    path = target.removeprefix("s3://").rstrip("/")
    level = len(path.split("/"))  # bucket = 1, so s3://b/formatted_stg/t -> 3
    configuration = {
        "Version": 1.0,
        "Grouping": {
            "TableLevelConfiguration": level,
            "TableGroupingPolicy": "CombineCompatibleSchemas",
        },
        "CrawlerOutput": {"Partitions": {"AddOrUpdateBehavior": "InheritFromTable"}},
    }
    return {
        "Name": name,
        "Role": role,
        "DatabaseName": database,
        "Description": f"lakegov: {dataset} ({target})",
        "Targets": {"S3Targets": [{"Path": target, "Exclusions": list(EXCLUSIONS)}]},
        "RecrawlPolicy": {"RecrawlBehavior": "CRAWL_NEW_FOLDERS_ONLY"},
        "SchemaChangePolicy": {"UpdateBehavior": "LOG", "DeleteBehavior": "LOG"},
        "Configuration": json.dumps(configuration),
        "Tags": {"lakegov:dataset": dataset[:256], "lakegov:table": table[:256]},
    }


def ensure_crawler(glue: Any, definition: Mapping[str, Any]) -> str:
    """Create the crawler unless it exists; returns its state (``READY``, ``RUNNING``...)."""
    name = str(definition["Name"])
    try:
        return str(glue.get_crawler(Name=name)["Crawler"].get("State") or "READY")
    except ClientError as exc:
        if error_code(exc) != "EntityNotFoundException":
            raise RetryableError(f"GetCrawler {name}: {exc}") from exc
    if not definition.get("Role"):
        raise PermanentError(f"crawler {name} does not exist and no crawler role is configured")
    try:
        glue.create_crawler(**definition)
    except ClientError as exc:
        if error_code(exc) == "AlreadyExistsException":
            return "READY"
        if is_transient(exc):
            raise RetryableError(f"CreateCrawler {name}: {exc}") from exc
        raise PermanentError(f"cannot create crawler {name}: {exc}") from exc
    logger.info("crawler created", extra={"crawler": name, "target": definition["Targets"]})
    return "READY"


@dataclass(frozen=True)
class StartRequest:
    """The delayed "start this crawler for this batch" message."""

    crawler: str
    batch_id: str
    dataset: str
    database: str
    table: str
    target: str
    sealed: bool = False  # the pending marker is already gone (busy, and a newer batch exists)
    attempt: int = 0

    @classmethod
    def for_file(cls, file: ConvertedFile, settings: Settings, batch_id: str = "") -> StartRequest:
        return cls(
            crawler=file.crawler_name or crawler_name(settings, file.table),
            batch_id=batch_id,
            dataset=file.dataset,
            database=file.database,
            table=file.table,
            target=file.location,
        )

    @classmethod
    def from_message(cls, body: Mapping[str, Any]) -> StartRequest:
        fields = {k: body[k] for k in cls.__dataclass_fields__ if k in body}
        return cls(**fields)

    def message(self, **changes: Any) -> dict[str, Any]:
        return {MESSAGE_MARK: START_MESSAGE, **asdict(self), **changes}


def request_crawl(
    request: StartRequest,
    file: ConvertedFile,
    *,
    ledger: CrawlLedger,
    send_later: SendLater,
    window: int,
) -> str:
    """Add ``file`` to its crawler's pending batch; the batch opener queues the start."""
    batch_id, opened, marker = ledger.join(request)
    ledger.record_file(request.crawler, batch_id, file, request)
    if opened:
        send_later(request.message(batch_id=batch_id), window)
        count("CrawlRequested")
        logger.info("crawl requested", extra={"crawler": request.crawler, "batch": batch_id})
    elif _age_seconds(str(from_item(marker).get("requested_at", ""))) > STALE_AFTER + window:
        if ledger.claim_kick(request.crawler, batch_id):
            logger.warning("re-queuing a stale crawl request", extra={"crawler": request.crawler})
            send_later(request.message(batch_id=batch_id), 0)
    else:
        count("CrawlCoalesced")
    return batch_id


def _defer(request: StartRequest, *, sealed: bool, send_later: SendLater, audit: AuditStore) -> str:
    """Re-send the start, later: 60 s, 120 s... at most 5 minutes between tries."""
    delay = min(5 * BUSY_DELAY, BUSY_DELAY * (request.attempt + 1))
    send_later(request.message(sealed=sealed, attempt=request.attempt + 1), delay)
    count("CrawlDeferred")
    audit.record(
        AUDIT_KIND,
        request.crawler,
        request.batch_id,
        "DEFERRED",
        note=f"crawler busy; retry in {delay}s",
    )
    logger.info("crawler busy; start deferred", extra={"crawler": request.crawler, "delay": delay})
    return "deferred"


def start_requested_crawl(
    request: StartRequest,
    *,
    glue: Any,
    ledger: CrawlLedger,
    audit: AuditStore,
    start_crawler: StartCrawler,
    send_later: SendLater,
    settings: Settings,
) -> str:
    """Start the crawler for a pending batch. Returns started | deferred | superseded.

    A busy crawler is seen before the pending marker is touched (``GetCrawler`` state), so
    files keep joining the waiting batch; the marker is only sealed right before the
    start, and put back if the start still finds the crawler busy.
    """
    if not request.sealed:
        pending = ledger.pending(request.crawler)
        if pending is None or from_item(pending).get("batch_id") != request.batch_id:
            logger.info(
                "crawl already started",
                extra={"crawler": request.crawler, "batch": request.batch_id},
            )
            return "superseded"
    definition = crawler_definition(
        request.crawler,
        role=settings.crawler_role_arn,
        database=request.database or settings.database(STAGING_PREFIX),
        target=request.target,
        dataset=request.dataset,
        table=request.table,
    )
    if ensure_crawler(glue, definition) in ("RUNNING", "STOPPING"):
        return _defer(request, sealed=request.sealed, send_later=send_later, audit=audit)
    marker: dict[str, Any] | None = None
    if not request.sealed:
        marker = ledger.seal(request.crawler, request.batch_id)
        if marker is None:
            return "superseded"
    try:
        start_crawler(request.crawler)
    except CrawlerBusy:
        restored = marker is not None and ledger.restore(request.crawler, marker)
        return _defer(request, sealed=not restored, send_later=send_later, audit=audit)
    except Exception:
        if marker is not None and not ledger.restore(request.crawler, marker):
            # A newer batch opened meanwhile: keep this one alive on its own message.
            send_later(request.message(sealed=True, attempt=request.attempt + 1), BUSY_DELAY)
            return "deferred"
        raise
    ledger.mark_running(request.crawler, request.batch_id)
    audit.record(AUDIT_KIND, request.crawler, request.batch_id, "RUNNING", note="crawler started")
    count("CrawlStarted")
    logger.info("crawler started", extra={"crawler": request.crawler, "batch": request.batch_id})
    return "started"


def _crawler_target(glue: Any, crawler: str) -> tuple[str, str]:
    """(database, table) of a crawler started outside lakegov (from its definition)."""
    try:
        definition = glue.get_crawler(Name=crawler)["Crawler"]
    except ClientError as exc:
        raise RetryableError(f"GetCrawler {crawler}: {exc}") from exc
    targets = (definition.get("Targets") or {}).get("S3Targets") or []
    path = str(targets[0]["Path"]).rstrip("/") if targets else ""
    return str(definition.get("DatabaseName") or ""), path.rsplit("/", 1)[-1]


@dataclass(frozen=True)
class CrawlOutcome:
    crawler: str
    state: str
    batch_id: str
    refreshed: dict[str, Any] | None = None


def handle_crawler_state(
    detail: Mapping[str, Any],
    *,
    event_id: str,
    glue: Any,
    ledger: CrawlLedger,
    audit: AuditStore,
    settings: Settings,
    publish: Callable[[str, Mapping[str, Any]], None],
) -> CrawlOutcome | None:
    """A "Glue Crawler State Change" event: Succeeded -> DatasetRefreshed; Failed -> audit.

    Returns None for states other than Succeeded / Failed and for duplicate deliveries.
    """
    crawler = str(detail.get("crawlerName") or "")
    state = str(detail.get("state") or "")
    if not crawler or state not in ("Succeeded", "Failed"):
        return None
    claim = audit.claim("crawl_event", crawler, event_id)
    if claim.duplicate:
        return None
    try:
        return _close_crawl(
            crawler, state, detail, event_id, glue, ledger, audit, settings, publish
        )
    except Exception as exc:
        audit.release("crawl_event", crawler, event_id, note=repr(exc))
        raise


def _close_crawl(
    crawler: str,
    state: str,
    detail: Mapping[str, Any],
    event_id: str,
    glue: Any,
    ledger: CrawlLedger,
    audit: AuditStore,
    settings: Settings,
    publish: Callable[[str, Mapping[str, Any]], None],
) -> CrawlOutcome:
    marker = ledger.oldest_running(crawler)
    batch_id = str(from_item(marker).get("batch_id", "")) if marker else ""
    batch = ledger.batch(crawler, batch_id) if batch_id else {}
    if state == "Failed":
        reason = str(detail.get("errorMessage") or detail.get("message") or "no reason given")
        count("CrawlerFailed")
        logger.error(
            "crawler failed; its files are not catalogued",
            extra={
                "crawler": crawler,
                "batch": batch_id,
                "reason": reason,
                "source_files": batch.get("source_files", []),
            },
        )
        if batch_id:
            audit.record(AUDIT_KIND, crawler, batch_id, "FAILED", note=reason)
            ledger.finish(crawler, marker or {})
        audit.record("crawl_event", crawler, event_id, "PROCESSED", note=f"Failed: {reason}")
        return CrawlOutcome(crawler, state, batch_id)
    if batch:
        database, table = str(batch.get("database", "")), str(batch.get("table", ""))
        dataset = str(batch.get("dataset") or table)
    else:
        database, table = _crawler_target(glue, crawler)
        dataset = table
    refreshed: dict[str, Any] = {
        "dataset": dataset,
        "database": database,
        "table": table,
        "partitions": [p for p in map(json.loads, batch.get("partitions", [])) if p],
        "row_count": batch.get("row_count"),
        "source_files": batch.get("source_files", []),
        "producer_account": settings.account_id,
        "environment": settings.environment,
        "mode": "crawler",
        "crawler": crawler,
        "crawl": {
            k: detail[k]
            for k in ("tablesCreated", "tablesUpdated", "partitionsCreated", "partitionsUpdated")
            if k in detail
        },
        "refreshed_at": utc_now(),
    }
    publish("DatasetRefreshed", refreshed)
    count("DatasetRefreshed")
    if batch_id:
        audit.record(AUDIT_KIND, crawler, batch_id, "SUCCEEDED", note="crawl succeeded")
        ledger.finish(crawler, marker or {})
    audit.record(
        "dataset",
        dataset,
        f"refresh#{refreshed['refreshed_at']}",
        "SUCCEEDED",
        note=f"crawler {crawler}",
        attributes={"database": database, "table": table, "mode": "crawler"},
    )
    audit.record("crawl_event", crawler, event_id, "PROCESSED", note="Succeeded")
    return CrawlOutcome(crawler, state, batch_id, refreshed)

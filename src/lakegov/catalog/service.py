"""The catalog function's work: a batch of queue messages in, catalog changes and events out.

Messages on the catalog queue are either ``FileConverted`` events (from the service bus
rule) or this service's own delayed "start the crawler" requests (see
:mod:`lakegov.catalog.crawler`). ``FileConverted`` events of one batch are grouped per
table, so a burst costs one GetTable, one footer read per distinct schema and one
``BatchCreatePartition`` per hundred partitions, not one of each per file.

Idempotency: each file is claimed in the audit store as ``catalog#<raw s3 uri>`` at the
raw object's version (or ETag), so a duplicate ``FileConverted`` changes nothing and
publishes nothing a second time (the Glue calls are idempotent anyway; the claim is what
keeps ``DatasetRefreshed``, and the dbt runs it triggers, from repeating).

``SchemaChanged`` comes from here only (the convert step publishes none): one event per
file whose columns differ from the Glue table's, with Glue type names, ``action`` applied
(the table was changed) or rejected (the dataset's ``schema_changes`` policy refused it;
the file is audited REJECTED and not registered). It is published as soon as the table
holds the decision, before partitions are registered or a crawl is requested, so a retry
after a later failure neither loses it (the table is already changed) nor repeats it (a
refused file stays REJECTED and its redelivery is a duplicate).

When the catalog learns of a change: in direct mode, when the file's ``FileConverted``
is handled. In crawler mode too - the catalog reads the new file's Parquet footer and
compares it with the existing table when the ``FileConverted`` arrives, applies an
additive change itself (the crawler's ``LOG`` policy never changes a table) and publishes
``SchemaChanged`` then, minutes before the crawl's ``DatasetRefreshed``. Before the
crawler's first run has created the table there is nothing to compare with: the files of
one batch are compared with each other (the first one sets the columns), and a change
between batches that all arrive before the first crawl ends goes unannounced (the
crawler combines compatible schemas into the table it creates).
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from lakegov.audit import CURRENT_VERSION_KIND, AuditStore
from lakegov.catalog import crawler as crawling
from lakegov.catalog.converted import ConvertedFile
from lakegov.catalog.direct import (
    OutputGone,
    TableOutcome,
    apply_schema,
    file_columns,
    register_direct,
)
from lakegov.catalog.evolution import Evolution
from lakegov.errors import PermanentError, RetryableError
from lakegov.events import Event, EventPublisher, utc_now
from lakegov.observability import count, logger
from lakegov.settings import Settings

AUDIT_KIND = "catalog"


@dataclass(frozen=True)
class Message:
    """One queue message: its id (for partial batch failures) and parsed body."""

    message_id: str
    body: Mapping[str, Any]


@dataclass
class CatalogServices:
    """What the catalog needs, passed in (clients and adapters built by the handler)."""

    settings: Settings
    glue: Any
    s3: Any
    dynamodb: Any
    publisher: EventPublisher
    audit: AuditStore
    start_crawler: crawling.StartCrawler
    send_later: crawling.SendLater

    @property
    def ledger(self) -> crawling.CrawlLedger:
        return crawling.CrawlLedger(self.settings.audit_table, self.dynamodb)


@dataclass
class BatchResult:
    failed: list[str] = field(default_factory=list)
    outcomes: list[TableOutcome] = field(default_factory=list)
    duplicates: int = 0
    crawl_requests: int = 0
    crawl_starts: list[str] = field(default_factory=list)

    def response(self) -> dict[str, Any]:
        return {"batchItemFailures": [{"itemIdentifier": i} for i in self.failed]}


def refreshed_detail(
    settings: Settings,
    files: Sequence[ConvertedFile],
    *,
    mode: str,
    partitions: Iterable[Mapping[str, str]],
    row_count: int | None,
) -> dict[str, Any]:
    first = files[0]
    return {
        "dataset": first.dataset,
        "database": first.database,
        "table": first.table,
        "partitions": [dict(p) for p in partitions],
        "row_count": row_count,
        "source_files": sorted({f.source for f in files}),
        "data_files": sorted({k for f in files for k in f.data_files}),
        "producer_account": settings.account_id,
        "environment": settings.environment,
        "mode": mode,
        "refreshed_at": utc_now(),
    }


def process_batch(messages: Sequence[Message], svc: CatalogServices) -> BatchResult:
    """Handle one SQS batch; returns the ids of messages to retry."""
    result = BatchResult()
    claimed: list[tuple[Message, ConvertedFile]] = []
    for message in messages:
        body = message.body
        if body.get(crawling.MESSAGE_MARK) == crawling.START_MESSAGE:
            try:
                outcome = crawling.start_requested_crawl(
                    crawling.StartRequest.from_message(body),
                    glue=svc.glue,
                    ledger=svc.ledger,
                    audit=svc.audit,
                    start_crawler=svc.start_crawler,
                    send_later=svc.send_later,
                    settings=svc.settings,
                )
                result.crawl_starts.append(outcome)
            except PermanentError as exc:
                count("CrawlStartFailed")
                logger.error(
                    "crawler cannot be started", extra={"error": str(exc), "body": dict(body)}
                )
                svc.audit.record(
                    crawling.AUDIT_KIND,
                    str(body.get("crawler")),
                    str(body.get("batch_id")),
                    "FAILED",
                    note=str(exc),
                )
            except Exception as exc:  # retried by SQS, then dead-lettered
                logger.warning("crawler start will be retried", extra={"error": repr(exc)})
                result.failed.append(message.message_id)
            continue
        if body.get("detail-type") != "FileConverted":
            logger.warning("ignoring an unexpected message", extra={"body": dict(body)})
            continue
        try:
            file = ConvertedFile.from_detail(body.get("detail") or {}, svc.settings)
        except PermanentError as exc:
            count("CatalogInvalidEvent")
            logger.error("FileConverted cannot be catalogued", extra={"error": str(exc)})
            continue
        try:
            claim = svc.audit.claim(
                AUDIT_KIND,
                file.audit_subject,
                file.source_version,
                attributes={"dataset": file.dataset, "table": file.table, "mode": file.mode},
            )
        except RetryableError:
            result.failed.append(message.message_id)
            continue
        if claim.duplicate:
            result.duplicates += 1
            count("CatalogDuplicate")
            continue
        claimed.append((message, file))
    groups: dict[tuple[str, str, str], list[tuple[Message, ConvertedFile]]] = defaultdict(list)
    for message, file in _current_versions(claimed, svc, result):
        groups[(file.database, file.table, file.mode)].append((message, file))
    refreshed: list[_Refreshed] = []  # direct registrations whose DatasetRefreshed is due
    for (_, _, mode), members in groups.items():
        while members:
            files = [f for _, f in members]
            settled: set[tuple[str, str]] = set()  # files refused (and audited) already
            try:
                if mode == "direct":
                    registered, event = _register_direct(files, svc, settled)
                    result.outcomes.append(registered)
                    refreshed.append(_Refreshed(members, settled, registered, event))
                else:
                    result.crawl_requests += _crawler(files, svc, settled)
            except OutputGone as gone:  # raised before anything changed: the rest again
                member = [(m, f) for m, f in members if f is gone.file]
                members = [(m, f) for m, f in members if f is not gone.file]
                try:
                    _output_gone(gone, svc)
                except Exception as exc:  # its message alone is retried
                    logger.exception("catalog update failed; will retry")
                    _give_back(svc, result, member, set(), repr(exc))
                continue
            except PermanentError as exc:
                logger.error("files cannot be catalogued", extra={"error": str(exc)})
                count("CatalogRejected", len(files))
                for f in files:
                    svc.audit.record(
                        AUDIT_KIND, f.audit_subject, f.source_version, "REJECTED", note=str(exc)
                    )
            except Exception as exc:  # retried by SQS, then dead-lettered
                logger.exception(
                    "catalog update failed; will retry", extra={"table": files[0].table}
                )
                _give_back(svc, result, members, settled, repr(exc))
            break
    _announce(refreshed, svc, result)
    return result


def _current_versions(
    claimed: list[tuple[Message, ConvertedFile]], svc: CatalogServices, result: BatchResult
) -> list[tuple[Message, ConvertedFile]]:
    """``claimed`` but the files another version of whose landed file is now current (read
    at once from the current-version pointers): each audited SUPERSEDED, since that
    version's own FileConverted registers what replaced it, whichever order they arrive in.
    A file without a pointer is kept (its registration says what became of it)."""
    if not claimed:
        return claimed
    try:
        pointers = svc.audit.get_many(
            (CURRENT_VERSION_KIND, f.source, "current") for _, f in claimed
        )
    except Exception:  # each file's registration checks its output again
        logger.warning("current versions not read; registering every file", exc_info=True)
        return claimed
    kept = []
    for message, f in claimed:
        current = _replaced_by(pointers.get((CURRENT_VERSION_KIND, f.source, "current")), f)
        if not current:
            kept.append((message, f))
            continue
        count("CatalogSuperseded")
        note = f"version {current} of the landed file replaced it before it was registered"
        logger.info("superseded before registration", extra={"file": f.source, "note": note})
        try:
            svc.audit.record(AUDIT_KIND, f.audit_subject, f.source_version, "SUPERSEDED", note=note)
        except Exception as exc:  # its message alone is retried
            _give_back(svc, result, [(message, f)], set(), repr(exc))
    return kept


def _replaced_by(pointer: Mapping[str, Any] | None, f: ConvertedFile) -> str:
    """The version of ``f``'s landed file that its current-version ``pointer`` names, when
    that is another version than ``f``'s (``""``: ``f``'s own, or no pointer)."""
    current = str((pointer or {}).get("current_version") or "")
    return current if current != f.source_version else ""


def _output_gone(gone: OutputGone, svc: CatalogServices) -> None:
    """Audit a file whose output is gone: SUPERSEDED when another version of its landed
    file is the current one (that version's own FileConverted registers what replaced
    it), else REJECTED (the current version's output is missing). Either way the table's
    other files go on without it, and it is not retried."""
    f = gone.file
    current = _replaced_by(svc.audit.get(CURRENT_VERSION_KIND, f.source, "current"), f)
    if current:
        count("CatalogSuperseded")
        status, note = "SUPERSEDED", f"{gone}: version {current} of the landed file replaced it"
        logger.info("output gone: superseded", extra={"reason": note})
    else:
        count("CatalogRejected")
        status, note = "REJECTED", str(gone)
        logger.error("files cannot be catalogued", extra={"error": note})
    svc.audit.record(AUDIT_KIND, f.audit_subject, f.source_version, status, note=note)


@dataclass
class _Refreshed:
    """A table registered directly, its DatasetRefreshed not yet published."""

    members: list[tuple[Message, ConvertedFile]]
    settled: set[tuple[str, str]]
    outcome: TableOutcome
    event: Event | None


def _give_back(
    svc: CatalogServices,
    result: BatchResult,
    members: Iterable[tuple[Message, ConvertedFile]],
    settled: set[tuple[str, str]],
    note: str,
) -> None:
    """Release the claims of files not yet settled and fail their messages (retried)."""
    for message, f in members:
        if (f.audit_subject, f.source_version) not in settled:
            svc.audit.release(AUDIT_KIND, f.audit_subject, f.source_version, note=note)
        result.failed.append(message.message_id)


def _announce(refreshed: list[_Refreshed], svc: CatalogServices, result: BatchResult) -> None:
    """The batch's DatasetRefreshed events in as few PutEvents calls as the limits allow;
    then each table's files are audited PROCESSED (done only once its event is out: a
    table whose event could not be published is retried, as a failure of its own)."""
    events = [r.event for r in refreshed if r.event is not None]
    try:
        failed = {id(e) for e in svc.publisher.publish_each(events)}
    except Exception as exc:
        logger.exception("DatasetRefreshed could not be published; will retry")
        for r in refreshed:
            _give_back(svc, result, r.members, r.settled, repr(exc))
        return
    for r in refreshed:
        try:
            if r.event is not None and id(r.event) in failed:
                raise RetryableError(f"DatasetRefreshed of {r.outcome.table} was not published")
            _record_direct(r.outcome, svc)
        except Exception as exc:  # retried by SQS, then dead-lettered
            logger.exception("catalog update failed; will retry", extra={"table": r.outcome.table})
            _give_back(svc, result, r.members, r.settled, repr(exc))


def _schema_events(outcome_decisions: Iterable[Any], database: str) -> list[Event]:
    now = utc_now()
    events = []
    for decision in outcome_decisions:
        detail = decision.schema_changed(database, now)
        if detail is not None:
            events.append(Event("SchemaChanged", detail))
            count("SchemaChangeApplied" if decision.accepted else "SchemaChangeRejected")
    return events


def _settle_schema(
    svc: CatalogServices, evolution: Evolution, database: str, settled: set[tuple[str, str]]
) -> None:
    """Announce the table's schema decisions and audit the refused files, right away."""
    svc.publisher.publish_all(_schema_events(evolution.decisions, database))
    _record_rejections(svc, evolution.rejected)
    settled.update((d.file.audit_subject, d.file.source_version) for d in evolution.rejected)


def _record_rejections(svc: CatalogServices, decisions: Iterable[Any]) -> None:
    for decision in decisions:
        f = decision.file
        logger.warning(
            "schema change rejected",
            extra={"table": f.table, "source": f.source, "reason": decision.reason},
        )
        svc.audit.record(
            AUDIT_KIND, f.audit_subject, f.source_version, "REJECTED", note=decision.reason
        )


def _register_direct(
    files: list[ConvertedFile], svc: CatalogServices, settled: set[tuple[str, str]]
) -> tuple[TableOutcome, Event | None]:
    """Register one table's files; the DatasetRefreshed to publish for them (None: none
    was accepted)."""
    outcome = register_direct(
        svc.glue,
        svc.s3,
        files,
        projection_threshold=svc.settings.partition_projection_threshold,
        on_schema=lambda evolution: _settle_schema(svc, evolution, files[0].database, settled),
    )
    accepted = outcome.accepted
    if not accepted:
        return outcome, None
    detail = refreshed_detail(
        svc.settings,
        accepted,
        mode="direct",
        partitions=[p.to_event() for p in outcome.partitions],
        row_count=sum(f.rows for f in accepted),
    )
    detail["partitions_created"] = outcome.partitions_created
    return outcome, Event("DatasetRefreshed", detail)


def _record_direct(outcome: TableOutcome, svc: CatalogServices) -> None:
    """Audit a registered table's files (its DatasetRefreshed is out)."""
    accepted = outcome.accepted
    count("PartitionsRegistered", outcome.partitions_created)
    for f in accepted:
        svc.audit.record(
            AUDIT_KIND,
            f.audit_subject,
            f.source_version,
            "PROCESSED",
            note=f"registered in {f.database}.{f.table}",
            attributes={"database": f.database, "partitions": [p.to_event() for p in f.partitions]},
        )
    if accepted:
        first = accepted[0]
        svc.audit.record(
            "dataset",
            first.dataset,
            f"refresh#{utc_now()}",
            "SUCCEEDED",
            note=f"direct: {len(accepted)} file(s), {outcome.partitions_created} new partition(s)",
            attributes={"database": first.database, "table": first.table, "mode": "direct"},
        )
        count("DatasetRefreshed")


def _crawler(
    files: list[ConvertedFile], svc: CatalogServices, settled: set[tuple[str, str]]
) -> int:
    """Schema check against an existing table, then one coalesced crawl request per file."""
    database, table_name = files[0].database, files[0].table
    columns = file_columns(svc.s3, files)
    _, evolution, _, _ = apply_schema(svc.glue, database, table_name, files, columns, create=False)
    _settle_schema(svc, evolution, database, settled)
    ledger = svc.ledger
    requested = 0
    for f in evolution.accepted:
        request = crawling.StartRequest.for_file(f, svc.settings)
        batch_id = crawling.request_crawl(
            request,
            f,
            ledger=ledger,
            send_later=svc.send_later,
            window=svc.settings.crawl_coalesce_seconds,
        )
        requested += 1
        svc.audit.record(
            AUDIT_KIND,
            f.audit_subject,
            f.source_version,
            "PROCESSED",
            note=f"crawl of {request.crawler} requested (batch {batch_id})",
            attributes={
                "database": f.database,
                "crawler": request.crawler,
                "crawl_batch": batch_id,
            },
        )
    return requested


def parse_body(text: str) -> dict[str, Any]:
    try:
        body = json.loads(text)
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}

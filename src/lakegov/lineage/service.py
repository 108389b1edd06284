"""The lineage function: lakegov's own events -> OpenLineage run events, kept in the lake
(``lineage_events``), announced on the service bus (``LineageRecorded``) and, when the
deployment names an Amazon DataZone domain, posted there (``PostLineageEvent``).

Told by ``DatasetRefreshed`` from the catalog (the conversion of each landed object it
names, and the registration) and ``ProductRunFinished`` (one event per dbt model, from the
run's artifacts). A rule queues those events on the lineage queue and the function reads it
in batches: the run events of a batch's lakegov events share one lake object per day they
fall on, and their ``LineageRecorded`` share PutEvents calls. Each queue message is its own
unit of work: a failure fails the messages it concerns, for SQS to deliver again, alone.

Every output is keyed by the events' run ids and types: a redelivered event posts to
DataZone with the same client token, and the same run events rewrite the same object. A
run event delivered again in another batch (at-least-once delivery, or a message retried
after its day's object was written) is written again in that batch's object: the table
holds at least one row per run event, and readers keep one per run id and type. Each
announcement is checked before anything is written, so a message that can never be
announced writes no rows.
"""

from __future__ import annotations

import hashlib
import json
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import ClientError

from lakegov.aws import error_code, is_transient
from lakegov.errors import PermanentError, RetryableError
from lakegov.events import SOURCE, Event, EventContractError, EventPublisher, validate_detail
from lakegov.layout import LINEAGE_EVENTS_TABLE, record_key, record_partition
from lakegov.lineage.openlineage import (
    Namespaces,
    conversion_events,
    datasets_of,
    product_run_events,
    registration_event,
    validate_event,
)
from lakegov.lineage.records import LakeRecords
from lakegov.observability import count, logger
from lakegov.products.artifacts import DbtResults, load_artifacts
from lakegov.sqs_batch import eventbridge_event

# the lakegov events lineage records (what the rule queues for the lineage function)
LINEAGE_DETAIL_TYPES = ("DatasetRefreshed", "ProductRunFinished")

NOT_CONFIGURED = "not configured"
MAX_DATAZONE_EVENT_BYTES = 300_000  # PostLineageEvent's limit on the event blob
# LineageRecorded names at most this many inputs and outputs each (EventBridge's 256 KB per
# entry); the whole event is in the lake, at lake_key
MAX_DATASETS_IN_DETAIL = 200


@dataclass
class DataZoneLineage:
    """Posts OpenLineage events to one Amazon DataZone domain (``datazone`` client)."""

    client: Any
    domain_id: str

    def post(self, event: Mapping[str, Any]) -> str:
        """Post ``event``; one over PostLineageEvent's size limit goes without its datasets'
        facets (names, inputs and outputs kept), or not at all when still too large. The
        answer says which."""
        token = f"{event['run']['runId']}-{event['eventType']}"
        body = json.dumps(event, separators=(",", ":")).encode()
        answer = "posted"
        if len(body) > MAX_DATAZONE_EVENT_BYTES:
            body = json.dumps(without_dataset_facets(event), separators=(",", ":")).encode()
            if len(body) > MAX_DATAZONE_EVENT_BYTES:
                count("LineageEventsTooLargeForDataZone")
                return (
                    f"skipped: {len(body)} bytes without facets, over PostLineageEvent's "
                    f"{MAX_DATAZONE_EVENT_BYTES}"
                )
            answer = f"posted without dataset facets (over {MAX_DATAZONE_EVENT_BYTES} bytes)"
        try:
            self.client.post_lineage_event(
                domainIdentifier=self.domain_id, event=body, clientToken=token
            )
        except ClientError as exc:
            if is_transient(exc):
                raise RetryableError(f"PostLineageEvent: {error_code(exc)}") from exc
            raise
        return answer


def without_dataset_facets(event: Mapping[str, Any]) -> dict[str, Any]:
    """``event`` with its inputs and outputs reduced to namespace and name."""
    return {
        **event,
        "inputs": [{"namespace": d["namespace"], "name": d["name"]} for d in event["inputs"]],
        "outputs": [{"namespace": d["namespace"], "name": d["name"]} for d in event["outputs"]],
    }


@dataclass
class LineageContext:
    records: LakeRecords
    publisher: EventPublisher
    namespaces: Namespaces
    formatted_bucket: str
    s3: Any
    config_bucket: str
    glue_prefix: str = ""
    datazone: DataZoneLineage | None = None
    # why events are not posted to DataZone, when they are not (e.g. the embedded runtime)
    datazone_skipped: str = NOT_CONFIGURED
    dbt: DbtResults = field(default_factory=DbtResults)


def lineage_events(
    detail_type: str, detail: Mapping[str, Any], ctx: LineageContext
) -> list[dict[str, Any]]:
    """The OpenLineage run events a lakegov event stands for (none for the others)."""
    if detail_type == "DatasetRefreshed" and detail.get("mode") in ("direct", "crawler"):
        return [
            *conversion_events(detail, ctx.formatted_bucket),
            registration_event(detail, ctx.namespaces, ctx.formatted_bucket),
        ]
    if detail_type == "ProductRunFinished":
        product, run_id = str(detail["product"]), str(detail["run_id"])
        artifacts = load_artifacts(ctx.s3, ctx.config_bucket, product, run_id)
        if not artifacts.present:
            return []  # dbt never ran: no model ran, nothing read or written
        models = [
            {**r.fields, "unique_id": r.unique_id}
            for r in ctx.dbt.rows(artifacts, process_nm=product)
        ]
        return product_run_events(
            product=product,
            run_id=run_id,
            finished_at=str(detail["finished_at"]),
            models=models,
            tests=ctx.dbt.tests(artifacts),
            manifest=artifacts.manifest or {},
            ns=ctx.namespaces,
            database_of={"formatted_stg": f"{ctx.glue_prefix}formatted_stg"},
        )
    return []


GLUE_TABLE_NAME = "table/"  # an OpenLineage Glue dataset's name: table/<database>/<table>


def dataset_written(event: Mapping[str, Any], refreshed: str | None = None) -> str:
    """The dataset a run wrote, named as ``DatasetRefreshed`` names it, so that the
    subscriptions' dataset filters select lineage as they select refreshes: the catalog
    refresh's own ``dataset`` (``refreshed``), else ``database.table`` of the first Glue
    table the run wrote (a product's model: the name its refresh carries), else the job."""
    if refreshed:
        return refreshed
    for output in event.get("outputs") or []:
        name = str(output.get("name", ""))
        if name.startswith(GLUE_TABLE_NAME) and name.count("/") == 2:
            return ".".join(name.split("/")[1:])
    return str(event["job"]["name"])


def record_lineage(
    event: Mapping[str, Any], ctx: LineageContext, refreshed: str | None = None
) -> dict[str, Any]:
    """Validate one event, keep it in the lake, post it to DataZone, announce it
    (``refreshed``: the dataset of the catalog refresh the event stands for)."""
    (detail,) = record_all([event], ctx, refreshed)
    return detail


def _object_names(events: Sequence[Mapping[str, Any]]) -> tuple[str, ...]:
    """The names of the lake object holding ``events`` (:func:`lakegov.layout.record_key`):
    one event's run id and type, or a digest of every event's, so that the same run events
    written again rewrite the same object and no other set of events can share the key."""
    ids = sorted(f"{e['run']['runId']}/{e['eventType']}" for e in events)
    if len(ids) == 1:
        return tuple(ids[0].split("/", 1))
    return ("events", hashlib.sha256("\n".join(ids).encode()).hexdigest()[:32])


@dataclass
class _Unit:
    """The run events of one lakegov event (one queue message): recorded, or failed, whole.
    ``refreshed`` is the dataset of the catalog refresh they stand for."""

    events: Sequence[Mapping[str, Any]]
    refreshed: str | None = None
    datazone: list[str] = field(default_factory=list)  # each event's DataZone answer
    about: dict[str, Any] = field(default_factory=dict)  # its lakegov event, for the logs


def record_all(
    events: Sequence[Mapping[str, Any]], ctx: LineageContext, refreshed: str | None = None
) -> list[dict[str, Any]]:
    """Validate the run events of one lakegov event, post each to DataZone, keep them in
    the lake (one object per day they fall on), then announce them (``LineageRecorded``):
    their ``LineageRecorded`` details; raises what failed them."""
    (result,) = _record_units({"": _Unit(events, refreshed)}, ctx).values()
    if isinstance(result, Exception):
        raise result
    return result


def _record_units(
    units: Mapping[str, _Unit], ctx: LineageContext
) -> dict[str, list[dict[str, Any]] | Exception]:
    """Record the run events of several lakegov events together: one lake object per day
    they fall on and as few PutEvents calls as the limits allow for all their
    ``LineageRecorded``. Each unit's outcome (by its key): its details, or the exception
    that failed it, and it alone.

    Each announcement follows its lake record. DataZone is posted to before the lake is
    written (posts are idempotent by client token), so a unit that fails there leaves no
    row that its retry, batched with other units, would write again in another object.
    """
    failed: dict[str, Exception] = {}
    for key, unit in units.items():
        try:
            for event in unit.events:
                validate_event(event)
            unit.datazone = [_post(event, ctx) for event in unit.events]
        except Exception as exc:  # this unit's failure, whatever it is: the others go on
            failed[key] = _failure(key, exc, unit)
    # each announcement checked before anything is written: one that breaks its contract
    # fails its unit on every delivery, which must not write its rows each time
    planned = _day_keys({k: u for k, u in units.items() if k not in failed})
    for key, unit in units.items():
        if key not in failed:
            try:
                _announcements(unit, ctx, planned)
            except EventContractError as exc:
                failed[key] = _failure(key, exc, unit)
    lake_keys = _write_days({k: u for k, u in units.items() if k not in failed}, ctx, failed)
    announced: dict[str, list[Event]] = {}
    for key, unit in units.items():
        if key in failed:
            continue
        try:  # with the keys written (those checked above, unless a unit failed since)
            announced[key] = _announcements(unit, ctx, lake_keys)
        except EventContractError as exc:
            failed[key] = _failure(key, exc, unit)
    refused = {
        id(e) for e in ctx.publisher.publish_each(e for es in announced.values() for e in es)
    }
    results: dict[str, list[dict[str, Any]] | Exception] = dict(failed)
    for key, events in announced.items():
        not_sent = [e for e in events if id(e) in refused]
        if not_sent:
            results[key] = _failure(
                key,
                RetryableError(
                    f"PutEvents failed for {len(not_sent)} of the events: LineageRecorded"
                ),
                units[key],
            )
            continue
        results[key] = [dict(e.detail) for e in events]
    recorded = sum(len(r) for r in results.values() if isinstance(r, list))
    if recorded:
        count("LineageEventsRecorded", recorded)
    return {key: results[key] for key in units}


def _announcements(
    unit: _Unit, ctx: LineageContext, lake_keys: Mapping[str, str | None]
) -> list[Event]:
    """The ``LineageRecorded`` of ``unit``'s run events, each naming its day's object in
    ``lake_keys``, checked against their contract and size (EventContractError)."""
    announcements = [
        Event("LineageRecorded", _announcement(event, ctx, unit.refreshed, lake_key, answer))
        for event, answer, lake_key in zip(
            unit.events, unit.datazone, (lake_keys.get(_day(e)) for e in unit.events), strict=True
        )
    ]
    for announcement in announcements:
        validate_detail(announcement.detail_type, announcement.detail)
        announcement.entry(bus="")  # the size check: too large fails this unit alone
    return announcements


def _by_day(
    units: Mapping[str, _Unit],
) -> dict[str, dict[tuple[str, str], Mapping[str, Any]]]:
    """``units``' run events by the day they fall on, each run event once (by run id and
    type: one that two units share, as a duplicate delivery does, is written once)."""
    by_day: dict[str, dict[tuple[str, str], Mapping[str, Any]]] = defaultdict(dict)
    for unit in units.values():
        for event in unit.events:
            by_day[_day(event)].setdefault(
                (str(event["run"]["runId"]), str(event["eventType"])), event
            )
    return by_day


def _day_keys(units: Mapping[str, _Unit]) -> dict[str, str | None]:
    """The key of the object each day of ``units``' run events would be written to."""
    return {
        day: record_key(
            LINEAGE_EVENTS_TABLE,
            str(next(iter(unique.values()))["eventTime"]),
            *_object_names(list(unique.values())),
        )
        for day, unique in _by_day(units).items()
    }


def _day(event: Mapping[str, Any]) -> str:
    return record_partition(str(event["eventTime"])).folder


def _write_days(
    units: Mapping[str, _Unit], ctx: LineageContext, failed: dict[str, Exception]
) -> dict[str, str | None]:
    """Write ``units``' run events to the lake, one object per day (a run event two units
    share, as a duplicate delivery does, is written once); the object key of each day.
    A day whose object cannot be written fails (in ``failed``) every unit with an event on
    it."""
    units_of_day: dict[str, list[str]] = defaultdict(list)
    for key, unit in units.items():
        for day in dict.fromkeys(_day(event) for event in unit.events):
            units_of_day[day].append(key)
    lake_keys: dict[str, str | None] = {}
    for day, unique in _by_day(units).items():
        events = list(unique.values())
        try:
            lake_keys[day] = ctx.records.write(
                LINEAGE_EVENTS_TABLE,
                str(events[0]["eventTime"]),
                _object_names(events),
                [_row(event) for event in events],
            )
        except Exception as exc:  # the day's units fail; the other days' go on
            for key in units_of_day[day]:
                failed.setdefault(key, _failure(key, exc, units[key]))
    return lake_keys


def _failure(key: str, exc: Exception, unit: _Unit | None = None) -> Exception:
    """``exc``, logged as what failed the unit ``key`` (a queue message id; the lakegov
    event it carries, when known)."""
    logger.warning(
        "lineage not recorded: the message will be delivered again",
        extra={"message_id": key, "error": repr(exc), **(unit.about if unit else {})},
    )
    return exc


def _post(event: Mapping[str, Any], ctx: LineageContext) -> str:
    """Post ``event`` to DataZone (when configured): what became of it."""
    return ctx.datazone.post(event) if ctx.datazone else f"skipped: {ctx.datazone_skipped}"


def _row(event: Mapping[str, Any]) -> dict[str, Any]:
    """One run event as a row of ``lineage_events``."""
    return {
        "event_time": event["eventTime"],
        "event_type": str(event["eventType"]),
        "job_namespace": event["job"]["namespace"],
        "job_name": event["job"]["name"],
        "run_id": str(event["run"]["runId"]),
        "inputs": json.dumps(datasets_of(event["inputs"])),
        "outputs": json.dumps(datasets_of(event["outputs"])),
        "event": json.dumps(event, separators=(",", ":")),
    }


def _announcement(
    event: Mapping[str, Any],
    ctx: LineageContext,
    refreshed: str | None,
    key: str | None,
    datazone: str,
) -> dict[str, Any]:
    """The ``LineageRecorded`` detail of ``event`` (kept at ``key``; ``datazone``: what
    became of its post)."""
    inputs, outputs = datasets_of(event["inputs"]), datasets_of(event["outputs"])
    detail = {
        "job": event["job"]["name"],
        "dataset": dataset_written(event, refreshed),
        "run_id": str(event["run"]["runId"]),
        "event_type": str(event["eventType"]),
        "event_time": event["eventTime"],
        "inputs": inputs[:MAX_DATASETS_IN_DETAIL],
        "outputs": outputs[:MAX_DATASETS_IN_DETAIL],
        "lake_bucket": ctx.formatted_bucket,
        "lake_key": key,
        "datazone": datazone,
    }
    for side, names in (("inputs", inputs), ("outputs", outputs)):
        if len(names) > MAX_DATASETS_IN_DETAIL:
            detail[f"{side}_total"] = len(names)
    return detail


@dataclass(frozen=True)
class Outcome:
    """What became of one queue message: ``RECORDED`` (the run events its lakegov event
    stands for, ``jobs``, none or more, are in the lake and announced) or ``DROPPED``
    (it is not an event lineage records; ``reason`` says why)."""

    status: str
    detail_type: str = ""
    event_id: str | None = None
    jobs: tuple[str, ...] = ()
    reason: str = ""


def _recorded_event(body: str) -> tuple[str, Mapping[str, Any]]:
    """A queue message's body as a lakegov event lineage records: its detail-type and the
    event (PermanentError for a message that is not one, EventContractError for a detail
    that breaks its contract)."""
    event = eventbridge_event(body)
    detail_type = str(event["detail-type"])
    if event["source"] != SOURCE or detail_type not in LINEAGE_DETAIL_TYPES:
        raise PermanentError(
            f"not an event lineage records: source={event['source']!r} detail-type={detail_type!r}"
        )
    validate_detail(detail_type, event["detail"])
    return detail_type, event


def record_invoked(event: Mapping[str, Any], ctx: LineageContext) -> dict[str, Any]:
    """An EventBridge event a rule handed the function directly, as the rule of a stack
    deployed before lineage read a queue does while that stack is updated: recorded as a
    queue message of its own would be; what failed it is raised (Lambda retries it)."""
    message_id = str(event.get("id") or "")
    (outcome,) = record_messages([(message_id, json.dumps(event))], ctx).values()
    if isinstance(outcome, Exception):
        raise outcome
    return {"status": outcome.status, "jobs": list(outcome.jobs), "reason": outcome.reason}


def record_messages(
    messages: Iterable[tuple[str, str]], ctx: LineageContext
) -> dict[str, Outcome | Exception]:
    """The lineage queue's messages (message id, body: a lakegov event as the rule sent it)
    -> each message id's outcome, or the exception that fails it (for SQS to deliver it
    again). The batch's run events share one lake object per day and PutEvents calls; a
    failure fails the messages whose run events it concerns, and only those. A message that
    is not an event lineage records is logged and dropped with the reason (no number of
    retries would change it)."""
    outcomes: dict[str, Outcome | Exception] = {}
    units: dict[str, _Unit] = {}
    received: dict[str, tuple[str, Mapping[str, Any]]] = {}
    for message_id, body in messages:
        try:
            received[message_id] = detail_type, event = _recorded_event(body)
        except (PermanentError, EventContractError) as exc:
            logger.error(
                "message dropped: not an event lineage records",
                extra={"message_id": message_id, "reason": str(exc), "body": body[:500]},
            )
            outcomes[message_id] = Outcome("DROPPED", reason=str(exc))
            continue
        detail = event["detail"]
        refreshed = str(detail.get("dataset") or "") if detail_type == "DatasetRefreshed" else None
        about = {"event_id": event.get("id"), "detail_type": detail_type}
        try:
            units[message_id] = _Unit(lineage_events(detail_type, detail, ctx), refreshed)
        except Exception as exc:  # e.g. a product run's artifacts not read: this one retries
            outcomes[message_id] = _failure(message_id, exc, _Unit((), about=about))
            continue
        units[message_id].about = about
    for message_id, result in _record_units(units, ctx).items():
        detail_type, event = received[message_id]
        if isinstance(result, Exception):
            outcomes[message_id] = result
            continue
        if not result:
            logger.info(
                "no lineage in this event",
                extra={"message_id": message_id, "detail_type": detail_type},
            )
        outcomes[message_id] = Outcome(
            "RECORDED",
            detail_type=detail_type,
            event_id=event.get("id"),
            jobs=tuple(str(d["job"]) for d in result),
        )
    dropped = sum(1 for o in outcomes.values() if isinstance(o, Outcome) and o.status == "DROPPED")
    if dropped:
        count("LineageMessagesDropped", dropped)
    return outcomes

"""The lineage function: lakegov's own events -> OpenLineage run events, kept in the lake
(``lineage_events``), announced on the service bus (``LineageRecorded``) and, when the
deployment names an Amazon DataZone domain, posted there (``PostLineageEvent``).

Subscribed to ``DatasetRefreshed`` from the catalog (the conversion of each landed object
it names, and the registration) and ``ProductRunFinished`` (one event per dbt model, from
the run's artifacts). The run events of one lakegov event share one lake object (per day
they fall on) and their ``LineageRecorded`` share PutEvents calls. Every output is keyed by
the events' run ids and types: a redelivered event rewrites the same lake object and posts
with the same client token.
"""

from __future__ import annotations

import hashlib
import json
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import ClientError

from lakegov.aws import error_code, is_transient
from lakegov.errors import RetryableError
from lakegov.events import Event, EventPublisher
from lakegov.layout import LINEAGE_EVENTS_TABLE, record_partition
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
    one event's run id and type, or a digest of every event's, so that a redelivered
    lakegov event rewrites the same object (its run ids derive from it) and no other
    lakegov event's object can share the key."""
    ids = sorted(f"{e['run']['runId']}/{e['eventType']}" for e in events)
    if len(ids) == 1:
        return tuple(ids[0].split("/", 1))
    return ("events", hashlib.sha256("\n".join(ids).encode()).hexdigest()[:32])


def record_all(
    events: Sequence[Mapping[str, Any]], ctx: LineageContext, refreshed: str | None = None
) -> list[dict[str, Any]]:
    """Validate the run events of one lakegov event, keep them in the lake (one object per
    day they fall on), post each to DataZone, then announce them (``LineageRecorded``, as
    few PutEvents calls as the limits allow): each announcement follows its lake record."""
    for event in events:
        validate_event(event)
    by_day: dict[str, list[int]] = defaultdict(list)
    for i, event in enumerate(events):
        by_day[record_partition(str(event["eventTime"])).folder].append(i)
    lake_keys: dict[int, str | None] = {}
    for members in by_day.values():
        day = [events[i] for i in members]
        key = ctx.records.write(
            LINEAGE_EVENTS_TABLE,
            str(day[0]["eventTime"]),
            _object_names(day),
            [_row(event) for event in day],
        )
        lake_keys.update(dict.fromkeys(members, key))
    details = [_announcement(event, ctx, refreshed, lake_keys[i]) for i, event in enumerate(events)]
    ctx.publisher.publish_all(Event("LineageRecorded", detail) for detail in details)
    if details:
        count("LineageEventsRecorded", len(details))
    return details


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
    event: Mapping[str, Any], ctx: LineageContext, refreshed: str | None, key: str | None
) -> dict[str, Any]:
    """Post ``event`` to DataZone (when configured); its ``LineageRecorded`` detail."""
    inputs, outputs = datasets_of(event["inputs"]), datasets_of(event["outputs"])
    datazone = ctx.datazone.post(event) if ctx.datazone else f"skipped: {ctx.datazone_skipped}"
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


def on_lakegov_event(
    detail_type: str, detail: Mapping[str, Any], ctx: LineageContext
) -> dict[str, Any]:
    refreshed = str(detail.get("dataset") or "") if detail_type == "DatasetRefreshed" else None
    recorded = record_all(lineage_events(detail_type, detail, ctx), ctx, refreshed)
    if not recorded:
        logger.info("no lineage in this event", extra={"detail_type": detail_type})
    return {"recorded": len(recorded), "jobs": [r["job"] for r in recorded]}

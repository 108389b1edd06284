"""Config bucket uploads and deletions (governance/, datasets/, products/, subscriptions/)."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.data_classes import EventBridgeEvent
from aws_lambda_powertools.utilities.typing import LambdaContext

from lakegov.app import get_app
from lakegov.metadata.kinds import ApplyContext, DocumentClients, DocumentRef
from lakegov.metadata.registry import metadata_kinds
from lakegov.metadata.service import process_delete, process_upload
from lakegov.observability import logger, metrics, tracer
from lakegov.reprocess.reapply import reapply_batch
from lakegov.reprocess.runs import is_map_batch


@logger.inject_lambda_context(correlation_id_path="id", clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    if is_map_batch(event):  # `lakegov reapply`: stored documents, from the Distributed Map
        return reapply_batch(event, get_app(), context.get_remaining_time_in_millis)
    return _upload_or_delete(EventBridgeEvent(event))


def _upload_or_delete(event: EventBridgeEvent) -> dict[str, Any]:
    app = get_app()
    detail = event.detail
    obj = detail["object"]
    ref = DocumentRef(
        bucket=detail["bucket"]["name"],
        key=obj["key"],
        version_id=obj.get("version-id"),
        etag=obj.get("etag"),
        uploader=detail.get("requester"),
    )
    ctx = ApplyContext(
        document=ref,
        settings=app.settings,
        clients=DocumentClients.from_factory(app.clients),
        audit=app.audit,
        publisher=app.publisher,
    )
    if event.detail_type == "Object Deleted":
        return process_delete(
            ref, metadata_kinds(), s3=app.client("s3"), audit=app.audit, context=ctx
        )
    return process_upload(
        ref,
        metadata_kinds(),
        s3=app.client("s3"),
        publisher=app.publisher,
        audit=app.audit,
        context=ctx,
    )

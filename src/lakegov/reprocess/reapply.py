"""A reapply batch of the Distributed Map into the config function's validate-then-apply
path: documents already in the config bucket run again without being uploaded again."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from lakegov.app import App
from lakegov.errors import PermanentError
from lakegov.metadata.kinds import ApplyContext, DocumentClients, DocumentRef
from lakegov.metadata.registry import metadata_kinds
from lakegov.metadata.service import process_upload
from lakegov.reprocess.runs import RunInput, StoredObject, run_batch


def reapply_batch(
    event: Mapping[str, Any], app: App, remaining_ms: Callable[[], int] | None = None
) -> dict[str, Any]:
    run = RunInput.from_batch(event["BatchInput"])
    if run.target != "metadata" or run.bucket != app.settings.config_bucket:
        raise PermanentError(f"a reapply batch reads the config bucket, not s3://{run.bucket}")
    kinds = metadata_kinds()
    s3 = app.client("s3")

    def apply(stored: StoredObject) -> str:
        ref = DocumentRef(
            bucket=stored.bucket,
            key=stored.key,
            version_id=stored.version_id,
            etag=stored.etag or None,
            uploader=f"reapply {run.run_id}",
        )
        ctx = ApplyContext(
            document=ref,
            settings=app.settings,
            clients=DocumentClients.from_factory(app.clients),
        )
        result = process_upload(
            ref, kinds, s3=s3, publisher=app.publisher, audit=app.audit, context=ctx
        )
        return str(result.get("status", ""))

    # reapplying is the point: every document runs again, once per run
    forced = RunInput(run.run_id, run.bucket, run.target, force=True, since=run.since)
    return run_batch(
        event["Items"],
        forced,
        s3=s3,
        audit=app.audit,
        kind="metadata",
        process=apply,
        remaining_ms=remaining_ms,
    )

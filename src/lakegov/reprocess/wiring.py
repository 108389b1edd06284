"""A reprocess batch of the Distributed Map into the converter (the convert function's
second event shape; the reapply batch is :mod:`lakegov.reprocess.reapply`)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from lakegov.app import App
from lakegov.errors import PermanentError
from lakegov.reprocess.runs import RunInput, StoredObject, landed_object, run_batch


def reprocess_batch(
    event: Mapping[str, Any], app: App, remaining_ms: Callable[[], int] | None = None
) -> dict[str, Any]:
    run = RunInput.from_batch(event["BatchInput"])
    if run.target != "landed" or run.bucket != app.settings.raw_bucket:
        raise PermanentError(f"a reprocess batch reads the raw bucket, not s3://{run.bucket}")

    def convert(stored: StoredObject) -> str:
        return app.converter.process(landed_object(stored)).status

    return run_batch(
        event["Items"],
        run,
        s3=app.client("s3"),
        audit=app.audit,
        kind="file",
        process=convert,
        remaining_ms=remaining_ms,
    )

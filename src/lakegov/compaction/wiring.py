"""The compact function's wiring: clients from the App, one pass over every partition."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from lakegov.app import App
from lakegov.compaction.service import Compactor


def compact_all(app: App, remaining_ms: Callable[[], int] | None = None) -> dict[str, Any]:
    compactor = Compactor(s3=app.client("s3"), glue=app.client("glue"), audit=app.audit)
    results = [r.to_dict() for r in compactor.run_all(remaining_ms)]
    return {
        "partitions": results,
        "compacted": sum(1 for r in results if r["status"] in ("COMPACTED", "RESUMED")),
    }

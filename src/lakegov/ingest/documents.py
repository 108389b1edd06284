"""``datasets/`` documents: validated on upload; the converter reads the ones in force.

Nothing is changed in AWS when a dataset document is applied: the converter picks the most
specific valid document for each landed key when the file arrives. Validating on upload
means a bad document is refused (and explained under ``results/``) before any file meets it.
"""

from __future__ import annotations

from typing import Any

from lakegov.convert.options import options_from_document
from lakegov.errors import InvalidDocument, ValidationIssue
from lakegov.metadata.kinds import ApplyContext, DeploymentRules, MetadataKind


def _check(
    document: Any, source: str, rules: DeploymentRules | None = None
) -> list[ValidationIssue]:
    """A dataset document's checks do not depend on the deployment (``rules`` unused)."""
    try:
        options_from_document(document, source=source)
    except InvalidDocument as exc:
        return list(exc.issues)
    return []


def _apply(document: Any, ctx: ApplyContext) -> dict[str, Any]:
    match, options = options_from_document(document, source=ctx.document.key)
    return {
        "changes": 0,
        "applies_to": f"s3://{ctx.settings.raw_bucket}/{match.prefix}"
        + (f" ({match.pattern})" if match.pattern else ""),
        "table_name": options.table_name,
        "bad_rows": options.bad_rows,
        "note": "read by the converter for every file landing under the prefix",
    }


def dataset_kind() -> MetadataKind:
    return MetadataKind(name="dataset", prefix="datasets/", validate=_check, apply=_apply)

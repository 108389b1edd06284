"""The drift schedule: compare Lake Formation with the governance documents in force.

"In force" means the last version of each ``governance/`` document that was APPLIED (the
audit table knows it; the config bucket is versioned, so that exact version is read). A
refused upload therefore never becomes the reference. The documents are merged in the
order they were applied (the ``updated_at`` of their APPLIED audit item), so a document
applied later wins over one applied earlier whatever their keys. Reconciling is opt-in
(``DRIFT_RECONCILE=true``): it applies the drift report's plan, nothing else, and is
skipped when a document in force could not be read exactly as applied.
"""

from __future__ import annotations

import json
from typing import Any

from botocore.exceptions import ClientError

from lakegov.audit import AuditStore
from lakegov.aws import error_code
from lakegov.errors import InvalidDocument
from lakegov.events import EventPublisher, utc_now
from lakegov.governance.apply import apply as apply_plan
from lakegov.governance.drift import detect_drift
from lakegov.governance.validate import Guardrails, ValidatedDocument, validate
from lakegov.observability import count, logger

PREFIX = "governance/"


def _applied_body(s3: Any, bucket: str, key: str, version: str, audit: AuditStore) -> bytes | None:
    """The exact bytes of the applied ``version`` of ``key``, or None when they are gone.

    ``version`` is an S3 VersionId, or the ETag (quoted) when the bucket was not versioned:
    then the current object is read only if its ETag still matches. When the applied
    VersionId no longer exists (``NoSuchVersion``), the current object stands in for it only
    if the audit does not know that version as anything but APPLIED (never a refused
    upload). Any other error is raised.
    """
    if version in ("", "-"):
        return bytes(s3.get_object(Bucket=bucket, Key=key)["Body"].read())
    if version.startswith('"'):
        try:
            return bytes(s3.get_object(Bucket=bucket, Key=key, IfMatch=version)["Body"].read())
        except ClientError as exc:
            if error_code(exc) not in ("PreconditionFailed", "412"):
                raise
            logger.warning(
                "the applied version is no longer the current object and the bucket keeps "
                "no versions",
                extra={"key": key, "etag": version},
            )
            return None
    try:
        return bytes(s3.get_object(Bucket=bucket, Key=key, VersionId=version)["Body"].read())
    except ClientError as exc:
        if error_code(exc) != "NoSuchVersion":
            raise
    current = s3.get_object(Bucket=bucket, Key=key)
    current_version = str(current.get("VersionId") or current.get("ETag") or "-")
    known = audit.get("metadata", f"s3://{bucket}/{key}", current_version)
    if known is not None and known.get("status") != "APPLIED":
        logger.warning(
            "the applied version is gone and the current object was not applied",
            extra={"key": key, "version": version, "current": current_version},
        )
        return None
    logger.warning(
        "the applied version is gone; reading the current object instead",
        extra={"key": key, "version": version, "current": current_version},
    )
    return bytes(current["Body"].read())


def documents_in_force(
    s3: Any,
    bucket: str,
    audit: AuditStore,
    guardrails: Guardrails,
    *,
    unreadable: list[str] | None = None,
) -> list[ValidatedDocument]:
    """The applied version of every ``governance/`` document, in the order they were applied.

    Keys whose applied version cannot be read exactly, or no longer validates, are left
    out and appended to ``unreadable`` (when given).
    """
    found: list[tuple[str, str, ValidatedDocument]] = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=PREFIX):
        for item in page.get("Contents", []):
            key = item["Key"]
            applied = [
                v
                for v in audit.versions("metadata", f"s3://{bucket}/{key}")
                if v.get("status") == "APPLIED"
            ]
            if not applied:
                continue
            latest = max(applied, key=lambda v: str(v.get("updated_at", "")))
            body = _applied_body(s3, bucket, key, str(latest.get("version") or "-"), audit)
            if body is None:
                if unreadable is not None:
                    unreadable.append(key)
                continue
            try:
                document = validate(json.loads(body), source=key, guardrails=guardrails)
            except (InvalidDocument, ValueError) as exc:
                logger.warning(
                    "a document in force no longer validates", extra={"key": key, "error": str(exc)}
                )
                if unreadable is not None:
                    unreadable.append(key)
                continue
            found.append((str(latest.get("updated_at", "")), key, document))
    found.sort(key=lambda f: (f[0], f[1]))
    return [document for _, _, document in found]


def check_drift(
    *,
    s3: Any,
    config_bucket: str,
    audit: AuditStore,
    lakeformation: Any,
    glue: Any,
    publisher: EventPublisher,
    catalog_id: str,
    guardrails: Guardrails,
    reconcile: bool,
) -> dict[str, Any]:
    unreadable: list[str] = []
    documents = documents_in_force(s3, config_bucket, audit, guardrails, unreadable=unreadable)
    if not documents:
        out: dict[str, Any] = {"documents": 0, "drifted": False}
        if unreadable:
            out["unreadable"] = unreadable
        return out
    report = detect_drift(documents, lakeformation, glue, catalog_id=catalog_id)
    outcome: dict[str, Any] = {
        "documents": len(documents),
        "drifted": report.drifted,
        "differences": len(report.differences),
    }
    if unreadable:
        # what those documents asked for is unknown: repairing without them could undo it
        outcome["unreadable"] = unreadable
        logger.warning(
            "documents in force could not be read as applied: drift is not reconciled",
            extra={"unreadable": unreadable},
        )
    if not report.drifted:
        return outcome
    count("DriftDetected")
    reconciled = False
    if reconcile and report.plan is not None and not unreadable:
        result = apply_plan(report.plan, lakeformation, catalog_id=catalog_id)
        reconciled = result.ok
        outcome["reconcile"] = {"write_calls": result.write_calls, "failed": len(result.failed)}
    detail = report.to_dict()
    publisher.publish(
        "DriftDetected",
        {
            "documents": detail["documents"],
            "differences": detail["differences"][:200],
            "reconciled": reconciled,
            "detected_at": utc_now(),
        },
    )
    logger.warning(
        "Lake Formation drifted from the governance documents",
        extra={"differences": len(report.differences), "reconciled": reconciled},
    )
    return outcome

"""The drift schedule: compare Lake Formation with the governance documents in force.

"In force" means the last version of each ``governance/`` document that was APPLIED (the
audit table knows it; the config bucket is versioned, so that exact version is read). A
refused upload therefore never becomes the reference. Reconciling is opt-in
(``DRIFT_RECONCILE=true``): it applies the drift report's plan, nothing else.
"""

from __future__ import annotations

import json
from typing import Any

from lakegov.audit import AuditStore
from lakegov.errors import InvalidDocument
from lakegov.events import EventPublisher, utc_now
from lakegov.governance.apply import apply as apply_plan
from lakegov.governance.drift import detect_drift
from lakegov.governance.validate import Guardrails, ValidatedDocument, validate
from lakegov.observability import count, logger

PREFIX = "governance/"


def documents_in_force(
    s3: Any, bucket: str, audit: AuditStore, guardrails: Guardrails
) -> list[ValidatedDocument]:
    documents = []
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
            kwargs: dict[str, Any] = {"Bucket": bucket, "Key": key}
            if latest.get("version") not in (None, "-") and not str(latest["version"]).startswith(
                '"'
            ):
                kwargs["VersionId"] = latest["version"]
            try:
                body = s3.get_object(**kwargs)["Body"].read()
            except Exception:  # an ETag-keyed version: the current object is the applied one
                body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
            try:
                documents.append(validate(json.loads(body), source=key, guardrails=guardrails))
            except (InvalidDocument, ValueError) as exc:
                logger.warning(
                    "a document in force no longer validates", extra={"key": key, "error": str(exc)}
                )
    return documents


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
    documents = documents_in_force(s3, config_bucket, audit, guardrails)
    if not documents:
        return {"documents": 0, "drifted": False}
    report = detect_drift(documents, lakeformation, glue, catalog_id=catalog_id)
    outcome: dict[str, Any] = {
        "documents": len(documents),
        "drifted": report.drifted,
        "differences": len(report.differences),
    }
    if not report.drifted:
        return outcome
    count("DriftDetected")
    reconciled = False
    if reconcile and report.plan is not None:
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

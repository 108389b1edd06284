"""The drift schedule: compare Lake Formation with the governance documents in force.

The documents in force (:mod:`lakegov.governance.in_force`: the applied version of each
``governance/`` document, and the read access subscriptions granted) are merged in the
order they were applied, so a document applied later wins over one applied earlier
whatever their keys. Both directions count: what they ask for and Lake Formation lacks,
and what Lake Formation holds in the governed scope that none of them asks for
(:mod:`lakegov.governance.scope`; the stack's own databases and roles come from the
settings). Reconciling is opt-in (``DRIFT_RECONCILE=true``): it applies the drift report's
plan, nothing else, and is skipped when a document in force could not be read exactly as
applied.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from lakegov.audit import AuditStore
from lakegov.events import EventPublisher, utc_now
from lakegov.governance.apply import apply as apply_plan
from lakegov.governance.drift import detect_drift
from lakegov.governance.in_force import documents_in_force, subscription_grants_in_force
from lakegov.governance.validate import Guardrails
from lakegov.observability import count, logger


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
    stack_databases: Iterable[str] = (),
    stack_principals: Iterable[str] = (),
) -> dict[str, Any]:
    """Report (``DriftDetected``) and, with ``reconcile``, repair the differences.

    ``stack_databases`` are governed whole; grants to ``stack_principals`` (and to the data
    lake administrators) are never revoked.
    """
    unreadable: list[str] = []
    documents = documents_in_force(s3, config_bucket, audit, guardrails, unreadable=unreadable)
    documents += subscription_grants_in_force(s3, config_bucket, guardrails, unreadable=unreadable)
    stack_databases = tuple(d for d in stack_databases if d)
    # the stack's databases are governed with or without documents; when no document in
    # force could be read, what they ask for there is unknown: nothing is compared
    if not documents and (unreadable or not stack_databases):
        out: dict[str, Any] = {"documents": 0, "drifted": False}
        if unreadable:
            out["unreadable"] = unreadable
        return out
    report = detect_drift(
        documents,
        lakeformation,
        glue,
        catalog_id=catalog_id,
        stack_databases=stack_databases,
        stack_principals=stack_principals,
    )
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

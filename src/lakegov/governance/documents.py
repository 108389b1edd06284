"""``governance/`` documents in the config bucket: the engine behind the upload path.

Validation is the engine's two layers (JSON Schema, then semantic checks and the
deployment's guardrails), once, on upload; applying plans against Lake Formation and
applies only the difference, so re-uploading a document already in force makes no write
call.

A document replaced by a narrower one, or deleted, takes back what it alone granted: its
last applied version (the audit knows it, the versioned config bucket holds it) is
compared with the new one and with every other document in force (subscriptions' grants
included); what none of them still asks for is revoked, and the tags it alone assigned are
removed (:func:`lakegov.governance.model.retired_state`). When a version needed for that
comparison cannot be read exactly as applied, nothing is revoked and the result says why.
Grants to and revokes from other accounts are announced (``AccessGranted`` /
``AccessRevoked``, :mod:`lakegov.governance.sharing`).
"""

from __future__ import annotations

from typing import Any

from lakegov.audit import AuditStore
from lakegov.errors import InvalidDocument, RetryableError, ValidationIssue
from lakegov.governance.apply import ApplyResult
from lakegov.governance.apply import apply as apply_plan
from lakegov.governance.drift import merge_documents
from lakegov.governance.guardrails import Guardrails
from lakegov.governance.in_force import (
    PREFIX,
    documents_in_force,
    last_applied,
    subscription_grants_in_force,
)
from lakegov.governance.model import DesiredState, retired_state
from lakegov.governance.plan import Plan
from lakegov.governance.plan import plan as make_plan
from lakegov.governance.sharing import access_events
from lakegov.governance.validate import ValidatedDocument, validate
from lakegov.metadata.kinds import ApplyContext, DeploymentRules, DocumentRef, MetadataKind

__all__ = ["governance_kind", "retired_by"]


def retired_by(
    current: ValidatedDocument | None,
    ref: DocumentRef,
    *,
    s3: Any,
    audit: AuditStore | None,
    guardrails: Guardrails,
    catalog_id: str,
) -> tuple[DesiredState | None, list[str]]:
    """What the document at ``ref`` alone granted before and ``current`` (None: deleted) no
    longer asks for; with notes when that cannot be known safely."""
    if not ref.key.startswith(PREFIX):
        return None, []  # a subscription's read access: lakegov.mesh.grants keeps its state
    if audit is None:
        return None, ["no audit store: what earlier versions granted is not revoked"]
    last = last_applied(s3, ref.bucket, ref.key, audit, guardrails, before_version=ref.version)
    if last.document is None:
        if last.readable:
            return None, []
        return None, [
            "the previously applied version cannot be read back exactly: nothing it granted "
            "is revoked (the drift check reports what no document asks for)"
        ]
    unreadable: list[str] = []
    others = documents_in_force(
        s3, ref.bucket, audit, guardrails, unreadable=unreadable, except_key=ref.key
    )
    others += subscription_grants_in_force(s3, ref.bucket, guardrails, unreadable=unreadable)
    if unreadable:
        return None, [
            f"documents in force cannot be read as applied ({', '.join(unreadable[:5])}): "
            "nothing the previous version granted is revoked, another one may still need it"
        ]
    retired = retired_state(
        last.document.desired_state(catalog_id),
        current.desired_state(catalog_id) if current is not None else None,
        merge_documents(others, catalog_id=catalog_id),
    )
    return retired, []


def _announce(ctx: ApplyContext, result: ApplyResult, catalog_id: str) -> int:
    """Publish AccessGranted / AccessRevoked for what was granted to or revoked from other
    accounts; returns how many events."""
    if ctx.publisher is None:
        return 0
    events = access_events(
        result.outcomes,
        producer_account=catalog_id,
        document=ctx.document.to_dict(),
        consumer_roles=list(ctx.extra.get("consumer_roles") or []),
    )
    for detail_type, detail in events:
        ctx.publisher.publish(detail_type, detail)
    return len(events)


def _summary(the_plan: Plan, result: ApplyResult, notes: list[str]) -> dict[str, Any]:
    outcome = result.to_dict()
    return {
        "changes": len(the_plan.changes),
        "failed": len(result.failed),
        "write_calls": result.write_calls,
        "revokes": sum(1 for c in the_plan.changes if c.action == "revoke"),
        "plan": the_plan.to_dict(),
        "notes": [*notes, *the_plan.notes],
        "result": {k: v for k, v in outcome.items() if k != "outcomes"},
        "failures": [o for o in outcome.get("outcomes", []) if o.get("status") == "failed"][:50],
    }


def governance_kind(guardrails: Guardrails | None = None) -> MetadataKind:
    """The ``governance/`` kind; ``guardrails``, when given, replace the deployment's."""

    def rails(rules: DeploymentRules | None) -> Guardrails:
        return guardrails or (rules.guardrails if rules is not None else Guardrails())

    def check(
        document: Any, source: str, rules: DeploymentRules | None = None
    ) -> list[ValidationIssue]:
        try:
            validated = validate(document, source=source, guardrails=rails(rules))
        except InvalidDocument as exc:
            return list(exc.issues)
        return list(validated.warnings)

    def apply_with(validated: ValidatedDocument | None, ctx: ApplyContext) -> dict[str, Any]:
        """Apply ``validated`` (None: the document was deleted) with the revokes of what
        the key's previous version alone granted."""
        catalog_id = ctx.settings.account_id
        lakeformation = ctx.clients.lakeformation
        retired, notes = retired_by(
            validated,
            ctx.document,
            s3=ctx.clients.s3,
            audit=ctx.audit,
            guardrails=rails(DeploymentRules.from_settings(ctx.settings)),
            catalog_id=catalog_id,
        )
        if validated is None:
            the_plan = make_plan(
                DesiredState(catalog_id=catalog_id),
                lakeformation,
                catalog_id=catalog_id,
                retired=retired or DesiredState(catalog_id=catalog_id),
            )
        else:
            the_plan = make_plan(
                validated, lakeformation, ctx.clients.glue, catalog_id=catalog_id, retired=retired
            )
        result = apply_plan(the_plan, lakeformation, catalog_id=catalog_id)
        summary = _summary(the_plan, result, notes)
        summary["access_events"] = _announce(ctx, result, catalog_id)
        return summary

    def run(document: Any, ctx: ApplyContext) -> dict[str, Any]:
        # the desired state of a document that passed the upload check with these rules
        rules = DeploymentRules.from_settings(ctx.settings)
        validated = validate(document, source=ctx.document.key, guardrails=rails(rules))
        return apply_with(validated, ctx)

    def remove(ctx: ApplyContext) -> dict[str, Any]:
        """The document was deleted: revoke what it alone granted. A failed revoke is
        retried (the deletion event comes back): once the deletion is recorded, its tables
        leave the governed scope and nothing would report the grant left behind."""
        summary = apply_with(None, ctx)
        if summary["failed"]:
            failures = "; ".join(
                f"{f.get('error_code')}: {f.get('resource_name', '')}"
                for f in summary["failures"][:5]
            )
            raise RetryableError(
                f"{summary['failed']} revoke(s) of the deleted {ctx.document.key} failed: {failures}"
            )
        return summary

    return MetadataKind(name="governance", prefix=PREFIX, validate=check, apply=run, remove=remove)

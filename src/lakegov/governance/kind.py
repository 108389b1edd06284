"""``governance/`` documents in the config bucket: the engine behind the upload path.

Validation is the engine's two layers (JSON Schema, then semantic checks and guardrails);
applying plans against Lake Formation and applies only the difference, so re-uploading a
document already in force makes no write call.
"""

from __future__ import annotations

import json
from typing import Any

from lakegov.errors import InvalidDocument, PermanentError, ValidationIssue
from lakegov.governance.apply import apply as apply_plan
from lakegov.governance.plan import plan as make_plan
from lakegov.governance.validate import Guardrails, ValidatedDocument, validate
from lakegov.metadata.kinds import ApplyContext, MetadataKind
from lakegov.settings import Settings


def guardrails_from(settings: Settings) -> Guardrails:
    """The deployment's guardrails (GOVERNANCE_GUARDRAILS), at home in its own account."""
    raw = settings.governance_guardrails
    if not raw:
        return Guardrails(home_account_id=settings.account_id or None)
    try:
        data = json.loads(raw)
        data.setdefault("home_account_id", settings.account_id or None)
        return Guardrails.from_dict(data)
    except (ValueError, TypeError) as exc:
        raise PermanentError(
            f"GOVERNANCE_GUARDRAILS is not a valid guardrails object: {exc}"
        ) from exc


def governance_kind(guardrails: Guardrails | None = None) -> MetadataKind:
    """The ``governance/`` kind; ``guardrails`` default to the deployment's settings."""

    def _validated(
        document: Any, source: str, settings: Settings | None = None
    ) -> ValidatedDocument:
        rails = guardrails or (guardrails_from(settings) if settings is not None else Guardrails())
        return validate(document, source=source, guardrails=rails)

    def check(document: Any, source: str) -> list[ValidationIssue]:
        try:
            validated = _validated(document, source)
        except InvalidDocument as exc:
            return list(exc.issues)
        return list(validated.warnings)

    def run(document: Any, ctx: ApplyContext) -> dict[str, Any]:
        try:
            validated = _validated(document, ctx.document.key, ctx.settings)
        except InvalidDocument as exc:  # guardrails of the deployment are stricter than offline
            raise PermanentError("; ".join(str(i) for i in exc.issues[:5])) from exc
        catalog_id = ctx.settings.account_id
        lakeformation = ctx.client("lakeformation")
        the_plan = make_plan(validated, lakeformation, ctx.client("glue"), catalog_id=catalog_id)
        result = apply_plan(the_plan, lakeformation, catalog_id=catalog_id)
        outcome = result.to_dict()
        return {
            "changes": len(the_plan.changes),
            "failed": len(result.failed),
            "write_calls": result.write_calls,
            "plan": the_plan.to_dict(),
            "notes": list(the_plan.notes),
            "result": {k: v for k, v in outcome.items() if k != "outcomes"},
            "failures": [o for o in outcome.get("outcomes", []) if o.get("status") == "failed"][
                :50
            ],
        }

    return MetadataKind(name="governance", prefix="governance/", validate=check, apply=run)

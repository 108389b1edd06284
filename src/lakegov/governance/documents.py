"""``governance/`` documents in the config bucket: the engine behind the upload path.

Validation is the engine's two layers (JSON Schema, then semantic checks and the
deployment's guardrails), once, on upload; applying plans against Lake Formation and
applies only the difference, so re-uploading a document already in force makes no write
call.
"""

from __future__ import annotations

from typing import Any

from lakegov.errors import InvalidDocument, ValidationIssue
from lakegov.governance.apply import apply as apply_plan
from lakegov.governance.guardrails import Guardrails
from lakegov.governance.plan import plan as make_plan
from lakegov.governance.validate import validate
from lakegov.metadata.kinds import ApplyContext, DeploymentRules, MetadataKind


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

    def run(document: Any, ctx: ApplyContext) -> dict[str, Any]:
        # the desired state of a document that passed the upload check with these rules
        rules = DeploymentRules.from_settings(ctx.settings)
        validated = validate(document, source=ctx.document.key, guardrails=rails(rules))
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

"""Drift: where Lake Formation no longer matches the governance documents in force.

The documents are merged in order (a later document's revoke wins over an earlier grant
of the same permission, and the reverse), planned against Lake Formation, and every
planned change is one difference. Reconciling is opt-in: :func:`detect_drift` returns the
plan too, and the caller may pass it to :func:`lakegov.governance.apply.apply`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from lakegov.governance.model import DesiredState
from lakegov.governance.plan import UNREQUESTED, Change, Plan, plan
from lakegov.governance.scope import governed_scope
from lakegov.governance.validate import ValidatedDocument

DRIFT_KINDS = {
    "create_lf_tag": "lf_tag_missing",
    "add_lf_tag_values": "lf_tag_values_missing",
    "create_data_cells_filter": "data_cells_filter_missing",
    "update_data_cells_filter": "data_cells_filter_changed",
    "assign_lf_tags": "lf_tags_not_assigned",
    "grant": "permission_missing",
    "revoke": "revoked_permission_present",
}
# Changes repairing what Lake Formation holds and no document asks for
UNREQUESTED_KINDS = {
    "revoke": "unrequested_permission",
    "remove_lf_tags": "unrequested_lf_tags",
}


@dataclass
class Difference:
    """One way Lake Formation differs from the documents; ``change`` would repair it."""

    kind: str
    description: str
    change: Change

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "description": self.description, "change": self.change.to_dict()}


@dataclass
class DriftReport:
    documents: list[str]
    differences: list[Difference] = field(default_factory=list)
    plan: Plan | None = None

    @property
    def drifted(self) -> bool:
        return bool(self.differences)

    def to_dict(self) -> dict[str, Any]:
        """The body of a ``DriftDetected`` event, without ``detected_at``/``reconciled``."""
        return {
            "documents": self.documents,
            "differences": [d.to_dict() for d in self.differences],
        }


def merge_documents(documents: Iterable[ValidatedDocument], *, catalog_id: str) -> DesiredState:
    merged = DesiredState(catalog_id=catalog_id)
    for doc in documents:
        merged.merge(doc.desired_state(catalog_id))
    return merged


def detect_drift(
    desired_documents: Iterable[ValidatedDocument],
    lakeformation_client: Any,
    glue_client: Any = None,
    *,
    catalog_id: str,
    stack_databases: Iterable[str] = (),
    stack_principals: Iterable[str] = (),
) -> DriftReport:
    """Compare every document in force with Lake Formation, both ways; read-only.

    Grants and tag assignments no document asks for are differences too, inside the scope
    the documents and the stack govern (:func:`lakegov.governance.scope.governed_scope`).
    """
    docs = list(desired_documents)
    merged = merge_documents(docs, catalog_id=catalog_id)
    scope = governed_scope(
        merged, stack_databases=stack_databases, protected_principals=stack_principals
    )
    the_plan = plan(merged, lakeformation_client, glue_client, catalog_id=catalog_id, scope=scope)
    return DriftReport(
        documents=[d.source for d in docs],
        differences=[_difference(c) for c in the_plan.changes],
        plan=the_plan,
    )


def _difference(change: Change) -> Difference:
    if UNREQUESTED in change.sources:
        kind = UNREQUESTED_KINDS[change.action]
        return Difference(kind, f"{change.describe()} (no document in force asks for it)", change)
    return Difference(DRIFT_KINDS[change.action], change.describe(), change)

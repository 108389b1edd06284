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
from lakegov.governance.plan import Change, Plan, plan
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
) -> DriftReport:
    """Compare every document in force with Lake Formation; read-only."""
    docs = list(desired_documents)
    the_plan = plan(
        merge_documents(docs, catalog_id=catalog_id),
        lakeformation_client,
        glue_client,
        catalog_id=catalog_id,
    )
    return DriftReport(
        documents=[d.source for d in docs],
        differences=[Difference(DRIFT_KINDS[c.action], c.describe(), c) for c in the_plan.changes],
        plan=the_plan,
    )

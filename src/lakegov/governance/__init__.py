"""Lake Formation governance from schema-validated documents: validate, plan, apply, drift.

The engine is plain functions over injected clients::

    doc = load_and_validate(body, source=key, guardrails=guardrails)   # raises InvalidDocument
    the_plan = plan(doc, lakeformation, glue, catalog_id=account_id)  # reads only
    result = apply(the_plan, lakeformation)                           # ApplyResult, never raises
                                                                      # for per-change failures
"""

from lakegov.governance.apply import ApplyResult, ChangeOutcome, apply
from lakegov.governance.current_state import read_state
from lakegov.governance.drift import Difference, DriftReport, detect_drift, merge_documents
from lakegov.governance.model import DesiredState
from lakegov.governance.plan import Change, Plan, plan
from lakegov.governance.validate import (
    Guardrails,
    ValidatedDocument,
    load_and_validate,
    parse_document,
    validate,
)

__all__ = [
    "ApplyResult",
    "Change",
    "ChangeOutcome",
    "DesiredState",
    "Difference",
    "DriftReport",
    "Guardrails",
    "Plan",
    "ValidatedDocument",
    "apply",
    "detect_drift",
    "load_and_validate",
    "merge_documents",
    "parse_document",
    "plan",
    "read_state",
    "validate",
]

"""dbt's artifacts (``run_results.json``, ``manifest.json``) turned into the run audit.

The audit has the original solution's fields, one row per model: ``model_nm``,
``process_nm``, ``execution_start_date``, ``execution_end_date``, ``execution_status``,
``execution_failure_reason``, ``rows_affected``. The same artifacts give the partial retry:
the failed models and everything downstream of them, computed from the manifest's
``child_map`` (``result:error+`` would need dbt's state comparison, which a fresh runner
does not have).

Pure functions over parsed JSON: every runner (local, CodeBuild, Step Functions, MWAA, ECS)
that can fetch the two files uses them.
"""

from __future__ import annotations

import json
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from lakegov.errors import PermanentError

SUCCESS = "SUCCESS"
FAILED = "FAILED"
SKIPPED = "SKIPPED"

# dbt node statuses (run_results v5/v6) and what they mean for the audit.
_STATUS_MAP: dict[str, str] = {
    "success": SUCCESS,
    "pass": SUCCESS,
    "warn": SUCCESS,
    "no-op": SUCCESS,
    "error": FAILED,
    "fail": FAILED,
    "runtime error": FAILED,
    "partial success": FAILED,
    "skipped": SKIPPED,
}

# The node types whose rerun rebuilds data; tests follow their models under `dbt build`.
BUILDABLE_TYPES = frozenset({"model", "seed", "snapshot"})
AUDITED_TYPES = BUILDABLE_TYPES


@dataclass(frozen=True)
class ModelRunAudit:
    """One row of the run audit (``audit_control`` in the original solution)."""

    model_nm: str
    process_nm: str
    execution_start_date: str | None
    execution_end_date: str | None
    execution_status: str
    execution_failure_reason: str | None
    rows_affected: int | None
    unique_id: str = ""

    def to_dict(self) -> dict[str, Any]:
        """The audit row, without the dbt unique id (kept for callers that need it)."""
        row = asdict(self)
        row.pop("unique_id")
        return row


def load_artifact(path: str | Path) -> dict[str, Any]:
    """Read one dbt artifact; a missing or unreadable file is a permanent error."""
    try:
        with Path(path).open(encoding="utf-8") as handle:
            data = json.load(handle)
    except (OSError, json.JSONDecodeError) as exc:
        raise PermanentError(f"cannot read dbt artifact {path}: {exc}") from exc
    if not isinstance(data, dict):
        raise PermanentError(f"dbt artifact {path} is not a JSON object")
    return data


def audit_status(dbt_status: str) -> str:
    """The audit's status for a dbt node status (unknown statuses count as failures)."""
    return _STATUS_MAP.get(str(dbt_status).lower(), FAILED)


def run_status(run_results: Mapping[str, Any]) -> str:
    """``FAILED`` when any node (model or test) failed, else ``SUCCESS``."""
    statuses = [audit_status(r.get("status", "")) for r in run_results.get("results", [])]
    return FAILED if FAILED in statuses else SUCCESS


def _resource_type(unique_id: str, manifest: Mapping[str, Any] | None) -> str:
    node = _node(unique_id, manifest)
    if node and node.get("resource_type"):
        return str(node["resource_type"])
    return unique_id.split(".", 1)[0]


def _node(unique_id: str, manifest: Mapping[str, Any] | None) -> Mapping[str, Any] | None:
    if not manifest:
        return None
    node = manifest.get("nodes", {}).get(unique_id)
    return node if isinstance(node, Mapping) else None


def _name(unique_id: str, manifest: Mapping[str, Any] | None) -> str:
    node = _node(unique_id, manifest)
    if node and node.get("name"):
        return str(node["name"])
    return unique_id.rsplit(".", 1)[-1]


def _window(timing: Iterable[Mapping[str, Any]]) -> tuple[str | None, str | None]:
    """First start and last completion over dbt's compile/execute phases (ISO 8601, UTC)."""
    starts = [t["started_at"] for t in timing if t.get("started_at")]
    ends = [t["completed_at"] for t in timing if t.get("completed_at")]
    # dbt writes one fixed ISO format ("...T..Z" with microseconds), so text order is time order.
    return (min(starts) if starts else None, max(ends) if ends else None)


def _rows_affected(result: Mapping[str, Any]) -> int | None:
    value = (result.get("adapter_response") or {}).get("rows_affected")
    if value is None or isinstance(value, bool):
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _ancestors(unique_id: str, manifest: Mapping[str, Any] | None) -> set[str]:
    if not manifest:
        return set()
    parent_map: Mapping[str, list[str]] = manifest.get("parent_map") or {}
    seen: set[str] = set()
    queue = deque(parent_map.get(unique_id, []))
    while queue:
        current = queue.popleft()
        if current not in seen:
            seen.add(current)
            queue.extend(parent_map.get(current, []))
    return seen


def audit_rows(
    run_results: Mapping[str, Any],
    manifest: Mapping[str, Any] | None = None,
    *,
    process_nm: str,
    resource_types: Iterable[str] = AUDITED_TYPES,
) -> list[ModelRunAudit]:
    """The run audit rows of one dbt invocation, one per model (by default) in result order.

    A failed node's reason is dbt's message; a skipped node's reason names the failed
    upstream nodes when the manifest is given.
    """
    wanted = set(resource_types)
    results = list(run_results.get("results", []))
    failed_ids = {r["unique_id"] for r in results if audit_status(r.get("status", "")) == FAILED}
    rows: list[ModelRunAudit] = []
    for result in results:
        unique_id = str(result.get("unique_id", ""))
        if _resource_type(unique_id, manifest) not in wanted:
            continue
        status = audit_status(result.get("status", ""))
        start, end = _window(result.get("timing") or [])
        reason: str | None = None
        if status == FAILED:
            reason = (result.get("message") or f"dbt status {result.get('status')}").strip()
        elif status == SKIPPED:
            failed_upstream = _ancestors(unique_id, manifest) & failed_ids
            upstream = sorted(_name(u, manifest) for u in failed_upstream)
            reason = (
                "skipped: upstream failed: " + ", ".join(upstream)
                if upstream
                else (result.get("message") or "skipped")
            )
        rows.append(
            ModelRunAudit(
                model_nm=_name(unique_id, manifest),
                process_nm=process_nm,
                execution_start_date=start,
                execution_end_date=end,
                execution_status=status,
                execution_failure_reason=reason,
                rows_affected=_rows_affected(result) if status == SUCCESS else None,
                unique_id=unique_id,
            )
        )
    return rows


def _is_buildable(unique_id: str, manifest: Mapping[str, Any]) -> bool:
    node = _node(unique_id, manifest)
    if node is None or node.get("resource_type") not in BUILDABLE_TYPES:
        return False
    materialized = (node.get("config") or {}).get("materialized")
    return materialized != "ephemeral"


def failed_and_children_selection(
    run_results: Mapping[str, Any], manifest: Mapping[str, Any]
) -> list[str]:
    """The dbt selection (model names) that reruns only what failed or did not run.

    Roots are the failed and skipped buildable nodes, and the models a failed data test is
    attached to; the selection is the roots and all their descendants (``child_map``,
    through ephemeral models), keeping the nodes dbt builds. Empty when nothing failed.
    """
    child_map: Mapping[str, list[str]] = manifest.get("child_map") or {}
    parent_map: Mapping[str, list[str]] = manifest.get("parent_map") or {}
    roots: list[str] = []
    for result in run_results.get("results", []):
        unique_id = str(result.get("unique_id", ""))
        status = audit_status(result.get("status", ""))
        if status == SUCCESS:
            continue
        if _is_buildable(unique_id, manifest):
            roots.append(unique_id)
        elif status == FAILED and _resource_type(unique_id, manifest) == "test":
            # A generic test belongs to one model (a relationships test also reads its
            # parent, which is not to be rebuilt); a singular test to all it reads.
            attached = (_node(unique_id, manifest) or {}).get("attached_node")
            tested = [attached] if attached else parent_map.get(unique_id, [])
            roots.extend(p for p in tested if _is_buildable(p, manifest))
    selected: set[str] = set()
    queue = deque(roots)
    while queue:
        current = queue.popleft()
        if current in selected:
            continue
        selected.add(current)
        queue.extend(child_map.get(current, []))
    return sorted({_name(u, manifest) for u in selected if _is_buildable(u, manifest)})


@dataclass(frozen=True)
class DbtTestResult:
    """One dbt test's outcome in one run (a row of the lake's ``test_results`` table)."""

    test_name: str
    unique_id: str
    test_type: str  # the generic test (not_null, unique, relationships...) or "singular"
    model_nm: str | None  # the model (or source) the test is attached to
    column_nm: str | None
    status: str  # dbt's own word: pass, fail, warn, error, skipped
    failures: int | None  # failing rows, as dbt counted them
    message: str | None
    execution_start_date: str | None
    execution_end_date: str | None

    @property
    def passed(self) -> bool:
        return audit_status(self.status) == SUCCESS and self.status.lower() != "warn"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def dbt_test_results(
    run_results: Mapping[str, Any], manifest: Mapping[str, Any] | None = None
) -> list[DbtTestResult]:
    """Every data test of one dbt invocation, in result order.

    Without the manifest a test still has its name and status, but no model or column.
    """
    out: list[DbtTestResult] = []
    for result in run_results.get("results", []):
        unique_id = str(result.get("unique_id", ""))
        if _resource_type(unique_id, manifest) != "test":
            continue
        node = _node(unique_id, manifest) or {}
        attached = node.get("attached_node")
        if not attached:
            tested = list((manifest or {}).get("parent_map", {}).get(unique_id, []))
            attached = tested[0] if len(tested) == 1 else None
        start, end = _window(result.get("timing") or [])
        failures = result.get("failures")
        out.append(
            DbtTestResult(
                test_name=_name(unique_id, manifest),
                unique_id=unique_id,
                test_type=str((node.get("test_metadata") or {}).get("name") or "singular"),
                model_nm=_name(attached, manifest) if attached else None,
                column_nm=node.get("column_name") or None,
                status=str(result.get("status", "")).lower(),
                failures=int(failures) if isinstance(failures, int) else None,
                message=(result.get("message") or None),
                execution_start_date=start,
                execution_end_date=end,
            )
        )
    return out

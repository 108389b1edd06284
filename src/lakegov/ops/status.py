"""``lakegov status``: what happened to a file, a product run or a metadata upload.

Read from the audit table; printed as a timeline a person reads at a glance, or as JSON.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from lakegov.audit import AuditStore

KINDS = ("file", "run", "metadata")


def subject_for(kind: str, ref: str, *, raw_bucket: str, config_bucket: str) -> str:
    """The audit subject for what a person typed: a key, an s3:// URI or a product name."""
    if kind == "run" or ref.startswith("s3://"):
        return ref
    bucket = raw_bucket if kind == "file" else config_bucket
    return f"s3://{bucket}/{ref.lstrip('/')}"


def lookup(audit: AuditStore, kind: str, subject: str) -> list[dict[str, Any]]:
    """Every audit item of one subject, oldest first."""
    items = audit.versions(kind, subject)
    return sorted(items, key=lambda i: str(i.get("created_at", "")))


_DETAIL_FIELDS = (
    ("rows_in", "rows in"),
    ("rows_out", "rows out"),
    ("bad_rows", "bad rows"),
    ("output_keys", "output"),
    ("exceptions_key", "exceptions"),
    ("reason_code", "reason"),
    ("quarantine_key", "quarantined at"),
    ("result_key", "result"),
    ("runner", "runner"),
    ("external_id", "job"),
    ("retry_selection", "retry"),
    ("model_nm", "model"),
    ("execution_status", "status"),
    ("execution_failure_reason", "failure"),
    ("rows_affected", "rows affected"),
)


def render(kind: str, subject: str, items: Iterable[dict[str, Any]]) -> str:
    """A short human-readable timeline."""
    items = list(items)
    if not items:
        return f"{subject}: nothing recorded (check the name; the audit knows only what arrived)"
    lines = [f"{kind} {subject}"]
    for item in items:
        attempts = f", {item['attempts']} attempts" if int(item.get("attempts", 1) or 1) > 1 else ""
        lines.append(f"  [{item.get('status', '?')}] version {item.get('version', '-')}{attempts}")
        for key, label in _DETAIL_FIELDS:
            value = item.get(key)
            if value in (None, "", []):
                continue
            if isinstance(value, list):
                value = ", ".join(map(str, value))
            lines.append(f"      {label:<15} {value}")
        for entry in item.get("history", []):
            note = f"  {entry['note']}" if entry.get("note") else ""
            lines.append(f"      {entry.get('at', ''):<26} {entry.get('status', ''):<10}{note}")
    return "\n".join(lines)


def render_recent(kind: str, items: Iterable[dict[str, Any]]) -> str:
    rows = [f"{'updated':<26} {'status':<10} subject"]
    for item in items:
        rows.append(
            f"{item.get('updated_at', ''):<26} {item.get('status', ''):<10} "
            f"{item.get('subject', '')} ({item.get('version', '-')})"
        )
    return "\n".join(rows) if len(rows) > 1 else f"no {kind} recorded yet"

"""A subscription's read access as a Lake Formation governance document.

The document is in the original ``lf_tags_metadata.json`` shape (a list of entries with
``role_arn``, ``access_type``, ``lf_tags``, ``named_data_catalog``, ``table_permissions``);
the principal is the domain's account id, which makes it a cross-account grant. The
governance engine validates and applies it like any other governance document.

Which grant is in force for a subscription is kept next to its result, under
``results/<key>.grant.json`` in the config bucket, so that narrowing the access or deleting
the subscription revokes exactly what was granted before.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from botocore.exceptions import ClientError

from lakegov.aws import error_code
from lakegov.errors import RetryableError

DEFAULT_PERMISSIONS = ("SELECT", "DESCRIBE")
GRANT_STATE_SUFFIX = ".grant.json"


def read_access_document(subscription: Mapping[str, Any]) -> list[dict[str, Any]] | None:
    """The governance document granting the subscription's read access (None: not asked)."""
    access = subscription.get("read_access")
    if not access:
        return None
    entry: dict[str, Any] = {
        "role_arn": str(subscription["account_id"]),
        "access_type": "GRANT",
        "lf_tags": [
            {"TagKey": t["TagKey"], "TagValues": list(t["TagValues"])}
            for t in access.get("lf_tags", [])
        ],
        "named_data_catalog": [
            {"Database": t["Database"], "Table": t["Table"]} for t in access.get("tables", [])
        ],
        "table_permissions": list(access.get("permissions") or DEFAULT_PERMISSIONS),
    }
    if access.get("grant_option"):
        entry["grant_option"] = True
    return [entry]


def _tables(entry: Mapping[str, Any]) -> set[tuple[str, str]]:
    return {(t["Database"], t["Table"]) for t in entry.get("named_data_catalog", [])}


def _tag_expression(entry: Mapping[str, Any]) -> frozenset[tuple[str, frozenset[str]]]:
    return frozenset((t["TagKey"], frozenset(t["TagValues"])) for t in entry.get("lf_tags", []))


def revocation_document(
    previous: list[dict[str, Any]] | None, current: list[dict[str, Any]] | None
) -> list[dict[str, Any]] | None:
    """REVOKE entries for what ``previous`` granted and ``current`` no longer grants."""
    if not previous:
        return None
    out: list[dict[str, Any]] = []
    now = current[0] if current else None
    for entry in previous:
        principal = entry["role_arn"]
        perms = set(entry.get("table_permissions", []))
        kept_perms = set(now.get("table_permissions", [])) if now is not None else set()
        same_principal = now is not None and now["role_arn"] == principal
        kept_tables = _tables(now) if now is not None and same_principal else set()
        dropped = sorted(_tables(entry) - kept_tables)
        narrowed = sorted(_tables(entry) & kept_tables)

        def revoke(
            tables: list[tuple[str, str]],
            permissions: set[str],
            tags: list[Any],
            principal: str = principal,
        ) -> None:
            if permissions and (tables or tags):
                out.append(
                    {
                        "role_arn": principal,
                        "access_type": "REVOKE",
                        "lf_tags": tags,
                        "named_data_catalog": [{"Database": d, "Table": t} for d, t in tables],
                        "table_permissions": sorted(permissions),
                    }
                )

        revoke(dropped, perms, [])
        revoke(narrowed, perms - kept_perms, [])
        if entry.get("lf_tags"):
            same_tags = (
                now is not None
                and same_principal
                and _tag_expression(now) == _tag_expression(entry)
            )
            revoke([], perms - kept_perms if same_tags else perms, entry["lf_tags"])
    return out or None


def grant_state_key(document_key: str) -> str:
    return f"results/{document_key}{GRANT_STATE_SUFFIX}"


def load_grant_state(s3: Any, bucket: str, document_key: str) -> list[dict[str, Any]] | None:
    """The grant in force for the subscription at ``document_key`` (None when none)."""
    try:
        body = s3.get_object(Bucket=bucket, Key=grant_state_key(document_key))["Body"].read()
    except ClientError as exc:
        if error_code(exc) in ("NoSuchKey", "404", "NotFound"):
            return None
        raise RetryableError(f"reading the grant state: {error_code(exc)}") from exc
    state = json.loads(body)
    document = state.get("document")
    return list(document) if document else None


def save_grant_state(
    s3: Any, bucket: str, document_key: str, document: list[dict[str, Any]] | None
) -> None:
    """Remember the grant in force (or that none is) for the next update or the removal."""
    body = json.dumps({"subscription": document_key, "document": document or []}, indent=2)
    s3.put_object(
        Bucket=bucket,
        Key=grant_state_key(document_key),
        ContentType="application/json",
        Body=body.encode(),
    )

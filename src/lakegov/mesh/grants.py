"""A subscription's read access as a Lake Formation governance document.

The document is in the original ``lf_tags_metadata.json`` shape (a list of entries with
``role_arn``, ``access_type``, ``lf_tags``, ``named_data_catalog``, ``table_permissions``);
the principal is the domain's account id, which makes it a cross-account grant. The
governance engine validates and applies it like any other governance document.

Which grant is in force for a subscription is kept next to its result, under
``results/<key>.grant.json`` in the config bucket, so that narrowing the access or deleting
the subscription revokes exactly what was granted before. It is saved only once the grant
and the revokes all succeeded, so a failed change is computed again on the next upload.

A revoke never takes away what another subscription's grant in force still gives the same
principal on the same resource (:func:`without_other_grants`). Governance documents are not
consulted: a permission a ``governance/`` document also grants to the domain account is
revoked with the subscription (the result says so in ``warnings``); the next drift check
reports it missing and, with reconciling on, grants it again.
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
STATE_PREFIX = "results/"
GOVERNANCE_NOT_CONSULTED = (
    "revokes do not consult governance/ documents: a permission one of them also grants to "
    "{principal} on the same resource is revoked too (the next drift check reports it)"
)


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


def _granted_options(entry: Mapping[str, Any]) -> set[str]:
    option = entry.get("grant_option")
    perms = set(entry.get("table_permissions", []))
    if option is True:
        return perms
    if isinstance(option, list):
        return perms & set(option)
    return set()


def grant_option_revocation(
    previous: list[dict[str, Any]] | None, current: list[dict[str, Any]] | None
) -> list[dict[str, Any]] | None:
    """REVOKE entries taking back the grant option ``previous`` gave and ``current`` drops.

    A governance document cannot revoke a grant option alone, so the entries revoke the kept
    permissions (with their grant option); applying them *before* ``current`` grants the
    permissions again without it.
    """
    if not previous or not current:
        return None
    now = current[0]
    now_options = _granted_options(now)
    out: list[dict[str, Any]] = []
    for entry in previous:
        if entry["role_arn"] != now["role_arn"]:
            continue  # a new principal: revocation_document takes everything back
        dropped = (_granted_options(entry) & set(now.get("table_permissions", []))) - now_options
        if not dropped:
            continue
        tables = sorted(_tables(entry) & _tables(now))
        same_tags = bool(entry.get("lf_tags")) and _tag_expression(now) == _tag_expression(entry)
        if tables or same_tags:
            out.append(
                {
                    "role_arn": entry["role_arn"],
                    "access_type": "REVOKE",
                    "lf_tags": list(entry["lf_tags"]) if same_tags else [],
                    "named_data_catalog": [{"Database": d, "Table": t} for d, t in tables],
                    "table_permissions": sorted(dropped),
                }
            )
    return out or None


def other_grant_states(s3: Any, bucket: str, document_key: str) -> dict[str, list[dict[str, Any]]]:
    """The grants in force of every other subscription: {document key: grant document}."""
    mine = grant_state_key(document_key)
    out: dict[str, list[dict[str, Any]]] = {}
    paginator = s3.get_paginator("list_objects_v2")
    try:
        for page in paginator.paginate(Bucket=bucket, Prefix=STATE_PREFIX + "subscriptions/"):
            for item in page.get("Contents", []):
                key = str(item["Key"])
                if not key.endswith(GRANT_STATE_SUFFIX) or key == mine:
                    continue
                body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
                document = json.loads(body).get("document")
                if document:
                    out[key[len(STATE_PREFIX) : -len(GRANT_STATE_SUFFIX)]] = list(document)
    except ClientError as exc:
        raise RetryableError(f"reading the other grant states: {error_code(exc)}") from exc
    return out


def without_other_grants(
    revoke: list[dict[str, Any]] | None,
    others: Mapping[str, list[dict[str, Any]]],
    *,
    grant_options_only: bool = False,
) -> tuple[list[dict[str, Any]] | None, list[str]]:
    """``revoke`` less what other subscriptions still grant the same principal there.

    Resources compare exactly as Lake Formation keeps them: the same named table, or the
    same LF-Tag expression. With ``grant_options_only`` only permissions the others grant
    *with* the grant option are spared (a grant-option revocation is followed by a re-grant
    of the permission itself). Returns the revoke (None when nothing is left) and one
    warning per permission kept.
    """
    if not revoke:
        return None, []
    out: list[dict[str, Any]] = []
    warnings: list[str] = []

    def still_granted(principal: str, table: tuple[str, str] | None, tags: Any) -> dict[str, str]:
        kept: dict[str, str] = {}
        for key, document in sorted(others.items()):
            for entry in document:
                if entry.get("role_arn") != principal:
                    continue
                if table is not None and table not in _tables(entry):
                    continue
                if table is None and not (entry.get("lf_tags") and _tag_expression(entry) == tags):
                    continue
                perms = (
                    _granted_options(entry)
                    if grant_options_only
                    else set(entry.get("table_permissions", []))
                )
                for perm in perms:
                    kept.setdefault(perm, key)
        return kept

    for entry in revoke:
        principal = entry["role_arn"]
        perms = set(entry.get("table_permissions", []))
        by_perms: dict[frozenset[str], list[tuple[str, str]]] = {}
        for table in sorted(_tables(entry)):
            kept = still_granted(principal, table, None)
            for perm in sorted(perms & set(kept)):
                warnings.append(
                    f"kept {perm} on {table[0]}.{table[1]} for {principal}: "
                    f"{kept[perm]} still grants it"
                )
            left = frozenset(perms - set(kept))
            if left:
                by_perms.setdefault(left, []).append(table)
        for left, tables in sorted(by_perms.items(), key=lambda kv: sorted(kv[0])):
            out.append(
                {
                    **entry,
                    "lf_tags": [],
                    "named_data_catalog": [{"Database": d, "Table": t} for d, t in tables],
                    "table_permissions": sorted(left),
                }
            )
        if entry.get("lf_tags"):
            kept = still_granted(principal, None, _tag_expression(entry))
            for perm in sorted(perms & set(kept)):
                warnings.append(
                    f"kept {perm} on the LF-Tag expression for {principal}: "
                    f"{kept[perm]} still grants it"
                )
            left_tags = perms - set(kept)
            if left_tags:
                out.append(
                    {
                        **entry,
                        "named_data_catalog": [],
                        "table_permissions": sorted(left_tags),
                    }
                )
    return out or None, warnings

"""The governance documents in force, and a document's last applied version.

"In force" means the last version of each ``governance/`` document that was APPLIED (the
audit table knows it; the config bucket is versioned, so that exact version is read). A
refused upload therefore never becomes the reference. The documents are ordered by when
they were applied (the ``updated_at`` of their APPLIED audit item). The read access that
subscriptions granted (``results/subscriptions/<key>.grant.json``, see
:mod:`lakegov.mesh.grants`) is in force too: :func:`subscription_grants_in_force`.

The drift check compares Lake Formation with all of them; applying or deleting one
document compares its last applied version with its new one and with all the others, so
that exactly what it alone granted is revoked (:func:`lakegov.governance.model.retired_state`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from lakegov.audit import AuditStore
from lakegov.aws import error_code
from lakegov.errors import InvalidDocument
from lakegov.governance.guardrails import Guardrails
from lakegov.governance.validate import ValidatedDocument, validate
from lakegov.observability import logger

PREFIX = "governance/"
_GONE = ("NoSuchKey", "404", "NotFound")


def _applied_body(s3: Any, bucket: str, key: str, version: str, audit: AuditStore) -> bytes | None:
    """The exact bytes of the applied ``version`` of ``key``, or None when they are gone.

    ``version`` is an S3 VersionId, or the ETag (quoted) when the bucket was not versioned:
    then the current object is read only if its ETag still matches. When the applied
    VersionId no longer exists (``NoSuchVersion``), the current object stands in for it only
    if the audit does not know that version as anything but APPLIED (never a refused
    upload). Any other error is raised.
    """
    try:
        return _read_version(s3, bucket, key, version, audit)
    except ClientError as exc:
        if error_code(exc) not in _GONE:
            raise
        logger.warning("the applied version is gone", extra={"key": key, "version": version})
        return None


def _read_version(s3: Any, bucket: str, key: str, version: str, audit: AuditStore) -> bytes | None:
    if version in ("", "-"):
        return bytes(s3.get_object(Bucket=bucket, Key=key)["Body"].read())
    if version.startswith('"'):
        try:
            return bytes(s3.get_object(Bucket=bucket, Key=key, IfMatch=version)["Body"].read())
        except ClientError as exc:
            if error_code(exc) not in ("PreconditionFailed", "412"):
                raise
            logger.warning(
                "the applied version is no longer the current object and the bucket keeps "
                "no versions",
                extra={"key": key, "etag": version},
            )
            return None
    try:
        return bytes(s3.get_object(Bucket=bucket, Key=key, VersionId=version)["Body"].read())
    except ClientError as exc:
        if error_code(exc) != "NoSuchVersion":
            raise
    current = s3.get_object(Bucket=bucket, Key=key)
    current_version = str(current.get("VersionId") or current.get("ETag") or "-")
    known = audit.get("metadata", f"s3://{bucket}/{key}", current_version)
    if known is not None and known.get("status") != "APPLIED":
        logger.warning(
            "the applied version is gone and the current object was not applied",
            extra={"key": key, "version": version, "current": current_version},
        )
        return None
    logger.warning(
        "the applied version is gone; reading the current object instead",
        extra={"key": key, "version": version, "current": current_version},
    )
    return bytes(current["Body"].read())


@dataclass(frozen=True)
class LastApplied:
    """A document's last applied version: ``document`` None when it never was applied
    (``readable`` True) or cannot be read back exactly as applied (``readable`` False)."""

    document: ValidatedDocument | None
    readable: bool = True
    applied_at: str = ""


def last_applied(
    s3: Any,
    bucket: str,
    key: str,
    audit: AuditStore,
    guardrails: Guardrails,
    *,
    before_version: str | None = None,
) -> LastApplied:
    """The last APPLIED version of ``key`` (other than ``before_version``, the upload being
    processed), validated again as the engine saw it; none when the document was deleted
    (REMOVED) after it."""
    applied = [
        v
        for v in audit.versions("metadata", f"s3://{bucket}/{key}")
        if v.get("status") in ("APPLIED", "REMOVED") and v.get("version") != before_version
    ]
    if not applied:
        return LastApplied(None)
    latest = max(applied, key=lambda v: str(v.get("updated_at", "")))
    if latest.get("status") == "REMOVED":  # deleted since: what it granted is taken back
        return LastApplied(None)
    body = _applied_body(s3, bucket, key, str(latest.get("version") or "-"), audit)
    if body is None:
        return LastApplied(None, readable=False)
    try:
        document = validate(json.loads(body), source=key, guardrails=guardrails)
    except (InvalidDocument, ValueError) as exc:
        logger.warning(
            "a document in force no longer validates", extra={"key": key, "error": str(exc)}
        )
        return LastApplied(None, readable=False)
    return LastApplied(document, applied_at=str(latest.get("updated_at", "")))


def documents_in_force(
    s3: Any,
    bucket: str,
    audit: AuditStore,
    guardrails: Guardrails,
    *,
    unreadable: list[str] | None = None,
    except_key: str | None = None,
) -> list[ValidatedDocument]:
    """The applied version of every ``governance/`` document, in the order they were applied.

    Keys whose applied version cannot be read exactly, or no longer validates, are left
    out and appended to ``unreadable`` (when given). ``except_key`` is left out too.
    """
    found: list[tuple[str, str, ValidatedDocument]] = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=PREFIX):
        for item in page.get("Contents", []):
            key = item["Key"]
            if key == except_key:
                continue
            last = last_applied(s3, bucket, key, audit, guardrails)
            if last.document is None:
                if not last.readable and unreadable is not None:
                    unreadable.append(key)
                continue
            found.append((last.applied_at, key, last.document))
    found.sort(key=lambda f: (f[0], f[1]))
    return [document for _, _, document in found]


def subscription_grants_in_force(
    s3: Any, bucket: str, guardrails: Guardrails, *, unreadable: list[str] | None = None
) -> list[ValidatedDocument]:
    """The read access subscriptions granted (and have not revoked), as governance documents."""
    from lakegov.mesh.grants import other_grant_states

    out: list[ValidatedDocument] = []
    for key, document in sorted(other_grant_states(s3, bucket, "").items()):
        try:
            out.append(validate(document, source=f"{key}#read_access", guardrails=guardrails))
        except InvalidDocument as exc:
            logger.warning(
                "a subscription's grant in force no longer validates",
                extra={"key": key, "error": str(exc)},
            )
            if unreadable is not None:
                unreadable.append(key)
    return out

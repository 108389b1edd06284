"""The config-bucket path: an upload is validated, applied and reported, or refused.

A refused document changes nothing: every error (with its JSON path) is written under
``results/<key>.result.json``, a ``GovernanceRejected`` event is published and the audit
records it. An applied one writes its summary the same way with ``GovernanceApplied``.
The result object is written first and the event last, so a consumer reacting to the
event always finds the result.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from botocore.exceptions import ClientError

from lakegov.audit import AuditStore
from lakegov.aws import error_code, is_transient
from lakegov.errors import PermanentError, RetryableError, ValidationIssue
from lakegov.events import EventPublisher, utc_now
from lakegov.metadata.kinds import ApplyContext, DeploymentRules, DocumentRef, MetadataKind
from lakegov.observability import count, logger

RESULTS_PREFIX = "results/"
CLAIM_LEASE_SECONDS = 120
MAX_DOCUMENT_BYTES = 5 * 1024 * 1024


def result_key(key: str) -> str:
    return f"{RESULTS_PREFIX}{key}.result.json"


def kind_for(key: str, kinds: Mapping[str, MetadataKind]) -> MetadataKind | None:
    for prefix, kind in kinds.items():
        if key.startswith(prefix):
            return kind
    return None


def read_document(s3: Any, ref: DocumentRef) -> tuple[Any, list[ValidationIssue]]:
    """The parsed JSON document, or issues saying why it cannot be read as one."""
    kwargs: dict[str, Any] = {"Bucket": ref.bucket, "Key": ref.key}
    if ref.version_id:
        kwargs["VersionId"] = ref.version_id
    try:
        obj = s3.get_object(**kwargs)
    except ClientError as exc:
        if error_code(exc) in ("NoSuchKey", "NoSuchVersion", "404"):
            raise PermanentError(f"s3://{ref.bucket}/{ref.key} no longer exists") from exc
        raise RetryableError(f"reading s3://{ref.bucket}/{ref.key}: {error_code(exc)}") from exc
    if int(obj.get("ContentLength", 0)) > MAX_DOCUMENT_BYTES:
        return None, [ValidationIssue("$", f"document is over {MAX_DOCUMENT_BYTES} bytes")]
    raw = obj["Body"].read()
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        return None, [ValidationIssue("$", f"not UTF-8 text (byte {exc.start})")]
    if not text.strip():
        return None, [ValidationIssue("$", "the document is empty; expected JSON")]
    try:
        return json.loads(text), []
    except json.JSONDecodeError as exc:
        return None, [
            ValidationIssue(
                "$", f"not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"
            )
        ]


def _write_result(s3: Any, ref: DocumentRef, body: Mapping[str, Any]) -> str:
    key = result_key(ref.key)
    s3.put_object(
        Bucket=ref.bucket,
        Key=key,
        ContentType="application/json",
        Body=json.dumps(body, indent=2, default=str).encode(),
    )
    return key


def process_upload(
    ref: DocumentRef,
    kinds: Mapping[str, MetadataKind],
    *,
    s3: Any,
    publisher: EventPublisher,
    audit: AuditStore,
    context: ApplyContext,
) -> dict[str, Any]:
    """Validate, then apply, one uploaded document; return the result written under results/."""
    kind = kind_for(ref.key, kinds)
    if kind is None:
        logger.info("not a metadata document; ignored", extra={"key": ref.key})
        return {"status": "IGNORED"}
    subject = f"s3://{ref.bucket}/{ref.key}"
    claim = audit.claim(
        "metadata",
        subject,
        ref.version,
        attributes={"document_kind": kind.name, "uploader": ref.uploader or ""},
        # shorter than Lambda's first async retry after a timeout, so that retry can take over
        lease_seconds=CLAIM_LEASE_SECONDS,
    )
    if claim.duplicate:
        logger.info("duplicate delivery of a processed document", extra={"key": ref.key})
        count("DuplicateDeliveries")
        return {"status": "DUPLICATE", "previous": claim.item.get("status")}

    document, issues = read_document(s3, ref)
    if not issues:
        try:  # the one check, with this deployment's rules: apply trusts what passes it
            issues = kind.validate(
                document, ref.key, DeploymentRules.from_settings(context.settings)
            )
        except PermanentError as exc:  # the deployment's own rules are malformed
            issues = [ValidationIssue("$", str(exc))]
        except Exception as exc:  # a validator bug must not lose the upload: refuse, loudly
            logger.exception("validator crashed", extra={"key": ref.key})
            issues = [ValidationIssue("$", f"internal validation error: {type(exc).__name__}")]
    errors = [i for i in issues if i.severity == "error"]
    warnings = [i.to_dict() for i in issues if i.severity != "error"]
    base = {
        "document": ref.to_dict(),
        "kind": kind.name,
        "uploader": ref.uploader,
        "processed_at": utc_now(),
    }
    if errors:
        return _reject(
            ref,
            kind,
            base,
            [e.to_dict() for e in errors],
            warnings,
            s3=s3,
            publisher=publisher,
            audit=audit,
            subject=subject,
        )
    try:
        summary = kind.apply(document, context)
    except PermanentError as exc:
        return _reject(
            ref,
            kind,
            base,
            [{"path": "$", "message": str(exc)}],
            warnings,
            s3=s3,
            publisher=publisher,
            audit=audit,
            subject=subject,
        )
    except Exception as exc:
        audit.release("metadata", subject, ref.version, note=f"{type(exc).__name__}: {exc}")
        if isinstance(exc, RetryableError) or is_transient(exc):
            raise
        raise RetryableError(f"applying {ref.key} failed: {type(exc).__name__}: {exc}") from exc
    result = {**base, "status": "APPLIED", "warnings": warnings, "summary": summary}
    key = _write_result(s3, ref, result)
    changes = int(summary.get("changes", 0))
    failed = int(summary.get("failed", 0))
    audit.record(
        "metadata",
        subject,
        ref.version,
        "APPLIED" if not failed else "FAILED",
        note=f"{changes} change(s), {failed} failed",
        attributes={"result_key": key, "summary": summary},
    )
    publisher.publish(
        "GovernanceApplied",
        {
            "document": ref.to_dict(),
            "kind": kind.name,
            "changes": changes,
            "failed": failed,
            "write_calls": int(summary.get("write_calls", 0)),
            "warnings": warnings,
            "result_key": key,
            "uploader": ref.uploader,
            "applied_at": utc_now(),
        },
    )
    count(f"{kind.name.capitalize()}DocumentsApplied")
    return result


def _reject(
    ref: DocumentRef,
    kind: MetadataKind,
    base: dict[str, Any],
    errors: list[dict[str, Any]],
    warnings: list[dict[str, Any]],
    *,
    s3: Any,
    publisher: EventPublisher,
    audit: AuditStore,
    subject: str,
) -> dict[str, Any]:
    result = {**base, "status": "REJECTED", "errors": errors, "warnings": warnings}
    key = _write_result(s3, ref, result)
    audit.record(
        "metadata",
        subject,
        ref.version,
        "REJECTED",
        note=f"{len(errors)} error(s): {errors[0]['path']}: {errors[0]['message']}"[:500],
        attributes={"result_key": key, "errors": errors[:50]},
    )
    publisher.publish(
        "GovernanceRejected",
        {
            "document": ref.to_dict(),
            "kind": kind.name,
            "errors": errors[:100],
            "result_key": key,
            "uploader": ref.uploader,
            "rejected_at": utc_now(),
        },
    )
    count(f"{kind.name.capitalize()}DocumentsRejected")
    logger.warning("metadata document rejected", extra={"key": ref.key, "errors": errors[:5]})
    return result


def process_delete(
    ref: DocumentRef,
    kinds: Mapping[str, MetadataKind],
    *,
    s3: Any,
    audit: AuditStore,
    context: ApplyContext,
) -> dict[str, Any]:
    """A document was deleted: let its kind undo what it owned (when it supports that)."""
    kind = kind_for(ref.key, kinds)
    if kind is None or kind.remove is None:
        return {"status": "IGNORED"}
    try:  # an old version deleted, or a late event after a re-upload: the document still stands
        s3.head_object(Bucket=ref.bucket, Key=ref.key)
        logger.info(
            "the document still has a current version; nothing removed", extra={"key": ref.key}
        )
        return {"status": "IGNORED", "reason": "the document still exists"}
    except ClientError as exc:
        if error_code(exc) not in ("404", "NoSuchKey", "NotFound"):
            raise RetryableError(
                f"checking s3://{ref.bucket}/{ref.key}: {error_code(exc)}"
            ) from exc
    summary = kind.remove(context)
    result = {
        "document": ref.to_dict(),
        "kind": kind.name,
        "status": "REMOVED",
        "summary": summary,
        "processed_at": utc_now(),
    }
    _write_result(s3, ref, result)
    audit.record(
        "metadata",
        f"s3://{ref.bucket}/{ref.key}",
        ref.version,
        "REMOVED",
        attributes={"summary": summary},
    )
    return result

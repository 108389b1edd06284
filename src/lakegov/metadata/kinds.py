"""The contract between the config-bucket path and each kind of metadata document."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from lakegov.errors import ValidationIssue
from lakegov.settings import Settings


@dataclass(frozen=True)
class DocumentRef:
    """Where a document came from, and who put it there."""

    bucket: str
    key: str
    version_id: str | None = None
    etag: str | None = None
    uploader: str | None = None

    @property
    def version(self) -> str:
        return self.version_id or self.etag or "-"

    def to_dict(self) -> dict[str, Any]:
        return {
            "bucket": self.bucket,
            "key": self.key,
            "version_id": self.version_id,
            "etag": self.etag,
        }


@dataclass
class ApplyContext:
    """What an apply step may use: AWS clients, the deployment's settings and its audit
    store (``audit`` None: offline, what previous versions did is not known)."""

    document: DocumentRef
    settings: Settings
    client: Callable[[str], Any]
    extra: dict[str, Any] = field(default_factory=dict)
    audit: Any = None  # lakegov.audit.AuditStore
    publisher: Any = None  # lakegov.events.EventPublisher (None: nothing is announced)


@dataclass(frozen=True)
class MetadataKind:
    """One kind of document.

    ``validate(document, source) -> issues``: schema and semantic checks, nothing changed;
    issues with severity "error" refuse the document. ``apply(document, ctx) -> summary``:
    make the world match (idempotent); raise RetryableError for transient faults and
    PermanentError when the document cannot be applied. ``remove(ctx)``: the document was
    deleted (optional).
    """

    name: str
    prefix: str
    validate: Callable[[Any, str], list[ValidationIssue]]
    apply: Callable[[Any, ApplyContext], dict[str, Any]]
    remove: Callable[[ApplyContext], dict[str, Any]] | None = None

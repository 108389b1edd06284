"""The contract between the config-bucket path and each kind of metadata document."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from lakegov.errors import ValidationIssue
from lakegov.governance.guardrails import Guardrails, guardrails_from
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


@dataclass(frozen=True)
class DeploymentRules:
    """What a deployment adds to a document's own checks: its guardrails and its names.

    The defaults are the offline ones (``lakegov validate`` without a deployment).
    """

    guardrails: Guardrails = field(default_factory=Guardrails)
    glue_database_prefix: str = ""

    @classmethod
    def from_settings(cls, settings: Settings) -> DeploymentRules:
        """The deployment's rules; a malformed GOVERNANCE_GUARDRAILS raises PermanentError."""
        return cls(guardrails_from(settings), settings.glue_database_prefix)


class Validator(Protocol):
    """``validate(document, source, rules) -> issues``: every problem, each at its JSON path."""

    def __call__(
        self, document: Any, source: str, rules: DeploymentRules | None = None
    ) -> list[ValidationIssue]: ...


@dataclass
class ApplyContext:
    """What an apply step may use: AWS clients and the deployment's settings."""

    document: DocumentRef
    settings: Settings
    client: Callable[[str], Any]
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class MetadataKind:
    """One kind of document.

    ``validate(document, source, rules) -> issues``: schema and semantic checks with the
    deployment's rules (offline defaults when ``rules`` is None), nothing changed; issues
    with severity "error" refuse the document. It is the only check: ``apply(document, ctx)
    -> summary`` receives a document that passed it, and makes the world match
    (idempotent); it raises RetryableError for transient faults and PermanentError when the
    world refuses the document. ``remove(ctx)``: the document was
    deleted (optional).
    """

    name: str
    prefix: str
    validate: Validator
    apply: Callable[[Any, ApplyContext], dict[str, Any]]
    remove: Callable[[ApplyContext], dict[str, Any]] | None = None

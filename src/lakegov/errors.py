"""The domain's exceptions.

Two families matter to the runtime: :class:`PermanentError` (bad input: recorded, evented,
never retried) and :class:`RetryableError` (a transient fault: it propagates so that
Lambda, SQS and the dead-letter queues do their work). Adapters wrap SDK errors with
``raise ... from exc`` so that callers never match on message text.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


class LakegovError(Exception):
    """Base class of every error lakegov raises on purpose."""


class ConfigurationError(LakegovError):
    """The service is misconfigured (missing environment variable, bad parameter)."""


class RetryableError(LakegovError):
    """A transient failure: the unit of work should be retried as it is."""


class PermanentError(LakegovError):
    """The input itself is wrong: retrying it unchanged cannot succeed."""


@dataclass(frozen=True)
class ValidationIssue:
    """One problem found in a document, addressed by its JSON path."""

    path: str
    message: str
    value: Any = None
    severity: str = "error"  # "error" refuses the document, "warning" only reports

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"path": self.path, "message": self.message}
        if self.value is not None:
            out["value"] = self.value
        if self.severity != "error":
            out["severity"] = self.severity
        return out

    def __str__(self) -> str:
        return f"{self.path}: {self.message}"


class InvalidDocument(PermanentError):
    """A metadata document failed validation; nothing was changed."""

    def __init__(self, issues: list[ValidationIssue], source: str = "") -> None:
        self.issues = issues
        self.source = source
        first = issues[0] if issues else None
        summary = f"{len(issues)} problem(s)" + (f", first: {first}" if first else "")
        super().__init__(f"{source or 'document'} is invalid: {summary}")


@dataclass
class RejectedFile(PermanentError):
    """A landed file cannot be converted. ``reason_code`` is a stable machine-readable class."""

    reason_code: str
    reason: str
    bad_lines: list[int] = field(default_factory=list)

    def __post_init__(self) -> None:
        super().__init__(f"{self.reason_code}: {self.reason}")

    def __str__(self) -> str:
        return f"{self.reason_code}: {self.reason}"

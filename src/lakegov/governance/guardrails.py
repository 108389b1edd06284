"""The deployment's guardrails: organisation-wide limits on what a governance document may do.

They come from the ``GOVERNANCE_GUARDRAILS`` setting (a JSON object) and are applied when a
document is validated (:func:`lakegov.governance.validate.validate`), on upload and by the
drift job, never as a second check at apply time.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from fnmatch import fnmatchcase
from typing import Any

from lakegov.errors import PermanentError
from lakegov.settings import Settings


@dataclass(frozen=True)
class Guardrails:
    """Organisation-wide limits on what a governance document may do.

    ``governed_databases``: shell-style patterns (``sales_*``) of the databases documents may
    govern; anything else is refused. ``allowed_permissions``: permissions among
    ``sensitive_permissions`` that documents may grant (by default none: ``ALL`` and
    ``DATA_LOCATION_ACCESS`` need an explicit allow). ``allow_cross_account``: whether
    principals outside ``home_account_id`` (other accounts, organisations, OUs) may be
    granted. ``refuse_stray_spaces``: refuse names with leading/trailing spaces instead of
    trimming them with a warning.
    """

    governed_databases: tuple[str, ...] = ("*",)
    allowed_permissions: frozenset[str] = frozenset()
    sensitive_permissions: frozenset[str] = frozenset({"ALL", "DATA_LOCATION_ACCESS"})
    allow_grant_option: bool = True
    allow_cross_account: bool = True
    home_account_id: str | None = None
    refuse_stray_spaces: bool = False

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Guardrails:
        """Build from plain settings (e.g. a JSON parameter); unknown keys are an error."""
        known = set(cls.__dataclass_fields__)
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown guardrail setting(s): {', '.join(sorted(unknown))}")
        kwargs: dict[str, Any] = dict(data)
        for name in ("governed_databases",):
            if name in kwargs:
                kwargs[name] = tuple(kwargs[name])
        for name in ("allowed_permissions", "sensitive_permissions"):
            if name in kwargs:
                kwargs[name] = frozenset(kwargs[name])
        return cls(**kwargs)

    def governs(self, database: str) -> bool:
        return any(fnmatchcase(database, pattern) for pattern in self.governed_databases)


def guardrails_from(settings: Settings) -> Guardrails:
    """The deployment's guardrails (GOVERNANCE_GUARDRAILS), at home in its own account."""
    raw = settings.governance_guardrails
    if not raw:
        return Guardrails(home_account_id=settings.account_id or None)
    try:
        data = json.loads(raw)
        data.setdefault("home_account_id", settings.account_id or None)
        return Guardrails.from_dict(data)
    except (ValueError, TypeError, AttributeError) as exc:
        raise PermanentError(
            f"GOVERNANCE_GUARDRAILS is not a valid guardrails object: {exc}"
        ) from exc

"""The checker's state and its checks of single values in a governance document.

:class:`Checks` holds the issues found so far and the desired state being built, under the
deployment's guardrails, and checks one value at a time: names (trimmed, lower-cased as
the Data Catalog stores them), LF-Tag keys and values, and principals (their forms, the
forbidden ones, cross-account). The document's structure is walked by
:mod:`lakegov.governance.validate` and :mod:`lakegov.governance.envelope`.
"""

from __future__ import annotations

import re
from typing import Any

from lakegov.errors import ValidationIssue
from lakegov.governance.guardrails import Guardrails
from lakegov.governance.model import DesiredState
from lakegov.jsonschemas import short_value

WARNING = "warning"

PARTITION = r"aws(?:-cn|-us-gov|-iso(?:-[a-z])?)?"
_ACCOUNT = r"\d{12}"
_IAM_NAME = r"[\w+=,.@-]+"
_IAM_PATH = rf"(?:{_IAM_NAME}/)*{_IAM_NAME}"
_PRINCIPAL_FORMS: list[tuple[str, re.Pattern[str]]] = [
    ("IAM role", re.compile(rf"arn:{PARTITION}:iam::{_ACCOUNT}:role/{_IAM_PATH}")),
    ("IAM user", re.compile(rf"arn:{PARTITION}:iam::{_ACCOUNT}:user/{_IAM_PATH}")),
    (
        "SAML user or group",
        re.compile(
            rf"arn:{PARTITION}:iam::{_ACCOUNT}:saml-provider/[\w.-]+:(?:user|group)/[^\s*]+"
        ),
    ),
    (
        "IAM Identity Center user or group",
        re.compile(rf"arn:{PARTITION}:identitystore:::(?:user|group)/[A-Za-z0-9-]{{1,64}}"),
    ),
    ("AWS account", re.compile(_ACCOUNT)),
    (
        "organisation",
        re.compile(rf"arn:{PARTITION}:organizations::{_ACCOUNT}:organization/o-[a-z0-9]{{10,32}}"),
    ),
    (
        "organisational unit",
        re.compile(
            rf"arn:{PARTITION}:organizations::{_ACCOUNT}:ou/o-[a-z0-9]{{10,32}}"
            r"/ou-[0-9a-z]{4,32}-[a-z0-9]{8,32}"
        ),
    ),
]
_EXPECTED_PRINCIPAL = (
    "an IAM role or user ARN (arn:aws:iam::<12-digit account>:role/<name>), a SAML or "
    "IAM Identity Center user/group ARN, a 12-digit account id, or an organisation/OU ARN"
)
_IAM_LIKE = re.compile(r"arn:[^:]*:iam::([^:]*):")
_ACCOUNT_IN_ARN = re.compile(rf"arn:{PARTITION}:(?:iam|organizations)::({_ACCOUNT}):")
_TAG_KEY = re.compile(r"[\w\s.:/=+\-@%]{1,128}")
_TAG_VALUE = re.compile(r"[\w\s.:*/=+\-@%]{0,256}")
_FORBIDDEN_PRINCIPALS = {"IAM_ALLOWED_PRINCIPALS", "ALLIAMPRINCIPALS", "EVERYONE"}


class Checks:
    """Issues, the desired state, and the checks of one value under the guardrails."""

    def __init__(self, guardrails: Guardrails, catalog_id: str) -> None:
        self.g = guardrails
        self.issues: list[ValidationIssue] = []
        self.desired = DesiredState(catalog_id=catalog_id)
        self.catalog_id = catalog_id

    # issues
    def error(self, path: str, message: str, value: Any = None) -> None:
        self.issues.append(ValidationIssue(path, message, short_value(value)))

    def warn(self, path: str, message: str, value: Any = None) -> None:
        self.issues.append(ValidationIssue(path, message, short_value(value), WARNING))

    # names
    def _trimmed(self, value: str, path: str, what: str) -> str | None:
        cleaned = value.strip()
        if cleaned != value:
            if self.g.refuse_stray_spaces:
                self.error(path, f"expected a {what} without leading or trailing spaces", value)
                return None
            self.warn(
                path, f"leading/trailing spaces removed from the {what}: using {cleaned!r}", value
            )
        if not cleaned:
            self.error(path, f"expected a non-empty {what}", value)
            return None
        return cleaned

    def glue_name(self, value: str, path: str, what: str) -> str | None:
        name = self._trimmed(value, path, what)
        if name is None:
            return None
        if any(c.isspace() or ord(c) < 32 for c in name) or "*" in name or len(name) > 255:
            self.error(
                path,
                f"expected a {what} of at most 255 characters without spaces or '*'",
                value,
            )
            return None
        if name != name.lower():
            self.warn(
                path,
                f"the Data Catalog stores {what}s in lower case: using {name.lower()!r}",
                value,
            )
            name = name.lower()
        return name

    def tag_key(self, value: str, path: str) -> str | None:
        key = self._trimmed(value, path, "LF-Tag key")
        if key is None:
            return None
        if not _TAG_KEY.fullmatch(key):
            self.error(
                path,
                "expected an LF-Tag key of 1-128 letters, digits, spaces or _.:/=+-@%",
                value,
            )
            return None
        return key

    def tag_value(self, value: str, path: str) -> str | None:
        val = self._trimmed(value, path, "LF-Tag value")
        if val is None:
            return None
        if not _TAG_VALUE.fullmatch(val):
            self.error(
                path,
                "expected an LF-Tag value of at most 256 letters, digits, spaces or _.:*/=+-@%",
                value,
            )
            return None
        return val

    def principal(self, value: str, path: str) -> str | None:
        p = self._trimmed(value, path, "principal")
        if p is None:
            return None
        if p.upper() in _FORBIDDEN_PRINCIPALS or "*" in p:
            self.error(
                path,
                f"grants to {p!r} are not allowed: name a specific principal "
                "(no IAM_ALLOWED_PRINCIPALS, no wildcards)",
                value,
            )
            return None
        form = next((k for k, rx in _PRINCIPAL_FORMS if rx.fullmatch(p)), None)
        if form is None:
            hint = ""
            m = _IAM_LIKE.match(p)
            if m and not re.fullmatch(_ACCOUNT, m.group(1)):
                hint = f" (the account id {m.group(1)!r} is not 12 digits)"
            self.error(path, f"expected {_EXPECTED_PRINCIPAL}{hint}", value)
            return None
        if not self.g.allow_cross_account and self.g.home_account_id:
            account = p if form == "AWS account" else None
            m2 = _ACCOUNT_IN_ARN.match(p)
            if m2:
                account = m2.group(1)
            external = form in ("organisation", "organisational unit") or (
                account is not None and account != self.g.home_account_id
            )
            if external:
                self.error(
                    path,
                    f"cross-account grants are not allowed here: expected a principal of "
                    f"account {self.g.home_account_id}",
                    value,
                )
                return None
        return p

    def database(self, value: str, path: str) -> str | None:
        db = self.glue_name(value, path, "database name")
        if db is not None and not self.g.governs(db):
            self.error(
                path,
                f"database {db!r} is not governed here: expected a database matching "
                f"{', '.join(self.g.governed_databases)}",
                value,
            )
            return None
        return db

    def columns(self, values: list[str], path: str) -> list[str] | None:
        out = []
        ok = True
        for i, c in enumerate(values):
            name = self.glue_name(c, f"{path}[{i}]", "column name")
            if name is None:
                ok = False
            else:
                out.append(name)
        return out if ok else None

    def needs_allow(self, perm: str) -> bool:
        return perm in self.g.sensitive_permissions and perm not in self.g.allowed_permissions

"""The producer's word to a consumer account: ``AccessGranted`` and ``AccessRevoked``.

When applying a document (a ``governance/`` document, or a subscription's read access)
grants Lake Formation permissions to another account, or revokes them, the consumer
account has work to do: accept the RAM share, create or remove resource links, grant its
own roles (:mod:`lakegov.mesh.consumer`). One event per consumer account and direction
says what changed, from the changes that were applied (a failed change is not announced).
The events go on the service bus; the mesh forwards them to the central bus, whose
per-domain access rule (:mod:`lakegov.mesh.sharing`) delivers them to the domain's bus.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from typing import Any

from lakegov.events import utc_now
from lakegov.governance.apply import ALREADY_DONE, APPLIED, ChangeOutcome
from lakegov.governance.plan import Change

_ACCOUNT = re.compile(r"^\d{12}$")


def _grant_entry(change: Change) -> dict[str, Any] | None:
    if not change.resource:
        return None
    kind, body = next(iter(change.resource.items()))
    entry: dict[str, Any] = {
        "permissions": sorted(change.permissions),
        "grantable": sorted(change.permissions_with_grant_option),
    }
    if kind == "Database":
        return {"database": body["Name"], "table": None, **entry}
    if kind in ("Table", "TableWithColumns"):
        table = None if "TableWildcard" in body else body.get("Name")
        return {"database": body["DatabaseName"], "table": table, **entry}
    return None


def access_events(
    outcomes: Iterable[ChangeOutcome],
    *,
    producer_account: str,
    document: dict[str, Any],
    consumer_roles: Sequence[str] = (),
) -> list[tuple[str, dict[str, Any]]]:
    """(detail-type, detail) of the access events the applied ``outcomes`` call for."""
    by_account: dict[tuple[str, str], dict[str, Any]] = {}
    for outcome in outcomes:
        change = outcome.change
        principal = change.principal or ""
        if (
            outcome.status not in (APPLIED, ALREADY_DONE)
            or change.action not in ("grant", "revoke")
            or not _ACCOUNT.match(principal)
            or principal == producer_account
        ):
            continue
        detail_type = "AccessGranted" if change.action == "grant" else "AccessRevoked"
        detail = by_account.setdefault(
            (detail_type, principal),
            {
                "consumer_account": principal,
                "producer_account": producer_account,
                "document": document,
                "grants": [],
            },
        )
        entry = _grant_entry(change)
        if entry is not None:
            if detail_type == "AccessRevoked":
                entry.pop("grantable")
            detail["grants"].append(entry)
        elif "LFTagPolicy" in (change.resource or {}):
            detail.setdefault("lf_tag_grants", []).append(
                {
                    "expression": change.resource["LFTagPolicy"]["Expression"],  # type: ignore[index]
                    "permissions": sorted(change.permissions),
                }
            )
    out: list[tuple[str, dict[str, Any]]] = []
    now = utc_now()
    for (detail_type, account), detail in sorted(by_account.items()):
        if detail_type == "AccessGranted":
            roles = [r for r in consumer_roles if f":{account}:" in r]
            if roles:
                detail["consumer_roles"] = roles
            detail["granted_at"] = now
        else:
            detail["revoked_at"] = now
        out.append((detail_type, detail))
    return out

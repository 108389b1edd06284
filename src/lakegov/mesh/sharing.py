"""The central bus's side of sharing: access events reach the subscribed domain's bus.

A subscription with ``read_access`` gets, besides its dataset rules, one rule on the
central bus delivering ``AccessGranted`` and ``AccessRevoked`` for the domain's account to
the domain's bus (where ``templates/domain.yaml``'s share function accepts the RAM share and
links the tables). The rule is named for the domain (one subscription per domain), so it
is not one of the document's dataset rules and their reconciliation leaves it alone. It
outlives the read access and the subscription on purpose: the ``AccessRevoked`` their end
publishes is delivered after the function returns, through this rule
(:func:`unroute_access` removes it when the domain is gone for good).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from lakegov.errors import ValidationIssue
from lakegov.mesh.central_bus import RuleSpec, upsert_rule
from lakegov.observability import logger

ACCESS_RULE_PREFIX = "lakegov-access-"
ACCESS_DETAIL_TYPES = ("AccessGranted", "AccessRevoked")
_ROLE = re.compile(r"^arn:aws[a-z-]*:iam::(?P<account>\d{12}):role/")


def access_rule_name(domain: str) -> str:
    return f"{ACCESS_RULE_PREFIX}{domain}"[:64]


def access_pattern(account_id: str) -> dict[str, Any]:
    return {
        "source": ["lakegov"],
        "detail-type": list(ACCESS_DETAIL_TYPES),
        "detail": {"consumer_account": [account_id]},
    }


def consumer_role_issues(document: Mapping[str, Any]) -> list[ValidationIssue]:
    """``read_access.consumer_roles`` must be roles of the domain's account, granted on
    only what the account receives with the grant option."""
    access = document.get("read_access") or {}
    roles = list(access.get("consumer_roles") or [])
    issues: list[ValidationIssue] = []
    for index, role in enumerate(roles):
        match = _ROLE.match(str(role))
        if match and match["account"] != document.get("account_id"):
            issues.append(
                ValidationIssue(
                    f"$.read_access.consumer_roles[{index}]",
                    f"the role is in account {match['account']}, not in the domain's account "
                    f"{document.get('account_id')}",
                    role,
                )
            )
    if roles and not access.get("grant_option"):
        issues.append(
            ValidationIssue(
                "$.read_access.consumer_roles",
                "the domain account can pass on only what it receives with the grant option: "
                "set read_access.grant_option to true",
                roles,
            )
        )
    return issues


def route_access(bus: Any, domain: str, account_id: str, target: Mapping[str, Any]) -> str:
    """Create or update the domain's access rule on the central bus (``target``: the
    subscription rules' target, the domain's bus). Returns created / updated / unchanged."""
    spec = RuleSpec(
        access_rule_name(domain),
        access_pattern(account_id),
        "ENABLED",
        f"lakegov access events of domain {domain} (account {account_id})",
        dict(target),
    )
    current = next((r for r in bus.rules() if r.get("Name") == spec.name), None)
    return upsert_rule(bus, spec, current)


def unroute_access(bus: Any, domain: str) -> bool:
    """Delete the domain's access rule; False when there was none."""
    name = access_rule_name(domain)
    if not any(r.get("Name") == name for r in bus.rules()):
        return False
    bus.delete_rule(name)
    return True


def record_access_report(
    audit: Any, detail: Mapping[str, Any], event_id: str, sender_account: str = ""
) -> dict[str, Any]:
    """The central account's audit of a domain's ``AccessLinked`` report: one item per
    report under ``access#<consumer account>/<document key>``, status the report's.

    ``sender_account`` is the envelope's ``account`` (set by EventBridge, not by the
    sender): a report naming another consumer account than the one that sent it is
    refused, so no domain files reports in another's name."""
    claimed = str(detail.get("consumer_account") or "")
    if sender_account and claimed != sender_account:
        logger.warning(
            "access report refused: it names another account than its sender",
            extra={"claimed": claimed, "sender": sender_account, "event_id": event_id},
        )
        return {"subject": f"{claimed}/-", "status": "REFUSED_SENDER"}
    document = detail.get("document") or {}
    subject = f"{detail.get('consumer_account')}/{document.get('key') or '-'}"
    version = str(detail.get("source_event_id") or event_id)
    status = f"{str(detail.get('action', '')).upper()}_{detail.get('status', '')}"
    problems = list(detail.get("problems") or [])
    audit.record(
        "access",
        subject,
        f"{version}#{detail.get('action', '')}",
        status,
        note="; ".join(problems)[:500],
        attributes={
            "producer_account": detail.get("producer_account"),
            "domain": detail.get("domain", ""),
            "links": list(detail.get("links") or [])[:100],
            "granted_roles": list(detail.get("granted_roles") or [])[:100],
            "invitations_accepted": list(detail.get("invitations_accepted") or []),
        },
    )
    return {"subject": subject, "status": status}

"""The subscription rules on the central bus: their names, and reconciling them.

Rule names are deterministic: ``lakegov-sub-<domain>-<owner>-<nn>``, where ``owner`` is a
hash of the document's key (so a deleted document, whose content is gone, still finds its
rules). :func:`reconcile` makes the bus hold exactly a document's desired rules
(:class:`RuleSpec`, built by :func:`lakegov.mesh.subscriptions.desired_rules`) within
EventBridge's quotas (:class:`MeshLimits`).
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from lakegov.aws import error_code, is_transient
from lakegov.errors import PermanentError, RetryableError
from lakegov.mesh.patterns import (
    MAX_PATTERN_CHARS,
    MAX_RULES_PER_BUS,
    MAX_WILDCARD_RULES_PER_BUS,
    compact,
    has_wildcard,
)

RULE_PREFIX = "lakegov-sub-"
TARGET_ID = "domain-bus"
_RULE_NAME = re.compile(
    r"^lakegov-sub-(?P<domain>[a-z][a-z0-9-]*[a-z0-9])-(?P<owner>[0-9a-f]{8})-(?P<index>[0-9]{2})$"
)


@dataclass(frozen=True)
class MeshLimits:
    """EventBridge quotas the reconciler keeps within (raise them when the account has)."""

    max_pattern_chars: int = MAX_PATTERN_CHARS
    max_rules_per_bus: int = MAX_RULES_PER_BUS
    max_wildcard_rules_per_bus: int = MAX_WILDCARD_RULES_PER_BUS


# -- names -------------------------------------------------------------------------------
def owner_of(document_key: str) -> str:
    """The 8 hex digits that tie rules to the document at ``document_key``."""
    return hashlib.sha256(document_key.encode()).hexdigest()[:8]


def rule_name(domain: str, owner: str, index: int) -> str:
    return f"{RULE_PREFIX}{domain}-{owner}-{index:02d}"


def parse_rule_name(name: str) -> tuple[str, str, int] | None:
    """(domain, owner, index) of a subscription rule, None for any other rule."""
    match = _RULE_NAME.match(name)
    if not match:
        return None
    return match["domain"], match["owner"], int(match["index"])


@dataclass(frozen=True)
class RuleSpec:
    name: str
    pattern: dict[str, Any]
    state: str
    description: str
    target: dict[str, Any]

    @property
    def pattern_json(self) -> str:
        return compact(self.pattern)


# -- the central bus ---------------------------------------------------------------------
class CentralBus:
    """The few EventBridge calls the reconciler makes, with errors mapped to ours."""

    PERMANENT_CODES = frozenset(
        {"LimitExceededException", "InvalidEventPatternException", "ValidationException"}
    )

    def __init__(self, events_client: Any, bus_name: str) -> None:
        self.events = events_client
        self.bus = bus_name
        self.write_calls = 0

    def _call(self, operation: str, write: bool = False, **kwargs: Any) -> Any:
        try:
            response = getattr(self.events, operation)(EventBusName=self.bus, **kwargs)
        except ClientError as exc:
            code = error_code(exc)
            if code in self.PERMANENT_CODES and not is_transient(exc):
                raise PermanentError(f"EventBridge {operation} refused: {code}: {exc}") from exc
            raise RetryableError(f"EventBridge {operation} failed: {code or exc}") from exc
        if write:
            self.write_calls += 1
        return response

    def rules(self) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        kwargs: dict[str, Any] = {}
        while True:
            page = self._call("list_rules", **kwargs)
            out.extend(page.get("Rules", []))
            token = page.get("NextToken")
            if not token:
                return out
            kwargs = {"NextToken": token}

    def targets(self, rule: str) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        kwargs: dict[str, Any] = {}
        while True:
            page = self._call("list_targets_by_rule", Rule=rule, **kwargs)
            out.extend(page.get("Targets", []))
            token = page.get("NextToken")
            if not token:
                return out
            kwargs = {"NextToken": token}

    def put_rule(self, spec: RuleSpec) -> None:
        self._call(
            "put_rule",
            write=True,
            Name=spec.name,
            EventPattern=spec.pattern_json,
            State=spec.state,
            Description=spec.description,
        )

    def put_target(self, spec: RuleSpec) -> None:
        response = self._call("put_targets", write=True, Rule=spec.name, Targets=[spec.target])
        if response.get("FailedEntryCount", 0):
            raise RetryableError(
                f"PutTargets failed on {spec.name}: {response.get('FailedEntries')}"
            )

    def remove_targets(self, rule: str, ids: Sequence[str]) -> None:
        if ids:
            self._call("remove_targets", write=True, Rule=rule, Ids=list(ids))

    def delete_rule(self, rule: str) -> None:
        self.remove_targets(rule, [t["Id"] for t in self.targets(rule)])
        self._call("delete_rule", write=True, Name=rule)


_TARGET_KEYS = ("Id", "Arn", "RoleArn", "DeadLetterConfig", "RetryPolicy")


def upsert_rule(bus: Any, spec: RuleSpec, current: Mapping[str, Any] | None) -> str:
    """Create ``spec``'s rule (``current``: the rule as listed, None when missing) or bring
    it and its one target up to date; other targets go. Returns created / updated /
    unchanged."""
    rule_changed = current is None or not _same_rule(current, spec)
    if rule_changed:
        bus.put_rule(spec)
    targets = bus.targets(spec.name) if current is not None else []
    mine = [t for t in targets if t.get("Id") == spec.target["Id"]]
    target_changed = not mine or not _same_target(mine[0], spec.target)
    if target_changed:
        bus.put_target(spec)
    bus.remove_targets(spec.name, [t["Id"] for t in targets if t.get("Id") != TARGET_ID])
    if current is None:
        return "created"
    return "updated" if rule_changed or target_changed else "unchanged"


def _same_target(current: Mapping[str, Any], desired: Mapping[str, Any]) -> bool:
    return all(current.get(k) == desired.get(k) for k in _TARGET_KEYS)


def _same_rule(current: Mapping[str, Any], spec: RuleSpec) -> bool:
    try:
        pattern = json.loads(current.get("EventPattern") or "null")
    except ValueError:
        return False
    return (
        pattern == spec.pattern
        and current.get("State") == spec.state
        and (current.get("Description") or "") == spec.description
    )


def reconcile(
    bus: CentralBus,
    owner: str,
    desired: Sequence[RuleSpec],
    *,
    limits: MeshLimits = MeshLimits(),
    domain: str = "",
) -> dict[str, Any]:
    """Make the bus hold exactly ``desired`` among the rules of ``owner``.

    Checks first (conflicts, quotas) and changes nothing when they fail. Creates and
    updates before deleting, so a domain never misses an event during an update (it may
    see one twice while the rules change).
    """
    rules = bus.rules()
    ours: dict[str, dict[str, Any]] = {}
    others: list[dict[str, Any]] = []
    for rule in rules:
        parsed = parse_rule_name(str(rule.get("Name", "")))
        if parsed and parsed[1] == owner:
            ours[rule["Name"]] = rule
        else:
            others.append(rule)
    if domain:
        for rule in others:
            parsed = parse_rule_name(str(rule.get("Name", "")))
            if parsed and parsed[0] == domain:
                raise PermanentError(
                    f"domain {domain!r} is already subscribed by another document "
                    f"(rule {rule['Name']}: {rule.get('Description', '')}); edit or delete "
                    "that document instead"
                )
    total = len(others) + len(desired)
    if total > limits.max_rules_per_bus:
        raise PermanentError(
            f"the central bus would hold {total} rules, over its quota of "
            f"{limits.max_rules_per_bus} rules per bus (raise the EventBridge quota and "
            "the reconciler's limit, or use broader prefixes)"
        )
    wildcard = sum(has_wildcard(r.get("EventPattern")) for r in others) + sum(
        has_wildcard(s.pattern) for s in desired
    )
    if wildcard > limits.max_wildcard_rules_per_bus and any(
        has_wildcard(s.pattern) for s in desired
    ):
        raise PermanentError(
            f"the central bus would hold {wildcard} rules with wildcard filters, over "
            f"EventBridge's fixed quota of {limits.max_wildcard_rules_per_bus}; write the "
            "patterns as exact names, 'prefix*' or '*suffix'"
        )

    created: list[str] = []
    updated: list[str] = []
    unchanged: list[str] = []
    outcomes = {"created": created, "updated": updated, "unchanged": unchanged}
    for spec in desired:
        outcomes[upsert_rule(bus, spec, ours.get(spec.name))].append(spec.name)
    wanted = {s.name for s in desired}
    deleted = sorted(name for name in ours if name not in wanted)
    for name in deleted:
        bus.delete_rule(name)
    return {
        "created": created,
        "updated": updated,
        "deleted": deleted,
        "unchanged": unchanged,
        "changes": len(created) + len(updated) + len(deleted),
        "write_calls": bus.write_calls,
    }

"""Subscriptions: ``subscriptions/*.json`` documents reconciled into central-bus rules.

A document names a domain, its account and bus, the datasets it wants and, optionally,
read access. Applying it makes the central bus hold exactly the rules that deliver those
datasets to that bus: created, updated in place, or deleted when no longer needed.

Rule names and reconciling the central bus are :mod:`lakegov.mesh.central_bus`; ``nn`` in
a rule's name numbers the rules when the patterns do not fit in one
(:func:`lakegov.mesh.patterns.build_patterns`). Each rule has one target: the domain's bus,
with the central account's delivery role (cross-account ``PutEvents``), a retry policy and
the mesh dead-letter queue.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from lakegov.errors import PermanentError, ValidationIssue
from lakegov.jsonschemas import schema_issues
from lakegov.mesh import grants, sharing
from lakegov.mesh.central_bus import (
    TARGET_ID,
    CentralBus,
    MeshLimits,
    RuleSpec,
    owner_of,
    reconcile,
    rule_name,
)
from lakegov.mesh.patterns import (
    MAX_PATTERN_CHARS,
    PatternTooLarge,
    build_patterns,
    pattern_problems,
    redundant_patterns,
)
from lakegov.metadata.kinds import ApplyContext, DeploymentRules, MetadataKind, Validator
from lakegov.observability import count, logger
from lakegov.settings import Settings

SCHEMA = "subscription.schema"
PREFIX = "subscriptions/"
DEFAULT_EVENT_TYPES = ("DatasetRefreshed",)
MAX_RULES_PER_DOCUMENT = 100  # two-digit rule numbers
RETRY_POLICY = {"MaximumRetryAttempts": 185, "MaximumEventAgeInSeconds": 86400}
_BUS_ARN = re.compile(
    r"^arn:(?P<partition>aws[a-z-]*):events:(?P<region>[a-z0-9-]+):(?P<account>[0-9]{12}):"
    r"event-bus/(?P<name>.+)$"
)

GrantValidator = Validator
DEFAULT_LIMITS = MeshLimits()  # EventBridge's default quotas
GrantApplier = Callable[[Any, ApplyContext], dict[str, Any]]


# -- configuration -----------------------------------------------------------------------
@dataclass(frozen=True)
class MeshConfig:
    """What the reconciler needs from the deployment (see :meth:`from_settings`)."""

    central_bus_arn: str
    delivery_role_arn: str = ""
    dead_letter_arn: str = ""
    service_bus_arn: str = ""

    @classmethod
    def from_settings(cls, settings: Settings) -> MeshConfig:
        central = settings.central_bus_arn
        service = settings.service_bus
        parsed = _BUS_ARN.match(central)
        if service and not service.startswith("arn:") and parsed:
            service = (
                f"arn:{parsed['partition']}:events:{parsed['region']}:"
                f"{settings.account_id or parsed['account']}:event-bus/{service}"
            )
        return cls(
            central_bus_arn=central,
            delivery_role_arn=settings.central_bus_role_arn,
            dead_letter_arn=settings.mesh_dlq_arn,
            service_bus_arn=service,
        )

    @property
    def central_account(self) -> str:
        parsed = _BUS_ARN.match(self.central_bus_arn)
        return parsed["account"] if parsed else ""

    @property
    def central_bus_name(self) -> str:
        parsed = _BUS_ARN.match(self.central_bus_arn)
        return parsed["name"] if parsed else self.central_bus_arn


# -- the document ------------------------------------------------------------------------
@dataclass(frozen=True)
class Subscription:
    """A validated subscription document."""

    domain: str
    account_id: str
    event_bus_arn: str
    datasets: tuple[str, ...]
    event_types: tuple[str, ...] = DEFAULT_EVENT_TYPES
    enabled: bool = True
    read_access: Mapping[str, Any] | None = None
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_document(cls, document: Mapping[str, Any]) -> Subscription:
        return cls(
            domain=str(document["domain"]),
            account_id=str(document["account_id"]),
            event_bus_arn=str(document["event_bus_arn"]),
            datasets=tuple(document["datasets"]),
            event_types=tuple(document.get("event_types") or DEFAULT_EVENT_TYPES),
            enabled=bool(document.get("enabled", True)),
            read_access=document.get("read_access"),
            raw=document,
        )


def validate_subscription(document: Any, source: str = "") -> list[ValidationIssue]:
    """Schema, then semantic checks. Nothing is changed; errors refuse the document."""
    issues = schema_issues(SCHEMA, document)
    if issues:
        return issues
    allow_all = bool(document.get("allow_all_datasets", False))
    bus = _BUS_ARN.match(document["event_bus_arn"])
    if bus and bus["account"] != document["account_id"]:
        issues.append(
            ValidationIssue(
                "$.event_bus_arn",
                f"the bus is in account {bus['account']}, not in the domain's account "
                f"{document['account_id']}",
                document["event_bus_arn"],
            )
        )
    datasets: list[str] = document["datasets"]
    for index, pattern in enumerate(datasets):
        for problem in pattern_problems(pattern, allow_all=allow_all):
            issues.append(ValidationIssue(f"$.datasets[{index}]", problem, pattern))
    if "*" in datasets and len(datasets) > 1:
        issues.append(
            ValidationIssue(
                "$.datasets",
                "'*' already matches every dataset; the other patterns are redundant",
                severity="warning",
            )
        )
    else:
        for literal, broader in redundant_patterns(datasets).items():
            issues.append(
                ValidationIssue(
                    f"$.datasets[{datasets.index(literal)}]",
                    f"already covered by {broader!r}",
                    literal,
                    severity="warning",
                )
            )
    issues += sharing.consumer_role_issues(document)
    if not [i for i in issues if i.severity == "error"]:
        try:
            desired_rules(Subscription.from_document(document), "-", MeshConfig(""))
        except PatternTooLarge as exc:
            issues.append(ValidationIssue("$.datasets", str(exc)))
    return issues


# -- desired state -----------------------------------------------------------------------
def desired_rules(
    subscription: Subscription,
    document_key: str,
    config: MeshConfig,
    *,
    max_pattern_chars: int = MAX_PATTERN_CHARS,
) -> list[RuleSpec]:
    """The rules (and their one target each) that deliver ``subscription``."""
    patterns = build_patterns(
        subscription.event_types, subscription.datasets, max_chars=max_pattern_chars
    )
    if len(patterns) > MAX_RULES_PER_DOCUMENT:
        raise PatternTooLarge(
            f"the dataset patterns need {len(patterns)} rules, more than "
            f"{MAX_RULES_PER_DOCUMENT} for one domain; use broader prefixes"
        )
    owner = owner_of(document_key)
    target: dict[str, Any] = {
        "Id": TARGET_ID,
        "Arn": subscription.event_bus_arn,
        "RetryPolicy": dict(RETRY_POLICY),
    }
    if config.delivery_role_arn:
        target["RoleArn"] = config.delivery_role_arn
    if config.dead_letter_arn:
        target["DeadLetterConfig"] = {"Arn": config.dead_letter_arn}
    description = f"lakegov subscription of domain {subscription.domain} ({document_key})"[:512]
    state = "ENABLED" if subscription.enabled else "DISABLED"
    return [
        RuleSpec(rule_name(subscription.domain, owner, i), p, state, description, dict(target))
        for i, p in enumerate(patterns)
    ]


# -- apply and remove --------------------------------------------------------------------
def _central_bus(ctx: ApplyContext, config: MeshConfig) -> CentralBus:
    if not _BUS_ARN.match(config.central_bus_arn):
        raise PermanentError(
            "this deployment has no central event bus ARN (CENTRAL_BUS_ARN); subscriptions "
            "are applied in the account that hosts the central bus"
        )
    account = ctx.settings.account_id
    if account and config.central_account != account:
        raise PermanentError(
            f"the central bus is in account {config.central_account}, not in this one "
            f"({account}); upload subscriptions to the central account's config bucket"
        )
    return CentralBus(ctx.clients.events, config.central_bus_name)


def _check_target(subscription: Subscription, config: MeshConfig) -> None:
    target = _BUS_ARN.match(subscription.event_bus_arn)
    central = _BUS_ARN.match(config.central_bus_arn)
    assert target is not None and central is not None  # schema-validated / checked above
    if subscription.event_bus_arn == config.central_bus_arn:
        raise PermanentError("the target bus is the central bus itself: events would loop")
    if config.service_bus_arn and subscription.event_bus_arn == config.service_bus_arn:
        raise PermanentError(
            "the target bus is this deployment's service bus, which forwards to the central "
            "bus: events would loop"
        )
    if target["account"] != central["account"] and not config.delivery_role_arn:
        raise PermanentError(
            "cross-account delivery needs the central bus delivery role "
            "(CENTRAL_BUS_ROLE_ARN), which this deployment does not set"
        )


def _failed(result: Mapping[str, Any]) -> int:
    try:
        return int(result.get("failed", 0) or 0)
    except (TypeError, ValueError):
        return 1


def _read_access(
    subscription: Subscription,
    ctx: ApplyContext,
    apply_grant: GrantApplier | None,
) -> dict[str, Any] | None:
    """Grant the read access; revoke what the previous grant gave and this one does not.

    Order: the grant-option revocation (when the grant option is dropped), the grant, then
    the revokes, so kept permissions never lapse. The grant state is saved only when every
    step succeeded (``failed`` counts the failed changes).
    """
    document = grants.read_access_document(subscription.raw)
    if apply_grant is None:
        if document is None:
            return None
        return {"document": document, "status": "NOT_APPLIED", "reason": "no governance engine"}
    s3 = ctx.clients.s3
    ref = ctx.document
    previous = grants.load_grant_state(s3, ref.bucket, ref.key)
    revoke = grants.revocation_document(previous, document)
    option_revoke = grants.grant_option_revocation(previous, document)
    if document is None and revoke is None and option_revoke is None:
        return None
    others = grants.other_grant_states(s3, ref.bucket, ref.key) if revoke or option_revoke else {}
    revoke, warnings = grants.without_other_grants(revoke, others)
    option_revoke, option_warnings = grants.without_other_grants(
        option_revoke, others, grant_options_only=True
    )
    warnings += option_warnings
    out: dict[str, Any] = {"document": document}
    failed = 0
    if option_revoke is not None:  # a grant option cannot be revoked alone: revoke, re-grant
        out["grant_option_revoke_document"] = option_revoke
        out["grant_option_revoke"] = apply_grant(option_revoke, ctx)
        failed += _failed(out["grant_option_revoke"])
    ctx.extra["consumer_roles"] = list((subscription.read_access or {}).get("consumer_roles") or [])
    if document is not None:  # grant the new access before revoking: no gap while it changes
        out["grant"] = apply_grant(document, ctx)
        failed += _failed(out["grant"])
    if revoke is not None:
        out["revoke_document"] = revoke
        out["revoke"] = apply_grant(revoke, ctx)
        failed += _failed(out["revoke"])
    if revoke is not None or option_revoke is not None:
        principal = (revoke or option_revoke or [{}])[0].get("role_arn", "the domain account")
        warnings.append(grants.GOVERNANCE_NOT_CONSULTED.format(principal=principal))
    if warnings:
        out["warnings"] = warnings
    out["failed"] = failed
    out["status"] = "APPLIED" if not failed else "FAILED"
    if not failed:
        grants.save_grant_state(s3, ref.bucket, ref.key, document)
    return out


def apply_subscription(
    document: Any,
    ctx: ApplyContext,
    *,
    limits: MeshLimits = DEFAULT_LIMITS,
    apply_grant: GrantApplier | None = None,
) -> dict[str, Any]:
    """Reconcile the central bus's rules (and the read grant) with one document.

    The document passed the upload check (its read access with the deployment's
    guardrails, see :func:`subscription_kind`).
    """
    subscription = Subscription.from_document(document)
    config = MeshConfig.from_settings(ctx.settings)
    bus = _central_bus(ctx, config)
    _check_target(subscription, config)
    try:
        desired = desired_rules(
            subscription, ctx.document.key, config, max_pattern_chars=limits.max_pattern_chars
        )
    except PatternTooLarge as exc:
        raise PermanentError(str(exc)) from exc
    summary = reconcile(
        bus, owner_of(ctx.document.key), desired, limits=limits, domain=subscription.domain
    )
    summary.update(
        {
            "domain": subscription.domain,
            "target": subscription.event_bus_arn,
            "rules": [s.name for s in desired],
            "patterns": {s.name: s.pattern for s in desired},
        }
    )
    if subscription.read_access and desired and apply_grant is not None:  # access events too
        summary["access_rule"] = sharing.route_access(
            bus, subscription.domain, subscription.account_id, desired[0].target
        )
    access = _read_access(subscription, ctx, apply_grant)
    summary["failed"] = int(access.get("failed", 0)) if access is not None else 0
    if access is not None:
        summary["read_access"] = access
    count("SubscriptionRulesChanged", summary["changes"])
    logger.info(
        "subscription applied",
        extra={"domain": subscription.domain, **{k: summary[k] for k in ("created", "deleted")}},
    )
    return summary


def remove_subscription(
    ctx: ApplyContext, *, apply_grant: GrantApplier | None = None
) -> dict[str, Any]:
    """The document was deleted: delete its rules and revoke the read access it granted."""
    config = MeshConfig.from_settings(ctx.settings)
    bus = _central_bus(ctx, config)
    summary = reconcile(bus, owner_of(ctx.document.key), [])
    summary["failed"] = 0
    if apply_grant is not None:
        s3 = ctx.clients.s3
        ref = ctx.document
        revoke = grants.revocation_document(grants.load_grant_state(s3, ref.bucket, ref.key), None)
        if revoke is not None:
            others = grants.other_grant_states(s3, ref.bucket, ref.key)
            kept_revoke, warnings = grants.without_other_grants(revoke, others)
            warnings.append(grants.GOVERNANCE_NOT_CONSULTED.format(principal=revoke[0]["role_arn"]))
            access: dict[str, Any] = {"revoke_document": kept_revoke, "warnings": warnings}
            failed = 0
            if kept_revoke is not None:
                access["revoke"] = apply_grant(kept_revoke, ctx)
                failed = _failed(access["revoke"])
            access["failed"] = failed
            access["status"] = "REVOKED" if not failed else "FAILED"
            summary["read_access"] = access
            summary["failed"] = failed
            if not failed:  # kept otherwise: the revoke is still owed
                grants.save_grant_state(s3, ref.bucket, ref.key, None)
    count("SubscriptionRulesChanged", summary["changes"])
    return summary


def subscription_kind(
    *,
    validate_grant: GrantValidator | None = None,
    apply_grant: GrantApplier | None = None,
    limits: MeshLimits = DEFAULT_LIMITS,
) -> MetadataKind:
    """The ``subscriptions/`` kind for :func:`lakegov.metadata.registry.metadata_kinds`.

    ``validate_grant(document, source, rules) -> issues`` and ``apply_grant(document, ctx)
    -> summary`` are the governance engine's, for the optional read access (its document is
    :func:`lakegov.mesh.grants.read_access_document`); without them the read access is
    reported in the result but not applied. The grant is validated on upload with the
    deployment's guardrails, so a refused read access refuses the whole subscription before
    anything changes, each issue at its path under ``$.read_access``.
    """

    def validate(
        document: Any, source: str, rules: DeploymentRules | None = None
    ) -> list[ValidationIssue]:
        issues = validate_subscription(document, source)
        if validate_grant is None or any(i.severity == "error" for i in issues):
            return issues
        grant = grants.read_access_document(document)
        if grant is not None:
            where = f"{source}#read_access"
            found = (
                validate_grant(grant, where)
                if rules is None
                else validate_grant(grant, where, rules)
            )
            for issue in found:
                issues.append(
                    ValidationIssue(
                        "$.read_access" + re.sub(r"^\$(\[0\])?", "", issue.path),
                        "as a Lake Formation grant (checked with the deployment's guardrails): "
                        f"{issue.message}",
                        issue.value,
                        issue.severity,
                    )
                )
        return issues

    def apply(document: Any, ctx: ApplyContext) -> dict[str, Any]:
        return apply_subscription(document, ctx, limits=limits, apply_grant=apply_grant)

    def remove(ctx: ApplyContext) -> dict[str, Any]:
        return remove_subscription(ctx, apply_grant=apply_grant)

    return MetadataKind(
        name="subscription", prefix=PREFIX, validate=validate, apply=apply, remove=remove
    )


__all__ = [
    "MeshConfig",
    "Subscription",
    "apply_subscription",
    "desired_rules",
    "remove_subscription",
    "subscription_kind",
    "validate_subscription",
]

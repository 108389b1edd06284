"""Subscribe, update, unsubscribe: the central bus's rules follow the documents."""

import copy
import json

import pytest
from tests.conftest import ROOT
from tests.integration.mesh.mesh_helpers import CENTRAL_BUS_ARN, make_domain

from lakegov.errors import PermanentError
from lakegov.mesh.central_bus import MeshLimits, owner_of
from lakegov.mesh.subscriptions import apply_subscription, remove_subscription

MARKETING = json.loads((ROOT / "examples" / "subscriptions" / "marketing.json").read_text())
FINANCE = json.loads((ROOT / "examples" / "subscriptions" / "finance.json").read_text())
KEY = "subscriptions/marketing.json"


@pytest.fixture
def domains(central):
    return {
        "marketing": make_domain("marketing", "222222222222"),
        "finance": make_domain("finance", "333333333333"),
    }


def _datasets(domain):
    return sorted(e["detail"]["dataset"] for e in domain.received())


def test_subscribing_creates_rules_that_deliver_exactly_the_subscribed_datasets(central, domains):
    # Given the marketing subscription (exact name, prefix, wildcard)
    summary = apply_subscription(MARKETING, central.ctx(KEY))
    # Then two rules exist (the wildcard apart), each targeting the marketing bus
    rules = central.rules()
    owner = owner_of(KEY)
    assert sorted(rules) == [
        f"lakegov-sub-marketing-{owner}-00",
        f"lakegov-sub-marketing-{owner}-01",
    ]
    assert summary["created"] == sorted(rules) and summary["changes"] == 2
    for rule in rules.values():
        (target,) = rule["targets"]
        assert target["Arn"] == MARKETING["event_bus_arn"]
        assert target["RoleArn"].endswith(":role/lakegov-central-delivery")
        assert target["DeadLetterConfig"]["Arn"].endswith(":lakegov-mesh-dlq")
        assert rule["State"] == "ENABLED"
    # When refreshes of several datasets reach the central bus
    for dataset in ["mwaa/blog/customers", "sales/eu", "shop/orders_2026", "hr/people"]:
        central.refresh(dataset)
    # Then marketing receives exactly its datasets, cross-account; finance nothing
    assert _datasets(domains["marketing"]) == [
        "mwaa/blog/customers",
        "sales/eu",
        "shop/orders_2026",
    ]
    assert domains["finance"].received() == []


def test_reapplying_the_same_document_changes_nothing(central, domains):
    apply_subscription(MARKETING, central.ctx(KEY))
    before = central.rules()
    summary = apply_subscription(copy.deepcopy(MARKETING), central.ctx(KEY))
    assert summary["changes"] == 0 and summary["write_calls"] == 0
    assert summary["unchanged"] == sorted(before)
    assert central.rules() == before


def test_an_update_changes_the_rules_in_place_and_the_deliveries_follow(central, domains):
    apply_subscription(MARKETING, central.ctx(KEY))
    # When the domain drops the wildcard and the prefix, and adds another exact name
    updated = {**MARKETING, "datasets": ["mwaa/blog/customers", "mwaa/blog/cards"]}
    summary = apply_subscription(updated, central.ctx(KEY))
    # Then the first rule is updated, the wildcard rule deleted
    owner = owner_of(KEY)
    assert summary["updated"] == [f"lakegov-sub-marketing-{owner}-00"]
    assert summary["deleted"] == [f"lakegov-sub-marketing-{owner}-01"]
    (rule,) = central.rules().values()
    assert rule["pattern"]["detail"]["dataset"] == ["mwaa/blog/cards", "mwaa/blog/customers"]
    for dataset in ["mwaa/blog/cards", "sales/eu", "shop/orders"]:
        central.refresh(dataset)
    assert _datasets(domains["marketing"]) == ["mwaa/blog/cards"]


def test_a_subscription_too_large_for_one_rule_is_split_and_shrinks_back(central, domains):
    # Given 300 exact names: about 7,500 characters of filters
    many = {**MARKETING, "datasets": [f"area{i:03d}/dataset_{i:03d}" for i in range(300)]}
    summary = apply_subscription(many, central.ctx(KEY))
    # Then they are split over several rules, each within the 2,048-character quota
    assert len(summary["created"]) == 4
    assert all(len(r["EventPattern"]) <= 2048 for r in central.rules().values())
    central.refresh("area149/dataset_149")
    central.refresh("area000/dataset_000")
    assert _datasets(domains["marketing"]) == ["area000/dataset_000", "area149/dataset_149"]
    # When the list shrinks, the extra rules go
    summary = apply_subscription({**many, "datasets": ["area000/*"]}, central.ctx(KEY))
    assert (len(summary["deleted"]) == len(many["datasets"]) and False) or summary["deleted"]
    assert len(central.rules()) == 1


def test_renaming_the_domain_in_the_same_document_replaces_its_rules(central, domains):
    apply_subscription(MARKETING, central.ctx(KEY))
    summary = apply_subscription({**MARKETING, "domain": "growth"}, central.ctx(KEY))
    assert len(summary["created"]) == 2 and len(summary["deleted"]) == 2
    assert all(name.startswith("lakegov-sub-growth-") for name in central.rules())


def test_unsubscribing_removes_the_rules_of_that_document_only(central, domains):
    apply_subscription(MARKETING, central.ctx(KEY))
    apply_subscription(FINANCE, central.ctx("subscriptions/finance.json"))
    # When the marketing document is deleted
    summary = remove_subscription(central.ctx(KEY))
    # Then its rules are gone and finance's remain and still deliver
    assert len(summary["deleted"]) == 2
    assert all(name.startswith("lakegov-sub-finance-") for name in central.rules())
    central.refresh("sales/eu")
    central.refresh("finance/gl_ledger")
    central.refresh("finance/fx", detail_type="SchemaChanged")
    assert domains["marketing"].received() == []
    got = domains["finance"].received()
    assert sorted((e["detail-type"], e["detail"]["dataset"]) for e in got) == [
        ("DatasetRefreshed", "finance/gl_ledger"),
        ("SchemaChanged", "finance/fx"),
    ]
    # and removing again is harmless
    assert remove_subscription(central.ctx(KEY))["changes"] == 0


def test_a_second_document_for_the_same_domain_is_refused_and_changes_nothing(central, domains):
    apply_subscription(MARKETING, central.ctx(KEY))
    before = central.rules()
    with pytest.raises(PermanentError, match="already subscribed by another document"):
        apply_subscription(MARKETING, central.ctx("subscriptions/marketing-copy.json"))
    assert central.rules() == before


def test_the_rules_per_bus_quota_is_kept_and_a_refusal_changes_nothing(central, domains):
    apply_subscription(FINANCE, central.ctx("subscriptions/finance.json"))
    before = central.rules()
    with pytest.raises(PermanentError, match="over its quota of 2 rules per bus"):
        apply_subscription(MARKETING, central.ctx(KEY), limits=MeshLimits(max_rules_per_bus=2))
    assert central.rules() == before


def test_the_wildcard_rules_quota_is_kept(central, domains):
    apply_subscription(MARKETING, central.ctx(KEY))  # one rule with a wildcard filter
    wild = {**FINANCE, "datasets": ["finance/*/ledger"]}
    with pytest.raises(PermanentError, match="fixed quota of 1"):
        apply_subscription(
            wild,
            central.ctx("subscriptions/finance.json"),
            limits=MeshLimits(max_wildcard_rules_per_bus=1),
        )
    # a prefix instead of the wildcard is fine
    apply_subscription(
        {**FINANCE, "datasets": ["finance/*"]},
        central.ctx("subscriptions/finance.json"),
        limits=MeshLimits(max_wildcard_rules_per_bus=1),
    )


@pytest.mark.parametrize(
    ("change", "words"),
    [
        ({"event_bus_arn": CENTRAL_BUS_ARN, "account_id": "123456789012"}, "central bus itself"),
        (
            {
                "event_bus_arn": "arn:aws:events:us-east-1:123456789012:event-bus/lakegov-service",
                "account_id": "123456789012",
            },
            "service bus",
        ),
    ],
)
def test_targets_that_would_loop_are_refused(central, change, words):
    with pytest.raises(PermanentError, match=words):
        apply_subscription({**MARKETING, **change}, central.ctx(KEY))
    assert central.rules() == {}


def test_cross_account_delivery_without_the_delivery_role_is_refused(central):
    from dataclasses import replace

    central.settings = replace(central.settings, central_bus_role_arn="")
    with pytest.raises(PermanentError, match="CENTRAL_BUS_ROLE_ARN"):
        apply_subscription(MARKETING, central.ctx(KEY))
    assert central.rules() == {}


def test_a_disabled_subscription_keeps_its_rules_disabled(central):
    apply_subscription({**MARKETING, "enabled": False}, central.ctx(KEY))
    assert {r["State"] for r in central.rules().values()} == {"DISABLED"}
    summary = apply_subscription(MARKETING, central.ctx(KEY))
    assert len(summary["updated"]) == 2
    assert {r["State"] for r in central.rules().values()} == {"ENABLED"}


def test_a_deployment_without_the_central_bus_refuses_subscriptions(central):
    from dataclasses import replace

    central.settings = replace(
        central.settings, central_bus_arn="arn:aws:events:us-east-1:999999999999:event-bus/c"
    )
    with pytest.raises(PermanentError, match="upload subscriptions to the central account"):
        apply_subscription(MARKETING, central.ctx(KEY))

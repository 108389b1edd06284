"""Subscription documents: the schema and the semantic checks, with clear errors."""

import copy
import json

import pytest
from tests.conftest import ROOT

from lakegov.mesh.central_bus import owner_of, parse_rule_name, rule_name
from lakegov.mesh.patterns import PatternTooLarge
from lakegov.mesh.subscriptions import (
    MeshConfig,
    Subscription,
    desired_rules,
    subscription_kind,
    validate_subscription,
)
from lakegov.settings import Settings

EXAMPLES = sorted((ROOT / "examples" / "subscriptions").glob("*.json"))
VALID = json.loads((ROOT / "examples" / "subscriptions" / "marketing.json").read_text())


def _errors(document):
    return [i for i in validate_subscription(document, "test") if i.severity == "error"]


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_every_example_document_is_valid(path):
    assert EXAMPLES, "examples/subscriptions/ holds the documents the README shows"
    assert validate_subscription(json.loads(path.read_text()), path.name) == []


def _with(**changes):
    doc = copy.deepcopy(VALID)
    for key, value in changes.items():
        if value is None:
            doc.pop(key)
        else:
            doc[key] = value
    return doc


@pytest.mark.parametrize(
    ("document", "path", "words"),
    [
        (_with(account_id="22222222222"), "$.account_id", "does not match"),
        (_with(domain="Marketing Team"), "$.domain", "does not match"),
        (_with(datasets=[]), "$.datasets", "expected at least 1 item(s)"),
        (_with(datasets=["sales orders"]), "$.datasets[0]", "does not match"),
        (_with(event_types=["FileConverted"]), "$.event_types[0]", "expected one of"),
        (_with(event_bus_arn="arn:aws:sqs:us-east-1:222222222222:q"), "$.event_bus_arn", ""),
        (_with(extra=1), "$.extra", "unknown field 'extra'"),
        (_with(domain=None), "$", "missing required field 'domain'"),
        (_with(read_access={"permissions": ["SELECT"]}), "$.read_access", ""),
        (
            _with(
                read_access={"tables": [{"Database": "d", "Table": "t"}], "permissions": ["ALL"]}
            ),
            "$.read_access.permissions[0]",
            "expected one of",
        ),
        (
            _with(event_bus_arn="arn:aws:events:us-east-1:999999999999:event-bus/x"),
            "$.event_bus_arn",
            "not in the domain's account 222222222222",
        ),
        (_with(datasets=["*"]), "$.datasets[0]", "set allow_all_datasets"),
        (_with(datasets=["sales/**"]), "$.datasets[0]", "consecutive '*'"),
    ],
)
def test_a_bad_document_is_refused_naming_the_field(document, path, words):
    errors = _errors(document)
    assert errors, "expected the document to be refused"
    assert any(e.path == path and words in e.message for e in errors), [str(e) for e in errors]


def test_every_dataset_is_allowed_only_when_asked_for_and_redundancy_is_a_warning():
    doc = _with(datasets=["*", "sales/*"], allow_all_datasets=True)
    issues = validate_subscription(doc, "test")
    assert [i.severity for i in issues] == ["warning"]
    doc = _with(datasets=["sales/*", "sales/eu"])
    (warning,) = validate_subscription(doc, "test")
    assert warning.severity == "warning" and warning.path == "$.datasets[1]"
    assert "'sales/*'" in warning.message


def test_too_many_rules_for_one_domain_is_refused():
    # Given 500 long names (the most the schema allows) and a pattern quota of 600 characters
    doc = _with(datasets=[f"{i:03d}" + "x" * 250 for i in range(500)])
    assert _errors(doc) == []  # within the default 2,048-character quota: 72 rules
    # Then they do not fit in the 100 rules one domain may have
    with pytest.raises(PatternTooLarge, match="need 250 rules"):
        desired_rules(Subscription.from_document(doc), "k", MeshConfig(""), max_pattern_chars=600)


def test_rule_names_are_deterministic_short_and_tied_to_the_document_key():
    owner = owner_of("subscriptions/marketing.json")
    assert owner == owner_of("subscriptions/marketing.json") != owner_of("subscriptions/x.json")
    name = rule_name("a" * 32, owner, 7)
    assert len(name) <= 64
    assert parse_rule_name(name) == ("a" * 32, owner, 7)
    assert parse_rule_name("lakegov-sub-sales-eu-0123abcd-01") == ("sales-eu", "0123abcd", 1)
    assert parse_rule_name("Events-Archive-central") is None


def test_each_rule_targets_the_domain_bus_with_role_retry_and_dead_letter_queue():
    settings = Settings(
        environment="dev",
        region="us-east-1",
        raw_bucket="r",
        formatted_bucket="f",
        config_bucket="c",
        service_bus="lakegov-service",
        audit_table="a",
        central_bus_arn="arn:aws:events:us-east-1:123456789012:event-bus/central",
        account_id="123456789012",
        central_bus_role_arn="arn:aws:iam::123456789012:role/delivery",
        mesh_dlq_arn="arn:aws:sqs:us-east-1:123456789012:mesh-dlq",
    )
    config = MeshConfig.from_settings(settings)
    assert config.service_bus_arn == (
        "arn:aws:events:us-east-1:123456789012:event-bus/lakegov-service"
    )
    rules = desired_rules(Subscription.from_document(VALID), "subscriptions/m.json", config)
    assert len(rules) == 2  # exact names and prefixes, then the wildcard apart
    for rule in rules:
        assert rule.state == "ENABLED" and "marketing" in rule.description
    assert (
        rules[0].target
        == rules[1].target
        == {
            "Id": "domain-bus",
            "Arn": VALID["event_bus_arn"],
            "RoleArn": "arn:aws:iam::123456789012:role/delivery",
            "DeadLetterConfig": {"Arn": "arn:aws:sqs:us-east-1:123456789012:mesh-dlq"},
            "RetryPolicy": {"MaximumRetryAttempts": 185, "MaximumEventAgeInSeconds": 86400},
        }
    )


def test_the_kind_prefixes_governance_errors_of_the_read_access_with_its_path():
    # Given a governance validator that finds a problem in the grant document
    seen = []

    def validate_grant(document, source):
        from lakegov.errors import ValidationIssue

        seen.append(document)
        return [ValidationIssue("$[0].named_data_catalog[0].Database", "database not governed")]

    kind = subscription_kind(validate_grant=validate_grant)
    # When the subscription is validated
    (issue,) = kind.validate(VALID, "subscriptions/marketing.json")
    # Then the error points into read_access, and the grant was validated as a document
    assert issue.path == "$.read_access.named_data_catalog[0].Database"
    assert "database not governed" in issue.message
    assert seen[0][0]["role_arn"] == "222222222222"
    assert kind.prefix == "subscriptions/" and kind.name == "subscription"


def test_a_domain_may_subscribe_to_lineage_but_not_to_internal_events():
    lineage = {**copy.deepcopy(VALID), "event_types": ["DatasetRefreshed", "LineageRecorded"]}
    assert _errors(lineage) == []
    rules = desired_rules(
        Subscription.from_document(lineage),
        "subscriptions/m.json",
        MeshConfig.from_settings(
            Settings(
                environment="dev",
                region="us-east-1",
                raw_bucket="r",
                formatted_bucket="f",
                config_bucket="c",
                service_bus="svc",
                audit_table="a",
                central_bus_arn="arn:aws:events:us-east-1:123456789012:event-bus/central",
                account_id="123456789012",
            )
        ),
    )
    assert all(r.pattern["detail-type"] == ["DatasetRefreshed", "LineageRecorded"] for r in rules)
    internal = {**copy.deepcopy(VALID), "event_types": ["FileConverted"]}
    assert [i.path for i in _errors(internal)] == ["$.event_types[0]"]

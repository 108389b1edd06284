"""Encrypted topics and queues that AWS services can actually deliver to.

moto delivers to any topic or queue; AWS does not. A CloudWatch alarm cannot publish to an
SNS topic encrypted with the AWS-managed key (``alias/aws/sns``), and EventBridge cannot
deliver to an SNS topic or SQS queue under an AWS-managed key (``alias/aws/sns``,
``alias/aws/sqs``): their key policies admit no service principal, and the notification
is dropped without an error anyone sees. With a customer-managed key, the key policy must
admit the publishing service. SSE-SQS (``SqsManagedSseEnabled``) involves no KMS key and
works with both. This test knows those pairings and fails on the ones AWS refuses.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from tests.conftest import ROOT

from lakegov.local.template import load_template

TEMPLATES = [ROOT / "template.yaml", *sorted((ROOT / "templates").glob("*.yaml"))]

CLOUDWATCH = "cloudwatch.amazonaws.com"
EVENTBRIDGE = "events.amazonaws.com"
LAMBDA = "lambda.amazonaws.com"  # destinations: the function's own role sends


def _logical_id(value: Any) -> str | None:
    """The resource a ``Ref`` / ``GetAtt`` points at (an ARN given as a string: None)."""
    if isinstance(value, dict):
        if "Ref" in value:
            return str(value["Ref"])
        if "Fn::GetAtt" in value:
            return str(value["Fn::GetAtt"][0])
    return None


def deliveries(resources: dict[str, Any]) -> Iterator[tuple[str, str, str]]:
    """(publisher service, target logical id, where) for every delivery the template wires."""
    for lid, resource in resources.items():
        props = resource.get("Properties") or {}
        kind = resource["Type"]
        if kind == "AWS::CloudWatch::Alarm":
            for key in ("AlarmActions", "OKActions", "InsufficientDataActions"):
                for action in props.get(key) or []:
                    target = _logical_id(action)
                    if target:
                        yield CLOUDWATCH, target, f"{lid}.{key}"
        elif kind == "AWS::Events::Rule":
            for target in props.get("Targets") or []:
                for where, arn in (
                    ("Arn", target.get("Arn")),
                    ("DeadLetterConfig", (target.get("DeadLetterConfig") or {}).get("Arn")),
                ):
                    found = _logical_id(arn)
                    if found:
                        yield EVENTBRIDGE, found, f"{lid}.Targets[{target.get('Id')}].{where}"
        elif kind == "AWS::Serverless::Function":
            for name, event in (props.get("Events") or {}).items():
                eprops = event.get("Properties") or {}
                dead_letter = _logical_id((eprops.get("DeadLetterConfig") or {}).get("Arn"))
                if dead_letter:
                    yield EVENTBRIDGE, dead_letter, f"{lid}.Events.{name}.DeadLetterConfig"
            destinations = (props.get("EventInvokeConfig") or {}).get("DestinationConfig") or {}
            for outcome, destination in destinations.items():
                found = _logical_id(destination.get("Destination"))
                if found:
                    yield LAMBDA, found, f"{lid}.EventInvokeConfig.{outcome}"


def _key_admits(key: dict[str, Any], service: str) -> bool:
    for statement in key["Properties"]["KeyPolicy"]["Statement"]:
        principal = statement.get("Principal") or {}
        services = principal.get("Service") if isinstance(principal, dict) else None
        services = services if isinstance(services, list) else [services]
        actions = statement.get("Action")
        actions = actions if isinstance(actions, list) else [actions]
        if (
            statement.get("Effect") == "Allow"
            and service in services
            and "kms:Decrypt" in actions
            and any(a in ("kms:GenerateDataKey*", "kms:GenerateDataKey") for a in actions)
        ):
            return True
    return False


def refused_pairings(template: dict[str, Any]) -> list[str]:
    """Deliveries AWS would refuse or drop, each as a sentence naming where it is wired."""
    resources = template["Resources"]
    problems = []
    for service, target, where in deliveries(resources):
        resource = resources.get(target)
        if resource is None or resource["Type"] not in ("AWS::SNS::Topic", "AWS::SQS::Queue"):
            continue
        props = resource.get("Properties") or {}
        key = props.get("KmsMasterKeyId")
        if key is None:
            if resource["Type"] == "AWS::SQS::Queue" and props.get("SqsManagedSseEnabled"):
                continue  # SSE-SQS: no KMS key for the publisher to be refused
            problems.append(f"{where} -> {target}: not encrypted")
            continue
        if isinstance(key, str) and key.startswith("alias/aws/"):
            if service != LAMBDA:  # a function's role may use the AWS-managed key
                problems.append(f"{where} -> {target}: {service} cannot use {key}")
            continue
        key_id = _logical_id(key)
        if key_id is None or resources.get(key_id, {}).get("Type") != "AWS::KMS::Key":
            problems.append(f"{where} -> {target}: key {key!r} is not declared here")
        elif service != LAMBDA and not _key_admits(resources[key_id], service):
            problems.append(f"{where} -> {target}: the policy of {key_id} does not admit {service}")
    return problems


@pytest.mark.parametrize("path", TEMPLATES, ids=lambda p: p.name)
def test_every_alarm_rule_and_destination_target_accepts_its_publisher(path: Path) -> None:
    template = load_template(path)
    assert list(deliveries(template["Resources"])), "no deliveries found: the walker is broken"
    assert refused_pairings(template) == []


@pytest.mark.parametrize("path", TEMPLATES, ids=lambda p: p.name)
def test_every_alarm_notifies_someone(path: Path) -> None:
    for lid, resource in load_template(path)["Resources"].items():
        if resource["Type"] == "AWS::CloudWatch::Alarm":
            assert resource["Properties"].get("AlarmActions"), f"{lid} notifies nobody"


def _template(topic: dict[str, Any], queue: dict[str, Any], key_services: list[str]) -> Any:
    return {
        "Resources": {
            "Key": {
                "Type": "AWS::KMS::Key",
                "Properties": {
                    "KeyPolicy": {
                        "Statement": [
                            {
                                "Effect": "Allow",
                                "Principal": {"Service": key_services},
                                "Action": ["kms:Decrypt", "kms:GenerateDataKey*"],
                                "Resource": "*",
                            }
                        ]
                    }
                },
            },
            "Topic": {"Type": "AWS::SNS::Topic", "Properties": topic},
            "Queue": {"Type": "AWS::SQS::Queue", "Properties": queue},
            "Alarm": {
                "Type": "AWS::CloudWatch::Alarm",
                "Properties": {"AlarmActions": [{"Ref": "Topic"}]},
            },
            "Rule": {
                "Type": "AWS::Events::Rule",
                "Properties": {
                    "Targets": [
                        {
                            "Id": "q",
                            "Arn": {"Fn::GetAtt": ["Queue", "Arn"]},
                            "DeadLetterConfig": {"Arn": {"Fn::GetAtt": ["Queue", "Arn"]}},
                        },
                        {"Id": "t", "Arn": {"Ref": "Topic"}},
                    ]
                },
            },
        }
    }


def test_the_check_refuses_aws_managed_keys_for_alarms_and_rules() -> None:
    bad = _template(
        {"KmsMasterKeyId": "alias/aws/sns"}, {"KmsMasterKeyId": "alias/aws/sqs"}, [CLOUDWATCH]
    )
    problems = refused_pairings(bad)
    assert any("Alarm.AlarmActions -> Topic" in p and "alias/aws/sns" in p for p in problems)
    assert any("Rule.Targets[q].Arn -> Queue" in p and "alias/aws/sqs" in p for p in problems)
    assert any("Rule.Targets[t].Arn -> Topic" in p for p in problems)


def test_the_check_refuses_a_key_whose_policy_omits_the_publisher() -> None:
    only_alarms = _template(
        {"KmsMasterKeyId": {"Fn::GetAtt": ["Key", "Arn"]}},
        {"KmsMasterKeyId": {"Ref": "Key"}},
        [CLOUDWATCH],
    )
    problems = refused_pairings(only_alarms)
    assert all(EVENTBRIDGE in p for p in problems) and len(problems) == 3
    both = _template(
        {"KmsMasterKeyId": {"Fn::GetAtt": ["Key", "Arn"]}},
        {"SqsManagedSseEnabled": True},
        [CLOUDWATCH, EVENTBRIDGE],
    )
    assert refused_pairings(both) == []


def unused_service_grants(template: dict[str, Any]) -> list[str]:
    """Service principals a key policy admits although that service delivers to nothing the
    key encrypts: a grant nobody needs, given without the conditions a used one would carry."""
    resources = template["Resources"]
    delivering: dict[str, set[str]] = {}
    for service, target, _ in deliveries(resources):
        props = (resources.get(target) or {}).get("Properties") or {}
        key_id = _logical_id(props.get("KmsMasterKeyId"))
        if key_id:
            delivering.setdefault(key_id, set()).add(service)
    problems = []
    for lid, resource in resources.items():
        if resource["Type"] != "AWS::KMS::Key":
            continue
        for service in (CLOUDWATCH, EVENTBRIDGE):
            if _key_admits(resource, service) and service not in delivering.get(lid, set()):
                problems.append(f"{lid} admits {service}, which delivers to nothing it encrypts")
    return problems


@pytest.mark.parametrize("path", TEMPLATES, ids=lambda p: p.name)
def test_no_key_admits_a_service_that_does_not_deliver_through_it(path: Path) -> None:
    assert unused_service_grants(load_template(path)) == []

"""The central bus's resource policy, as template.yaml builds it from its parameters.

moto stores event bus policies but does not enforce them, so the policy is checked here
with a small evaluator of the statements the template can produce (Allow only, principal
account or "*", StringEquals on aws:PrincipalOrgID).
"""

import pytest
from tests.conftest import ROOT

from lakegov.local.template import Resolver, load_template

TEMPLATE = load_template(ROOT / "template.yaml")
ACCOUNT = "123456789012"
BUS_ARN = f"arn:aws:events:us-east-1:{ACCOUNT}:event-bus/lakegov-central"


def _policy(**parameters):
    resolver = Resolver(
        TEMPLATE, stack="lakegov", region="us-east-1", account=ACCOUNT, parameters=parameters
    )
    bus = TEMPLATE["Resources"]["CentralEventBus"]
    assert resolver.condition(bus["Condition"]), "the central bus exists in this deployment"
    return resolver.resolve(bus["Properties"]["Policy"])


def _principal_accounts(principal):
    if principal == "*":
        return "*"
    values = principal["AWS"]
    values = [values] if isinstance(values, str) else values
    return {v.split(":")[4] if v.startswith("arn:") else v for v in values}


def allows(policy, *, account, org_id=None, action="events:PutEvents", resource=BUS_ARN):
    """Whether ``policy`` lets a principal of ``account`` (in ``org_id``) do ``action``."""
    for statement in policy["Statement"]:
        assert statement["Effect"] == "Allow"  # the template only allows; no deny to weigh
        if statement["Action"] != action or statement["Resource"] != resource:
            continue
        accounts = _principal_accounts(statement["Principal"])
        if accounts != "*" and account not in accounts:
            continue
        conditions = statement.get("Condition", {})
        assert set(conditions) <= {"StringEquals"}, conditions
        wanted = conditions.get("StringEquals", {})
        assert set(wanted) <= {"aws:PrincipalOrgID"}, wanted
        if "aws:PrincipalOrgID" in wanted and wanted["aws:PrincipalOrgID"] != org_id:
            continue
        return True
    return False


def test_the_policy_names_the_central_bus_itself():
    for statement in _policy(ProducerAccountIds="222222222222")["Statement"]:
        assert statement["Resource"] == BUS_ARN


def test_by_default_only_this_account_may_put_events():
    policy = _policy()
    assert allows(policy, account=ACCOUNT)
    assert not allows(policy, account="222222222222")
    assert not allows(policy, account="222222222222", org_id="o-abcdefghij")


def test_listed_producer_accounts_may_put_events_and_no_one_else():
    policy = _policy(ProducerAccountIds="222222222222, 333333333333")
    assert allows(policy, account="222222222222")
    assert allows(policy, account="333333333333")
    assert not allows(policy, account="444444444444")
    assert not allows(policy, account="444444444444", org_id="o-abcdefghij")
    # only PutEvents: a producer may not manage the central bus's rules
    assert not allows(policy, account="222222222222", action="events:PutRule")


def test_an_organisation_admits_its_accounts_only():
    policy = _policy(OrganizationId="o-abcdefghij")
    assert allows(policy, account="555555555555", org_id="o-abcdefghij")
    assert not allows(policy, account="555555555555", org_id="o-zzzzzzzzzz")
    assert not allows(policy, account="555555555555")


@pytest.mark.parametrize("account", ["222222222222", "666666666666"])
def test_organisation_and_listed_accounts_together_admit_either(account):
    policy = _policy(OrganizationId="o-abcdefghij", ProducerAccountIds="222222222222")
    in_org = account == "666666666666"
    assert allows(policy, account=account, org_id="o-abcdefghij" if in_org else None)
    assert not allows(policy, account="777777777777", org_id="o-other12345")


def test_a_producer_only_deployment_has_no_central_bus():
    resolver = Resolver(
        TEMPLATE,
        stack="lakegov",
        region="us-east-1",
        account="222222222222",
        parameters={"CentralEventBusArn": BUS_ARN},
    )
    assert not resolver.condition("HostsCentralBus")

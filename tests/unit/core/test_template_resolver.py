import pytest

from lakegov.errors import ConfigurationError
from lakegov.local.template import NO_VALUE, Physical, Resolver, merge_globals

TEMPLATE = {
    "Parameters": {
        "Env": {"Type": "String", "Default": "dev"},
        "Ids": {"Type": "CommaDelimitedList", "Default": "a, b"},
    },
    "Conditions": {
        "IsDev": {"Fn::Equals": [{"Ref": "Env"}, "dev"]},
        "IsProd": {"Fn::Not": [{"Condition": "IsDev"}]},
    },
    "Globals": {"Function": {"Timeout": 5, "Environment": {"Variables": {"A": "1", "B": "2"}}}},
    "Resources": {"Bus": {"Type": "AWS::Events::EventBus"}},
}


@pytest.fixture
def resolver():
    r = Resolver(TEMPLATE, stack="st", region="eu-west-1", account="111122223333")
    r.physical["Bus"] = Physical(
        "st-bus", {"Arn": "arn:aws:events:eu-west-1:111122223333:event-bus/st-bus"}
    )
    return r


def test_intrinsics_resolve_against_local_names(resolver):
    assert resolver.resolve({"Ref": "Bus"}) == "st-bus"
    assert resolver.resolve({"Fn::Sub": "${AWS::StackName}-${Env}-${Bus.Arn}"}) == (
        "st-dev-arn:aws:events:eu-west-1:111122223333:event-bus/st-bus"
    )
    assert resolver.resolve({"Fn::Sub": ["${X}-${!Literal}", {"X": {"Ref": "AWS::Region"}}]}) == (
        "eu-west-1-${Literal}"
    )
    assert resolver.resolve({"Fn::Join": ["/", ["a", {"Ref": "Env"}]]}) == "a/dev"
    assert resolver.resolve({"Fn::Select": [1, {"Ref": "Ids"}]}) == "b"
    assert resolver.resolve({"Fn::If": ["IsProd", "p", "d"]}) == "d"
    assert resolver.resolve({"Fn::Split": [",", "x,y"]}) == ["x", "y"]


def test_no_value_removes_the_property(resolver):
    out = resolver.resolve({"Keep": 1, "Drop": {"Fn::If": ["IsProd", 2, {"Ref": "AWS::NoValue"}]}})
    assert out == {"Keep": 1}
    assert resolver.resolve([1, {"Ref": "AWS::NoValue"}]) == [1]
    assert NO_VALUE not in resolver.resolve([{"Ref": "AWS::NoValue"}])


def test_unknown_references_fail_with_their_name(resolver):
    with pytest.raises(ConfigurationError, match="Nope"):
        resolver.resolve({"Ref": "Nope"})
    with pytest.raises(ConfigurationError, match="Bus has no attribute Colour"):
        resolver.resolve({"Fn::GetAtt": ["Bus", "Colour"]})


def test_parameters_can_be_overridden():
    r = Resolver(TEMPLATE, stack="s", region="r", account="1", parameters={"Env": "prod"})
    assert r.condition("IsProd") is True


def test_globals_merge_maps_and_override_scalars():
    merged = merge_globals(
        TEMPLATE,
        "AWS::Serverless::Function",
        {"Timeout": 9, "Environment": {"Variables": {"B": "3"}}},
    )
    assert merged == {"Timeout": 9, "Environment": {"Variables": {"A": "1", "B": "3"}}}

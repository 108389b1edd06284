"""Reading ``template.yaml`` the way CloudFormation would, enough to deploy it on moto.

Loads CloudFormation YAML (short-form tags), merges SAM ``Globals`` into functions,
evaluates ``Conditions`` and resolves intrinsic functions (``Ref``, ``Fn::GetAtt``,
``Fn::Sub``, ``Fn::Join``, ``Fn::If``, ``Fn::Equals``, ``Fn::Not``, ``Fn::And``, ``Fn::Or``,
``Fn::Select``, ``Fn::Split``) against local physical names.
"""

from __future__ import annotations

import copy
import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from lakegov.errors import ConfigurationError

_SHORT_TAGS = {
    "Ref": "Ref",
    "Condition": "Condition",
    "GetAtt": "Fn::GetAtt",
    "Sub": "Fn::Sub",
    "Join": "Fn::Join",
    "If": "Fn::If",
    "Equals": "Fn::Equals",
    "Not": "Fn::Not",
    "And": "Fn::And",
    "Or": "Fn::Or",
    "Select": "Fn::Select",
    "Split": "Fn::Split",
    "FindInMap": "Fn::FindInMap",
    "Base64": "Fn::Base64",
    "GetAZs": "Fn::GetAZs",
    "ImportValue": "Fn::ImportValue",
    "Cidr": "Fn::Cidr",
}


class _CfnLoader(yaml.SafeLoader):
    pass


def _make_constructor(fn_name: str) -> Any:
    def construct(loader: yaml.SafeLoader, node: yaml.Node) -> dict[str, Any]:
        if isinstance(node, yaml.ScalarNode):
            value: Any = loader.construct_scalar(node)
            if fn_name == "Fn::GetAtt" and isinstance(value, str):
                value = value.split(".", 1)
        elif isinstance(node, yaml.SequenceNode):
            value = loader.construct_sequence(node, deep=True)
        else:
            value = loader.construct_mapping(node, deep=True)  # type: ignore[arg-type]
        return {fn_name: value}

    return construct


for _tag, _fn in _SHORT_TAGS.items():
    _CfnLoader.add_constructor(f"!{_tag}", _make_constructor(_fn))


def load_template(path: Path) -> dict[str, Any]:
    with path.open(encoding="utf-8") as handle:
        loaded = yaml.load(handle, Loader=_CfnLoader)  # noqa: S506 - SafeLoader subclass
    if not isinstance(loaded, dict) or "Resources" not in loaded:
        raise ConfigurationError(f"{path} is not a CloudFormation template")
    return loaded


class _NoValue:
    """``AWS::NoValue``: the property is removed."""


NO_VALUE = _NoValue()


@dataclass
class Physical:
    """What a resource resolves to locally: its ``Ref`` value and its attributes."""

    ref: str
    attrs: dict[str, str] = field(default_factory=dict)


def _short_hash(text: str) -> str:
    return hashlib.sha1(text.encode()).hexdigest()[:8]  # noqa: S324 - a name suffix, not security


def physical_for(
    stack: str, logical_id: str, rtype: str, props: Mapping[str, Any], region: str, account: str
) -> Physical:
    """Local physical names, the way CloudFormation derives them (explicit name or generated)."""
    arn = f"arn:aws:{{svc}}:{region}:{account}:"
    generated = f"{stack}-{logical_id}"
    if rtype == "AWS::S3::Bucket":
        name = props.get("BucketName") or (
            f"{stack}-{logical_id}".lower()[:54] + "-" + _short_hash(stack + logical_id)
        )
        name = re.sub(r"[^a-z0-9.-]", "-", str(name).lower())
        return Physical(
            name,
            {
                "Arn": f"arn:aws:s3:::{name}",
                "DomainName": f"{name}.s3.amazonaws.com",
                "RegionalDomainName": f"{name}.s3.{region}.amazonaws.com",
            },
        )
    if rtype == "AWS::Events::EventBus":
        name = str(props.get("Name") or generated)
        return Physical(name, {"Name": name, "Arn": arn.format(svc="events") + f"event-bus/{name}"})
    if rtype == "AWS::SQS::Queue":
        name = str(props.get("QueueName") or generated)[:80]
        url = f"{{endpoint}}/{account}/{name}"
        return Physical(
            url, {"QueueName": name, "QueueUrl": url, "Arn": arn.format(svc="sqs") + name}
        )
    if rtype == "AWS::DynamoDB::Table":
        name = str(props.get("TableName") or generated)
        table_arn = arn.format(svc="dynamodb") + f"table/{name}"
        return Physical(name, {"Arn": table_arn, "StreamArn": table_arn + "/stream/local"})
    if rtype == "AWS::SNS::Topic":
        name = str(props.get("TopicName") or generated)
        topic_arn = arn.format(svc="sns") + name
        return Physical(topic_arn, {"TopicName": name, "TopicArn": topic_arn})
    if rtype == "AWS::Events::Rule":
        name = str(props.get("Name") or generated)[:64]
        bus = props.get("EventBusName") or "default"
        bus = str(bus).rsplit("/", 1)[-1]
        path = f"rule/{name}" if bus == "default" else f"rule/{bus}/{name}"
        return Physical(name, {"Arn": arn.format(svc="events") + path})
    if rtype == "AWS::Events::Archive":
        name = str(props.get("ArchiveName") or generated)[:48]
        return Physical(name, {"Arn": arn.format(svc="events") + f"archive/{name}"})
    if rtype in ("AWS::Serverless::Function", "AWS::Lambda::Function"):
        name = str(props.get("FunctionName") or generated)[:64]
        return Physical(name, {"Arn": arn.format(svc="lambda") + f"function:{name}"})
    if rtype == "AWS::IAM::Role":
        name = str(props.get("RoleName") or generated)[:64]
        return Physical(
            name, {"Arn": f"arn:aws:iam::{account}:role/{name}", "RoleId": _short_hash(name)}
        )
    if rtype == "AWS::Logs::LogGroup":
        name = str(props.get("LogGroupName") or generated)
        return Physical(name, {"Arn": arn.format(svc="logs") + f"log-group:{name}:*"})
    if rtype == "AWS::Glue::Database":
        name = str((props.get("DatabaseInput") or {}).get("Name") or generated.lower())
        return Physical(name, {})
    if rtype == "AWS::Athena::WorkGroup":
        name = str(props.get("Name") or generated)
        return Physical(name, {})
    if rtype == "AWS::Glue::Crawler":
        return Physical(str(props.get("Name") or generated), {})
    if rtype == "AWS::CodeBuild::Project":
        name = str(props.get("Name") or generated)
        return Physical(name, {"Arn": arn.format(svc="codebuild") + f"project/{name}"})
    if rtype == "AWS::StepFunctions::StateMachine" or rtype == "AWS::Serverless::StateMachine":
        name = str(props.get("StateMachineName") or props.get("Name") or generated)
        sm_arn = arn.format(svc="states") + f"stateMachine:{name}"
        return Physical(sm_arn, {"Arn": sm_arn, "Name": name})
    if rtype == "AWS::EventSchemas::Registry":
        name = str(props.get("RegistryName") or generated)
        return Physical(
            name,
            {"RegistryArn": arn.format(svc="schemas") + f"registry/{name}", "RegistryName": name},
        )
    return Physical(generated, {"Arn": arn.format(svc="local") + generated})


class Resolver:
    """Evaluates conditions and intrinsic functions for one local stack."""

    PSEUDO = (
        "AWS::Region",
        "AWS::AccountId",
        "AWS::StackName",
        "AWS::Partition",
        "AWS::URLSuffix",
        "AWS::StackId",
        "AWS::NoValue",
    )

    def __init__(
        self,
        template: Mapping[str, Any],
        *,
        stack: str,
        region: str,
        account: str,
        parameters: Mapping[str, str] | None = None,
    ) -> None:
        self.template = template
        self.stack = stack
        self.region = region
        self.account = account
        self.params: dict[str, Any] = {}
        for name, spec in (template.get("Parameters") or {}).items():
            value = (parameters or {}).get(name, spec.get("Default"))
            if value is None:
                raise ConfigurationError(f"template parameter {name} has no default; pass it")
            if spec.get("Type") == "CommaDelimitedList":
                value = [v.strip() for v in str(value).split(",") if v.strip()]
            self.params[name] = value
        self.pseudo = {
            "AWS::Region": region,
            "AWS::AccountId": account,
            "AWS::StackName": stack,
            "AWS::Partition": "aws",
            "AWS::URLSuffix": "amazonaws.com",
            "AWS::StackId": f"arn:aws:cloudformation:{region}:{account}:stack/{stack}/local",
        }
        self.physical: dict[str, Physical] = {}
        self._conditions: dict[str, bool] = {}

    def condition(self, name: str) -> bool:
        if name not in self._conditions:
            spec = (self.template.get("Conditions") or {}).get(name)
            if spec is None:
                raise ConfigurationError(f"unknown condition {name}")
            self._conditions[name] = bool(self.resolve(spec))
        return self._conditions[name]

    def included(self, logical_id: str) -> bool:
        cond = self.template["Resources"][logical_id].get("Condition")
        return True if cond is None else self.condition(cond)

    def resolve(self, node: Any) -> Any:
        if isinstance(node, list):
            items = [self.resolve(v) for v in node]
            return [v for v in items if v is not NO_VALUE]
        if not isinstance(node, dict):
            return node
        if len(node) == 1:
            ((fn, arg),) = node.items()
            if fn == "Ref":
                return self._ref(arg)
            if fn == "Fn::GetAtt":
                logical, attr = arg.split(".", 1) if isinstance(arg, str) else arg
                return self._getatt(logical, self.resolve(attr))
            if fn == "Fn::Sub":
                return self._sub(arg)
            if fn == "Fn::Join":
                sep, parts = arg
                return str(sep).join(str(v) for v in self.resolve(parts))
            if fn == "Fn::If":
                cond, yes, no = arg
                return self.resolve(yes if self.condition(cond) else no)
            if fn == "Fn::Equals":
                a, b = (self.resolve(v) for v in arg)
                return str(a) == str(b)
            if fn == "Fn::Not":
                return not self.resolve(arg[0])
            if fn == "Fn::And":
                return all(self.resolve(v) for v in arg)
            if fn == "Fn::Or":
                return any(self.resolve(v) for v in arg)
            if fn == "Condition":
                return self.condition(arg)
            if fn == "Fn::Select":
                index, items = arg
                return self.resolve(items)[int(self.resolve(index))]
            if fn == "Fn::Split":
                sep, text = arg
                return str(self.resolve(text)).split(sep)
            if fn == "Fn::Base64":
                return self.resolve(arg)
            if fn.startswith("Fn::"):
                raise ConfigurationError(f"{fn} is not supported by the embedded runtime")
        resolved = {k: self.resolve(v) for k, v in node.items()}
        return {k: v for k, v in resolved.items() if v is not NO_VALUE}

    def _ref(self, name: str) -> Any:
        if name == "AWS::NoValue":
            return NO_VALUE
        if name in self.pseudo:
            return self.pseudo[name]
        if name in self.params:
            return self.params[name]
        if name in self.physical:
            return self.physical[name].ref
        raise ConfigurationError(f"Ref to unknown or excluded resource {name}")

    def _getatt(self, logical: str, attr: str) -> Any:
        phys = self.physical.get(logical)
        if phys is None:
            raise ConfigurationError(f"GetAtt on unknown or excluded resource {logical}")
        if attr not in phys.attrs:
            raise ConfigurationError(f"{logical} has no attribute {attr} in the embedded runtime")
        return phys.attrs[attr]

    def _sub(self, arg: Any) -> str:
        text, variables = (arg, {}) if isinstance(arg, str) else (arg[0], arg[1])
        values = {k: self.resolve(v) for k, v in variables.items()}

        def replace(match: re.Match[str]) -> str:
            expr = match.group(1)
            if expr.startswith("!"):
                return "${" + expr[1:] + "}"
            if expr in values:
                return str(values[expr])
            if "." in expr and expr.split(".", 1)[0] in self.physical:
                logical, attr = expr.split(".", 1)
                return str(self._getatt(logical, attr))
            return str(self._ref(expr))

        return re.sub(r"\$\{([^}]+)\}", replace, text)


def merge_globals(
    template: Mapping[str, Any], rtype: str, props: Mapping[str, Any]
) -> dict[str, Any]:
    """SAM's Globals merge for one resource: maps merge, scalars and lists are overridden."""
    section = {"AWS::Serverless::Function": "Function"}.get(rtype)
    globals_ = copy.deepcopy(
        ((template.get("Globals") or {}).get(section) or {}) if section else {}
    )

    def merge(base: Any, override: Any) -> Any:
        if isinstance(base, dict) and isinstance(override, dict):
            out = dict(base)
            for k, v in override.items():
                out[k] = merge(base.get(k), v) if k in base else v
            return out
        return override

    return merge(globals_, dict(props)) if globals_ else dict(props)

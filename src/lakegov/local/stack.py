"""Creating what ``template.yaml`` declares on a moto server, and reading its wiring.

Each function's declared events become :class:`Subscription` records: the queue the
dispatcher polls and the shape of the event the handler receives. An SQS event source is
polled directly; an ``EventBridgeRule`` event (or an ``AWS::Events::Rule`` targeting a
function) becomes a rule with the *same pattern* on the same bus, targeting a per-function
queue, since moto's server cannot invoke an in-process function itself.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lakegov.errors import ConfigurationError
from lakegov.local.template import (
    Resolver,
    load_template,
    merge_globals,
    physical_for,
)
from lakegov.observability import logger
from lakegov.ops.redrive import DEAD_LETTER_OUTPUT

LOCAL_RETRIES = 3  # async Lambda invokes: 1 try + 2 retries, then the failure destination


@dataclass
class FunctionSpec:
    logical_id: str
    name: str
    handler: str
    code_dir: Path
    environment: dict[str, str]
    timeout: int
    reserved_concurrency: int = 0  # ReservedConcurrentExecutions (0: not declared)
    account: str = ""  # runs in another account (a consumer domain's stack); "" = the runtime's


@dataclass
class Subscription:
    """One declared event source of one function, as the dispatcher sees it."""

    function: FunctionSpec
    source: str  # "sqs" | "eventbridge" | "schedule"
    queue_url: str = ""
    queue_arn: str = ""
    batch_size: int = 10
    report_batch_item_failures: bool = False
    rate_seconds: int = 0
    event_name: str = ""
    max_concurrency: int = 0  # an SQS source's ScalingConfig.MaximumConcurrency (0: none)
    batching_window: float = 0.0  # an SQS source's MaximumBatchingWindowInSeconds


@dataclass
class LocalStack:
    """The provisioned stack: outputs, functions, subscriptions and physical names."""

    outputs: dict[str, str]
    functions: dict[str, FunctionSpec]
    subscriptions: list[Subscription]
    physical: dict[str, str]
    buses: list[str]
    # state machine ARN -> its definition, DefinitionSubstitutions applied (lakegov.local.states)
    state_machines: dict[str, dict[str, Any]] = field(default_factory=dict)


EMBEDDED_RUNTIME_PARAMETER = "EmbeddedRuntime"


def _rate_seconds(expr: str) -> int:
    expr = expr.strip()
    if not expr.startswith("rate(") or not expr.endswith(")"):
        return 0
    amount, unit = expr[5:-1].split()
    scale = {"minute": 60, "minutes": 60, "hour": 3600, "hours": 3600, "day": 86400, "days": 86400}
    return int(amount) * scale.get(unit, 60)


class StackBuilder:
    """Provisions one template on a moto endpoint through real API calls."""

    def __init__(
        self,
        template_path: Path,
        client: Callable[[str], Any],
        *,
        endpoint_url: str,
        stack: str,
        region: str,
        account: str,
        parameters: Mapping[str, str] | None = None,
    ) -> None:
        self.template_path = template_path
        self.template = load_template(template_path)
        self.client = client
        self.endpoint_url = endpoint_url
        self.stack = stack
        self.region = region
        self.account = account
        # Resources that exist for the embedded runtime alone are conditioned on this
        # parameter in the template, so a deployed stack never has them.
        parameters = {EMBEDDED_RUNTIME_PARAMETER: "true", **(parameters or {})}
        self.resolver = Resolver(
            self.template, stack=stack, region=region, account=account, parameters=parameters
        )
        self.resources: dict[str, dict[str, Any]] = {}
        self.inbox_dead_letter_arns: list[str] = []

    # -- names -------------------------------------------------------------------------
    def _assign_physical_names(self) -> None:
        declared = self.template["Resources"]
        for logical_id, spec in declared.items():
            if not self.resolver.included(logical_id):
                continue
            self.resources[logical_id] = spec
        # SAM's implicit resources that other resources may reference: a function's role
        for logical_id, spec in list(self.resources.items()):
            props = spec.get("Properties") or {}
            if spec["Type"] == "AWS::Serverless::Function" and "Role" not in props:
                self.resources.setdefault(
                    f"{logical_id}Role", {"Type": "AWS::IAM::Role", "Implicit": True}
                )
        for logical_id, spec in self.resources.items():
            props = spec.get("Properties") or {}
            name_props = {}
            for key in (
                "BucketName",
                "Name",
                "QueueName",
                "TableName",
                "TopicName",
                "FunctionName",
                "RoleName",
                "LogGroupName",
                "ArchiveName",
                "StateMachineName",
                "RegistryName",
                "EventBusName",
                "DatabaseInput",
            ):
                if key in props:
                    try:
                        name_props[key] = self.resolver.resolve(props[key])
                    except ConfigurationError:
                        continue  # names that depend on other resources: resolved on a later pass
            phys = physical_for(
                self.stack, logical_id, spec["Type"], name_props, self.region, self.account
            )
            phys.ref = phys.ref.replace("{endpoint}", self.endpoint_url)
            phys.attrs = {
                k: v.replace("{endpoint}", self.endpoint_url) for k, v in phys.attrs.items()
            }
            self.resolver.physical[logical_id] = phys

    def props(self, logical_id: str) -> dict[str, Any]:
        spec = self.resources[logical_id]
        raw = merge_globals(self.template, spec["Type"], spec.get("Properties") or {})
        resolved: dict[str, Any] = self.resolver.resolve(raw)
        return resolved

    def _of_type(self, *types: str) -> list[str]:
        return [lid for lid, spec in self.resources.items() if spec["Type"] in types]

    # -- provisioning ------------------------------------------------------------------
    def build(self) -> LocalStack:
        self._assign_physical_names()
        for lid in self._of_type("AWS::S3::Bucket"):
            self._bucket(lid)
        buses = ["default"]
        for lid in self._of_type("AWS::Events::EventBus"):
            buses.append(self._event_bus(lid))
        queues = self._of_type("AWS::SQS::Queue")  # dead-letter queues before their sources
        for lid in sorted(
            queues, key=lambda q: "RedrivePolicy" in (self.resources[q].get("Properties") or {})
        ):
            self._queue(lid)
        for lid in self._of_type("AWS::DynamoDB::Table"):
            self._table(lid)
        for lid in self._of_type("AWS::SNS::Topic"):
            self.client("sns").create_topic(Name=self.resolver.physical[lid].attrs["TopicName"])
        for lid in self._of_type("AWS::Glue::Database"):
            props = self.props(lid)
            db_input = {
                k: v
                for k, v in props.get("DatabaseInput", {}).items()
                if k in ("Name", "Description", "LocationUri", "Parameters")
            }
            self.client("glue").create_database(DatabaseInput=db_input)
        for lid in self._of_type("AWS::LakeFormation::PrincipalPermissions"):
            # the stack's own grants (its roles on its databases and data location), which
            # governance and the drift check must see and leave alone
            props = self.props(lid)
            self.client("lakeformation").grant_permissions(
                Principal=props["Principal"],
                Resource=props["Resource"],
                Permissions=list(props.get("Permissions") or []),
                PermissionsWithGrantOption=list(props.get("PermissionsWithGrantOption") or []),
            )
        for lid in self._of_type("AWS::Athena::WorkGroup"):
            config = self.props(lid).get("WorkGroupConfiguration", {})
            self.client("athena").create_work_group(
                Name=self.resolver.physical[lid].ref,
                Configuration={
                    k: v
                    for k, v in config.items()
                    if k in ("ResultConfiguration", "EnforceWorkGroupConfiguration")
                },
            )
        for lid in self._of_type("AWS::Events::Archive"):
            props = self.props(lid)
            self.client("events").create_archive(
                ArchiveName=self.resolver.physical[lid].ref,
                EventSourceArn=props["SourceArn"],
                **(
                    {"EventPattern": json.dumps(props["EventPattern"])}
                    if "EventPattern" in props
                    else {}
                ),
            )
        functions = {lid: self._function(lid) for lid in self._of_type("AWS::Serverless::Function")}
        function_arns = {self.resolver.physical[lid].attrs["Arn"]: lid for lid in functions}
        subscriptions: list[Subscription] = []
        for lid in self._of_type("AWS::Events::Rule"):
            subscriptions.extend(self._rule(lid, functions, function_arns))
        for lid, fn in functions.items():
            subscriptions.extend(self._function_events(lid, fn))
        skipped = sorted({s["Type"] for s in self.resources.values()} - HANDLED_TYPES)
        if skipped:
            logger.debug("embedded runtime skips resource types", extra={"types": skipped})
        outputs = {}
        for name, spec in (self.template.get("Outputs") or {}).items():
            if "Condition" in spec and not self.resolver.condition(spec["Condition"]):
                continue
            outputs[name] = str(self.resolver.resolve(spec["Value"]))
        if DEAD_LETTER_OUTPUT in outputs and self.inbox_dead_letter_arns:
            # where the functions' inboxes dead-letter here (on AWS: their OnFailure queues)
            outputs[DEAD_LETTER_OUTPUT] = ",".join(
                [outputs[DEAD_LETTER_OUTPUT], *self.inbox_dead_letter_arns]
            )
        physical = {lid: p.ref for lid, p in self.resolver.physical.items()}
        return LocalStack(
            outputs,
            {fn.logical_id: fn for fn in functions.values()},
            subscriptions,
            physical,
            buses,
            self._state_machines(),
        )

    def _state_machines(self) -> dict[str, dict[str, Any]]:
        """Inline definitions with their ``${Name}`` substitutions applied."""
        machines: dict[str, dict[str, Any]] = {}
        for lid in self._of_type(
            "AWS::Serverless::StateMachine", "AWS::StepFunctions::StateMachine"
        ):
            props = self.props(lid)
            definition = props.get("Definition")
            if not isinstance(definition, dict):
                continue  # a DefinitionUri/DefinitionString machine: not run locally
            text = json.dumps(definition)
            for name, value in (props.get("DefinitionSubstitutions") or {}).items():
                text = text.replace("${" + name + "}", str(value))
            machines[self.resolver.physical[lid].ref] = json.loads(text)
        return machines

    def _bucket(self, lid: str) -> None:
        s3 = self.client("s3")
        name = self.resolver.physical[lid].ref
        props = self.props(lid)
        kwargs: dict[str, Any] = {"Bucket": name}
        if self.region != "us-east-1":
            kwargs["CreateBucketConfiguration"] = {"LocationConstraint": self.region}
        s3.create_bucket(**kwargs)
        if (props.get("VersioningConfiguration") or {}).get("Status") == "Enabled":
            s3.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": "Enabled"})
        notification = props.get("NotificationConfiguration") or {}
        if (notification.get("EventBridgeConfiguration") or {}).get("EventBridgeEnabled"):
            s3.put_bucket_notification_configuration(
                Bucket=name, NotificationConfiguration={"EventBridgeConfiguration": {}}
            )

    def _event_bus(self, lid: str) -> str:
        """The bus, with its resource policy when it declares one (moto stores, not enforces)."""
        name = self.resolver.physical[lid].ref
        events = self.client("events")
        events.create_event_bus(Name=name)
        policy = self.props(lid).get("Policy")
        if policy:
            events.put_permission(
                EventBusName=name,
                Policy=policy if isinstance(policy, str) else json.dumps(policy),
            )
        return name

    def _queue(self, lid: str) -> None:
        props = self.props(lid)
        attributes: dict[str, str] = {}
        for key in (
            "VisibilityTimeout",
            "MessageRetentionPeriod",
            "DelaySeconds",
            "ReceiveMessageWaitTimeSeconds",
            "FifoQueue",
            "ContentBasedDeduplication",
        ):
            if key in props:
                attributes[key] = (
                    str(props[key]).lower() if isinstance(props[key], bool) else str(props[key])
                )
        if "RedrivePolicy" in props:
            attributes["RedrivePolicy"] = json.dumps(props["RedrivePolicy"])
        self.client("sqs").create_queue(
            QueueName=self.resolver.physical[lid].attrs["QueueName"], Attributes=attributes
        )

    def _table(self, lid: str) -> None:
        props = self.props(lid)
        kwargs: dict[str, Any] = {
            "TableName": self.resolver.physical[lid].ref,
            "AttributeDefinitions": props["AttributeDefinitions"],
            "KeySchema": props["KeySchema"],
            "BillingMode": props.get("BillingMode", "PAY_PER_REQUEST"),
        }
        if props.get("GlobalSecondaryIndexes"):
            kwargs["GlobalSecondaryIndexes"] = props["GlobalSecondaryIndexes"]
        self.client("dynamodb").create_table(**kwargs)

    def _function(self, lid: str) -> FunctionSpec:
        props = self.props(lid)
        env = {
            k: str(v) for k, v in ((props.get("Environment") or {}).get("Variables") or {}).items()
        }
        code_dir = (self.template_path.parent / str(props.get("CodeUri", "."))).resolve()
        return FunctionSpec(
            logical_id=lid,
            name=self.resolver.physical[lid].ref,
            handler=str(props["Handler"]),
            code_dir=code_dir,
            environment=env,
            timeout=int(props.get("Timeout", 3)),
            reserved_concurrency=int(props.get("ReservedConcurrentExecutions") or 0),
        )

    def _function_queue(self, fn: FunctionSpec, event_name: str) -> tuple[str, str]:
        """The per-function inbox (and its DLQ) standing in for an async Lambda invoke."""
        sqs = self.client("sqs")
        base = f"{fn.name}-{event_name}"[:70]
        dlq_url = sqs.create_queue(QueueName=f"{base}-dlq")["QueueUrl"]
        dlq_arn = f"arn:aws:sqs:{self.region}:{self.account}:{base}-dlq"
        self.inbox_dead_letter_arns.append(dlq_arn)
        redrive = json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": LOCAL_RETRIES})
        url = sqs.create_queue(
            QueueName=f"{base}-in", Attributes={"VisibilityTimeout": "30", "RedrivePolicy": redrive}
        )["QueueUrl"]
        del dlq_url
        return url, f"arn:aws:sqs:{self.region}:{self.account}:{base}-in"

    def _put_rule(
        self, name: str, bus: str, pattern: Mapping[str, Any] | None, schedule: str | None = None
    ) -> None:
        kwargs: dict[str, Any] = {"Name": name[:64], "EventBusName": bus, "State": "ENABLED"}
        if pattern is not None:
            kwargs["EventPattern"] = json.dumps(pattern)
        if schedule:
            kwargs["ScheduleExpression"] = schedule
        self.client("events").put_rule(**kwargs)

    def _rule(
        self, lid: str, functions: Mapping[str, FunctionSpec], function_arns: Mapping[str, str]
    ) -> list[Subscription]:
        props = self.props(lid)
        name = self.resolver.physical[lid].ref
        bus = str(props.get("EventBusName") or "default").rsplit("/", 1)[-1]
        pattern = props.get("EventPattern")
        if pattern is None:  # schedule-only rules: the dispatcher's timer stands in
            schedule = str(props.get("ScheduleExpression", ""))
            subs = []
            for target in props.get("Targets", []):
                fn_lid = function_arns.get(str(target.get("Arn")))
                if fn_lid:
                    subs.append(
                        Subscription(
                            functions[fn_lid],
                            "schedule",
                            event_name=lid,
                            rate_seconds=_rate_seconds(schedule),
                        )
                    )
            return subs
        self._put_rule(name, bus, pattern)
        subs = []
        targets = []
        for target in props.get("Targets", []):
            arn = str(target["Arn"])
            fn_lid = function_arns.get(arn)
            if fn_lid:
                url, qarn = self._function_queue(functions[fn_lid], lid)
                targets.append({"Id": str(target["Id"]), "Arn": qarn})
                subs.append(
                    Subscription(
                        functions[fn_lid],
                        "eventbridge",
                        queue_url=url,
                        queue_arn=qarn,
                        event_name=lid,
                    )
                )
            else:
                entry = {"Id": str(target["Id"]), "Arn": arn}
                for key in (
                    "RoleArn",
                    "Input",
                    "InputPath",
                    "InputTransformer",
                    "SqsParameters",
                    "DeadLetterConfig",
                    "RetryPolicy",
                ):
                    if key in target:
                        entry[key] = target[key]
                targets.append(entry)
        if targets:
            self.client("events").put_targets(Rule=name[:64], EventBusName=bus, Targets=targets)
        return subs

    def _function_events(self, lid: str, fn: FunctionSpec) -> list[Subscription]:
        props = self.props(lid)
        subs: list[Subscription] = []
        for event_name, event in (props.get("Events") or {}).items():
            etype = event.get("Type")
            eprops = event.get("Properties") or {}
            if etype == "SQS":
                arn = str(eprops["Queue"])
                queue_name = arn.rsplit(":", 1)[-1]
                url = self.client("sqs").get_queue_url(QueueName=queue_name)["QueueUrl"]
                subs.append(
                    Subscription(
                        fn,
                        "sqs",
                        queue_url=url,
                        queue_arn=arn,
                        event_name=event_name,
                        batch_size=min(int(eprops.get("BatchSize", 10)), 10),
                        report_batch_item_failures="ReportBatchItemFailures"
                        in (eprops.get("FunctionResponseTypes") or []),
                        max_concurrency=int(
                            (eprops.get("ScalingConfig") or {}).get("MaximumConcurrency") or 0
                        ),
                        batching_window=float(eprops.get("MaximumBatchingWindowInSeconds") or 0),
                    )
                )
            elif etype in ("EventBridgeRule", "CloudWatchEvent"):
                bus = str(eprops.get("EventBusName") or "default").rsplit("/", 1)[-1]
                pattern = eprops["Pattern"]
                rule_name = f"{fn.name}-{event_name}"[:64]
                self._put_rule(rule_name, bus, pattern)
                url, qarn = self._function_queue(fn, event_name)
                self.client("events").put_targets(
                    Rule=rule_name, EventBusName=bus, Targets=[{"Id": "function", "Arn": qarn}]
                )
                subs.append(
                    Subscription(
                        fn,
                        "eventbridge",
                        queue_url=url,
                        queue_arn=qarn,
                        event_name=event_name,
                    )
                )
            elif etype in ("Schedule", "ScheduleV2"):
                expr = str(eprops.get("Schedule") or eprops.get("ScheduleExpression") or "")
                subs.append(
                    Subscription(
                        fn, "schedule", event_name=event_name, rate_seconds=_rate_seconds(expr)
                    )
                )
            else:
                logger.warning(
                    "event type not wired locally", extra={"function": lid, "type": etype}
                )
        return subs


HANDLED_TYPES = {
    "AWS::S3::Bucket",
    "AWS::Events::EventBus",
    "AWS::SQS::Queue",
    "AWS::DynamoDB::Table",
    "AWS::SNS::Topic",
    "AWS::Glue::Database",
    "AWS::Events::Archive",
    "AWS::Events::Rule",
    "AWS::Serverless::Function",
    "AWS::Athena::WorkGroup",
    "AWS::LakeFormation::PrincipalPermissions",
}

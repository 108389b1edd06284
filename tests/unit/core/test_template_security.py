"""Least privilege and safe defaults in the templates, checked statically.

A new ``Resource: "*"`` fails this test until it is added to WILDCARD_ALLOWED with the
reason the API leaves no narrower choice.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pytest
from tests.conftest import ROOT

from lakegov.local.template import load_template

TEMPLATES = [ROOT / "template.yaml", *sorted((ROOT / "templates").glob("*.yaml"))]

# (template file, logical id, statement Sid) -> why "*" is the only choice
WILDCARD_ALLOWED: dict[tuple[str, str, str], str] = {
    (
        "template.yaml",
        "LakeRecordsPolicy",
        "LakeFormationCredentials",
    ): "lakeformation:GetDataAccess takes no resource ARN (Lake Formation vends the credentials)",
    (
        "template.yaml",
        "ConfigFunction",
        "LakeFormationGovernance",
    ): "Lake Formation permission and LF-Tag APIs take no resource ARNs",
    (
        "template.yaml",
        "DriftFunction",
        "LakeFormationDrift",
    ): "Lake Formation permission and LF-Tag APIs take no resource ARNs",
    (
        "template.yaml",
        "ConfigFunction",
        "CrossAccountGrants",
    ): "AWS RAM share creation and the Data Catalog resource policy take no narrower resource",
    (
        "template.yaml",
        "CrawlerRole",
        "LakeFormationCredentials",
    ): "lakeformation:GetDataAccess takes no resource ARN (Lake Formation vends the credentials)",
    (
        "template.yaml",
        "CatalogFunction",
        "LakeFormationCredentials",
    ): "lakeformation:GetDataAccess takes no resource ARN (Lake Formation vends the credentials)",
    (
        "template.yaml",
        "CompactFunction",
        "LakeFormationCredentials",
    ): "lakeformation:GetDataAccess takes no resource ARN (Lake Formation vends the credentials)",
    (
        "template.yaml",
        "ConfigFunctionSubscriptionsPolicy",
        "ListRulesOfTheCentralBus",
    ): "events:ListRules takes no resource-level permission",
    (
        "template.yaml",
        "LakeFormationAdminsFunction",
        "DataLakeAdministrators",
    ): "Get/PutDataLakeSettings act on the account's data lake settings, with no resource ARN",
    (
        "template.yaml",
        "DbtBuildRole",
        "LakeFormationDataAccessAndTags",
    ): "lakeformation:GetDataAccess and the LF-Tag APIs dbt-athena calls take no resource ARNs",
    (
        "domain.yaml",
        "ShareLinksFunction",
        "ListInvitations",
    ): "ram:GetResourceShareInvitations takes no resource-level permission",
    (
        "domain.yaml",
        "ShareLinksFunction",
        "GrantTheNamedRoles",
    ): "Lake Formation permission APIs take no resource ARNs",
}


def _statements(resource: dict[str, Any]) -> list[dict[str, Any]]:
    props = resource.get("Properties") or {}
    found: list[dict[str, Any]] = []
    if resource["Type"] == "AWS::Serverless::Function":
        for policy in props.get("Policies") or []:
            if isinstance(policy, dict) and "Statement" in policy:
                found.extend(policy["Statement"])
    if resource["Type"] in ("AWS::IAM::Role",):
        for policy in props.get("Policies") or []:
            found.extend(policy.get("PolicyDocument", {}).get("Statement", []))
    if resource["Type"] in ("AWS::IAM::Policy", "AWS::IAM::ManagedPolicy"):
        found.extend(props.get("PolicyDocument", {}).get("Statement", []))
    return found


def _resources(path: Path) -> dict[str, dict[str, Any]]:
    return load_template(path)["Resources"]


@pytest.mark.parametrize("path", TEMPLATES, ids=lambda p: p.name)
def test_wildcard_resources_are_only_where_listed(path):
    unlisted = []
    for logical_id, resource in _resources(path).items():
        for statement in _statements(resource):
            if statement.get("Effect") != "Allow":
                continue
            resources = statement.get("Resource")
            resources = resources if isinstance(resources, list) else [resources]
            if "*" in resources:
                key = (path.name, logical_id, str(statement.get("Sid", "")))
                if key not in WILDCARD_ALLOWED:
                    unlisted.append(key)
    assert unlisted == [], f"Resource '*' without a listed reason: {unlisted}"


def test_the_allowlist_has_no_stale_entries():
    present = set()
    for path in TEMPLATES:
        for logical_id, resource in _resources(path).items():
            for statement in _statements(resource):
                present.add((path.name, logical_id, str(statement.get("Sid", ""))))
    assert set(WILDCARD_ALLOWED) <= present


@pytest.mark.parametrize("path", TEMPLATES, ids=lambda p: p.name)
def test_buckets_are_encrypted_private_and_tls_only(path):
    resources = _resources(path)
    policies = {
        str(r["Properties"]["Bucket"].get("Ref")): r
        for r in resources.values()
        if r["Type"] == "AWS::S3::BucketPolicy"
    }
    for logical_id, resource in resources.items():
        if resource["Type"] != "AWS::S3::Bucket":
            continue
        props = resource["Properties"]
        assert props["BucketEncryption"]["ServerSideEncryptionConfiguration"], logical_id
        block = props["PublicAccessBlockConfiguration"]
        assert all(
            block[k] is True
            for k in (
                "BlockPublicAcls",
                "BlockPublicPolicy",
                "IgnorePublicAcls",
                "RestrictPublicBuckets",
            )
        ), logical_id
        statements = policies[logical_id]["Properties"]["PolicyDocument"]["Statement"]
        assert any(
            s["Effect"] == "Deny" and s["Condition"]["Bool"]["aws:SecureTransport"] == "false"
            for s in statements
        ), f"{logical_id} allows plain HTTP"


def test_metadata_lives_in_a_versioned_bucket():
    props = _resources(ROOT / "template.yaml")["ConfigBucket"]["Properties"]
    assert props["VersioningConfiguration"]["Status"] == "Enabled"


def test_every_function_has_its_own_log_group_with_retention():
    resources = _resources(ROOT / "template.yaml")
    for logical_id, resource in resources.items():
        if resource["Type"] != "AWS::Serverless::Function":
            continue
        group = resource["Properties"]["LoggingConfig"]["LogGroup"]["Ref"]
        assert resources[group]["Properties"]["RetentionInDays"], logical_id


def test_async_invoked_functions_have_a_failure_destination():
    for logical_id, resource in _resources(ROOT / "template.yaml").items():
        if resource["Type"] != "AWS::Serverless::Function":
            continue
        props = resource["Properties"]
        kinds = {e["Type"] for e in (props.get("Events") or {}).values()}
        if kinds & {"EventBridgeRule", "Schedule", "ScheduleV2", "CloudWatchEvent"}:
            on_failure = props["EventInvokeConfig"]["DestinationConfig"]["OnFailure"]
            assert on_failure["Type"] == "SQS", logical_id


def test_every_queue_is_a_dead_letter_queue_or_has_one():
    resources = _resources(ROOT / "template.yaml")
    queues = {k for k, r in resources.items() if r["Type"] == "AWS::SQS::Queue"}
    dead_letter = set()
    for logical_id in queues:
        redrive = resources[logical_id]["Properties"].get("RedrivePolicy")
        if redrive:
            dead_letter.add(redrive["deadLetterTargetArn"]["Fn::GetAtt"][0])
    for logical_id in queues:
        props = resources[logical_id]["Properties"]
        assert (
            "RedrivePolicy" in props or logical_id in dead_letter or "DeadLetter" in logical_id
        ), logical_id


def _config_bucket_statements(parameters):
    from lakegov.local.template import Physical, Resolver

    template = load_template(ROOT / "template.yaml")
    resolver = Resolver(
        template, stack="s", region="us-east-1", account="123456789012", parameters=parameters
    )
    resolver.physical["ConfigBucket"] = Physical("cfg", {"Arn": "arn:aws:s3:::cfg"})
    policy = template["Resources"]["ConfigBucketPolicy"]["Properties"]["PolicyDocument"]
    return resolver.resolve(policy)["Statement"]


def test_only_named_principals_may_write_metadata_when_the_parameter_is_set():
    writers = "arn:aws:iam::123456789012:role/governance-ci,arn:aws:iam::123456789012:role/data-*"
    (deny,) = [
        s
        for s in _config_bucket_statements({"ConfigWriterArns": writers})
        if s.get("Sid") == "OnlyNamedPrincipalsWriteMetadata"
    ]
    assert deny["Effect"] == "Deny" and "s3:PutObject" in deny["Action"]
    assert deny["Condition"]["ArnNotLike"]["aws:PrincipalArn"] == writers.split(",")
    assert "arn:aws:s3:::cfg/governance/*" in deny["Resource"]
    assert not any("results/" in r for r in deny["Resource"])  # the service writes results/


def test_without_writers_listed_there_is_no_extra_deny():
    sids = [s.get("Sid") for s in _config_bucket_statements({})]
    assert sids == ["DenyInsecureTransport"]


def test_every_dead_letter_queue_and_every_function_has_an_alarm():
    resources = _resources(ROOT / "template.yaml")
    watched = set()
    for resource in resources.values():
        if resource["Type"] == "AWS::CloudWatch::Alarm":
            props = resource["Properties"]
            assert props["AlarmActions"] == [{"Ref": "AlarmTopic"}]
            for dimension in props.get("Dimensions", []):
                value = dimension["Value"]
                if isinstance(value, dict):
                    watched.add(
                        value["Fn::GetAtt"][0] if "Fn::GetAtt" in value else value.get("Ref")
                    )
    dead_letter = {
        k for k, r in resources.items() if r["Type"] == "AWS::SQS::Queue" and "DeadLetter" in k
    }
    functions = {k for k, r in resources.items() if r["Type"] == "AWS::Serverless::Function"}
    assert dead_letter - watched == set()
    assert functions - watched == set()


def _patterns_of(resource: dict[str, Any]) -> list[Any]:
    props = resource.get("Properties") or {}
    found = [props["EventPattern"]] if "EventPattern" in props else []
    for event in (props.get("Events") or {}).values():
        pattern = (event.get("Properties") or {}).get("Pattern")
        if pattern is not None:
            found.append(pattern)
    return found


def test_what_only_the_embedded_runtime_uses_is_not_deployed():
    from lakegov.local.stack import EMBEDDED_RUNTIME_PARAMETER
    from lakegov.local.template import Resolver

    template = load_template(ROOT / "template.yaml")

    def local_only(parameters: dict[str, str]) -> list[str]:
        resolver = Resolver(
            template, stack="s", region="us-east-1", account="123456789012", parameters=parameters
        )
        return [
            lid
            for lid, resource in template["Resources"].items()
            if resolver.included(lid)
            and any("lakegov.local" in str(p) for p in _patterns_of(resource))
        ]

    assert local_only({}) == []  # as `sam deploy` sees it: the parameter's default
    assert local_only({EMBEDDED_RUNTIME_PARAMETER: "true"}) == ["LocalRunEndedRule"]


def test_the_dead_letter_output_names_every_dead_letter_queue():
    from lakegov.ops.redrive import DEAD_LETTER_OUTPUT

    template = load_template(ROOT / "template.yaml")
    dead_letter = {
        k
        for k, r in template["Resources"].items()
        if r["Type"] == "AWS::SQS::Queue" and "DeadLetter" in k
    }
    listed = template["Outputs"][DEAD_LETTER_OUTPUT]["Value"]["Fn::Join"][1]
    assert {item["Fn::GetAtt"][0] for item in listed} == dead_letter


def test_the_dashboard_shows_every_queue_and_every_function():
    import re

    resources = _resources(ROOT / "template.yaml")
    body = resources["OperationsDashboard"]["Properties"]["DashboardBody"]["Fn::Sub"]
    shown = set(re.findall(r"\$\{([A-Za-z0-9]+)(?:\.QueueName)?\}", body))
    wanted = {
        k
        for k, r in resources.items()
        if r["Type"] in ("AWS::SQS::Queue", "AWS::Serverless::Function")
    }
    assert wanted - shown == set()


def test_layers_come_from_the_publishers_regional_parameters():
    """A layer ARN with an account and version exists in the regions it was published to
    only: layers resolve through the publishers' public SSM parameters instead."""
    import json
    import re

    template = load_template(ROOT / "template.yaml")
    # the convert function's layers change with its engine (another change owns them)
    others = {k: v for k, v in template["Resources"].items() if k != "ConvertFunction"}
    text = json.dumps([others, template["Globals"]])
    assert re.findall(r":\d{12}:layer:[A-Za-z0-9-]+:\d+", text) == []
    assert "{{resolve:ssm:/aws/service/powertools/python/arm64/python3.12/" in text


def test_the_governance_roles_are_made_lake_administrators_by_the_stack():
    template = load_template(ROOT / "template.yaml")
    admins = template["Resources"]["GovernanceRolesAreLakeAdmins"]
    assert admins["Properties"]["ServiceToken"] == {
        "Fn::GetAtt": ["LakeFormationAdminsFunction", "Arn"]
    }
    listed = template["Outputs"]["GovernanceRoleArns"]["Value"]["Fn::Join"][1]
    assert admins["Properties"]["Principals"] == [
        *listed,
        {"Fn::GetAtt": ["LakeFormationAdminsFunctionRole", "Arn"]},
    ]


def _dbt_model_tags() -> dict[str, set[str]]:
    """Every LF-Tag key and value the dbt project's models set (lf_tags_config)."""
    import ast
    import re

    import yaml

    project = yaml.safe_load((ROOT / "dbt" / "dbt_project.yml").read_text())
    defaults = {
        name: re.search(r"env_var\('[A-Z_]+', '([^']*)'\)", str(value)).group(1)  # type: ignore[union-attr]
        for name, value in project["vars"].items()
    }
    used: dict[str, set[str]] = {}
    for model in (ROOT / "dbt" / "models").rglob("*.sql"):
        text = model.read_text()
        match = re.search(r"lf_tags_config=(\{.*?\n    \})", text, re.S)
        if not match:
            continue
        literal = re.sub(r"var\('(\w+)'\)", lambda m: repr(defaults[m.group(1)]), match.group(1))
        literal = re.sub(r"\btrue\b", "True", re.sub(r"\bfalse\b", "False", literal))  # Jinja
        config = ast.literal_eval(literal)
        for key, value in config.get("tags", {}).items():
            used.setdefault(key, set()).add(value)
        for key, by_value in config.get("tags_columns", {}).items():
            used.setdefault(key, set()).update(by_value)
    return used


def test_the_stack_lets_dbt_associate_every_tag_its_models_set():
    import json

    template = load_template(ROOT / "template.yaml")
    declared = json.loads(template["Parameters"]["DbtLfTags"]["Default"])
    used = _dbt_model_tags()
    assert used, "no lf_tags_config found in dbt/models: the parser is broken"
    missing = {k: sorted(v - set(declared.get(k, []))) for k, v in used.items()}
    assert {k: v for k, v in missing.items() if v} == {}
    association = template["Resources"]["DbtLfTagAssociation"]["Properties"]
    assert association["Principal"] == {"Fn::GetAtt": ["DbtBuildRole", "Arn"]}
    assert association["Tags"] == {"Ref": "DbtLfTags"}


def test_the_drift_check_leaves_every_grant_the_stack_makes_alone():
    """Each role the template grants Lake Formation permissions to is one of the drift
    check's STACK_PRINCIPALS (else the check reports, and reconciling revokes, the
    stack's own grants)."""
    template = load_template(ROOT / "template.yaml")
    environment = template["Resources"]["DriftFunction"]["Properties"]["Environment"]
    listed = environment["Variables"]["STACK_PRINCIPALS"]["Fn::Join"][1]
    granted = [
        resource["Properties"]["Principal"]["DataLakePrincipalIdentifier"]
        for resource in template["Resources"].values()
        if resource["Type"] == "AWS::LakeFormation::PrincipalPermissions"
    ]
    assert granted
    missing = [p for p in granted if p not in listed]
    assert missing == []


def test_the_compact_function_may_switch_partitions_under_lake_formation():
    """UpdatePartition on a Lake Formation governed table needs ALTER on it (GetPartition
    SELECT) and, as the new location is in the registered bucket, DATA_LOCATION_ACCESS:
    IAM permissions alone are refused by real AWS."""
    template = load_template(ROOT / "template.yaml")
    role = {"Fn::GetAtt": ["CompactFunctionRole", "Arn"]}
    grants = [
        resource["Properties"]
        for resource in template["Resources"].values()
        if resource["Type"] == "AWS::LakeFormation::PrincipalPermissions"
        and resource["Properties"]["Principal"]["DataLakePrincipalIdentifier"] == role
    ]
    tables = [g for g in grants if "Table" in g["Resource"]]
    assert any(
        g["Resource"]["Table"]["DatabaseName"] == {"Ref": "StagingDatabase"}
        and {"SELECT", "ALTER"} <= set(g["Permissions"])
        for g in tables
    )
    assert any(
        "DataLocation" in g["Resource"] and g["Permissions"] == ["DATA_LOCATION_ACCESS"]
        for g in grants
    )


def test_a_domain_accepts_share_invitations_from_any_producer_account():
    """RAM invitation ARNs carry the sending (producer) account, and producers are other
    accounts than the central bus's: pinning the ARN to CentralAccountId denies them."""
    template = load_template(ROOT / "templates" / "domain.yaml")
    policies = template["Resources"]["ShareLinksFunction"]["Properties"]["Policies"]
    statements = [s for p in policies if "Statement" in p for s in p["Statement"]]
    accept = [s for s in statements if "ram:AcceptResourceShareInvitation" in s["Action"]]
    assert accept
    for statement in accept:
        assert "CentralAccountId" not in str(statement["Resource"])


def test_every_statement_that_deletes_a_database_covers_its_children():
    """Glue's DeleteDatabase needs permission on the database's tables and user-defined
    functions as well as on the database and the catalog."""
    checked = 0
    for path in TEMPLATES:
        template = load_template(path)
        for resource in template["Resources"].values():
            policies = (resource.get("Properties") or {}).get("Policies") or []
            if not isinstance(policies, list):
                continue
            for policy in policies:
                if not isinstance(policy, dict):
                    continue
                for statement in policy.get("Statement") or []:
                    actions = statement["Action"]
                    if "glue:DeleteDatabase" not in (
                        actions if isinstance(actions, list) else [actions]
                    ):
                        continue
                    checked += 1
                    text = str(statement["Resource"])
                    for kind in (":catalog", ":database/", ":table/", ":userDefinedFunction/"):
                        assert kind in text, (path.name, kind)
    assert checked


def _target(value: Any) -> str:
    return str(value["Fn::GetAtt"][0] if "Fn::GetAtt" in value else value["Ref"])


def _queue_policy_statements(resources: dict[str, Any], queue: str) -> list[dict[str, Any]]:
    return [
        statement
        for resource in resources.values()
        if resource["Type"] == "AWS::SQS::QueuePolicy"
        and {"Ref": queue} in resource["Properties"]["Queues"]
        for statement in resource["Properties"]["PolicyDocument"]["Statement"]
    ]


def test_a_queue_a_rule_sends_to_admits_that_rule_only():
    resources = _resources(ROOT / "template.yaml")
    fed = [
        (rule, _target(target["Arn"]))
        for rule, resource in resources.items()
        if resource["Type"] == "AWS::Events::Rule"
        for target in resource["Properties"].get("Targets") or []
        if resources.get(_target(target["Arn"]), {}).get("Type") == "AWS::SQS::Queue"
    ]
    assert ("MeshForwardRule", "MeshForwardQueue") in fed
    assert ("LineageRule", "LineageQueue") in fed
    for rule, queue in fed:
        statements = _queue_policy_statements(resources, queue)
        assert statements, queue
        for statement in statements:
            assert statement["Principal"] == {"Service": "events.amazonaws.com"}, queue
            assert statement["Action"] == "sqs:SendMessage", queue
            assert statement["Condition"] == {
                "ArnEquals": {"aws:SourceArn": {"Fn::GetAtt": [rule, "Arn"]}}
            }, queue


def test_queues_outlast_the_functions_that_read_them_and_report_partial_failures():
    """AWS advises a visibility timeout of at least six times the function timeout for an
    SQS event source; without ReportBatchItemFailures one failed message retries its batch."""
    resources = _resources(ROOT / "template.yaml")
    sources = [
        (lid, resource["Properties"], event["Properties"])
        for lid, resource in resources.items()
        if resource["Type"] == "AWS::Serverless::Function"
        for event in (resource["Properties"].get("Events") or {}).values()
        if event["Type"] == "SQS"
    ]
    assert {"MeshForwardFunction", "LineageFunction"} <= {lid for lid, _, _ in sources}
    for lid, function, source in sources:
        queue = resources[_target(source["Queue"])]["Properties"]
        assert queue["VisibilityTimeout"] >= 6 * function["Timeout"], lid
        assert queue["SqsManagedSseEnabled"] is True, lid
        assert "RedrivePolicy" in queue, lid
        assert source["FunctionResponseTypes"] == ["ReportBatchItemFailures"], lid


def test_a_function_fed_by_a_queue_reads_that_queue_only():
    """SAM gives a function with an SQS event AWSLambdaSQSQueueExecutionRole, which lets it
    receive and delete messages on every queue of the account: a Deny leaves it its own."""
    resources = _resources(ROOT / "template.yaml")
    fed: dict[str, list[Any]] = {}
    for lid, resource in resources.items():
        if resource["Type"] != "AWS::Serverless::Function":
            continue
        for event in (resource["Properties"].get("Events") or {}).values():
            if event["Type"] == "SQS":
                fed.setdefault(lid, []).append(event["Properties"]["Queue"])
    assert {"ConvertFunction", "CatalogFunction", "MeshForwardFunction", "LineageFunction"} <= set(
        fed
    )
    for lid, queues in fed.items():
        denies = [
            statement
            for policy in resources[lid]["Properties"].get("Policies") or []
            if isinstance(policy, dict)
            for statement in policy.get("Statement") or []
            if statement.get("Effect") == "Deny"
        ]
        assert [d["Sid"] for d in denies] == ["ReadOnlyItsOwnQueue"], lid
        (deny,) = denies
        assert set(deny["Action"]) == {
            "sqs:ReceiveMessage",
            "sqs:DeleteMessage",
            "sqs:ChangeMessageVisibility",
            "sqs:GetQueueAttributes",
        }, lid
        assert [deny["NotResource"]] == queues, lid


def _check_rule_queues_for_batches(
    resources: dict[str, Any], name: str, detail_types: Iterable[str]
) -> dict[str, Any]:
    """``<name>Rule`` queues exactly ``detail_types`` of the service bus on ``<name>Queue``,
    which redrives to ``<name>DeadLetterQueue`` (an alarm watches it), and
    ``<name>Function`` reads that queue only, in batches of up to one PutEvents call; the
    function's properties."""
    from lakegov.events import MAX_ENTRIES_PER_CALL

    queue_arn = {"Fn::GetAtt": [f"{name}Queue", "Arn"]}
    dead_letter_arn = {"Fn::GetAtt": [f"{name}DeadLetterQueue", "Arn"]}
    # the rule queues exactly those events of the service bus, dead-lettering what it
    # cannot queue
    rule = resources[f"{name}Rule"]["Properties"]
    assert rule["EventBusName"] == {"Ref": "ServiceEventBus"}
    assert rule["EventPattern"] == {"source": ["lakegov"], "detail-type": list(detail_types)}
    (target,) = rule["Targets"]
    assert target["Arn"] == queue_arn
    assert target["DeadLetterConfig"] == {"Arn": dead_letter_arn}
    # the queue redrives to its own dead-letter queue, which an alarm watches
    queue = resources[f"{name}Queue"]["Properties"]
    assert queue["RedrivePolicy"]["deadLetterTargetArn"] == dead_letter_arn
    assert resources[f"{name}DeadLetterQueue"]["Properties"]["SqsManagedSseEnabled"] is True
    # where the rule alone sends what it cannot queue
    statements = _queue_policy_statements(resources, f"{name}DeadLetterQueue")
    assert [s["Condition"] for s in statements] == [
        {"ArnEquals": {"aws:SourceArn": {"Fn::GetAtt": [f"{name}Rule", "Arn"]}}}
    ]
    assert any(
        r["Type"] == "AWS::CloudWatch::Alarm"
        and r["Properties"]["Namespace"] == "AWS/SQS"
        and r["Properties"]["Dimensions"]
        == [
            {
                "Name": "QueueName",
                "Value": {"Fn::GetAtt": [f"{name}DeadLetterQueue", "QueueName"]},
            }
        ]
        for r in resources.values()
    )
    # the function reads that queue only, in batches of up to one PutEvents call
    function: dict[str, Any] = resources[f"{name}Function"]["Properties"]
    (source,) = function["Events"].values()
    assert source["Type"] == "SQS"
    assert source["Properties"]["Queue"] == queue_arn
    assert 1 < source["Properties"]["BatchSize"] <= MAX_ENTRIES_PER_CALL
    assert source["Properties"]["MaximumBatchingWindowInSeconds"] >= 1
    assert "EventInvokeConfig" not in function  # not invoked asynchronously any more
    # with receive and delete rights on that queue
    pollers = [p["SQSPollerPolicy"] for p in function["Policies"] if "SQSPollerPolicy" in p]
    assert pollers == [{"QueueName": {"Fn::GetAtt": [f"{name}Queue", "QueueName"]}}]
    return function


def test_the_mesh_forwarder_reads_its_queue_in_batches_of_put_events_size():
    from lakegov.mesh.forward import FORWARDED_DETAIL_TYPES

    resources = _resources(ROOT / "template.yaml")
    _check_rule_queues_for_batches(resources, "MeshForward", FORWARDED_DETAIL_TYPES)
    # and PutEvents on the central bus only
    statements = [
        s for s in _statements(resources["MeshForwardFunction"]) if s["Effect"] == "Allow"
    ]  # (its Deny of other queues: test_a_function_fed_by_a_queue_reads_that_queue_only)
    assert [s["Action"] for s in statements] == ["events:PutEvents"]
    assert "CentralEventBus" in str(statements[0]["Resource"])


def test_the_lineage_function_reads_its_queue_in_batches_of_put_events_size():
    from lakegov.lineage.service import LINEAGE_DETAIL_TYPES

    resources = _resources(ROOT / "template.yaml")
    function = _check_rule_queues_for_batches(resources, "Lineage", LINEAGE_DETAIL_TYPES)
    # and PutEvents on its own service bus only
    buses = [p for p in function["Policies"] if "EventBridgePutEventsPolicy" in p]
    assert buses == [{"EventBridgePutEventsPolicy": {"EventBusName": {"Ref": "ServiceEventBus"}}}]
    # a stack updated over one whose rule invoked the function changes its code only once
    # the new rule queues (README, Upgrading)
    assert set(resources["LineageFunction"]["DependsOn"]) == {"LineageRule", "LineageQueuePolicy"}


def test_the_catalog_may_tell_a_missing_output_from_a_refused_read():
    """Without s3:ListBucket, S3 answers a GET of a missing object 403, not 404: an output a
    newer version replaced would be retried as a failure, never found superseded."""
    resources = _resources(ROOT / "template.yaml")
    listing = [
        s
        for s in _statements(resources["CatalogFunction"])
        if s["Effect"] == "Allow" and "s3:ListBucket" in s["Action"]
    ]
    assert [s["Resource"] for s in listing] == [{"Fn::GetAtt": ["FormattedBucket", "Arn"]}]
    assert all("Condition" not in s for s in listing)  # a GET carries no s3:prefix

"""Each runner's start call and state mapping: CodeBuild, Step Functions and ECS on moto,
MWAA on botocore's Stubber (moto has no MWAA), the local runner with a stand-in dbt."""

from __future__ import annotations

import io
import json
import threading
import zipfile
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber
from moto import mock_aws
from tests.conftest import load_event

from lakegov.errors import PermanentError, RetryableError
from lakegov.runners import codebuild, dbt_duckdb, ecs, mwaa, stepfunctions
from lakegov.runners.base import RunRequest

REGION = "us-east-1"
ROLE = "arn:aws:iam::123456789012:role/dbt"


def request(**settings: Any) -> RunRequest:
    return RunRequest(
        product="customers_cards",
        run_id="20261120T101700Z-g1-a1",
        selection=("tag:formatted", "mwaa_blog_cards+"),
        vars={"run_date": "2026-11-20"},
        settings=settings,
        attempt=1,
        artifacts_uri="s3://cfg/runs/customers_cards/20261120T101700Z-g1-a1/",
        project_uri="s3://cfg/dbt/project.zip",
    )


def captured(client: Any, operation: str) -> list[dict[str, Any]]:
    """Every request's parameters for one operation (moto does not keep all of them)."""
    calls: list[dict[str, Any]] = []
    client.meta.events.register(
        f"provide-client-params.{client.meta.service_model.service_name}.{operation}",
        lambda params, **_: calls.append(dict(params)),
    )
    return calls


@pytest.fixture
def aws_clients():
    with mock_aws():
        yield lambda service: boto3.client(service, region_name=REGION)


# -- CodeBuild ---------------------------------------------------------------------------
def test_codebuild_starts_a_build_with_the_selection_as_environment_overrides(aws_clients):
    client = aws_clients("codebuild")
    client.create_project(
        name="lakegov-dev-dbt",
        source={"type": "S3", "location": "cfg/dbt/project.zip"},
        artifacts={"type": "NO_ARTIFACTS"},
        environment={
            "type": "ARM_CONTAINER",
            "image": "aws/codebuild/amazonlinux2-aarch64-standard:3.0",
            "computeType": "BUILD_GENERAL1_SMALL",
        },
        serviceRole=ROLE,
    )
    calls = captured(client, "StartBuild")
    runner = codebuild.CodeBuildRunner(client, default_project="lakegov-dev-dbt")
    arn = runner.start(request(timeout_minutes=30, environment={"DBT_THREADS": "8"}))
    assert arn.startswith("arn:aws:codebuild:us-east-1:123456789012:build/lakegov-dev-dbt:")
    [call] = calls
    env = {v["name"]: v["value"] for v in call["environmentVariablesOverride"]}
    assert env["LAKEGOV_DBT_SELECT"] == "tag:formatted mwaa_blog_cards+"
    assert json.loads(env["LAKEGOV_DBT_VARS"]) == {"run_date": "2026-11-20"}
    assert env["LAKEGOV_ARTIFACTS_URI"].endswith("/20261120T101700Z-g1-a1/")
    assert env["LAKEGOV_DBT_PROJECT_URI"] == "s3://cfg/dbt/project.zip"
    assert env["DBT_THREADS"] == "8"
    assert call["timeoutInMinutesOverride"] == 30
    assert call["idempotencyToken"] == "customers_cards-20261120T101700Z-g1-a1"
    # moto completes builds at once: describe maps its SUCCEEDED
    assert runner.describe(arn, {}).state == "SUCCEEDED"


def test_codebuild_missing_project_is_a_permanent_error(aws_clients):
    runner = codebuild.CodeBuildRunner(aws_clients("codebuild"), default_project="nope")
    with pytest.raises(PermanentError, match="ResourceNotFoundException"):
        runner.start(request())


@pytest.mark.parametrize(
    ("status", "state"),
    [
        ("SUCCEEDED", "SUCCEEDED"),
        ("FAILED", "FAILED"),
        ("FAULT", "FAILED"),
        ("STOPPED", "STOPPED"),
        ("TIMED_OUT", "TIMED_OUT"),
        ("IN_PROGRESS", "RUNNING"),
    ],
)
def test_codebuild_states(status, state):
    assert codebuild.map_state(status).state == state


def test_codebuild_state_change_event_is_parsed_with_the_failed_phase():
    change = codebuild.parse_event(load_event("codebuild_state_change.json"))
    assert change is not None and change.runner == "codebuild"
    assert change.external_id.endswith("build/lakegov-dev-dbt:8745a7a9-c340-456a-9166-edf953571bEX")
    assert change.status.state == "FAILED"
    assert "phase BUILD FAILED" in str(change.status.reason)
    assert "dbt build" in str(change.status.reason)
    assert codebuild.parse_event(load_event("stepfunctions_state_change.json")) is None


# -- Step Functions ----------------------------------------------------------------------
def test_step_functions_starts_an_execution_with_the_contract_as_input(aws_clients):
    sfn = aws_clients("stepfunctions")
    machine = sfn.create_state_machine(
        name="dbt-runner",
        definition=json.dumps({"StartAt": "P", "States": {"P": {"Type": "Pass", "End": True}}}),
        roleArn=ROLE,
    )["stateMachineArn"]
    runner = stepfunctions.StepFunctionsRunner(sfn)
    arn = runner.start(request(state_machine_arn=machine, input={"cluster": "x"}))
    described = sfn.describe_execution(executionArn=arn)
    body = json.loads(described["input"])
    assert body["dbt_select"] == ["tag:formatted", "mwaa_blog_cards+"]
    assert body["run_id"] == "20261120T101700Z-g1-a1" and body["cluster"] == "x"
    assert described["name"] == "customers_cards-20261120T101700Z-g1-a1"
    assert runner.describe(arn, {}).state == "RUNNING"


def test_step_functions_unknown_machine_is_permanent(aws_clients):
    runner = stepfunctions.StepFunctionsRunner(aws_clients("stepfunctions"))
    missing = "arn:aws:states:us-east-1:123456789012:stateMachine:missing"
    with pytest.raises(PermanentError):
        runner.start(request(state_machine_arn=missing))


@pytest.mark.parametrize(
    ("status", "state"),
    [
        ("SUCCEEDED", "SUCCEEDED"),
        ("FAILED", "FAILED"),
        ("TIMED_OUT", "TIMED_OUT"),
        ("ABORTED", "STOPPED"),
        ("RUNNING", "RUNNING"),
    ],
)
def test_step_functions_states(status, state):
    assert stepfunctions.map_state(status).state == state


def test_step_functions_event_is_parsed():
    change = stepfunctions.parse_event(load_event("stepfunctions_state_change.json"))
    assert change is not None and change.status.state == "SUCCEEDED"
    assert change.external_id.endswith(":customers_cards-20261120T102500Z-g2-a1")
    failed = load_event("stepfunctions_state_change.json")
    failed["detail"].update(status="FAILED", error="States.TaskFailed", cause="dbt exited 1")
    assert stepfunctions.parse_event(failed).status.reason == "States.TaskFailed: dbt exited 1"


# -- ECS ---------------------------------------------------------------------------------
def test_ecs_runs_a_task_with_container_overrides(aws_clients):
    ec2, ecs_client = aws_clients("ec2"), aws_clients("ecs")
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    ec2.modify_vpc_attribute(VpcId=vpc, EnableDnsHostnames={"Value": True})  # moto needs it
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.0.1.0/24")["Subnet"]["SubnetId"]
    group = ec2.create_security_group(GroupName="dbt", Description="dbt", VpcId=vpc)["GroupId"]
    ecs_client.create_cluster(clusterName="dbt")
    ecs_client.register_task_definition(
        family="dbt",
        networkMode="awsvpc",
        requiresCompatibilities=["FARGATE"],
        cpu="256",
        memory="512",
        containerDefinitions=[{"name": "dbt", "image": "dbt", "memory": 512}],
    )
    settings = {
        "cluster": "dbt",
        "task_definition": "dbt",
        "container_name": "dbt",
        "subnets": [subnet],
        "security_groups": [group],
    }
    runner = ecs.EcsRunner(ecs_client)
    arn = runner.start(request(**settings))
    [task] = ecs_client.describe_tasks(cluster="dbt", tasks=[arn])["tasks"]
    assert task["startedBy"] == "lakegov"
    [override] = task["overrides"]["containerOverrides"]
    env = {e["name"]: e["value"] for e in override["environment"]}
    assert override["name"] == "dbt" and env["LAKEGOV_RUN_ID"] == "20261120T101700Z-g1-a1"
    assert env["LAKEGOV_DBT_SELECT"] == "tag:formatted mwaa_blog_cards+"
    assert runner.describe(arn, settings).state == "RUNNING"


def test_ecs_task_that_could_not_be_placed_is_retryable():
    class NoCapacity:
        def run_task(self, **_: Any) -> dict[str, Any]:
            return {"tasks": [], "failures": [{"reason": "RESOURCE:MEMORY"}]}

    with pytest.raises(RetryableError, match="RESOURCE:MEMORY"):
        ecs.EcsRunner(NoCapacity()).start(
            request(cluster="c", task_definition="t", container_name="dbt")
        )


def test_ecs_states_follow_the_dbt_container_exit_code():
    event = load_event("ecs_task_state_change.json")
    change = ecs.parse_event(event)
    assert change is not None and change.status.state == "FAILED"
    assert "container dbt exited 1" in str(change.status.reason)
    event["detail"]["containers"][1]["exitCode"] = 0  # the sidecar's 143 does not matter
    assert ecs.parse_event(event).status.state == "SUCCEEDED"
    event["detail"].update(stopCode="UserInitiated")
    event["detail"]["containers"][1]["exitCode"] = 137
    assert ecs.parse_event(event).status.state == "STOPPED"
    assert ecs.map_task({"lastStatus": "PROVISIONING"}).state == "RUNNING"


# -- MWAA (stubbed: moto has no MWAA) ----------------------------------------------------
def test_mwaa_triggers_a_dag_run_through_invoke_rest_api():
    client = boto3.client("mwaa", region_name=REGION)
    stub = Stubber(client)
    dag_run_id = "lakegov__customers_cards-20261120T101700Z-g1-a1"
    stub.add_response(
        "invoke_rest_api",
        {
            "RestApiStatusCode": 200,
            "RestApiResponse": {"dag_run_id": dag_run_id, "state": "queued"},
        },
        {
            "Name": "analytics",
            "Path": "/dags/dbt_build/dagRuns",
            "Method": "POST",
            "Body": {
                "dag_run_id": dag_run_id,
                "conf": {
                    "team": "x",
                    "product": "customers_cards",
                    "run_id": "20261120T101700Z-g1-a1",
                    "attempt": 1,
                    "dbt_command": "build",
                    "dbt_select": ["tag:formatted", "mwaa_blog_cards+"],
                    "dbt_exclude": [],
                    "dbt_selector": None,
                    "dbt_vars": {"run_date": "2026-11-20"},
                    "artifacts_uri": "s3://cfg/runs/customers_cards/20261120T101700Z-g1-a1/",
                    "dbt_project_uri": "s3://cfg/dbt/project.zip",
                },
            },
        },
    )
    stub.add_response(
        "invoke_rest_api",
        {"RestApiStatusCode": 200, "RestApiResponse": {"state": "failed"}},
        {"Name": "analytics", "Path": f"/dags/dbt_build/dagRuns/{dag_run_id}", "Method": "GET"},
    )
    settings = {"environment_name": "analytics", "dag_id": "dbt_build", "conf": {"team": "x"}}
    with stub:
        runner = mwaa.MwaaRunner(client)
        external = runner.start(request(**settings))
        assert external == f"analytics/dbt_build/{dag_run_id}"
        assert runner.describe(external, settings).state == "FAILED"
    stub.assert_no_pending_responses()


def test_mwaa_repeated_start_of_the_same_run_is_not_an_error():
    client = boto3.client("mwaa", region_name=REGION)
    stub = Stubber(client)
    stub.add_client_error(
        "invoke_rest_api",
        service_error_code="RestApiClientException",
        http_status_code=400,
        modeled_fields={"RestApiStatusCode": 409, "RestApiResponse": {"title": "Conflict"}},
    )
    stub.add_client_error(
        "invoke_rest_api",
        service_error_code="RestApiServerException",
        http_status_code=500,
        modeled_fields={"RestApiStatusCode": 503, "RestApiResponse": {}},
    )
    settings = {"environment_name": "analytics", "dag_id": "dbt_build"}
    with stub:
        runner = mwaa.MwaaRunner(client)
        assert runner.start(request(**settings)).startswith("analytics/dbt_build/lakegov__")
        with pytest.raises(RetryableError):
            runner.start(request(**settings))


def test_mwaa_web_token_logs_in_and_posts_to_the_airflow_rest_api():
    client = boto3.client("mwaa", region_name=REGION)
    stub = Stubber(client)
    stub.add_response(
        "create_web_login_token",
        {"WebServerHostname": "abc.airflow.us-east-1.on.aws", "WebToken": "tok"},
        {"Name": "analytics"},
    )
    calls: list[tuple[str, str, dict[str, str], bytes | None]] = []

    def http(method, url, headers, body):
        calls.append((method, url, dict(headers), body))
        if url.endswith("/aws_mwaa/login"):
            return 302, {"Set-Cookie": "session=s3cr3t; Path=/; HttpOnly"}, b""
        return 200, {}, json.dumps({"dag_run_id": "x", "state": "queued"}).encode()

    with stub:
        runner = mwaa.MwaaRunner(client, http=http)
        runner.start(
            request(environment_name="analytics", dag_id="dbt_build", transport="web_token")
        )
    login, post = calls
    assert (
        login[1] == "https://abc.airflow.us-east-1.on.aws/aws_mwaa/login"
        and login[3] == b"token=tok"
    )
    assert post[0] == "POST" and post[1].endswith("/api/v1/dags/dbt_build/dagRuns")
    assert post[2]["Cookie"] == "session=s3cr3t"
    assert json.loads(post[3])["conf"]["dbt_select"] == ["tag:formatted", "mwaa_blog_cards+"]


@pytest.mark.parametrize(
    ("state", "mapped"),
    [("queued", "RUNNING"), ("running", "RUNNING"), ("success", "SUCCEEDED"), ("failed", "FAILED")],
)
def test_mwaa_states(state, mapped):
    assert mwaa.map_state(state).state == mapped


# -- local -------------------------------------------------------------------------------
def project_zip() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        zf.writestr("dbt_project.yml", "name: x\n")
        zf.writestr("models/a.sql", "select 1")
    return buffer.getvalue()


class FakeDbt:
    """Stands in for run_dbt_local: blocks until released, writes artifacts like dbt."""

    def __init__(self, status: str = "SUCCESS") -> None:
        self.release = threading.Event()
        self.calls: list[dict[str, Any]] = []
        self.status = status

    def __call__(self, project_dir: Path, **kwargs: Any) -> Any:
        self.calls.append({"project_dir": Path(project_dir), **kwargs})
        assert self.release.wait(10), "never released"
        target = Path(kwargs["run_dir"]) / "target"
        target.mkdir(parents=True, exist_ok=True)
        (target / "run_results.json").write_text(json.dumps({"results": []}))
        (target / "manifest.json").write_text(json.dumps({"nodes": {}}))
        return SimpleNamespace(
            status=self.status,
            error=None if self.status == "SUCCESS" else "dbt build failed: mwaa_blog_cards",
            run_results_path=target / "run_results.json",
            manifest_path=target / "manifest.json",
        )


def test_local_runner_returns_at_once_and_reports_its_end_as_an_event(aws_clients, tmp_path):
    # Given the dbt project published to the config bucket, and a queue on the default bus
    s3, events, sqs = aws_clients("s3"), aws_clients("events"), aws_clients("sqs")
    s3.create_bucket(Bucket="cfg")
    s3.put_object(Bucket="cfg", Key="dbt/project.zip", Body=project_zip())
    queue = sqs.create_queue(QueueName="ends")["QueueUrl"]
    events.put_rule(Name="ends", EventPattern=json.dumps({"source": ["lakegov.local"]}))
    events.put_targets(
        Rule="ends", Targets=[{"Id": "q", "Arn": "arn:aws:sqs:us-east-1:123456789012:ends"}]
    )
    dbt = FakeDbt(status="FAILED")
    runner = dbt_duckdb.LocalRunner(
        s3=s3,
        events=events,
        config_bucket="cfg",
        dbt_env={"LAKEGOV_FORMATTED_BUCKET": "fmt"},
        work_dir=tmp_path,
        run_dbt=dbt,
    )
    # When a run starts
    external = runner.start(request(threads=2))
    # Then start returned while dbt is still running
    assert external == "local:customers_cards:20261120T101700Z-g1-a1"
    assert runner.describe(external, {}).state == "RUNNING"
    dbt.release.set()
    status = runner.wait(external, timeout=10)
    # and dbt ran the published project on the selection, with the product's own state dir
    assert status.state == "FAILED" and "mwaa_blog_cards" in str(status.reason)
    [call] = dbt.calls
    assert (call["project_dir"] / "dbt_project.yml").is_file()
    assert call["selection"] == ["tag:formatted", "mwaa_blog_cards+"]
    assert call["state_dir"] == tmp_path / "state" / "customers_cards"
    assert call["env"] == {"LAKEGOV_FORMATTED_BUCKET": "fmt"} and call["threads"] == 2
    # and the artifacts are where the run state reads them, and the end is on the bus
    keys = {o["Key"] for o in s3.list_objects_v2(Bucket="cfg", Prefix="runs/")["Contents"]}
    assert keys == {
        "runs/customers_cards/20261120T101700Z-g1-a1/run_results.json",
        "runs/customers_cards/20261120T101700Z-g1-a1/manifest.json",
    }
    [message] = sqs.receive_message(QueueUrl=queue, WaitTimeSeconds=1)["Messages"]
    change = dbt_duckdb.parse_event(json.loads(message["Body"]))
    assert change is not None and change.external_id == external
    assert change.status.state == "FAILED" and change.runner == "local"


def test_local_runner_without_a_published_project_reports_a_failed_run(aws_clients, tmp_path):
    s3, events = aws_clients("s3"), aws_clients("events")
    s3.create_bucket(Bucket="cfg")
    runner = dbt_duckdb.LocalRunner(
        s3=s3, events=events, config_bucket="cfg", dbt_env={}, work_dir=tmp_path, run_dbt=FakeDbt()
    )
    external = runner.start(request())
    status = runner.wait(external, timeout=10)
    assert status.state == "FAILED" and "publish-dbt" in str(status.reason)


def test_local_runner_refuses_a_yaml_selector():
    runner = dbt_duckdb.LocalRunner(
        s3=None, events=None, config_bucket="c", dbt_env={}, work_dir=Path(".")
    )
    with pytest.raises(PermanentError, match="--select"):
        runner.start(RunRequest(product="p", run_id="r", selector="nightly"))


def test_a_project_archive_escaping_its_folder_is_refused(tmp_path):
    archive = tmp_path / "bad.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("dbt_project.yml", "")
        zf.writestr("../evil.sql", "")
    with pytest.raises(PermanentError, match="unsafe"):
        dbt_duckdb.extract_project(archive, tmp_path / "out")
    assert not (tmp_path / "evil.sql").exists()


def test_local_event_is_parsed():
    change = dbt_duckdb.parse_event(load_event("local_run_state_change.json"))
    assert change is not None and change.status.state == "SUCCEEDED"
    assert change.external_id == "local:customers_cards:20261120T104900Z-g3-a1"

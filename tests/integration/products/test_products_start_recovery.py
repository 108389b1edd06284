"""A start interrupted after the runner started the job, concurrent deliveries of one run's
end, and the ECS run's own dbt container: each recovers into exactly one run, announced once."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest
from tests.integration.products.support import FakeRunner, alarms, apply, make_context, refreshed

from lakegov.errors import RetryableError
from lakegov.products.artifacts import DbtResults
from lakegov.products.service import on_dataset_refreshed, on_run_state_change, sweep
from lakegov.products.store import ProductStore
from lakegov.runners import ecs
from lakegov.runners.base import RunRequest, RunStateChange, RunStatus

PRODUCT = {
    "name": "customers_cards",
    "depends_on": ["formatted_stg.mwaa_blog_customers", "formatted_stg.mwaa_blog_cards"],
    "dbt": {"tags": ["formatted"]},
    "retry": {"max_attempts": 1},
    "refreshes": ["formatted.mwaa_blog_cards"],
}
NO_DBT = DbtResults(
    audit_rows=lambda results, manifest, process_nm: [],
    retry_selection=lambda results, manifest: [],
    run_failed=lambda results: False,
    _loaded=True,
)


@dataclass
class IdempotentRunner(FakeRunner):
    """A runner honouring idempotency tokens, as CodeBuild, ECS and Step Functions do: the
    same token hands back the job it started."""

    jobs: dict[str, str] = field(default_factory=dict)

    def start(self, request: RunRequest) -> str:
        if request.token not in self.jobs:
            self.started.append(request)
            self.jobs[request.token] = f"{self.name}-{len(self.started)}"
        return self.jobs[request.token]


class ThrottledOnce(ProductStore):
    """Throttles the first write of the run ref, after the runner's start succeeded."""

    throttled = False

    def put_run_ref(self, *args: Any, **kwargs: Any) -> None:
        if not self.throttled:
            self.throttled = True
            raise RetryableError("recording the codebuild job: ThrottlingException")
        super().put_run_ref(*args, **kwargs)


def state_of(aws: dict[str, Any]) -> dict[str, Any]:
    return ProductStore("audit", aws["ddb"]).get_state("customers_cards")


def start(aws: dict[str, Any], ctx: Any, document: dict[str, Any] = PRODUCT) -> None:
    apply(aws, document)
    on_dataset_refreshed(refreshed("mwaa_blog_customers"), ctx)
    on_dataset_refreshed(refreshed("mwaa_blog_cards"), ctx)


def test_a_write_throttled_after_the_start_resumes_the_same_run_not_a_second_job(aws, clock):
    # Given a start whose run ref write throttles once StartBuild has succeeded
    runner = IdempotentRunner()
    ctx = make_context(aws, {"codebuild": runner}, clock, dbt=NO_DBT)
    ctx.store = ThrottledOnce("audit", aws["ddb"])
    apply(aws, PRODUCT)
    on_dataset_refreshed(refreshed("mwaa_blog_customers"), ctx)
    with pytest.raises(RetryableError):
        on_dataset_refreshed(refreshed("mwaa_blog_cards"), ctx)
    stuck = state_of(aws)
    assert stuck["phase"] == "starting" and stuck["start_token"]
    run_id = stuck["current_run"]
    # When the event is redelivered within the lease: nothing new starts
    on_dataset_refreshed(refreshed("mwaa_blog_cards"), ctx)
    # and when the sweeper runs after the lease expired
    clock.now += ctx.lease_s + 1
    outcome = sweep(ctx)["customers_cards"]
    # Then it resumed the same run with the same token: one job, now recorded as running
    assert outcome["resumed"] is True and outcome["run_id"] == run_id
    assert len(runner.started) == 1 and len(runner.jobs) == 1
    state = state_of(aws)
    assert state["phase"] == "running" and state["current_run"] == run_id
    assert state["external_id"] == "codebuild-1" and state["generation"] == stuck["generation"]
    # and the one job's end finishes that run
    change = RunStateChange("codebuild", "codebuild-1", RunStatus("SUCCEEDED"))
    ended = on_run_state_change(change, ctx)
    assert ended["status"] == "SUCCEEDED" and ended["run_id"] == run_id
    assert state_of(aws)["phase"] == "idle"


def test_a_resumed_start_whose_job_already_ended_finishes_the_run(aws, clock):
    # Given a stuck start whose job ran and ended while no run ref existed
    runner = IdempotentRunner(status=RunStatus("SUCCEEDED"))
    ctx = make_context(aws, {"codebuild": runner}, clock, dbt=NO_DBT)
    ctx.store = ThrottledOnce("audit", aws["ddb"])
    apply(aws, PRODUCT)
    on_dataset_refreshed(refreshed("mwaa_blog_customers"), ctx)
    with pytest.raises(RetryableError):
        on_dataset_refreshed(refreshed("mwaa_blog_cards"), ctx)
    # When the sweeper takes the start over
    clock.now += ctx.lease_s + 1
    outcome = sweep(ctx)["customers_cards"]
    # Then the run is finished from the job's state, once, with no second job
    assert outcome["finished"]["status"] == "SUCCEEDED" and len(runner.started) == 1
    state = state_of(aws)
    assert state["phase"] == "idle" and state["last_status"] == "SUCCEEDED"
    finished = [e for e in ctx.publisher.published if e.detail_type == "ProductRunFinished"]
    assert len(finished) == 1


def test_a_transient_failure_of_a_resumed_start_keeps_the_run(aws, clock):
    # Given a stuck start, and the runner throttling the takeover's start
    runner = IdempotentRunner()
    ctx = make_context(aws, {"codebuild": runner}, clock, dbt=NO_DBT)
    ctx.store = ThrottledOnce("audit", aws["ddb"])
    apply(aws, PRODUCT)
    on_dataset_refreshed(refreshed("mwaa_blog_customers"), ctx)
    with pytest.raises(RetryableError):
        on_dataset_refreshed(refreshed("mwaa_blog_cards"), ctx)
    run_id = state_of(aws)["current_run"]
    clock.now += ctx.lease_s + 1
    runner.fail_with = RetryableError("throttled")
    original = runner.start

    def throttled(request: RunRequest) -> str:
        if runner.fail_with is not None:
            raise runner.fail_with
        return original(request)

    runner.start = throttled  # type: ignore[method-assign]
    assert "error" in sweep(ctx)["customers_cards"]
    # Then the run stays (same id, still starting) for the next takeover, which records it
    assert state_of(aws)["phase"] == "starting" and state_of(aws)["current_run"] == run_id
    runner.fail_with = None
    clock.now += ctx.lease_s + 1
    assert sweep(ctx)["customers_cards"]["run_id"] == run_id
    assert state_of(aws)["phase"] == "running" and len(runner.started) == 1


@pytest.mark.parametrize(
    ("status", "announced"),
    [("SUCCEEDED", "DatasetRefreshed"), ("FAILED", "ProductRunFinished")],
)
def test_a_delivery_losing_the_end_of_run_race_publishes_nothing(
    aws, runner, clock, status, announced
):
    # Given a run whose end was already handled by a concurrent delivery that had not yet
    # written the run's final audit when this one read it
    ctx = make_context(aws, {"codebuild": runner}, clock, dbt=NO_DBT)
    start(aws, ctx)
    change = RunStateChange("codebuild", "codebuild-1", RunStatus(status, None))
    first = on_run_state_change(change, ctx)
    assert first["status"] == status
    before = len([e for e in ctx.publisher.published if e.detail_type == announced])
    assert len(alarms(aws)) == (1 if status == "FAILED" else 0)  # read: hidden from now on
    real_get = ctx.audit.get
    ctx.audit.get = lambda kind, subject, version: (  # type: ignore[method-assign]
        {} if version == first["run_id"] else real_get(kind, subject, version)
    )
    # When the second delivery arrives
    outcome = on_run_state_change(change, ctx)
    # Then it is a duplicate: no second ProductRunFinished / DatasetRefreshed, no alarm
    assert outcome["status"] == "DUPLICATE"
    after = len([e for e in ctx.publisher.published if e.detail_type == announced])
    assert before >= 1 and after == before
    finished = [e for e in ctx.publisher.published if e.detail_type == "ProductRunFinished"]
    assert len(finished) == 1
    assert alarms(aws) == []


def test_an_ecs_run_is_decided_by_its_own_dbt_container_not_a_sidecar(aws, clock):
    # Given an ECS product whose dbt container is called "transform", with a log sidecar
    runner = FakeRunner(name="ecs")
    ctx = make_context(aws, {"ecs": runner}, clock, dbt=NO_DBT)
    settings = {"cluster": "dbt", "task_definition": "dbt", "container_name": "transform"}
    start(aws, ctx, {**PRODUCT, "runner": {"type": "ecs", **settings}})
    assert len(runner.started) == 1
    # When the task stops: dbt exited 0, the sidecar was killed (137)
    event = {
        "source": "aws.ecs",
        "detail-type": "ECS Task State Change",
        "detail": {
            "taskArn": "ecs-1",
            "lastStatus": "STOPPED",
            "stopCode": "EssentialContainerExited",
            "stoppedReason": "Essential container in task exited",
            "containers": [
                {"name": "log-router", "exitCode": 137},
                {"name": "transform", "exitCode": 0},
            ],
        },
    }
    change = ecs.parse_event(event)
    assert change is not None
    outcome = on_run_state_change(change, ctx)
    # Then the run succeeded
    assert outcome["status"] == "SUCCEEDED"
    assert state_of(aws)["last_status"] == "SUCCEEDED"

"""Idempotency tokens: one per run, within the runners' limits, whatever the product name."""

from __future__ import annotations

import re
from typing import Any

from lakegov.runners import codebuild, ecs
from lakegov.runners.base import TOKEN_MAX, RunRequest, run_token

LONG = "customer_cards_monthly_reconciliation_with_exceptions_and_history"[:63]


class Capture:
    """A CodeBuild / ECS client that records each start's arguments."""

    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []

    def start_build(self, **kwargs: Any) -> dict[str, Any]:
        self.calls.append(kwargs)
        return {"build": {"arn": f"arn:build/p:{len(self.calls)}"}}

    def run_task(self, **kwargs: Any) -> dict[str, Any]:
        self.calls.append(kwargs)
        return {"tasks": [{"taskArn": f"arn:task/{len(self.calls)}"}]}


def test_runs_of_a_long_named_product_never_share_a_token():
    # Given a product name at the schema's maximum (63 characters) and two runs of one
    # generation that differ only in their attempt
    tokens = {run_token(LONG, f"20261120T101700Z-g7-a{a}") for a in (1, 2)}
    # Then the tokens differ, fit every runner and keep a readable prefix
    assert len(tokens) == 2
    for token in tokens:
        assert len(token) <= TOKEN_MAX and re.fullmatch(r"[A-Za-z0-9_-]+", token)
        assert token.startswith(LONG[:40])


def test_a_short_plain_token_is_the_product_and_run_id():
    assert run_token("cards", "20261120T101700Z-g1-a1") == "cards-20261120T101700Z-g1-a1"
    assert run_token("cards", "x.y") != run_token("cards", "x-y")  # no clash after cleaning


def test_codebuild_and_ecs_send_distinct_tokens_for_distinct_attempts():
    # Given CodeBuild and ECS starts of attempts 1 and 2 of a long-named product
    for make, key in (
        (lambda c: codebuild.CodeBuildRunner(c, default_project="dbt"), "idempotencyToken"),
        (lambda c: ecs.EcsRunner(c), "clientToken"),
    ):
        client = Capture()
        runner = make(client)
        for attempt in (1, 2):
            runner.start(
                RunRequest(
                    product=LONG,
                    run_id=f"20261120T101700Z-g7-a{attempt}",
                    attempt=attempt,
                    settings={"cluster": "c", "task_definition": "t", "container_name": "dbt"},
                )
            )
        # Then each start's token is its own (no IdempotentParameterMismatch) and fits
        first, second = (call[key] for call in client.calls)
        assert first != second, key
        assert len(first) <= TOKEN_MAX and len(second) <= TOKEN_MAX


def test_a_persisted_token_wins_over_the_derived_one():
    request = RunRequest(product="cards", run_id="r1", idempotency_token="persisted-1")
    assert request.token == "persisted-1"


def test_step_functions_hands_back_the_runs_existing_execution():
    # Given a resumed start whose execution (named by the run's token) has already closed
    from botocore.exceptions import ClientError

    from lakegov.runners import stepfunctions

    class Closed:
        def start_execution(self, **kwargs: Any) -> dict[str, Any]:
            raise ClientError(
                {"Error": {"Code": "ExecutionAlreadyExists", "Message": "exists"}},
                "StartExecution",
            )

    machine = "arn:aws:states:us-east-1:123456789012:stateMachine:dbt"
    request = RunRequest(
        product="cards", run_id="20261120T101700Z-g1-a1", settings={"state_machine_arn": machine}
    )
    # Then the runner returns that execution's ARN instead of failing the run for good
    assert stepfunctions.StepFunctionsRunner(Closed()).start(request) == (
        "arn:aws:states:us-east-1:123456789012:execution:dbt:cards-20261120T101700Z-g1-a1"
    )

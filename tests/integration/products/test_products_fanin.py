"""Dependency fan-in on moto's DynamoDB: all / any, max age, exactly one start under races."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from tests.integration.products.support import (
    GLUE_PREFIX,
    FakeRunner,
    apply,
    make_context,
    refreshed,
)

from lakegov.products.service import on_dataset_refreshed, on_run_state_change
from lakegov.products.store import ProductStore
from lakegov.runners.base import RunStateChange, RunStatus

PRODUCT = {
    "name": "customers_cards",
    "depends_on": ["formatted_stg.mwaa_blog_customers", "formatted_stg.mwaa_blog_cards"],
    "dbt": {"tags": ["formatted", "exception"]},
    "refreshes": ["formatted.mwaa_blog_customers", "formatted.mwaa_blog_cards"],
}


def started_events(ctx: Any) -> list[dict[str, Any]]:
    return [dict(e.detail) for e in ctx.publisher.published if e.detail_type == "ProductRunStarted"]


def test_policy_all_starts_only_when_every_dependency_refreshed(aws, ctx, runner):
    # Given a product depending on customers and cards (policy all by default)
    apply(aws, PRODUCT)
    # When only customers refreshes
    first = on_dataset_refreshed(refreshed("mwaa_blog_customers"), ctx)
    # Then nothing starts, and the product says what it waits for
    assert runner.started == []
    waiting = first["products"]["customers_cards"]["readiness"]["waiting_for"]
    assert waiting == [f"db:{GLUE_PREFIX}formatted_stg.mwaa_blog_cards"]
    # When cards refreshes too
    on_dataset_refreshed(refreshed("mwaa_blog_cards"), ctx)
    # Then the job starts once, with the product's selection, and ProductRunStarted says so
    assert len(runner.started) == 1
    request = runner.started[0]
    assert request.selection == ("tag:formatted", "tag:exception")
    assert request.artifacts_uri == f"s3://lakegov-config/runs/customers_cards/{request.run_id}/"
    [event] = started_events(ctx)
    assert event["run_id"] == request.run_id and event["attempt"] == 1
    assert event["external_id"] == "codebuild-1"
    assert event["trigger"]["table"] == "mwaa_blog_cards"


def test_policy_any_starts_on_the_first_refresh(aws, ctx, runner):
    apply(aws, {**PRODUCT, "policy": "any"})
    on_dataset_refreshed(refreshed("mwaa_blog_cards"), ctx)
    assert len(runner.started) == 1


def test_an_unrelated_or_same_named_dataset_in_another_layer_does_not_count(aws, ctx, runner):
    apply(aws, {**PRODUCT, "policy": "any"})
    # the formatted table of the same name (what the product itself writes) is another dataset
    outcome = on_dataset_refreshed(refreshed("mwaa_blog_cards", layer="formatted"), ctx)
    assert outcome["products"] == {}
    on_dataset_refreshed(refreshed("orders"), ctx)
    assert runner.started == []


def test_a_bare_table_dependency_matches_that_table_in_any_database(aws, ctx, runner):
    apply(aws, {**PRODUCT, "name": "bare", "depends_on": ["orders"], "refreshes": []})
    on_dataset_refreshed({**refreshed("orders"), "database": "someone_elses_db"}, ctx)
    assert len(runner.started) == 1


def test_a_dataset_id_dependency_matches_the_event_dataset_field(aws, ctx, runner):
    apply(
        aws,
        {**PRODUCT, "name": "by_id", "depends_on": [{"dataset": "sales/orders"}], "refreshes": []},
    )
    on_dataset_refreshed({**refreshed("orders"), "dataset": "sales/orders"}, ctx)
    assert len(runner.started) == 1


def test_refreshes_during_a_run_start_the_next_run_when_it_succeeds(aws, ctx, runner, clock):
    # Given a running product
    apply(aws, PRODUCT)
    on_dataset_refreshed(refreshed("mwaa_blog_customers", at="2026-11-18T10:00:00Z"), ctx)
    on_dataset_refreshed(refreshed("mwaa_blog_cards", at="2026-11-18T10:00:01Z"), ctx)
    assert len(runner.started) == 1
    # When both inputs refresh again while it runs
    on_dataset_refreshed(refreshed("mwaa_blog_customers", at="2026-11-18T10:05:00Z"), ctx)
    on_dataset_refreshed(refreshed("mwaa_blog_cards", at="2026-11-18T10:05:01Z"), ctx)
    # Then nothing starts until it ends, and its success starts the next run at once
    assert len(runner.started) == 1
    clock.now += 60
    on_run_state_change(RunStateChange("codebuild", "codebuild-1", RunStatus("SUCCEEDED")), ctx)
    assert len(runner.started) == 2
    state = ProductStore("audit", aws["ddb"]).get_state("customers_cards")
    assert state["phase"] == "running" and state["current_run"] == runner.started[1].run_id
    assert state["run_snapshot"][f"db:{GLUE_PREFIX}formatted_stg.mwaa_blog_cards"].startswith(
        "2026-11-18T10:05:01"
    )


def test_after_a_success_every_dependency_must_refresh_again(aws, ctx, runner):
    apply(aws, PRODUCT)
    on_dataset_refreshed(refreshed("mwaa_blog_customers", at="2026-11-18T10:00:00Z"), ctx)
    on_dataset_refreshed(refreshed("mwaa_blog_cards", at="2026-11-18T10:00:00Z"), ctx)
    on_run_state_change(RunStateChange("codebuild", "codebuild-1", RunStatus("SUCCEEDED")), ctx)
    # a new customers refresh alone is not enough under "all"
    on_dataset_refreshed(refreshed("mwaa_blog_customers", at="2026-11-18T11:00:00Z"), ctx)
    assert len(runner.started) == 1
    on_dataset_refreshed(refreshed("mwaa_blog_cards", at="2026-11-18T11:00:00Z"), ctx)
    assert len(runner.started) == 2


def test_duplicate_and_older_refreshes_change_nothing(aws, ctx, runner):
    apply(aws, PRODUCT)
    on_dataset_refreshed(refreshed("mwaa_blog_customers", at="2026-11-18T10:00:00Z"), ctx)
    again = on_dataset_refreshed(
        refreshed("mwaa_blog_customers", at="2026-11-18T10:00:00.000+00:00"), ctx
    )
    older = on_dataset_refreshed(refreshed("mwaa_blog_customers", at="2026-11-18T09:00:00Z"), ctx)
    assert again["products"]["customers_cards"]["recorded"] is False
    assert older["products"]["customers_cards"]["recorded"] is False
    state = ProductStore("audit", aws["ddb"]).get_state("customers_cards")
    assert (
        state[f"ref#db:{GLUE_PREFIX}formatted_stg.mwaa_blog_customers"]
        == "2026-11-18T10:00:00.000000Z"
    )
    assert runner.started == []


def test_max_age_ignores_a_refresh_that_is_too_old(aws, ctx, runner, clock):
    # Given max_age one hour, customers refreshed two hours before cards
    apply(aws, {**PRODUCT, "max_age": "PT1H"})
    clock.now = 1_795_000_000.0  # 2026-11-18T10:26:40Z
    on_dataset_refreshed(refreshed("mwaa_blog_customers", at="2026-11-18T08:20:00Z"), ctx)
    outcome = on_dataset_refreshed(refreshed("mwaa_blog_cards", at="2026-11-18T10:20:00Z"), ctx)
    # Then the stale customers refresh does not count
    assert runner.started == []
    assert outcome["products"]["customers_cards"]["readiness"]["waiting_for"] == [
        f"db:{GLUE_PREFIX}formatted_stg.mwaa_blog_customers"
    ]
    # When customers refreshes again
    on_dataset_refreshed(refreshed("mwaa_blog_customers", at="2026-11-18T10:25:00Z"), ctx)
    assert len(runner.started) == 1


def test_a_product_never_triggers_itself(aws, ctx, runner):
    apply(aws, {**PRODUCT, "policy": "any"})
    on_dataset_refreshed(refreshed("mwaa_blog_cards", product="customers_cards"), ctx)
    assert runner.started == []


class PausingStore(ProductStore):
    """Holds every claim until ``parties`` handlers have decided to claim: the worst case."""

    def __init__(self, table: str, ddb: Any, parties: int) -> None:
        super().__init__(table, ddb)
        self.barrier = threading.Barrier(parties, timeout=10)
        self.claims: list[bool] = []

    def claim_start(self, name: str, **kwargs: Any) -> dict[str, Any] | None:
        self.barrier.wait()  # every handler has read the same generation and found it ready
        won = super().claim_start(name, **kwargs)
        self.claims.append(won is not None)
        return won


def test_last_two_refreshes_at_the_same_moment_start_the_job_exactly_once(aws, clock):
    # Given two handlers, each holding one of the last two refreshes, both forced to decide
    # "ready" from the same generation before either claims (the interleaving made explicit)
    runner = FakeRunner()
    apply(aws, PRODUCT)
    ctx_a = make_context(aws, {"codebuild": runner}, clock)
    ctx_b = make_context(aws, {"codebuild": runner}, clock)
    store = PausingStore("audit", aws["ddb"], parties=2)
    ctx_a.store = ctx_b.store = store
    ProductStore("audit", aws["ddb"]).record_refresh(
        "customers_cards",
        f"db:{GLUE_PREFIX}formatted_stg.mwaa_blog_customers",
        "2026-11-18T10:00:00.000000Z",
    )
    # both refreshes land before either handler reads the state
    ProductStore("audit", aws["ddb"]).record_refresh(
        "customers_cards",
        f"db:{GLUE_PREFIX}formatted_stg.mwaa_blog_cards",
        "2026-11-18T10:00:00.000000Z",
    )
    errors: list[BaseException] = []

    def handle(ctx: Any, table: str) -> None:
        try:
            on_dataset_refreshed(refreshed(table, at="2026-11-18T10:00:00Z"), ctx)
        except BaseException as exc:
            errors.append(exc)

    threads = [
        threading.Thread(target=handle, args=(ctx_a, "mwaa_blog_customers")),
        threading.Thread(target=handle, args=(ctx_b, "mwaa_blog_cards")),
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(20)
    # Then both tried to claim, exactly one won, and the job started once
    assert errors == []
    assert sorted(store.claims) == [False, True]
    assert len(runner.started) == 1


@pytest.mark.parametrize("round_", range(5))
def test_racing_threads_on_moto_start_one_job_per_generation(aws, clock, round_):
    # Given a product with 8 dependencies and 8 handlers, one per dependency, released at once
    runner = FakeRunner()
    deps = [f"formatted_stg.t{i}" for i in range(8)]
    apply(aws, {**PRODUCT, "name": f"wide{round_}", "depends_on": deps, "refreshes": []})
    gate = threading.Barrier(len(deps), timeout=10)
    errors: list[BaseException] = []

    def handle(i: int) -> None:
        ctx = make_context(aws, {"codebuild": runner}, clock)
        try:
            gate.wait()
            on_dataset_refreshed(refreshed(f"t{i}"), ctx)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=handle, args=(i,)) for i in range(len(deps))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    # Then every refresh is recorded and exactly one run starts
    assert errors == []
    state = ProductStore("audit", aws["ddb"]).get_state(f"wide{round_}")
    assert sum(1 for k in state if k.startswith("ref#")) == len(deps)
    assert len(runner.started) == 1
    assert state["generation"] == 1


def test_a_refresh_finds_its_products_in_one_read_of_the_dependency_index(aws, ctx, runner):
    # Given two products sharing a dependency, and one of them changed to drop it
    apply(aws, PRODUCT)
    other = {**PRODUCT, "name": "cards_only", "depends_on": ["formatted_stg.mwaa_blog_cards"]}
    apply(aws, other)
    store = ProductStore("audit", aws["ddb"])
    keys = ["dataset:x", f"db:{GLUE_PREFIX}formatted_stg.mwaa_blog_cards", "table:mwaa_blog_cards"]
    reads: list[str] = []
    real = store._ddb

    class Counting:
        def __getattr__(self, name):
            reads.append(name)
            return getattr(real, name)

    store._ddb = Counting()
    # When a refresh's keys are looked up: one BatchGetItem, whatever the number of keys
    assert store.products_for([*keys, keys[1]]) == ["cards_only", "customers_cards"]
    assert reads == ["batch_get_item"]
    store._ddb = real
    # Then a product that no longer depends on the key is no longer found, the other is
    apply(aws, {**other, "depends_on": ["formatted_stg.mwaa_blog_customers"]})
    assert store.products_for(keys) == ["customers_cards"]
    # and a retired product leaves nothing behind in the index
    store.remove_definition("customers_cards")
    assert store.products_for(keys) == []


def test_a_product_indexed_in_the_former_layout_moves_over_when_applied_again(aws, ctx, runner):
    # Given a product applied by a former version: its dependency entry is one item per key
    # and product, and there is no dependents item
    apply(aws, PRODUCT)
    key = f"db:{GLUE_PREFIX}formatted_stg.mwaa_blog_cards"
    aws["ddb"].delete_item(
        TableName="audit", Key={"pk": {"S": f"product-dep#{key}"}, "sk": {"S": "dependents"}}
    )
    old = {"pk": {"S": f"product-dep#{key}"}, "sk": {"S": "customers_cards"}}
    aws["ddb"].put_item(TableName="audit", Item={**old, "product": {"S": "customers_cards"}})
    store = ProductStore("audit", aws["ddb"])
    assert store.products_for([key]) == []  # not read: the index is the dependents items
    # When the product is applied again, unchanged, it is indexed
    apply(aws, PRODUCT)
    assert store.products_for([key]) == ["customers_cards"]
    # and retiring it removes the former entry too
    store.remove_definition("customers_cards")
    assert store.products_for([key]) == []
    assert "Item" not in aws["ddb"].get_item(TableName="audit", Key=old)

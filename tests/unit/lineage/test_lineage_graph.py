"""The lineage graph: recorded events and subscriptions become files -> tables -> products
-> domains; `around` keeps N dataset hops each way; text and HTML say the same."""

from __future__ import annotations

import json
import time

import pytest

from lakegov.lineage.graph import TableNotInLineage, build_graph
from lakegov.lineage.render import layers, to_html, to_text

GLUE = "arn:aws:glue:us-east-1:123456789012"


def row(job: str, inputs: list[tuple[str, str]], outputs: list[tuple[str, str]]) -> dict:
    def enc(items):
        return json.dumps([{"namespace": n, "name": m} for n, m in items])

    return {"job_name": job, "inputs": enc(inputs), "outputs": enc(outputs)}


EVENTS = [
    row(
        "convert.cards",
        [("s3://raw", "shop/partition_dt=1/cards.csv")],
        [("s3://lake", "formatted_stg/shop_cards")],
    ),
    row(
        "register.shop_cards",
        [("s3://lake", "formatted_stg/shop_cards")],
        [(GLUE, "table/stg/shop_cards")],
    ),
    row(
        "product.p.clean_cards", [(GLUE, "table/stg/shop_cards")], [(GLUE, "table/fmt/clean_cards")]
    ),
    row(
        "product.p.card_stats", [(GLUE, "table/fmt/clean_cards")], [(GLUE, "table/fmt/card_stats")]
    ),
]
SUBSCRIPTIONS = [
    {"domain": "marketing", "account_id": "2", "datasets": ["fmt.clean_*"]},
    {"domain": "landing", "account_id": "3", "datasets": ["shop/cards"]},
    {"domain": "finance", "account_id": "4", "datasets": ["finance/*"]},
]


def graph():
    return build_graph(EVENTS, SUBSCRIPTIONS, raw_bucket="raw")


def test_the_whole_chain_from_the_landed_file_to_the_subscribed_domains():
    around = graph().around("clean_cards", up=10, down=10)
    text = to_text(around)
    assert "cards.csv  --[convert cards]-->  formatted_stg/shop_cards" in text
    assert "stg.shop_cards  --[product p: clean_cards]-->  fmt.clean_cards" in text
    assert "fmt.clean_cards  --[product p: card_stats]-->  fmt.card_stats" in text
    assert "fmt.clean_cards  --subscribed-->  domain marketing" in text
    assert "finance" not in text
    # a staging table is subscribed to by its landed dataset id
    assert "stg.shop_cards  --subscribed-->  domain landing" in to_text(
        graph().around("shop_cards", up=0, down=1)
    )


def test_up_and_down_limit_the_hops():
    around = graph().around("fmt.clean_cards", up=1, down=0)
    labels = {n.label for n in around.nodes.values()}
    assert labels == {"fmt.clean_cards", "product p: clean_cards", "stg.shop_cards"}
    down = graph().around("fmt.clean_cards", up=0, down=1)
    assert {n.label for n in down.nodes.values()} == {
        "fmt.clean_cards",
        "product p: card_stats",
        "fmt.card_stats",
        "domain marketing",
    }
    assert around.focus == [f"{GLUE}/table/fmt/clean_cards"]


def test_an_unknown_table_is_said_so():
    with pytest.raises(TableNotInLineage, match="nope"):
        graph().around("nope", 1, 1)


def test_the_page_draws_every_node_left_to_right_and_loads_nothing():
    around = graph().around("clean_cards", 10, 10)
    page = to_html(around, "lineage of clean_cards")
    assert page.count('<g class="node') == len(around.nodes)
    assert page.count('<path class="edge"') == len(around.edges)
    assert "<script src" not in page and "<link" not in page
    column = {n: i for i, row in enumerate(layers(around)) for n in row}
    assert all(column[a] < column[b] for a, b in around.edges)


def test_a_lake_of_thousands_of_landed_files_is_walked_by_its_edges_not_all_of_them():
    # Given a year of landed files (6000 conversions into one staging table)
    events = [
        row(
            f"convert.cards_{i}",
            [("s3://raw", f"shop/partition_dt={i}/cards.csv")],
            [("s3://lake", "formatted_stg/shop_cards")],
        )
        for i in range(6000)
    ] + EVENTS[1:]
    # When the graph is built and the product's table drawn one hop up
    started = time.perf_counter()
    around = build_graph(events, SUBSCRIPTIONS, raw_bucket="raw").around("clean_cards", 1, 1)
    elapsed = time.perf_counter() - started
    # Then it takes a moment, not a scan of every edge for every node (seconds per thousand)
    assert "stg.shop_cards  --[product p: clean_cards]-->  fmt.clean_cards" in to_text(around)
    assert elapsed < 5, f"{elapsed:.1f}s"

"""State at scale: thousands of conversions of one busy table keep every item bounded.

A busy table is landed into again and again: each of 50 daily partitions gets its orders
file re-delivered, one version after another.
Each conversion goes through the real service functions on moto, with the strict layer
on (DynamoDB refuses items over 400 KB, EventBridge entries over 256 KB, Glue batches over
100): the convert service (file audit, current-version pointer, the dataset's schema
item), the catalog (claims, direct registration of partitions, refresh items) and the
products fan-in (its state per product). Afterwards every item of the audit table is
measured, and one more conversion must still succeed.

``LAKEGOV_SCALE_CONVERSIONS`` sets the number. The suite runs 500 (about 50 s; 2,000 took 394 s). More
take disproportionately long on moto, not on AWS: moto's DynamoDB ``Query`` reads the
whole table, so each conversion costs more as the table fills (the first 200 take some
15 s, 10,000 well over an hour). Every item is checked against a fixed bound that does
not depend on the number: an item that grew with it would cross the bound at some count,
and the audit's own tests drive one item past its history limit.
"""

from __future__ import annotations

import os
import time
from datetime import date, timedelta
from typing import Any

import boto3
import pytest
from moto import mock_aws
from tests.conftest import create_audit_table
from tests.strict_aws import item_bytes

from lakegov.audit import HISTORY_LIMIT, AuditStore
from lakegov.catalog.service import CatalogServices, Message, process_batch
from lakegov.events import EventPublisher
from lakegov.ingest.landed import LandedObject
from lakegov.ingest.service import Converter
from lakegov.products.context import ProductsContext
from lakegov.products.model import Product
from lakegov.products.service import on_dataset_refreshed
from lakegov.products.store import ProductStore
from lakegov.settings import Settings

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("scale")]

CONVERSIONS = int(os.environ.get("LAKEGOV_SCALE_CONVERSIONS", "500"))
PARTITIONS = 50
# Far below DynamoDB's 400 KB, and crossed within the suite's 500 conversions by an item
# that gains an entry per conversion (a schema item with an uncapped history: ~30 KB).
ITEM_BOUND = 16 * 1024
REGION = "us-east-1"
SETTINGS = Settings(
    environment="scale",
    region=REGION,
    raw_bucket="scale-raw",
    formatted_bucket="scale-formatted",
    config_bucket="scale-config",
    service_bus="scale-bus",
    audit_table="audit",
    account_id="123456789012",
    glue_database_prefix="lakegov_scale_",
    crawl_coalesce_seconds=0,
)


def _no_runner(name: str) -> Any:
    raise AssertionError(f"the product is never ready: no {name} run may start")


def _landed(n: int) -> LandedObject:
    """The n-th landing: the day's orders file of one of 50 days, landed again and again."""
    day = date(2026, 1, 1) + timedelta(days=n % PARTITIONS)
    key = f"shop/order_dt={day.isoformat()}/orders.csv"
    return LandedObject(bucket=SETTINGS.raw_bucket, key=key, etag=f"etag{n}", size=64)


class Lake:
    """The buckets, bus, audit table and catalog of one stack, with the three services."""

    def __init__(self) -> None:
        session = boto3.session.Session(region_name=REGION)
        self.s3, self.ddb = session.client("s3"), session.client("dynamodb")
        self.glue, events = session.client("glue"), session.client("events")
        for bucket in (SETTINGS.raw_bucket, SETTINGS.formatted_bucket, SETTINGS.config_bucket):
            self.s3.create_bucket(Bucket=bucket)
        events.create_event_bus(Name=SETTINGS.service_bus)
        create_audit_table(self.ddb)
        self.glue.create_database(DatabaseInput={"Name": SETTINGS.database("formatted_stg")})
        self.publisher = EventPublisher(events, (SETTINGS.service_bus,), record=True)
        self.audit = AuditStore(SETTINGS.audit_table, self.ddb)
        self.converter = Converter(
            s3=self.s3, publisher=self.publisher, audit=self.audit, settings=SETTINGS
        )
        self.catalog = CatalogServices(
            settings=SETTINGS,
            glue=self.glue,
            s3=self.s3,
            dynamodb=self.ddb,
            publisher=self.publisher,
            audit=self.audit,
            start_crawler=lambda *a, **k: None,
            send_later=lambda *a, **k: None,
        )
        # A product waiting on this table and on one that never refreshes: every refresh
        # is recorded in its fan-in state, and it never starts a run.
        document = {
            "name": "orders_daily",
            "depends_on": ["formatted_stg.shop_orders", "formatted_stg.calendar"],
            "dbt": {"tags": ["daily"]},
        }
        store = ProductStore(SETTINGS.audit_table, self.ddb)
        store.put_definition(
            "orders_daily",
            document,
            Product.from_document(document).dependency_keys(SETTINGS.glue_database_prefix),
            source="s3://scale-config/products/orders_daily.json",
            version="v1",
        )
        self.products = ProductsContext(
            store=store,
            audit=self.audit,
            publisher=self.publisher,
            runners=_no_runner,
            s3=self.s3,
            config_bucket=SETTINGS.config_bucket,
            glue_prefix=SETTINGS.glue_database_prefix,
            account_id=SETTINGS.account_id,
            environment=SETTINGS.environment,
        )

    def convert(self, numbers: range) -> None:
        """Land and convert each file, then catalogue the batch, then fan in the refreshes."""
        self.publisher.published.clear()
        for n in numbers:
            landed = _landed(n)
            put = self.s3.put_object(
                Bucket=landed.bucket, Key=landed.key, Body=f"id,amount\n{n},{n}.5\n".encode()
            )
            landed = LandedObject(
                bucket=landed.bucket, key=landed.key, etag=put["ETag"].strip('"'), size=20
            )
            outcome = self.converter.process(landed)
            assert outcome.status == "PROCESSED", (n, outcome)
        converted = [
            Message(f"m{i}", {"detail-type": e.detail_type, "detail": e.detail})
            for i, e in enumerate(self.publisher.published)
            if e.detail_type == "FileConverted"
        ]
        assert len(converted) == len(numbers)
        self.publisher.published.clear()
        result = process_batch(converted, self.catalog)
        assert result.failed == [], result
        refreshes = [e for e in self.publisher.published if e.detail_type == "DatasetRefreshed"]
        assert refreshes, "the batch refreshed nothing"
        for event in refreshes:
            outcome = on_dataset_refreshed(event.detail, self.products)
            assert outcome["products"]["orders_daily"]["recorded"], outcome

    def largest_items(self) -> list[tuple[int, str, str]]:
        sizes = []
        for page in self.ddb.get_paginator("scan").paginate(TableName=SETTINGS.audit_table):
            for item in page["Items"]:
                sizes.append((item_bytes(item), item["pk"]["S"], item["sk"]["S"]))
        return sorted(sizes, reverse=True)


def test_a_busy_table_keeps_every_item_bounded_and_still_converts():
    with mock_aws():
        lake = Lake()
        started = time.perf_counter()
        batch = 10  # the catalog queue's batch size
        for first in range(0, CONVERSIONS, batch):
            lake.convert(range(first, min(first + batch, CONVERSIONS)))
        elapsed = time.perf_counter() - started
        largest = lake.largest_items()
        size, pk, sk = largest[0]
        assert size < ITEM_BOUND, f"{pk} / {sk} is {size} bytes after {CONVERSIONS} conversions"
        schema = lake.audit.get("dataset", "shop_orders", "schema")
        assert len(schema["history"]) <= HISTORY_LIMIT
        # and the table still takes files: the next conversion and its cataloguing succeed
        lake.convert(range(CONVERSIONS, CONVERSIONS + 1))
        partitions = lake.glue.get_partitions(
            DatabaseName=SETTINGS.database("formatted_stg"), TableName="shop_orders"
        )["Partitions"]
        assert len(partitions) == PARTITIONS
        print(f"{CONVERSIONS} conversions in {elapsed:.1f} s; largest item {size} bytes ({pk})")

"""XML, workbooks and fixed-width files through the convert handler on moto: a workbook's
named sheets each to their own table, an unsafe XML quarantined like any bad file."""

from __future__ import annotations

import io
import json

import boto3
import pyarrow.parquet as pq
import pytest
from moto import mock_aws
from tests.conftest import ROOT
from tests.integration.ingest.test_convert_handler import ENV, Harness

import lakegov.app
from lakegov.events import validate_detail

WORKBOOK = (ROOT / "tests/fixtures/formats/orders.xlsx").read_bytes()


@pytest.fixture
def harness(monkeypatch):
    for key, value in ENV.items():
        monkeypatch.setenv(key, value)
    with mock_aws():
        import handlers.convert as convert_handler

        lakegov.app._apps.clear()  # a cold container: the App and its converter built anew
        yield Harness(), convert_handler


def _dataset(h: Harness, name: str, doc: dict) -> None:
    h.s3.put_object(Bucket="configs", Key=f"datasets/{name}.json", Body=json.dumps(doc).encode())


def _table(h: Harness, key: str):
    body = h.s3.get_object(Bucket="formatted", Key=key)["Body"].read()
    return pq.read_table(io.BytesIO(body))


def test_a_workbook_without_a_document_converts_its_first_sheet(harness, lambda_context):
    h, handler = harness
    event = h.land("shop/dt=2026-11-20/orders.xlsx", WORKBOOK)
    assert handler.handler(h.batch(event), lambda_context)["batchItemFailures"] == []
    (converted,) = [e["detail"] for e in h.published() if e["detail-type"] == "FileConverted"]
    assert converted["table"] == "shop_orders" and converted["rows"] == 5
    assert "sheet" not in converted


def test_named_sheets_each_go_to_their_own_table_with_their_own_event(harness, lambda_context):
    h, handler = harness
    _dataset(
        h,
        "shop",
        {
            "match": {"prefix": "shop/", "pattern": "*.xlsx"},
            "spreadsheet": {"sheets": ["Orders", {"name": "Customers", "table_name": "customers"}]},
        },
    )
    event = h.land("shop/dt=2026-11-20/orders.xlsx", WORKBOOK)
    assert handler.handler(h.batch(event), lambda_context)["batchItemFailures"] == []
    published = [e for e in h.published() if e["detail-type"] == "FileConverted"]
    for e in published:
        validate_detail("FileConverted", e["detail"])
    by_table = {e["detail"]["table"]: e["detail"] for e in published}
    assert set(by_table) == {"shop_orders_orders", "customers"}
    orders, customers = by_table["shop_orders_orders"], by_table["customers"]
    assert orders["sheet"] == "Orders" and orders["rows"] == 5
    assert customers["sheet"] == "Customers" and customers["rows"] == 2
    assert customers["partition_values"] == {"dt": "2026-11-20"}
    (key,) = customers["output_keys"]
    assert key.startswith("formatted_stg/customers/dt=2026-11-20/")
    assert _table(h, key).column("name").to_pylist() == ["Ada", "Grace"]
    # one audit item for the landed file, naming both tables and outputs
    audit = boto3.resource("dynamodb", region_name="us-east-1").Table("audit")
    item = audit.get_item(
        Key={
            "pk": "file#s3://raw/shop/dt=2026-11-20/orders.xlsx",
            "sk": event["detail"]["object"]["version-id"],
        }
    )["Item"]
    assert item["status"] == "PROCESSED" and set(item["tables"]) == set(by_table)
    assert sorted(item["output_keys"]) == sorted(orders["output_keys"] + customers["output_keys"])


def test_a_missing_sheet_rejects_the_workbook_and_leaves_no_output(harness, lambda_context):
    h, handler = harness
    _dataset(
        h, "shop", {"match": {"prefix": "shop/"}, "spreadsheet": {"sheets": ["Orders", "Nope"]}}
    )
    event = h.land("shop/orders.xlsx", WORKBOOK)
    assert handler.handler(h.batch(event), lambda_context)["batchItemFailures"] == []
    (rejected,) = [e["detail"] for e in h.published() if e["detail-type"] == "FileRejected"]
    assert rejected["reason_code"] == "schema_mismatch"
    assert rejected["reason"].startswith("sheet 'Nope': the workbook has no sheet")
    assert "Contents" not in h.s3.list_objects_v2(Bucket="formatted")


def test_an_unsafe_xml_is_quarantined_audited_and_announced(harness, lambda_context):
    h, handler = harness
    evil = b'<?xml version="1.0"?><!DOCTYPE d [<!ENTITY x SYSTEM "file:///etc/passwd">]><d><r><v>&x;</v></r></d>'
    event = h.land("feeds/items.xml", evil)
    assert handler.handler(h.batch(event), lambda_context)["batchItemFailures"] == []
    (rejected,) = [e["detail"] for e in h.published() if e["detail-type"] == "FileRejected"]
    validate_detail("FileRejected", rejected)
    assert rejected["reason_code"] == "xml_unsafe"
    head = h.s3.head_object(Bucket="raw", Key=rejected["quarantine_key"])
    assert head["Metadata"]["lakegov-reason-code"] == "xml_unsafe"


def test_a_fixed_width_file_declared_by_a_document_converts(harness, lambda_context):
    h, handler = harness
    _dataset(
        h,
        "bank",
        {
            "match": {"prefix": "bank/"},
            "format": "fixed_width",
            "fixed_width": {
                "columns": [{"name": "account", "width": 6}, {"name": "amount", "width": 8}]
            },
        },
    )
    event = h.land("bank/statement.txt", b"000123   10.50\n000456    4.25\n")
    assert handler.handler(h.batch(event), lambda_context)["batchItemFailures"] == []
    (converted,) = [e["detail"] for e in h.published() if e["detail-type"] == "FileConverted"]
    table = _table(h, converted["output_keys"][0])
    assert table.to_pylist() == [
        {"account": "000123", "amount": 10.5},
        {"account": "000456", "amount": 4.25},
    ]
